package worker_test

import (
	"image"
	"testing"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
)

// A worker-comfyui client's job: the workflow as a JSON string, images with
// a data: URI prefix; the answer is images[{filename, type, data}] whose
// pixels are the input's, inverted.
func TestWorkerComfyUIStyleJob(t *testing.T) {
	t.Parallel()
	st := startStack(t, &devstack.Config{}, newTestNodes())
	in := pngBytes(t, 48, 32, 1)
	wf := invertWorkflow("input-1.png")
	out := mustComplete(t, st, map[string]any{
		"workflow": mustJSONString(t, wf),
		"images":   []any{map[string]any{"name": "input-1.png", "image": dataURI(in)}},
	})
	if len(out.Images) != 1 {
		t.Fatalf("images = %+v", out.Images)
	}
	f := out.Images[0]
	if f.Filename != "ComfyUI_00001_.png" || f.Type != "base64" || f.Format != "image/png" {
		t.Errorf("image entry = %+v (data omitted)", fileMeta(f))
	}
	got := decodePNG(t, f.Data)
	want := patternImage(48, 32, 1)
	assertInverted(t, got, want)
	if len(out.Errors) != 0 {
		t.Errorf("warnings: %q", out.Errors)
	}
	if files := engineFiles(t, st); len(files) != 0 {
		t.Errorf("files left on the ComfyUI side: %q", files)
	}
}

func assertInverted(t testing.TB, got image.Image, want *image.NRGBA) {
	t.Helper()
	if got.Bounds().Size() != want.Bounds().Size() {
		t.Fatalf("output is %v, want %v", got.Bounds().Size(), want.Bounds().Size())
	}
	b := want.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := got.At(x, y).RGBA()
			w := want.NRGBAAt(x, y)
			for i, pair := range [][2]int{{int(r >> 8), 255 - int(w.R)}, {int(g >> 8), 255 - int(w.G)}, {int(bl >> 8), 255 - int(w.B)}} {
				if d := pair[0] - pair[1]; d < -1 || d > 1 {
					t.Fatalf("pixel %d,%d channel %d = %d, want %d (inverted)", x, y, i, pair[0], pair[1])
				}
			}
		}
	}
}

var _ = runpod.StateCompleted
