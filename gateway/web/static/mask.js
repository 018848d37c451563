// The mask editor: a canvas at the target's natural resolution laid over the
// target image. Painting is recorded as operations (strokes, clear, invert) so
// undo and redo replay them exactly; the canvas alpha is the painted area.
//
// Exported masks follow ComfyUI's mask editor: a PNG whose alpha is 0 where
// the user painted and 255 elsewhere. Their colour is white where painted and
// black elsewhere, so a reader that looks at the gray value instead of the
// alpha (white = paint) sees the same mask.

import { encodePNG } from "./png.js";

/** Colour of painted pixels on the overlay; the overlay's CSS opacity makes it see-through. */
export const MASK_COLOR = "#ff1f8f";

/** Brush diameter limits, in CSS pixels on screen. */
export const SIZE_MIN = 2;
export const SIZE_MAX = 400;

const KEY_STEP = 8;
const KEY_STEP_FAST = 40;

/**
 * @typedef {{kind: "stroke", erase: boolean, radius: number, points: number[]}
 *   | {kind: "clear"} | {kind: "invert"}} MaskOp
 */

/**
 * Paints a mask on a canvas with pointer (mouse, touch, pen) and keyboard
 * input. Fires "change" after every finished edit and "cursor" when the
 * keyboard cursor moves.
 */
export class MaskPainter extends EventTarget {
  /**
   * @param {HTMLCanvasElement} canvas the overlay; its parent is the positioned stage
   * @param {HTMLElement} cursor an element drawn as the brush outline
   */
  constructor(canvas, cursor) {
    super();
    this.canvas = canvas;
    this.cursor = cursor;
    // The mask is read back for the coverage summary and the export, so it
    // lives in memory rather than on the GPU.
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.small = null;
    /** @type {MaskOp[]} */
    this.ops = [];
    /** @type {MaskOp[]} */
    this.undone = [];
    /** @type {"brush"|"eraser"} */
    this.tool = "brush";
    this.sizePx = 40;
    /** @type {(MaskOp & {kind: "stroke"}) | null} */
    this.active = null;
    this.pointerId = null;
    this.keyPainting = false;
    this.kb = { x: 0, y: 0 };
    this.hover = null;
    this.bind();
  }

  /** Starts a fresh mask for an image of the given natural size. */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.ops = [];
    this.undone = [];
    this.active = null;
    this.pointerId = null;
    this.keyPainting = false;
    this.kb = { x: width / 2, y: height / 2 };
    this.changed();
  }

  /** Brush diameter in CSS pixels. */
  get size() {
    return this.sizePx;
  }

  set size(v) {
    this.sizePx = Math.round(Math.min(SIZE_MAX, Math.max(SIZE_MIN, v)));
    this.drawCursor();
  }

  get canUndo() {
    return this.ops.length > 0 && !this.active;
  }

  get canRedo() {
    return this.undone.length > 0 && !this.active;
  }

  undo() {
    if (!this.canUndo) return;
    this.undone.push(this.ops.pop());
    this.replay();
    this.changed();
  }

  redo() {
    if (!this.canRedo) return;
    const op = this.undone.pop();
    this.ops.push(op);
    this.apply(op);
    this.changed();
  }

  /** Removes all paint (undoable). */
  clear() {
    this.commit({ kind: "clear" });
  }

  /** Swaps painted and unpainted areas (undoable). */
  invert() {
    this.commit({ kind: "invert" });
  }

  commit(op) {
    this.finishStroke();
    this.ops.push(op);
    this.undone = [];
    this.apply(op);
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** Scale from CSS pixels to natural pixels. */
  scale() {
    const rect = this.canvas.getBoundingClientRect();
    return rect.width > 0 ? this.canvas.width / rect.width : 1;
  }

  /** Natural-resolution point of a pointer event. */
  point(e) {
    const rect = this.canvas.getBoundingClientRect();
    const s = rect.width > 0 ? this.canvas.width / rect.width : 1;
    return { x: (e.clientX - rect.left) * s, y: (e.clientY - rect.top) * s };
  }

  beginStroke(x, y) {
    this.finishStroke();
    this.active = { kind: "stroke", erase: this.tool === "eraser", radius: (this.sizePx / 2) * this.scale(), points: [x, y] };
    this.paint(this.active, 0);
  }

  extendStroke(x, y) {
    const op = this.active;
    if (!op) return;
    const n = op.points.length;
    if (Math.hypot(op.points[n - 2] - x, op.points[n - 1] - y) < 0.5) return;
    op.points.push(x, y);
    this.paint(op, n - 2);
  }

  finishStroke() {
    if (!this.active) return;
    const op = this.active;
    this.active = null;
    this.ops.push(op);
    this.undone = [];
    this.changed();
  }

  /** Paints op, or for a stroke the part from point index `from` on. */
  paint(op, from) {
    const ctx = this.ctx;
    ctx.save();
    ctx.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
    ctx.fillStyle = MASK_COLOR;
    ctx.strokeStyle = MASK_COLOR;
    const p = op.points;
    if (p.length === 2 || from === 0) {
      ctx.beginPath();
      ctx.arc(p[0], p[1], op.radius, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (p.length > 2) {
      ctx.lineWidth = op.radius * 2;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(p[from], p[from + 1]);
      for (let i = from + 2; i < p.length; i += 2) ctx.lineTo(p[i], p[i + 1]);
      ctx.stroke();
    }
    ctx.restore();
  }

  apply(op) {
    const ctx = this.ctx;
    const { width, height } = this.canvas;
    switch (op.kind) {
      case "stroke":
        this.paint(op, 0);
        break;
      case "clear":
        ctx.clearRect(0, 0, width, height);
        break;
      case "invert":
        ctx.save();
        ctx.globalCompositeOperation = "xor";
        ctx.fillStyle = MASK_COLOR;
        ctx.fillRect(0, 0, width, height);
        ctx.restore();
        break;
    }
  }

  replay() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    for (const op of this.ops) this.apply(op);
  }

  /**
   * The painted share of the image, 0 to 1, measured on a small copy.
   * @returns {number}
   */
  coverage() {
    const { width, height } = this.canvas;
    if (!width || !height) return 0;
    const f = Math.min(1, 160 / Math.max(width, height));
    const w = Math.max(1, Math.round(width * f));
    const h = Math.max(1, Math.round(height * f));
    if (!this.small || this.small.width !== w || this.small.height !== h) {
      this.small = new OffscreenCanvas(w, h).getContext("2d", { willReadFrequently: true });
    }
    const sctx = this.small;
    sctx.clearRect(0, 0, w, h);
    sctx.drawImage(this.canvas, 0, 0, w, h);
    const d = sctx.getImageData(0, 0, w, h).data;
    let sum = 0;
    for (let i = 3; i < d.length; i += 4) sum += d[i];
    return sum / (255 * w * h);
  }

  /** Whether no pixel at all is painted (exact). */
  isEmpty() {
    const { width, height } = this.canvas;
    if (!width || !height) return true;
    const d = this.ctx.getImageData(0, 0, width, height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false;
    return true;
  }

  /**
   * The mask as RGBA bytes at natural resolution: painted pixels are
   * (255, 255, 255, 0), unpainted ones (0, 0, 0, 255), edges in between.
   * @returns {Uint8Array}
   */
  maskRGBA() {
    this.finishStroke();
    const { width, height } = this.canvas;
    const src = this.ctx.getImageData(0, 0, width, height).data;
    const out = new Uint8Array(width * height * 4);
    for (let i = 0; i < out.length; i += 4) {
      const a = src[i + 3];
      out[i] = a;
      out[i + 1] = a;
      out[i + 2] = a;
      out[i + 3] = 255 - a;
    }
    return out;
  }

  /** The mask as a PNG file (see maskRGBA). */
  async toPNG() {
    return encodePNG(this.canvas.width, this.canvas.height, 6, this.maskRGBA());
  }

  // --- input ---

  bind() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => {
      if (this.pointerId !== null || !e.isPrimary) return;
      if (e.pointerType === "mouse" && e.button !== 0) return;
      e.preventDefault();
      c.focus({ preventScroll: true });
      c.setPointerCapture(e.pointerId);
      this.pointerId = e.pointerId;
      const p = this.point(e);
      this.kb = p;
      this.beginStroke(p.x, p.y);
      this.hover = { x: e.clientX, y: e.clientY };
      this.drawCursor();
    });
    c.addEventListener("pointermove", (e) => {
      if (e.pointerType !== "touch") {
        this.hover = { x: e.clientX, y: e.clientY };
        this.drawCursor();
      }
      if (e.pointerId !== this.pointerId) return;
      const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
      for (const ce of events.length ? events : [e]) {
        const p = this.point(ce);
        this.extendStroke(p.x, p.y);
      }
      this.kb = this.point(e);
    });
    const end = (e) => {
      if (e.pointerId !== this.pointerId) return;
      this.pointerId = null;
      this.finishStroke();
      if (e.pointerType === "touch") {
        this.hover = null;
        this.drawCursor();
      }
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", (e) => {
      if (e.pointerType === "mouse" && this.pointerId === null) {
        this.hover = null;
        this.drawCursor();
      }
    });
    c.addEventListener("keydown", (e) => this.onKeyDown(e));
    c.addEventListener("keyup", (e) => {
      if (e.key === " " && this.keyPainting) {
        this.keyPainting = false;
        this.finishStroke();
        e.preventDefault();
      }
    });
    c.addEventListener("focus", () => this.drawCursor());
    c.addEventListener("blur", () => {
      if (this.keyPainting) {
        this.keyPainting = false;
        this.finishStroke();
      }
      this.drawCursor();
    });
  }

  /** Keyboard painting: arrows move the brush, Space held paints, Enter stamps. */
  onKeyDown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const step = (e.shiftKey ? KEY_STEP_FAST : KEY_STEP) * this.scale();
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (e.key in moves) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      const { width, height } = this.canvas;
      this.kb = { x: Math.min(width, Math.max(0, this.kb.x + dx)), y: Math.min(height, Math.max(0, this.kb.y + dy)) };
      this.hover = null;
      if (this.keyPainting) this.extendStroke(this.kb.x, this.kb.y);
      this.drawCursor();
      this.dispatchEvent(new Event("cursor"));
      return;
    }
    if (e.key === " ") {
      e.preventDefault();
      if (e.repeat || this.keyPainting) return;
      this.keyPainting = true;
      this.hover = null;
      this.beginStroke(this.kb.x, this.kb.y);
      this.drawCursor();
      return;
    }
    if (e.key === "Enter") {
      e.preventDefault();
      this.hover = null;
      this.beginStroke(this.kb.x, this.kb.y);
      this.finishStroke();
      this.drawCursor();
    }
  }

  /** Positions the brush outline at the pointer or the keyboard cursor. */
  drawCursor() {
    const el = this.cursor;
    if (!el) return;
    const rect = this.canvas.getBoundingClientRect();
    let x;
    let y;
    if (this.hover) {
      x = this.hover.x - rect.left;
      y = this.hover.y - rect.top;
    } else if (document.activeElement === this.canvas) {
      const s = this.scale();
      x = this.kb.x / s;
      y = this.kb.y / s;
    } else {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    const d = this.sizePx;
    el.style.width = `${d}px`;
    el.style.height = `${d}px`;
    el.style.transform = `translate(${x - d / 2}px, ${y - d / 2}px)`;
    el.classList.toggle("eraser", this.tool === "eraser");
    el.classList.toggle("keyboard", !this.hover);
  }
}
