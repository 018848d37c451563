package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestWorkerParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *WorkerOptions
	run := func(_ context.Context, o *WorkerOptions) error { got = o; return nil }
	cmd := NewCmdWorker(f, run)
	cmd.SetArgs([]string{"--comfy-url", "http://10.0.0.2:8188", "--comfy-dir", "/comfyui", "--pid-file", "/tmp/comfyui.pid",
		"--test-input", "in.json", "--warmup", "warm.json", "--job-timeout", "5m", "--allow-http-urls", "--url-allow", "10.0.0.0/8,127.0.0.1:9000"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ComfyURL != "http://10.0.0.2:8188" || got.PIDFile != "/tmp/comfyui.pid" || got.TestInput != "in.json" || got.ServeAPI != "" ||
		got.Handler.ComfyDir != "/comfyui" || got.Handler.Warmup != "warm.json" || got.Handler.JobTimeout != 5*time.Minute ||
		!got.Handler.AllowHTTPURLs || len(got.Handler.URLAllow) != 2 {
		t.Errorf("options = %+v", got)
	}

	// Defaults and environment fallbacks.
	f.Getenv = envMap(map[string]string{envComfyURL: "http://comfy:8188", envPIDFile: "/run/c.pid", envServeAPILocally: "true"})
	cmd = NewCmdWorker(f, run)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ComfyURL != "http://comfy:8188" || got.PIDFile != "/run/c.pid" || got.ServeAPI != serveAPIAddrDefault || got.Handler.MaxImageSide != worker.MaxImageSideDefault {
		t.Errorf("defaults = %+v", got)
	}
	f.Getenv = envMap(nil)
	cmd = NewCmdWorker(f, run)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.ComfyURL != worker.ComfyURLDefault {
		t.Errorf("default URL: %v %q", err, got.ComfyURL)
	}

	for _, args := range [][]string{
		{"worker", "--serve-api", "8000"},
		{"worker", "--serve-api", "127.0.0.1:8000", "--test-input", "{}"},
		{"worker", "extra"},
		{"worker", "--job-timeout", "soon"},
	} {
		g, _, _, errOut := testFactory()
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
}

func TestWorkerHandlerConfig(t *testing.T) {
	t.Parallel()
	hf := &handlerFlags{MaxImageMB: 2, MaxVideoMB: 50, MaxInputMB: 8, MaxImageSide: 4096, MaxMegapixels: 16, URLTimeout: time.Second}
	cfg, err := hf.config(envMap(map[string]string{
		envReadyIntervalMS: "25", envReadyMaxRetries: "40", envReconnectAttempts: "0", envReconnectDelayS: "1.5",
		envComfyOrgAPIKey: "org-key", envBucketEndpoint: "https://bkt1.s3.eu-west-1.amazonaws.com", envBucketAccessKey: "AKIA1",
		envBucketSecret: "s3-secret", envBucketPrefix: "comfy", envBucketURLExpiry: "2h", envJobTimeout: "90s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ReadyInterval != 25*time.Millisecond || cfg.ReadyAttempts != 40 || cfg.ReconnectAttempts != -1 || cfg.ReconnectDelay != 1500*time.Millisecond ||
		cfg.ComfyOrgAPIKey != "org-key" || cfg.JobTimeout != 90*time.Second || cfg.Limits.MaxImageBytes != 2<<20 || cfg.Limits.MaxImagePixels != 16e6 {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.Limits.MaxVideoBytes != 50<<20 {
		t.Errorf("max video bytes = %d, want 50 MB", cfg.Limits.MaxVideoBytes)
	}
	if s := cfg.S3; s == nil || s.EndpointURL != "https://bkt1.s3.eu-west-1.amazonaws.com" || s.SecretAccessKey != "s3-secret" || s.Prefix != "comfy" || s.URLExpiry != 2*time.Hour {
		t.Errorf("S3 = %+v", cfg.S3)
	}
	if _, err := worker.New(cfg); err != nil {
		t.Errorf("the config does not make a handler: %v", err)
	}

	// A package: manifest, workflows and the default.
	pkg := filepath.Join("..", "..", "comfy", "testdata", "image-brush")
	hf = &handlerFlags{Package: pkg, Workflow: "preview", MaxImageMB: 1, MaxInputMB: 1, MaxImageSide: 1, MaxMegapixels: 1, URLTimeout: time.Second}
	cfg, err = hf.config(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Manifest == nil || cfg.Workflow != "preview" || len(cfg.Workflows) != 2 {
		t.Errorf("package: %+v", cfg)
	}

	for _, tc := range []struct {
		hf   handlerFlags
		env  map[string]string
		want string
	}{
		{handlerFlags{}, map[string]string{envReadyIntervalMS: "fast"}, envReadyIntervalMS},
		{handlerFlags{}, map[string]string{envBucketEndpoint: "https://x/b"}, "set all three"},
		{handlerFlags{}, map[string]string{envJobTimeout: "-1s"}, envJobTimeout},
		{handlerFlags{Workflow: "preview"}, nil, "needs a package"},
		{handlerFlags{Package: pkg, Workflow: "nope"}, nil, "has workflows default, preview"},
		{handlerFlags{Package: pkg, Manifest: "x.json"}, nil, "not both"},
		{handlerFlags{Manifest: "/nonexistent/comfypod.json"}, nil, "reading the manifest"},
		{handlerFlags{Warmup: "/nonexistent/warm.json"}, nil, "reading the warm-up"},
	} {
		h := tc.hf
		h.MaxImageMB, h.MaxInputMB, h.MaxImageSide, h.MaxMegapixels, h.URLTimeout = 1, 1, 1, 1, time.Second
		if _, err := h.config(envMap(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %v: %v, want %q", tc.hf, tc.env, err, tc.want)
		}
	}
}

// testEngine runs the engine on loopback with extra node classes.
func testEngine(t testing.TB, classes ...*node.Class) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	e, err := engine.New(&engine.Config{Dir: dir, Classes: classes, DisableMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ts.Close()
		_ = e.Stop(ctx)
	})
	return ts.URL, dir
}

const emptyImageJob = `{"input": {"workflow": {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 2, "batch_size": 1, "color": 16711680}},
  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "red"}}}}}`

func TestWorkerTestInput(t *testing.T) {
	t.Parallel()
	url, dir := testEngine(t)
	f, _, out, errOut := testFactory()
	code := Run(context.Background(), f, []string{"worker", "--comfy-url", url, "--comfy-dir", dir, "--test-input", emptyImageJob})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Status string
		Output struct {
			Images []struct{ Filename, Type, Data string }
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the result: %v\n%s", err, out)
	}
	if res.Status != "COMPLETED" || len(res.Output.Images) != 1 || res.Output.Images[0].Filename != "red_00001_.png" || res.Output.Images[0].Type != "base64" {
		t.Errorf("result: %s", out)
	}
	if !strings.Contains(errOut.String(), "ComfyUI is ready") {
		t.Errorf("logs:\n%s", errOut)
	}

	// A failing job exits 1 with the error in the result; a file works too,
	// without the {"input": …} wrapper.
	file := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(file, []byte(`{"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _, out, errOut = testFactory()
	if code := Run(context.Background(), f, []string{"worker", "--comfy-url", url, "--test-input", file}); code != ExitFailed {
		t.Fatalf("exit %d, want %d: %s", code, ExitFailed, errOut)
	}
	if !strings.Contains(out.String(), `"status":"FAILED"`) || !strings.Contains(out.String(), "NoSuchNode") {
		t.Errorf("result: %s", out)
	}
}

func TestWorkerComfyUIDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f, _, _, errOut := testFactory()
	f.Getenv = envMap(map[string]string{envReadyIntervalMS: "1", envReadyMaxRetries: "3"})
	if code := Run(context.Background(), f, []string{"worker", "--comfy-url", "http://" + addr, "--test-input", emptyImageJob}); code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errOut.String(), "did not answer after 3 polls") {
		t.Errorf("stderr: %s", errOut)
	}
}

// blockingNode passes its image through once released; started reports it
// began, cancelled that its run was interrupted.
func blockingNode(t testing.TB, started, cancelled chan<- struct{}, release <-chan struct{}) *node.Class {
	var info node.Info
	if err := json.Unmarshal([]byte(`{"input": {"required": {"image": ["IMAGE", {}]}}, "input_order": {"required": ["image"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "TestBlock", "display_name": "Block", "description": "",
	  "python_module": "test", "category": "test", "output_node": false}`), &info); err != nil {
		t.Fatal(err)
	}
	return &node.Class{Info: &info, NotIdempotent: true, Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
		im, err := in.Image("image")
		if err != nil {
			return nil, err
		}
		started <- struct{}{}
		select {
		case <-release:
			return &node.Result{Outputs: []any{im}}, nil
		case <-ctx.Done():
			cancelled <- struct{}{}
			return nil, ctx.Err()
		}
	}}
}

const blockingJob = `{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 0}},
  "2": {"class_type": "TestBlock", "inputs": {"image": ["1", 0]}},
  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "blocked"}}}}`

func waitChan[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// On RunPod: the first SIGTERM lets the running job finish; a second one
// stops it at once and it is reported FAILED.
func TestWorkerSignals(t *testing.T) {
	t.Parallel()
	for _, twice := range []bool{false, true} {
		name := "one signal finishes the job"
		if twice {
			name = "two signals stop it"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			started, cancelled, release := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
			url, dir := testEngine(t, blockingNode(t, started, cancelled, release))
			cp, err := runpodtest.NewServer(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cp.Close()
			f, _, _, _ := testFactory()
			logs := &syncBuffer{}
			f.IO.Out = logs
			f.Getenv = envMap(cp.WorkerEnv("w1"))
			sigs := make(chan os.Signal, 4)
			opts := &WorkerOptions{IO: f.IO, Getenv: f.Getenv, Signals: func() (<-chan os.Signal, func()) { return sigs, func() {} },
				ComfyURL: url, Configure: func(_ *worker.Config, sc *serverless.Config) { sc.ShutdownGrace = time.Minute }}
			opts.Handler = handlerFlags{ComfyDir: dir, MaxImageMB: 1, MaxInputMB: 1, MaxImageSide: 64, MaxMegapixels: 1, URLTimeout: time.Second}
			done := make(chan error, 1)
			go func() { done <- runWorker(context.Background(), opts) }()

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := runpod.New(cp.EndpointID(), runpod.WithBaseURL(cp.BaseURL()), runpod.WithAPIKey(cp.APIKey()))
			if err != nil {
				t.Fatal(err)
			}
			job, err := c.Run(ctx, &runpod.Request{Input: json.RawMessage(blockingJob)})
			if err != nil {
				t.Fatal(err)
			}
			waitChan(t, started, "the job to start")
			sigs <- syscall.SIGTERM
			if err := cp.Await(ctx, func() bool { return strings.Contains(logs.String(), "running jobs get 1m0s to finish") }); err != nil {
				t.Fatalf("no shutdown log: %v\n%s", err, logs)
			}
			if twice {
				sigs <- syscall.SIGTERM
				waitChan(t, cancelled, "the job to be interrupted")
			} else {
				close(release)
			}
			if err := waitChan(t, done, "the worker to exit"); err != nil {
				t.Fatalf("runWorker: %v", err)
			}
			final, err := cp.WaitStatus(ctx, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := runpodtest.StatusCompleted
			if twice {
				want = runpodtest.StatusFailed
			}
			if final.Status != want {
				t.Errorf("job ended %s, want %s: %s", final.Status, want, final.Error)
			}
		})
	}
}

func TestWorkerServeAPI(t *testing.T) {
	t.Parallel()
	url, _ := testEngine(t)
	f, _, _, errOut := testFactory()
	addrs := make(chan string, 1)
	opts := &WorkerOptions{IO: f.IO, Getenv: envMap(nil), Signals: func() (<-chan os.Signal, func()) { return nil, func() {} },
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				addrs <- ln.Addr().String()
			}
			return ln, err
		},
		ComfyURL: url, ServeAPI: "127.0.0.1:0"}
	opts.Handler = handlerFlags{MaxImageMB: 1, MaxInputMB: 1, MaxImageSide: 64, MaxMegapixels: 1, URLTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runWorker(ctx, opts) }()
	addr := waitChan(t, addrs, "the API to listen")
	resp, err := http.Post("http://"+addr+"/runsync", "application/json", strings.NewReader(emptyImageJob))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"COMPLETED"`) || !strings.Contains(string(body), "red_00001_.png") {
		t.Errorf("/runsync: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := waitChan(t, done, "the API to stop"); err != nil {
		t.Errorf("runWorker: %v (%s)", err, errOut)
	}
}
