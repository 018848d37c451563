package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
)

func TestDevParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *DevOptions
	run := func(_ context.Context, o *DevOptions) error { got = o; return nil }
	cmd := NewCmdDev(f, run)
	cmd.SetArgs([]string{"--workers", "3", "--dir", "/tmp/e", "--addr", "127.0.0.1:8765", "--engine-addr", "127.0.0.1:8188",
		"--endpoint-id", "ep1", "--api-key", "rpa_K", "--grace", "3s", "--package", "pkg", "--workflow", "preview", "--warmup", "w.json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Workers != 3 || got.Dir != "/tmp/e" || got.Addr != "127.0.0.1:8765" || got.EngineAddr != "127.0.0.1:8188" || got.EndpointID != "ep1" ||
		got.APIKey != "rpa_K" || got.Grace != 3*time.Second || got.Handler.Package != "pkg" || got.Handler.Workflow != "preview" || got.Handler.Warmup != "w.json" {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdDev(f, run)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.Workers != 1 || got.Addr != devstack.AddrDefault || got.ComfyURL != "" || got.Grace != 10*time.Second {
		t.Errorf("defaults: %v %+v", err, got)
	}
	for _, args := range [][]string{
		{"dev", "--workers", "0"},
		{"dev", "--addr", "8765"},
		{"dev", "--engine-addr", "x"},
		{"dev", "--comfy-url", "http://127.0.0.1:8188", "--dir", "/tmp/x"},
		{"dev", "--endpoint-id", "a/b"},
		{"dev", "--grace", "-1s"},
		{"dev", "extra"},
	} {
		g, _, _, errOut := testFactory()
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
}

// comfypod dev prints the client's variables at once, serves jobs with the
// built-in engine, and stops cleanly on Ctrl-C.
func TestDevRuns(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	out, status := &notifyBuffer{wrote: make(chan struct{}, 1)}, &syncBuffer{}
	f.IO.Out, f.IO.ErrOut = out, status
	var opts *DevOptions
	cmd := NewCmdDev(f, func(_ context.Context, o *DevOptions) error { opts = o; return nil })
	cmd.SetArgs([]string{"--workers", "2", "--endpoint-id", "devtest", "--package", "../../comfy/testdata/image-brush", "--workflow", "preview"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, opts) }()

	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	env := map[string]string{}
	for len(env) < 3 {
		select {
		case err := <-done:
			t.Fatalf("dev exited: %v\n%s", err, status)
		case <-wctx.Done():
			t.Fatalf("no variables on stdout:\n%s", status)
		case <-out.wrote:
		}
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				env[k] = v
			}
		}
	}
	if env["RUNPOD_ENDPOINT_ID"] != "devtest" || !strings.HasSuffix(env["RUNPOD_ENDPOINT_BASE_URL"], "/v2") || !strings.HasPrefix(env["RUNPOD_API_KEY"], "rpa_") {
		t.Fatalf("variables: %q", env)
	}
	c, err := runpod.New(env["RUNPOD_ENDPOINT_ID"], runpod.WithBaseURL(env["RUNPOD_ENDPOINT_BASE_URL"]), runpod.WithAPIKey(env["RUNPOD_API_KEY"]))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RunSync(wctx, &runpod.Request{Input: json.RawMessage(emptyImageJob[len(`{"input": `) : len(emptyImageJob)-1])}, nil)
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	files, err := st.Outputs()
	st.Close()
	if err != nil || len(files) != 1 {
		t.Errorf("outputs: %v %+v", err, files)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev: %v", err)
		}
	case <-wctx.Done():
		t.Fatal("dev did not stop")
	}
	if s := status.String(); !strings.Contains(s, `RunPod endpoint "devtest"`) || !strings.Contains(s, "2 worker(s)") || !strings.HasSuffix(s, "comfypod dev stopped\n") {
		t.Errorf("status:\n%s", s)
	}
}

// notifyBuffer is a syncBuffer that signals every write.
type notifyBuffer struct {
	syncBuffer
	wrote chan struct{}
}

func (b *notifyBuffer) Write(p []byte) (int, error) {
	n, err := b.syncBuffer.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}
