package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEngineParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *EngineOptions
	cmd := newCmdEngine(f, func(_ context.Context, o *EngineOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"--addr", "0.0.0.0:9000", "--dir", "/data/c", "--disable-metadata", "--max-upload-size", "12.5", "--enable-cors-header", "*"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Addr != "0.0.0.0:9000" || got.Dir != "/data/c" || !got.DisableMetadata || got.MaxUploadSizeMB != 12.5 || got.CORSOrigin != "*" || got.Grace != 5*time.Second {
		t.Errorf("options = %+v", got)
	}

	// --dir falls back to the environment, and is required.
	f.Getenv = func(k string) string {
		if k == engineDirEnv {
			return "/from/env"
		}
		return ""
	}
	cmd = newCmdEngine(f, func(_ context.Context, o *EngineOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil || got.Dir != "/from/env" || got.Addr != "127.0.0.1:8188" || got.MaxUploadSizeMB != 100 {
		t.Errorf("defaults: %v %+v", err, got)
	}
	g, _, _, errOut := testFactory()
	for _, args := range [][]string{{"engine"}, {"engine", "--dir", "x", "--addr", "8188"}, {"engine", "--dir", "x", "--max-upload-size", "0"}, {"engine", "--dir", "x", "extra"}} {
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
}

func TestEngineRuns(t *testing.T) {
	t.Parallel()
	f, _, out, _ := testFactory()
	status := &syncBuffer{}
	f.IO.ErrOut = status
	dir := filepath.Join(t.TempDir(), "base")
	addrs := make(chan net.Addr, 1)
	opts := &EngineOptions{
		IO:     f.IO,
		Logger: f.Logger,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				addrs <- ln.Addr()
			}
			return ln, err
		},
		Addr:            "127.0.0.1:0",
		Dir:             dir,
		MaxUploadSizeMB: 1,
		Grace:           5 * time.Second,
	}
	engine := startCommand(t, func(ctx context.Context) error { return runEngine(ctx, opts) })
	addr := await(engine, addrs, "the engine listening")
	base := "http://" + addr.String()
	resp, err := http.Get(base + "/system_stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		System struct {
			ComfyUIVersion string `json:"comfyui_version"`
		} `json:"system"`
	}
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || stats.System.ComfyUIVersion == "" {
		t.Errorf("/system_stats: %v %+v", err, stats)
	}
	resp, err = http.Post(base+"/prompt", "application/json", strings.NewReader(`{"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Cannot execute because node KSampler does not exist.") {
		t.Errorf("model prompt = %d %s", resp.StatusCode, body)
	}
	for _, sub := range []string{"input", "output", "temp"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s/ was not created: %v", sub, err)
		}
	}

	if err := engine.stop(); err != nil {
		t.Errorf("engine returned %v after Ctrl-C", err)
	}
	if s := status.String(); !strings.Contains(s, "listening on http://"+addr.String()) || !strings.Contains(s, "comfypod engine stopped") {
		t.Errorf("status output:\n%s", s)
	}
	if out.Len() != 0 {
		t.Errorf("engine wrote to stdout: %q", out.String())
	}
}
