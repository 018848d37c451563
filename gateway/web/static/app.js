// Image Brush: load a target, paint a mask, pick a style reference, submit a
// job to /v1/jobs, follow it live, compare the result with the target, and
// browse earlier jobs.

import { MaskPainter, SIZE_MAX, SIZE_MIN } from "./mask.js";
import { APIError, Client, TERMINAL, progressFraction } from "./api.js";
import { uprightFile } from "./orientation.js";

const $ = (id) => document.getElementById(id);

const KEY_STORE = "comfypod.image-brush.api-key";
const TITLE = document.title;
const HISTORY_PAGE = 12;
const THUMB_CONCURRENCY = 3;
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];

/** What each job status looks like on the page. */
const STATUS = {
  idle: { badge: "Idle", text: "No job yet. Load images, paint a mask and press Restyle." },
  sending: { badge: "Sending", text: "Uploading the images…" },
  queued: { badge: "Queued", text: "Queued: waiting for a worker." },
  // Queued for long without the service saying why: most likely a cold start
  // it has not detected yet.
  queued_long: { badge: "Queued", text: "Still queued: a worker may be starting and loading the model, which can take a minute." },
  cold_start: { badge: "Loading model", text: "The model is loading (cold start), this can take a minute." },
  running: { badge: "Running", text: "Running: restyling the painted area." },
  succeeded: { badge: "Done", text: "Done. The result is below." },
  failed: { badge: "Failed", text: "The job failed." },
  cancelled: { badge: "Cancelled", text: "The job was cancelled." },
  timed_out: { badge: "Timed out", text: "The job took too long and was stopped." },
};

const FIELD_INPUT = {
  target: "target-file",
  reference: "reference-file",
  mask: "mask-canvas",
  prompt: "prompt",
  strength: "strength",
  seed: "seed-value",
};

const client = new Client();
const painter = new MaskPainter($("mask-canvas"), $("brush-cursor"));

const state = {
  /** @type {{file: File, url: string, width: number, height: number} | null} */
  target: null,
  /** @type {{file: File, url: string} | null} */
  reference: null,
  /** The job on screen. */
  view: null,
  /** Targets of the jobs sent from this page, by job id, for the comparison. */
  jobTargets: new Map(),
  /** Object URLs of history thumbnails, by job id. */
  thumbs: new Map(),
  /** The object URL of the target the service kept for the job on screen. */
  beforeURL: "",
  historyCursor: "",
  historyLoading: null,
  submitting: false,
  /** The service's size limit for one image file, once known. */
  maxImageBytes: 0,
  strengthTouched: false,
  resultURL: "",
  elapsedTimer: 0,
};

// --- small helpers ---

function megabytes(n) {
  return `${(n / (1 << 20)).toFixed(n < 10 << 20 ? 1 : 0)} MB`;
}

function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function parseTime(v) {
  const t = typeof v === "string" || typeof v === "number" ? new Date(v).getTime() : NaN;
  return Number.isFinite(t) ? t : NaN;
}

function reducedMotion() {
  return matchMedia("(prefers-reduced-motion: reduce)").matches;
}

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

// --- API key ---

function setupKey() {
  const input = $("api-key");
  const remember = $("remember-key");
  const stored = storage()?.getItem(KEY_STORE) ?? "";
  if (stored) {
    input.value = stored;
    remember.checked = true;
    client.key = stored;
  }
  const save = () => {
    const s = storage();
    if (!s) return;
    if (remember.checked && client.key) s.setItem(KEY_STORE, client.key);
    else s.removeItem(KEY_STORE);
  };
  input.addEventListener("input", () => {
    client.key = input.value.trim();
    save();
  });
  input.addEventListener("change", () => {
    loadPackage();
    loadHistory();
  });
  remember.addEventListener("change", save);
}

function askForKey(message) {
  const details = $("connection");
  details.open = true;
  $("api-key").setAttribute("aria-invalid", "true");
  $("api-key").focus();
  return message;
}

// --- field errors ---

function setFieldError(field, message) {
  const input = $(FIELD_INPUT[field]);
  const out = $(`${field}-error`);
  if (input) input.setAttribute("aria-invalid", "true");
  if (out) {
    out.textContent = message;
    out.hidden = false;
  }
}

function clearFieldError(field) {
  $(FIELD_INPUT[field])?.removeAttribute("aria-invalid");
  const out = $(`${field}-error`);
  if (out) {
    out.textContent = "";
    out.hidden = true;
  }
}

function clearErrors() {
  for (const f of Object.keys(FIELD_INPUT)) clearFieldError(f);
  $("form-error").hidden = true;
  $("form-error").textContent = "";
  $("api-key").removeAttribute("aria-invalid");
}

function showFormError(message) {
  const el = $("form-error");
  el.textContent = message;
  el.hidden = false;
}

/** Shows an error answer of the service next to the field it names. */
function showAPIError(err) {
  if (err instanceof APIError && err.status === 401) {
    showFormError(askForKey("This service needs an API key. Enter it under “API key” at the top and press Restyle again."));
    return;
  }
  if (err instanceof APIError && err.status === 403) {
    showFormError(askForKey("The API key was refused. Check it under “API key” at the top."));
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof APIError) {
    const list = err.problems.length ? err.problems : [{ field: err.field, message }];
    let first = "";
    for (const p of list) {
      if (!p.field || !FIELD_INPUT[p.field]) continue;
      setFieldError(p.field, p.message);
      first ||= p.field;
    }
    showFormError(list.length > 1 ? list.map((p) => p.message).join(" ") : message);
    if (first) $(FIELD_INPUT[first]).focus();
    return;
  }
  showFormError(message);
}

// --- images ---

function isImage(file) {
  return file && (IMAGE_TYPES.includes(file.type) || (file.type === "" && /\.(png|jpe?g|webp)$/i.test(file.name)));
}

async function decodeInto(img, file) {
  const url = URL.createObjectURL(file);
  img.src = url;
  try {
    await img.decode();
  } catch {
    URL.revokeObjectURL(url);
    img.removeAttribute("src");
    return null;
  }
  return url;
}

function releaseTarget(t) {
  if (!t) return;
  for (const v of state.jobTargets.values()) if (v.url === t.url) return;
  URL.revokeObjectURL(t.url);
}

async function loadTarget(file) {
  clearFieldError("target");
  clearFieldError("mask");
  if (!file) return;
  if (!isImage(file)) {
    setFieldError("target", "That file is not a PNG, JPEG or WebP image.");
    return;
  }
  let upright = { file, turned: false };
  try {
    upright = await uprightFile(file);
  } catch {
    // Not a readable JPEG: decoding below says so.
  }
  const img = $("target-img");
  const url = await decodeInto(img, upright.file);
  if (!url) {
    setFieldError("target", "That image could not be read. Try another file.");
    if (state.target) img.src = state.target.url;
    return;
  }
  file = upright.file;
  $("target-note").hidden = !upright.turned;
  releaseTarget(state.target);
  const width = img.naturalWidth;
  const height = img.naturalHeight;
  state.target = { file, url, width, height };
  $("stage").style.setProperty("--ar", String(width / height));
  $("stage-wrap").hidden = false;
  $("tools").hidden = false;
  $("mask-canvas").setAttribute("aria-label", `Mask over the ${width} × ${height} target: paint the area to restyle`);
  painter.reset(width, height);
}

async function loadReference(file) {
  clearFieldError("reference");
  if (!file) return;
  if (!isImage(file)) {
    setFieldError("reference", "That file is not a PNG, JPEG or WebP image.");
    return;
  }
  const img = $("reference-img");
  const url = await decodeInto(img, file);
  if (!url) {
    setFieldError("reference", "That image could not be read. Try another file.");
    if (state.reference) img.src = state.reference.url;
    return;
  }
  if (state.reference) URL.revokeObjectURL(state.reference.url);
  state.reference = { file, url };
  img.hidden = false;
  // The image shows before this runs: say which file the form now sends.
  img.dataset.file = file.name;
}

function setupFiles() {
  const pick = { target: loadTarget, reference: loadReference };
  for (const kind of ["target", "reference"]) {
    const input = $(`${kind}-file`);
    input.addEventListener("change", () => pick[kind](input.files?.[0]));
    const zones = kind === "target" ? [$(`${kind}-drop`), $("stage")] : [$(`${kind}-drop`)];
    for (const zone of zones) {
      let depth = 0;
      zone.addEventListener("dragenter", (e) => {
        if (!e.dataTransfer?.types.includes("Files")) return;
        e.preventDefault();
        depth++;
        $(`${kind}-drop`).classList.add("over");
      });
      zone.addEventListener("dragover", (e) => {
        if (!e.dataTransfer?.types.includes("Files")) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
      });
      zone.addEventListener("dragleave", () => {
        depth = Math.max(0, depth - 1);
        if (depth === 0) $(`${kind}-drop`).classList.remove("over");
      });
      zone.addEventListener("drop", (e) => {
        e.preventDefault();
        e.stopPropagation();
        depth = 0;
        $(`${kind}-drop`).classList.remove("over");
        const files = e.dataTransfer?.files;
        if (!files?.length) return;
        try {
          input.files = files;
        } catch {
          // Older browsers: the input keeps its old label; the image still loads.
        }
        pick[kind](files[0]);
      });
    }
  }
  // A file dropped beside a zone must not make the browser leave the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// --- mask tools ---

function sizeStep(size, dir) {
  const step = size < 10 ? 1 : size < 50 ? 5 : size < 100 ? 10 : 25;
  return Math.min(SIZE_MAX, Math.max(SIZE_MIN, size + dir * step));
}

/** Says something to screen readers without moving the focus. */
function announce(text) {
  const el = $("announce");
  // The same words twice in a row are read again only if the text changes.
  el.textContent = el.textContent === text ? `${text}\u00a0` : text;
}

function setTool(tool, say = false) {
  painter.tool = tool;
  $(`tool-${tool}`).checked = true;
  painter.drawCursor();
  if (say) announce(tool === "eraser" ? "Eraser" : "Brush");
}

function setSize(size, say = false) {
  painter.size = size;
  $("brush-size").value = String(painter.size);
  $("brush-size-out").textContent = `${painter.size} px`;
  if (say) announce(`Brush size ${painter.size} pixels`);
}

/**
 * Marks a button unavailable without disabling it: a disabled button loses
 * the keyboard focus, so pressing Undo until nothing is left would drop the
 * focus to the page.
 */
function setAvailable(button, on) {
  if (on) button.removeAttribute("aria-disabled");
  else button.setAttribute("aria-disabled", "true");
}

function updateMaskUI() {
  setAvailable($("undo"), painter.canUndo);
  setAvailable($("redo"), painter.canRedo);
  const c = painter.coverage();
  const summary =
    c === 0 ? "Nothing painted yet." : c < 0.005 ? "A small area is painted." : `About ${Math.round(c * 100)}% of the image is painted.`;
  $("mask-summary").textContent = summary;
  if (c > 0) clearFieldError("mask");
}

function undo() {
  if (!painter.canUndo) return;
  painter.undo();
  announce(painter.canUndo ? "Undone" : "Undone; nothing left to undo");
}

function redo() {
  if (!painter.canRedo) return;
  painter.redo();
  announce(painter.canRedo ? "Redone" : "Redone; nothing left to redo");
}

function isTextEntry(el) {
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return true;
  return el instanceof HTMLInputElement && !["range", "radio", "checkbox", "button", "submit", "file", "color"].includes(el.type);
}

function setupTools() {
  painter.addEventListener("change", updateMaskUI);
  for (const el of document.querySelectorAll('input[name="tool"]')) {
    el.addEventListener("change", () => setTool(el.value));
  }
  $("brush-size").addEventListener("input", () => setSize(Number($("brush-size").value)));
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("clear").addEventListener("click", () => {
    painter.clear();
    announce("Mask cleared");
  });
  $("invert").addEventListener("click", () => {
    painter.invert();
    announce("Mask inverted");
  });
  setSize(painter.size);

  document.addEventListener("keydown", (e) => {
    if (!state.target || e.defaultPrevented || isTextEntry(e.target)) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (mod && !e.altKey && key === "z") {
      e.preventDefault();
      e.shiftKey ? redo() : undo();
      return;
    }
    if (mod && !e.altKey && !e.shiftKey && key === "y") {
      e.preventDefault();
      redo();
      return;
    }
    if (mod || e.altKey || !$("single-keys").checked) return;
    switch (key) {
      case "[":
        setSize(sizeStep(painter.size, -1), true);
        break;
      case "]":
        setSize(sizeStep(painter.size, 1), true);
        break;
      case "b":
        setTool("brush", true);
        break;
      case "e":
        setTool(painter.tool === "eraser" ? "brush" : "eraser", true);
        break;
      case "i":
        painter.invert();
        announce("Mask inverted");
        break;
      default:
        return;
    }
    e.preventDefault();
  });
}

// --- settings ---

function setupSettings() {
  const strength = $("strength");
  const show = () => ($("strength-out").textContent = Number(strength.value).toFixed(2));
  strength.addEventListener("input", (e) => {
    if (e.isTrusted) state.strengthTouched = true;
    show();
  });
  show();
  const seedValue = $("seed-value");
  const syncSeed = () => {
    seedValue.disabled = !$("seed-fixed").checked;
    if (seedValue.disabled) clearFieldError("seed");
  };
  for (const r of document.querySelectorAll('input[name="seed-mode"]')) r.addEventListener("change", syncSeed);
  syncSeed();
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $("job-form").requestSubmit();
    }
  });
}

// --- submit ---

function validate() {
  const problems = [];
  if (!state.target) problems.push(["target", "Choose a target image."]);
  else if (painter.isEmpty()) problems.push(["mask", "Paint the area to restyle on the target image (Invert paints all of it)."]);
  if (!state.reference) problems.push(["reference", "Choose a reference image for the style."]);
  const limit = state.maxImageBytes;
  for (const [field, f] of [["target", state.target?.file], ["reference", state.reference?.file]]) {
    if (limit && f && f.size > limit) {
      problems.push([field, `The ${field} file is ${megabytes(f.size)}; the service takes files up to ${megabytes(limit)}.`]);
    }
  }
  if ($("seed-fixed").checked) {
    const v = $("seed-value").value.trim();
    if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > 18446744073709551615n) {
      problems.push(["seed", "The seed must be a whole number from 0 to 18446744073709551615."]);
    }
  }
  return problems;
}

async function onSubmit(e) {
  e.preventDefault();
  if (state.submitting) return;
  clearErrors();
  const problems = validate();
  if (problems.length) {
    for (const [field, message] of problems) setFieldError(field, message);
    showFormError(problems.length === 1 ? problems[0][1] : `Please fix ${problems.length} things: ${problems.map((p) => p[1]).join(" ")}`);
    $(FIELD_INPUT[problems[0][0]]).focus();
    return;
  }
  // The button stays enabled (a disabled button would drop the keyboard
  // focus); a second press while sending is ignored.
  const submit = $("submit");
  state.submitting = true;
  submit.setAttribute("aria-disabled", "true");
  const target = state.target;
  // The job on screen stops being followed: the new one replaces it.
  state.view?.abort.abort();
  state.view = null;
  markCurrent("");
  try {
    renderStatus({ status: "sending" });
    const form = new FormData();
    form.append("target", target.file, target.file.name || "target.png");
    form.append("reference", state.reference.file, state.reference.file.name || "reference.png");
    form.append("mask", await painter.toPNG(), "mask.png");
    form.append("prompt", $("prompt").value.trim());
    form.append("strength", Number($("strength").value).toFixed(2));
    form.append("seed", $("seed-fixed").checked ? $("seed-value").value.trim() : "random");
    const job = await client.submit(form);
    if (!job || typeof job.id !== "string") throw new APIError(0, "The service answered without a job id.");
    state.jobTargets.set(job.id, target);
    viewJob(job);
    $("status-card").scrollIntoView({ block: "nearest", behavior: reducedMotion() ? "auto" : "smooth" });
    loadHistory();
  } catch (err) {
    renderStatus({ status: "idle" });
    showAPIError(err);
  } finally {
    state.submitting = false;
    submit.removeAttribute("aria-disabled");
  }
}

// --- status ---

/** How long a job may stay queued before the page suggests a cold start. */
const LONG_QUEUE_MS = 20000;

function renderStatus(job) {
  const long = job.status === "queued" && job.id && state.view?.id === job.id && state.view.longQueue;
  const s = (long ? STATUS.queued_long : STATUS[job.status]) ?? { badge: String(job.status ?? "Unknown"), text: `Status: ${job.status}` };
  const box = $("status");
  const changed = box.dataset.state !== job.status;
  box.dataset.state = job.status;
  $("status-badge").textContent = s.badge;
  // The live region changes only with the state, so progress ticks are not read out one by one.
  if (changed || $("status-text").textContent !== s.text) $("status-text").textContent = s.text;

  const p = progressFraction(job.progress);
  const bar = $("progress");
  const active = ["queued", "cold_start", "running", "sending"].includes(job.status);
  // The tab's title tells how the job is doing while the user looks elsewhere.
  document.title = job.status === "idle" ? TITLE : `${s.badge} · ${TITLE}`;
  bar.hidden = !active;
  if (job.status === "running" && p !== null) {
    bar.value = p;
    bar.setAttribute("aria-valuetext", `${Math.round(p * 100)}%`);
  } else {
    bar.removeAttribute("value");
    bar.removeAttribute("aria-valuetext");
  }

  const err = $("status-error");
  if ((job.status === "failed" || job.status === "timed_out") && job.error) {
    const msg = typeof job.error === "string" ? job.error : (job.error.message ?? JSON.stringify(job.error));
    if (err.textContent !== msg) err.textContent = msg;
    err.hidden = false;
  } else if (job.status !== "idle") {
    err.hidden = true;
    err.textContent = "";
  }

  const cancel = $("cancel");
  const cancellable = Boolean(job.id) && ["queued", "cold_start", "running"].includes(job.status);
  // Hiding the focused button would drop the focus to the page: keep it here.
  if (!cancellable && document.activeElement === cancel) $("status-heading").focus();
  cancel.hidden = !cancellable;
  if (!cancellable) cancel.removeAttribute("aria-disabled");

  if (state.view && job.id === state.view.id) state.view.job = job;
  if (job.id) updateHistoryStatus(job);
  tickElapsed();
  if (active && !state.elapsedTimer) state.elapsedTimer = setInterval(tickElapsed, 1000);
  if (!active && state.elapsedTimer) {
    clearInterval(state.elapsedTimer);
    state.elapsedTimer = 0;
  }
}

function tickElapsed() {
  const out = $("elapsed");
  const view = state.view;
  const job = view?.job;
  if (!job || !job.id) {
    out.textContent = "";
    return;
  }
  const start = parseTime(job.created_at);
  const since = Number.isFinite(start) ? Math.min(start, view.seenAt) : view.seenAt;
  const parts = [];
  if (TERMINAL.has(job.status)) {
    const end = parseTime(job.finished_at);
    if (Number.isFinite(end) && Number.isFinite(start)) parts.push(`Took ${formatDuration(end - start)}`);
  } else {
    const what = job.status === "cold_start" ? "Loading for" : job.status === "queued" ? "Waiting for" : "Running for";
    parts.push(`${what} ${formatDuration(Date.now() - since)}`);
    if (job.status === "queued" && !view.longQueue && Date.now() - view.seenAt >= LONG_QUEUE_MS) {
      view.longQueue = true;
      renderStatus(job);
      return;
    }
    const p = progressFraction(job.progress);
    if (job.status === "running" && p !== null) parts.push(`${Math.round(p * 100)}% done`);
    const note = job.progress && typeof job.progress.message === "string" ? job.progress.message.trim() : "";
    if (job.status === "running" && note) parts.push(note.slice(0, 120));
  }
  parts.push(`job ${job.id}`);
  out.textContent = parts.join(" · ");
}

function showStatusError(message) {
  const el = $("status-error");
  el.textContent = message;
  el.hidden = false;
}

const VIEW_STORE = "comfypod.image-brush.job";

function viewJob(job) {
  state.view?.abort.abort();
  const abort = new AbortController();
  state.view = { id: job.id, abort, job, seenAt: Date.now() };
  try {
    // A reload of this tab comes back to this job.
    sessionStorage.setItem(VIEW_STORE, job.id);
  } catch {
    // Storage is off: a reload starts afresh.
  }
  $("status-error").hidden = true;
  if (job.status !== "succeeded") hideResult();
  renderStatus(job);
  markCurrent(job.id);
  if (TERMINAL.has(job.status)) {
    if (job.status === "succeeded" && !Array.isArray(job.outputs)) {
      // A short answer (such as the one to POST) has no outputs: read the job.
      client
        .job(job.id, abort.signal)
        .then((full) => state.view?.id === job.id && (renderStatus(full), finish(full)))
        .catch((err) => !abort.signal.aborted && showStatusError(`Could not read the job: ${err.message}`));
    } else {
      finish(job);
    }
    return;
  }
  const mine = () => state.view?.id === job.id && !abort.signal.aborted;
  client
    .watch(job.id, (j) => mine() && renderStatus(j), abort.signal)
    .then((final) => {
      if (!mine()) return;
      renderStatus(final);
      finish(final);
      loadHistory();
    })
    .catch((err) => {
      if (abort.signal.aborted) return;
      if (err instanceof APIError && err.status === 401) askForKey();
      showStatusError(`Lost track of the job: ${err.message}`);
    });
}

async function cancelJob() {
  const view = state.view;
  if (!view) return;
  const button = $("cancel");
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    await client.cancel(view.id);
  } catch (err) {
    button.removeAttribute("aria-disabled");
    showStatusError(`Could not cancel: ${err.message}`);
  }
}

// --- result ---

function hideResult() {
  $("result-card").hidden = true;
  if (state.resultURL) {
    const keep = [...state.thumbs.values()].includes(state.resultURL);
    if (!keep) URL.revokeObjectURL(state.resultURL);
    state.resultURL = "";
  }
  if (state.beforeURL) {
    URL.revokeObjectURL(state.beforeURL);
    state.beforeURL = "";
  }
}

/**
 * The target to compare a job's result with: the one picked on this page,
 * or else the one the service kept with the job (its inputs), as the
 * workers got it. Empty when neither is at hand.
 */
async function beforeOf(job) {
  const local = state.jobTargets.get(job.id);
  if (local) return { url: local.url, kept: false };
  const input = Array.isArray(job.inputs) ? job.inputs.find((i) => i && i.name === "target" && i.url) : null;
  if (!input) return { url: "", kept: false };
  try {
    return { url: URL.createObjectURL(await client.blob(input.url)), kept: true };
  } catch {
    return { url: "", kept: false };
  }
}

async function finish(job) {
  if (job.status !== "succeeded") return;
  const out = Array.isArray(job.outputs) ? job.outputs.find((o) => o && o.url) : null;
  if (!out) {
    showStatusError("The job finished without an output image.");
    return;
  }
  let blob;
  let before;
  try {
    [blob, before] = await Promise.all([client.blob(out.url), beforeOf(job)]);
  } catch (err) {
    showStatusError(`Could not load the result: ${err.message}`);
    return;
  }
  if (state.view?.id !== job.id) {
    if (before.kept) URL.revokeObjectURL(before.url);
    return;
  }
  hideResult();
  if (before.kept) state.beforeURL = before.url;
  const url = URL.createObjectURL(blob);
  state.resultURL = url;
  const img = $("result-img");
  img.src = url;
  try {
    await img.decode();
  } catch {
    showStatusError("The result could not be shown as an image; you can still download it.");
  }
  if (state.view?.id !== job.id) return;
  const w = img.naturalWidth || 1;
  const h = img.naturalHeight || 1;
  const frame = $("compare-frame");
  frame.style.setProperty("--ar", String(w / h));
  $("compare-caption").style.setProperty("--ar", String(w / h));
  const beforeImg = $("before-img");
  if (before.url) {
    beforeImg.src = before.url;
    frame.classList.remove("single");
    $("compare-caption").hidden = false;
  } else {
    beforeImg.removeAttribute("src");
    frame.classList.add("single");
    $("compare-caption").hidden = true;
  }
  const link = $("download");
  link.href = url;
  link.download = out.filename || `image-brush-${job.id}.png`;
  const type = (out.content_type || blob.type || "").replace(/^image\//, "").toUpperCase();
  const seed = seedOf(job);
  const meta = [`${w} × ${h}${type ? ` ${type}` : ""}`];
  if (seed) meta.push(`seed ${seed}`);
  if (!before.url) meta.push("the service did not keep this job's target, so there is no comparison");
  $("result-meta").textContent = meta.join(" · ");
  const reuse = $("reuse-seed");
  reuse.hidden = !seed;
  reuse.dataset.seed = seed;
  reuse.textContent = `Use seed ${seed} again`;
  $("result-card").hidden = false;
  if (!state.thumbs.has(job.id)) {
    state.thumbs.set(job.id, url);
    const thumb = document.querySelector(`#history button[data-id="${CSS.escape(job.id)}"] .thumb`);
    if (thumb) setThumb(thumb.closest("button"), url);
  }
}

/** The seed a job ran with, as text, when the service reports it. */
function seedOf(job) {
  const v = job?.params?.seed;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return String(v);
  if (typeof v === "string" && /^[0-9]{1,20}$/.test(v)) return v;
  return "";
}

function reuseSeed() {
  const seed = $("reuse-seed").dataset.seed;
  if (!seed) return;
  $("seed-fixed").checked = true;
  $("seed-value").disabled = false;
  $("seed-value").value = seed;
  clearFieldError("seed");
  announce(`Seed set to ${seed}: the next job uses it.`);
}

function setupCompare() {
  const range = $("compare-range");
  const frame = $("compare-frame");
  const sync = () => {
    const v = Number(range.value);
    frame.style.setProperty("--pos", `${v}%`);
    range.setAttribute("aria-valuetext", `${v}% target, ${100 - v}% result`);
  };
  range.addEventListener("input", sync);
  sync();
}

// --- history ---

function statusLabel(status) {
  return STATUS[status]?.badge ?? String(status ?? "");
}

function setThumb(button, url) {
  const old = button.querySelector(".thumb");
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = "";
  img.src = url;
  old.replaceWith(img);
}

function historyItem(job) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.id = job.id;
  if (state.view?.id === job.id) b.setAttribute("aria-current", "true");
  const thumb = document.createElement("span");
  thumb.className = "thumb thumb-empty";
  thumb.setAttribute("aria-hidden", "true");
  thumb.textContent = job.status === "succeeded" ? "…" : statusLabel(job.status);
  const st = document.createElement("span");
  st.className = "h-status";
  st.dataset.state = job.status;
  st.textContent = statusLabel(job.status);
  const when = document.createElement("time");
  when.className = "h-time";
  const t = parseTime(job.created_at);
  if (Number.isFinite(t)) {
    when.dateTime = new Date(t).toISOString();
    when.textContent = new Date(t).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
  }
  const name = document.createElement("span");
  name.className = "visually-hidden";
  name.textContent = `Job ${job.id}: `;
  b.append(thumb, name, st, when);
  b.addEventListener("click", () => viewJob(job));
  li.append(b);
  return li;
}

/** Keeps the history entry of the job on screen in step with its status. */
function updateHistoryStatus(job) {
  const button = document.querySelector(`#history button[data-id="${CSS.escape(job.id)}"]`);
  const st = button?.querySelector(".h-status");
  if (!st || st.dataset.state === job.status) return;
  st.dataset.state = job.status;
  st.textContent = statusLabel(job.status);
  const empty = button.querySelector(".thumb-empty");
  if (empty) empty.textContent = job.status === "succeeded" ? "…" : statusLabel(job.status);
}

function markCurrent(id) {
  for (const b of document.querySelectorAll("#history button[data-id]")) {
    if (b.dataset.id === id) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
}

async function loadThumbs(jobs) {
  const queue = jobs.filter((j) => j.status === "succeeded" && Array.isArray(j.outputs) && j.outputs[0]?.url);
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const button = document.querySelector(`#history button[data-id="${CSS.escape(job.id)}"]`);
      if (!button) continue;
      let url = state.thumbs.get(job.id);
      if (!url) {
        // The small copy the service makes; the output itself from a
        // service without one.
        const out = job.outputs[0].url;
        try {
          url = URL.createObjectURL(await client.blob(`${out.replace(/\/+$/, "")}/thumbnail`));
        } catch {
          try {
            url = URL.createObjectURL(await client.blob(out));
          } catch {
            continue;
          }
        }
        state.thumbs.set(job.id, url);
      }
      setThumb(button, url);
    }
  };
  await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, worker));
}

/** Loads the first page of the history again, or the next page when append is set. */
function loadHistory({ append = false } = {}) {
  if (state.historyLoading && !append) {
    state.historyLoading.again = true;
    return state.historyLoading.promise;
  }
  const run = { again: false, promise: null };
  run.promise = (async () => {
    const err = $("history-error");
    try {
      const { jobs, next } = await client.list({ limit: HISTORY_PAGE, cursor: append ? state.historyCursor : "" });
      err.hidden = true;
      const list = $("history");
      const focused = document.activeElement?.closest?.("#history button")?.dataset.id;
      if (!append) list.replaceChildren();
      const seen = new Set([...list.querySelectorAll("button[data-id]")].map((b) => b.dataset.id));
      const fresh = jobs.filter((j) => j && typeof j.id === "string" && !seen.has(j.id));
      list.append(...fresh.map(historyItem));
      state.historyCursor = next;
      $("history-more").hidden = !next;
      $("history-empty").hidden = list.children.length > 0;
      if (focused) list.querySelector(`button[data-id="${CSS.escape(focused)}"]`)?.focus();
      loadThumbs(fresh);
    } catch (e) {
      err.textContent =
        e instanceof APIError && e.status === 401
          ? "Enter your API key under “API key” at the top to see your jobs."
          : `Could not load the history: ${e.message}`;
      err.hidden = false;
    }
  })();
  if (!append) state.historyLoading = run;
  return run.promise.finally(() => {
    if (state.historyLoading === run) state.historyLoading = null;
    if (run.again) loadHistory();
  });
}

function setupHistory() {
  $("history-refresh").addEventListener("click", () => loadHistory());
  $("history-more").addEventListener("click", () => loadHistory({ append: true }));
}

// --- start ---

setupKey();
setupFiles();
setupTools();
setupSettings();
setupCompare();
setupHistory();
$("job-form").addEventListener("submit", onSubmit);
$("cancel").addEventListener("click", cancelJob);
$("reuse-seed").addEventListener("click", reuseSeed);
/**
 * Applies the package's description: defaults, limits, and a note when the
 * workflow ignores a field (the model-free preview takes no prompt).
 */
async function loadPackage() {
  let pkg;
  try {
    pkg = await client.package();
  } catch {
    return; // the page keeps its built-in defaults
  }
  if (!pkg || !Array.isArray(pkg.params)) return;
  const param = Object.fromEntries(pkg.params.filter((p) => p && p.name).map((p) => [p.name, p]));
  state.maxImageBytes = Number.isFinite(pkg.max_image_bytes) && pkg.max_image_bytes > 0 ? pkg.max_image_bytes : 0;

  const prompt = param.prompt;
  if (prompt) {
    if (typeof prompt.default === "string" && prompt.default) $("prompt").placeholder = prompt.default;
    if (prompt.max_length > 0) $("prompt").maxLength = prompt.max_length;
    const note = $("prompt-note");
    note.hidden = prompt.used !== false;
    note.textContent = `The “${pkg.workflow || "current"}” workflow does not use the prompt; it is checked and kept with the job.`;
  }
  const strength = param.strength;
  if (strength) {
    const note = $("strength-note");
    note.hidden = strength.used !== false;
    note.textContent = `The “${pkg.workflow || "current"}” workflow does not use the strength.`;
    const el = $("strength");
    const min = typeof strength.min === "number" ? strength.min : 0;
    const max = typeof strength.max === "number" ? Math.min(strength.max, Math.max(2, min + 1)) : Number(el.max);
    el.min = String(min);
    el.max = String(max);
    if (typeof strength.default === "number" && !state.strengthTouched) el.value = String(strength.default);
    el.dispatchEvent(new Event("input"));
    state.strengthTouched = false;
  }
  const mode = $("workflow-note");
  mode.hidden = pkg.workflow !== "preview";
  mode.textContent =
    "Preview mode: this service runs a model-free preview that blends the reference into the painted area, so results come back in seconds.";
}

/** Shows again the job this tab showed before a reload, if there was one. */
async function resumeView() {
  let id = "";
  try {
    id = sessionStorage.getItem(VIEW_STORE) ?? "";
  } catch {
    return;
  }
  if (!id || state.view) return;
  try {
    const job = await client.job(id);
    if (!state.view && job && job.id === id) viewJob(job);
  } catch {
    // Gone, or the key is needed first: start afresh.
  }
}

renderStatus({ status: "idle" });
loadPackage();
loadHistory();
resumeView();
document.documentElement.dataset.ready = "true";
