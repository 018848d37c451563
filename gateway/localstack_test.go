package gateway

import (
	"context"
	"image"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/worker"
)

// startLocalStack runs the embedded stack `comfypod serve` uses without
// RunPod: the control plane, workers running comfypod's ComfyUI handler and
// the built-in engine.
func startLocalStack(t testing.TB, logs *syncBuffer) *devstack.Stack {
	t.Helper()
	fsys := packages.ImageBrushFS()
	data, err := fsReadFile(fsys, ManifestFile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := m.LoadWorkflows(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Config{
		Workers: 1, Concurrency: 2,
		Worker: worker.Config{Manifest: m, Workflows: wfs, Workflow: "preview"},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("closing the local stack: %v", err)
		}
	})
	return st
}

// TestEndToEndOnLocalStack runs the package's preview workflow through the
// whole local trip: multipart POST, event stream, the worker and the engine,
// the output copied and served.
func TestEndToEndOnLocalStack(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	stack := startLocalStack(t, logs)
	h := newHarness(t, hopts{open: true, webhooks: true, rp: stack.Control(), config: func(c *Config) {
		c.Workflow = "preview"
		c.PollMin, c.PollMax = 100*time.Millisecond, 500*time.Millisecond
	}})
	const w, hh = 120, 90
	paint := image.Rect(40, 30, 80, 60)
	id := h.submit("", brushForm(t, w, hh, paint))
	evs := h.events("", id, "")
	var seen []Status
	var last Job
	for _, e := range evs {
		if e.event == "job" {
			last = decodeJob(t, e.data)
			seen = append(seen, last.Status)
		}
	}
	if last.Status != StatusSucceeded {
		t.Fatalf("job ended %s: %+v\nstack logs:\n%s\nservice logs:\n%s", last.Status, last.Error, logs, h.logs)
	}
	if seen[0] != StatusQueued {
		t.Fatalf("statuses seen: %v", seen)
	}
	// The preview grows the mask by 8 px and feathers it by 4: beyond that
	// the target comes back untouched.
	checkBrushOutput(t, h, "", last, w, hh, paint, 14)
	if got := h.rp.Requests("run"); got != 1 {
		t.Fatalf("%d /run calls for one job", got)
	}
	code, _ := h.do("GET", "/readyz", "", "", nil)
	if code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
}
