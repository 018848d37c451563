package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"testing"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// checkBrushOutput downloads a succeeded job's image and checks it: the
// target's size, and outside the painted area (grown by margin pixels) the
// target's own pixels.
func checkBrushOutput(t *testing.T, h *harness, key string, j Job, w, hh int, paint image.Rectangle, margin int) {
	t.Helper()
	if j.Status != StatusSucceeded || len(j.Outputs) != 1 {
		t.Fatalf("job: %+v", j)
	}
	o := j.Outputs[0]
	if o.ContentType != "image/png" || o.Size <= 0 {
		t.Fatalf("output: %+v", o)
	}
	code, b, hdr := h.doHeader("GET", o.URL, key, "", nil, nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != "image/png" || hdr.Get("Content-Disposition") == "" || int64(len(b)) != o.Size {
		t.Fatalf("GET %s: %d %v, %d bytes", o.URL, code, hdr, len(b))
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got != image.Pt(w, hh) {
		t.Fatalf("output is %v, target is %dx%d", got, w, hh)
	}
	target := targetImage(w, hh)
	grown := paint.Inset(-margin)
	changed := 0
	for y := range hh {
		for x := range w {
			got := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			want := target.NRGBAAt(x, y)
			if image.Pt(x, y).In(grown) {
				if got != want {
					changed++
				}
				continue
			}
			if got != want {
				t.Fatalf("pixel (%d,%d) outside the mask is %v, the target's is %v", x, y, got, want)
			}
		}
	}
	if changed == 0 {
		t.Fatal("nothing was painted inside the mask")
	}
}

func TestEndToEndOnTestWorker(t *testing.T) {
	t.Parallel()
	for _, webhooks := range []bool{false, true} {
		t.Run("webhooks="+strconv.FormatBool(webhooks), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, hopts{open: true, webhooks: webhooks})
			paint := image.Rect(20, 10, 60, 40)
			id := h.submit("", brushForm(t, 80, 50, paint))
			evs := h.events("", id, "")
			var statuses []Status
			var last Job
			for _, e := range evs {
				if e.event != "job" {
					continue
				}
				if err := json.Unmarshal([]byte(e.data), &last); err != nil {
					t.Fatal(err)
				}
				if e.id == "" {
					t.Fatalf("event without id: %+v", e)
				}
				statuses = append(statuses, last.Status)
			}
			if evs[len(evs)-1].event != "end" || last.Status != StatusSucceeded {
				t.Fatalf("events: %v", evs)
			}
			if statuses[0] != StatusQueued {
				t.Fatalf("statuses: %v", statuses)
			}
			checkBrushOutput(t, h, "", last, 80, 50, paint, 0)
			if string(last.Params["seed"]) != "" && string(last.Params["seed"]) != "42" {
				t.Fatalf("params: %s", last.Params)
			}
			// One /run per job, whatever the path of the result.
			if n := h.rp.Requests(runpodtest.OpRun); n != 1 {
				t.Fatalf("%d /run calls", n)
			}
			if webhooks {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				if err := h.rp.Await(ctx, func() bool { return len(h.rp.Webhooks()) == 1 }); err != nil {
					t.Fatal(err)
				}
				hooks := h.rp.Webhooks()
				if len(hooks) != 1 || !hooks[0].Delivered {
					t.Fatalf("webhooks: %+v", hooks)
				}
			}
		})
	}
}
