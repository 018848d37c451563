package web_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The mask editor's input paths: file drop, touch painting, the overlay, and
// the keyboard shortcuts. The page runs against the contract API (it loads
// the history on start) but no job is sent.

// dropFile drops a file from disk on the element, as dragging it from a file
// manager does.
func (p *browserPage) dropFile(selector, path string) {
	p.t.Helper()
	x, y, w, h := p.box(selector)
	cx, cy := x+w/2, y+h/2
	data := &input.DragData{Items: []*input.DragDataItem{}, Files: []string{path}, DragOperationsMask: 1}
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchDragEventType{
			input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop,
		} {
			if _, err := cdp.Call(ctx, t, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: cx, Y: cy, Data: data}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// touchDrag puts one finger down at the first point, slides it through the
// others and lifts it.
func (p *browserPage) touchDrag(points ...[2]float64) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for i, pt := range points {
			typ := input.DispatchTouchEventTypeTouchMove
			if i == 0 {
				typ = input.DispatchTouchEventTypeTouchStart
			}
			if _, err := cdp.Call(ctx, t, input.DispatchTouchEvent, input.DispatchTouchEventParams{
				Type: typ, TouchPoints: []*input.TouchPoint{{X: pt[0], Y: pt[1]}},
			}); err != nil {
				return err
			}
		}
		_, err := cdp.Call(ctx, t, input.DispatchTouchEvent, input.DispatchTouchEventParams{
			Type: input.DispatchTouchEventTypeTouchEnd, TouchPoints: []*input.TouchPoint{},
		})
		return err
	}))
}

func coverage(p *browserPage) float64 {
	return eval[float64](p, `(() => {
		const c = document.getElementById("mask-canvas");
		const d = c.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, c.width, c.height).data;
		let sum = 0;
		for (let i = 3; i < d.length; i += 4) sum += d[i];
		return sum / (255 * c.width * c.height);
	})()`)
}

func TestEditorDropAndTouch(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, phone)
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 2})
		return err
	}))
	target, reference := testImages(t, t.TempDir(), 400, 300)

	p.dropFile("#target-drop", target)
	p.waitFor(`document.getElementById("mask-canvas").width === 400 && document.getElementById("mask-canvas").height === 300 &&
		document.getElementById("target-file").files[0]?.name === "target.png"`)
	p.dropFile("#reference-drop", reference)
	p.waitFor(`!document.getElementById("reference-img").hidden && document.getElementById("reference-img").naturalWidth === 96`)

	// The overlay shows the mask see-through, over the whole target.
	ov := eval[struct{ Opacity, CanvasW, ImgW float64 }](p, `(() => {
		const c = document.getElementById("mask-canvas");
		return {Opacity: Number(getComputedStyle(c).opacity), CanvasW: c.getBoundingClientRect().width,
			ImgW: document.getElementById("target-img").getBoundingClientRect().width};
	})()`)
	if ov.Opacity < 0.3 || ov.Opacity > 0.8 || ov.CanvasW != ov.ImgW || ov.CanvasW > 390 {
		t.Errorf("overlay %+v: want a see-through canvas exactly over the image, within the screen", ov)
	}

	x, y, w, h := p.box("#mask-canvas")
	before := eval[float64](p, `window.scrollY`)
	var pts [][2]float64
	for i := 0; i <= 12; i++ {
		pts = append(pts, [2]float64{x + w*0.2 + float64(i)*w*0.05, y + h*0.3 + float64(i)*h*0.03})
	}
	p.touchDrag(pts...)
	p.waitFor(`document.getElementById("undo").getAttribute("aria-disabled") !== "true"`)
	if c := coverage(p); c < 0.03 {
		t.Errorf("touch painted %.3f of the mask, want a stroke", c)
	}
	if after := eval[float64](p, `window.scrollY`); after != before {
		t.Errorf("painting with a finger scrolled the page from %v to %v", before, after)
	}
}

func TestEditorShortcuts(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, desktop)
	target, reference := testImages(t, t.TempDir(), 400, 300)
	loadImages(p, target, reference)
	size := func() string { return eval[string](p, `document.getElementById("brush-size").value`) }
	tool := func() string { return eval[string](p, `document.querySelector('input[name="tool"]:checked').value`) }

	p.do(chromedp.Focus(chromedp.ID("mask-canvas")))
	p.press("]")
	if got := size(); got != "45" {
		t.Errorf("size after ] is %s, want 45", got)
	}
	p.press("[[")
	if got := size(); got != "35" {
		t.Errorf("size after [[ is %s, want 35", got)
	}
	if got := eval[string](p, `document.getElementById("brush-size-out").textContent`); got != "35 px" {
		t.Errorf("size shown as %q", got)
	}
	p.press("e")
	if got := tool(); got != "eraser" {
		t.Errorf("tool after E is %s", got)
	}
	p.press("e")
	if got := tool(); got != "brush" {
		t.Errorf("tool after E twice is %s", got)
	}

	paintAcross(p)
	painted := coverage(p)
	p.press("z", chromedp.ModifierCtrl)
	p.waitFor(`document.getElementById("undo").getAttribute("aria-disabled") === "true" && document.getElementById("redo").getAttribute("aria-disabled") !== "true"`)
	if c := coverage(p); c != 0 {
		t.Errorf("coverage after Ctrl+Z is %.3f, want 0", c)
	}
	p.press("z", chromedp.ModifierCtrl, chromedp.ModifierShift)
	p.waitFor(`document.getElementById("undo").getAttribute("aria-disabled") !== "true" && document.getElementById("redo").getAttribute("aria-disabled") === "true"`)
	// Replaying a stroke as one path anti-aliases its edges a little
	// differently from drawing it piece by piece.
	if c := coverage(p); math.Abs(c-painted) > 0.002 {
		t.Errorf("coverage after redo is %.4f, want %.4f", c, painted)
	}
	p.press("i")
	if c := coverage(p); math.Abs(c-(1-painted)) > 0.01 {
		t.Errorf("coverage after I is %.4f, want %.4f", c, 1-painted)
	}
	p.press("y", chromedp.ModifierCtrl) // nothing to redo
	p.press("z", chromedp.ModifierCtrl)

	// Eraser strokes remove paint.
	p.press("e")
	paintAcross(p)
	if c := coverage(p); c > painted/4 {
		t.Errorf("coverage after erasing the stroke is %.4f, was %.4f", c, painted)
	}
	p.press("b")

	// Typing in a text field is typing, not shortcuts.
	p.do(chromedp.Focus(chromedp.ID("prompt")))
	p.press("e[i]")
	if got := size(); got != "35" || tool() != "brush" {
		t.Errorf("typing changed the brush: size %s, tool %s", got, tool())
	}
	// Single-key shortcuts can be turned off.
	p.do(chromedp.Click(chromedp.CSS("#help summary")), chromedp.Click(chromedp.ID("single-keys")))
	p.do(chromedp.Focus(chromedp.ID("mask-canvas")))
	p.press("]e")
	if got := size(); got != "35" || tool() != "brush" {
		t.Errorf("with single-key shortcuts off: size %s, tool %s", got, tool())
	}
	// Ctrl+Z still works.
	p.press("z", chromedp.ModifierCtrl)
	p.waitFor(`document.getElementById("redo").getAttribute("aria-disabled") !== "true"`)

	// Clear is undoable.
	p.do(chromedp.Click(chromedp.ID("clear")))
	if c := coverage(p); c != 0 {
		t.Errorf("coverage after Clear is %.4f", c)
	}
	p.do(chromedp.Click(chromedp.ID("undo")))
	if c := coverage(p); c == 0 {
		t.Error("Undo after Clear left the mask empty")
	}

	// Pressing Undo from the keyboard until nothing is left keeps the focus
	// on the button.
	p.do(chromedp.Focus(chromedp.ID("undo")))
	p.press(strings.Repeat(kb.Enter, 8))
	if got := eval[string](p, `document.activeElement.id + " " + document.getElementById("undo").getAttribute("aria-disabled")`); got != "undo true" {
		t.Errorf("after undoing everything: focus and state %q, want %q", got, "undo true")
	}
	if c := coverage(p); c != 0 {
		t.Errorf("coverage after undoing everything is %.4f", c)
	}
}
