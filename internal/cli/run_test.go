package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/runpod"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const cliTestKey = "rpa_CLITESTKEY_abcdef0123"

// jobsFactory is a Factory with in-memory streams and a RunPod environment
// pointing at base.
func jobsFactory(base string) (*Factory, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	ios, in, out, errOut := TestIO()
	env := map[string]string{envEndpointID: "ep1", envAPIKey: cliTestKey, envBaseURL: base}
	return &Factory{
		IO:         ios,
		Getenv:     func(k string) string { return env[k] },
		HTTPClient: &http.Client{},
		Now:        time.Now,
		logLevel:   "info",
		logFormat:  "text",
	}, in, out, errOut
}

// cliClock is a runpod.Clock whose waits return at once.
type cliClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *cliClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *cliClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

// fakeRunPod serves one endpoint, "ep1", with canned answers per operation
// and records what it was sent.
type fakeRunPod struct {
	srv *httptest.Server

	mu      sync.Mutex
	answers map[string][]string // operation → answers in turn (the last repeats)
	codes   map[string]int
	seen    map[string][][]byte // operation → bodies
	auth    []string
}

func newFakeRunPod(t testing.TB) *fakeRunPod {
	t.Helper()
	f := &fakeRunPod{answers: map[string][]string{}, codes: map[string]int{}, seen: map[string][][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rest, _ := strings.CutPrefix(r.URL.Path, "/v2/ep1/")
		op, _, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		f.seen[op] = append(f.seen[op], body)
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		answers := f.answers[op]
		code := f.codes[op]
		var answer string
		if len(answers) > 0 {
			answer = answers[0]
			if len(answers) > 1 {
				f.answers[op] = answers[1:]
			}
		}
		f.mu.Unlock()
		if answers == nil {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		if code == 0 {
			code = 200
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRunPod) on(op string, code int, answers ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[op] = answers
	f.codes[op] = code
}

func (f *fakeRunPod) bodies(op string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[op]
}

func (f *fakeRunPod) base() string { return f.srv.URL + "/v2" }

// testWorkflow is an API-format workflow with the nodes the Image Brush seed
// edits: 689 (KSampler, seed) and 658 (CLIPTextEncode, text).
const testWorkflow = `{
  "422": {"class_type": "LoadImage", "inputs": {"image": "input-1.png"}},
  "658": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog", "clip": ["4", 1]}},
  "689": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7.5, "denoise": 1, "add_noise": true, "model": ["4", 0]}},
  "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd.safetensors"}}
}`

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func testPNG(t testing.TB, dir, name string, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, b.String())
}

func TestRunParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := jobsFactory("http://127.0.0.1:1/v2")
	var got *RunOptions
	cmd := NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--workflow", "wf.json", "--image", "input-1.png=a.png", "--image", "mask.png=m.png",
		"--max-side", "768", "--set", "689.seed=random", "--set", "658.text=a cat", "--sync", "--timeout", "2m",
		"--out", "outdir", "--json", "--endpoint", "flag-ep"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := RunOptions{WorkflowFile: "wf.json", Images: []string{"input-1.png=a.png", "mask.png=m.png"}, MaxSide: 768,
		Sets: []string{"689.seed=random", "658.text=a cat"}, Sync: true, Timeout: 2 * time.Minute, OutDir: "outdir", JSON: true,
		Conn: ConnectionOptions{Endpoint: "flag-ep", APIKey: cliTestKey, BaseURL: "http://127.0.0.1:1/v2"}}
	if got == nil || got.WorkflowFile != want.WorkflowFile || strings.Join(got.Images, ",") != strings.Join(want.Images, ",") ||
		got.MaxSide != want.MaxSide || strings.Join(got.Sets, ",") != strings.Join(want.Sets, ",") || got.Sync != want.Sync ||
		got.Timeout != want.Timeout || got.OutDir != want.OutDir || got.JSON != want.JSON || got.Conn != want.Conn {
		t.Errorf("options = %+v", got)
	}

	// Defaults.
	cmd = NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--input", "-"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Timeout != 6*time.Minute || got.Conn.Endpoint != "ep1" || got.Sync || got.OutDir != "" {
		t.Errorf("defaults = %+v", got)
	}
}

func TestRunUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wf := writeFile(t, dir, "wf.json", testWorkflow)
	ui := writeFile(t, dir, "ui.json", `{"nodes":[{"id":1}],"links":[]}`)
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"run"}, nil, "nothing to send"},
		{[]string{"run", "--workflow", wf, "--timeout", "-1s"}, nil, "--timeout"},
		{[]string{"run", "--workflow", wf}, map[string]string{envEndpointID: ""}, "RUNPOD_ENDPOINT_ID"},
		{[]string{"run", "--workflow", wf}, map[string]string{envAPIKey: ""}, "RUNPOD_API_KEY"},
		{[]string{"run", "--workflow", wf, "--base-url", "ftp://x"}, nil, "base URL"},
		{[]string{"run", "--workflow", wf, "--endpoint", "https://api.runpod.ai/v2/x"}, nil, "endpoint id"},
		{[]string{"run", "--workflow", ui}, nil, "Save (API Format)"},
		{[]string{"run", "--workflow", filepath.Join(dir, "missing.json")}, nil, "missing.json"},
		{[]string{"run", "--workflow", wf, "--set", "689seed=1"}, nil, "NODE.INPUT=VALUE"},
		{[]string{"run", "--workflow", wf, "--set", "999.seed=1"}, nil, `no node "999" (its nodes: 4, 422, 658, 689)`},
		{[]string{"run", "--workflow", wf, "--set", "689.sed=1"}, nil, `no input "sed" (its inputs: add_noise, cfg, denoise, model, seed, steps)`},
		{[]string{"run", "--workflow", wf, "--set", "689.seed=abc"}, nil, "is a number"},
		{[]string{"run", "--workflow", wf, "--set", "689.add_noise=maybe"}, nil, "true or false"},
		{[]string{"run", "--workflow", wf, "--set", "689.model=x"}, nil, "linked to node 4"},
		{[]string{"run", "--input", "-", "--set", "689.seed=1"}, nil, "--set needs a workflow"},
		{[]string{"run", "--image", "=x.png"}, nil, "NAME=PATH"},
		{[]string{"run", "--image", "a.png=" + wf}, nil, "not a PNG"},
		{[]string{"run", "--workflow", wf, "--max-side", "-5"}, nil, "--max-side"},
		{[]string{"run", "--workflow", wf, "extra"}, nil, "unknown command"},
	}
	for _, tc := range cases {
		f, in, _, errOut := jobsFactory("http://127.0.0.1:1/v2")
		in.WriteString(`{"prompt":"x"}`)
		env := map[string]string{envEndpointID: "ep1", envAPIKey: cliTestKey}
		for k, v := range tc.env {
			env[k] = v
		}
		f.Getenv = func(k string) string { return env[k] }
		code := Run(context.Background(), f, tc.args)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, code, ExitUsage, errOut)
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errOut, tc.want)
		}
		if strings.Contains(errOut.String(), cliTestKey) {
			t.Errorf("%v: the API key was printed", tc.args)
		}
	}
}

func TestRunHelpHidesTheKey(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "status", "cancel", "health", "purge-queue"} {
		f, _, out, errOut := jobsFactory("http://127.0.0.1:1/v2")
		if code := Run(context.Background(), f, []string{cmd, "--help"}); code != ExitOK {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		if strings.Contains(out.String()+errOut.String(), cliTestKey) {
			t.Errorf("%s --help shows the API key", cmd)
		}
		if !strings.Contains(out.String(), "--api-key") {
			t.Errorf("%s --help lacks the connection flags", cmd)
		}
	}
}

// completedPNG is a COMPLETED status whose output has one PNG.
func completedPNG(t testing.TB, id string) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 3))); err != nil {
		t.Fatal(err)
	}
	return `{"id":"` + id + `","status":"COMPLETED","delayTime":31000,"executionTime":4200,"output":{"images":[{"filename":"ComfyUI_00001_.png","type":"base64","data":"` +
		base64.StdEncoding.EncodeToString(b.Bytes()) + `"}]}}`, b.Bytes()
}

func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	done, pngBytes := completedPNG(t, "job-1")
	rp.on("run", 200, `{"id":"job-1","status":"IN_QUEUE"}`)
	rp.on("status-sync", 200,
		`{"id":"job-1","status":"IN_QUEUE"}`,
		`{"id":"job-1","status":"IN_PROGRESS","output":{"progress":"step 3/20"}}`,
		done)
	dir := t.TempDir()
	wf := writeFile(t, dir, "wf.json", testWorkflow)
	target := testPNG(t, dir, "target.png", 400, 200)
	out := filepath.Join(dir, "out")

	f, _, stdout, stderr := jobsFactory(rp.base())
	cmd := NewCmdRun(f, func(ctx context.Context, o *RunOptions) error {
		o.Rand = func() uint64 { return 123456789 }
		o.ClientOptions = []runpod.Option{runpod.WithClock(&cliClock{now: time.Unix(0, 0)})}
		return runRun(ctx, o)
	})
	cmd.SetArgs([]string{"--workflow", wf, "--image", "input-1.png=" + target, "--image", target, "--max-side", "100",
		"--set", "689.seed=random", "--set", `658.text="a cat"`, "--set", "689.cfg=8", "--set", "422.image=input-2.png", "--out", out})
	cmd.SetOut(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr)
	}

	// What was sent.
	bodies := rp.bodies("run")
	if len(bodies) != 1 {
		t.Fatalf("%d submissions", len(bodies))
	}
	var sent struct {
		Input struct {
			Workflow map[string]struct {
				Inputs map[string]any `json:"inputs"`
			} `json:"workflow"`
			Images []struct{ Name, Image string } `json:"images"`
		} `json:"input"`
	}
	if err := json.Unmarshal(bodies[0], &sent); err != nil {
		t.Fatal(err)
	}
	wfSent := sent.Input.Workflow
	if wfSent["689"].Inputs["seed"] != 123456789.0 || wfSent["658"].Inputs["text"] != "a cat" || wfSent["689"].Inputs["cfg"] != 8.0 ||
		wfSent["422"].Inputs["image"] != "input-2.png" || wfSent["689"].Inputs["steps"] != 20.0 {
		t.Errorf("workflow sent: %+v", wfSent)
	}
	if len(sent.Input.Images) != 2 || sent.Input.Images[0].Name != "input-1.png" || sent.Input.Images[1].Name != "target.png" {
		t.Fatalf("images sent: %d", len(sent.Input.Images))
	}
	raw, err := base64.StdEncoding.DecodeString(sent.Input.Images[0].Image)
	if err != nil {
		t.Fatalf("image is not plain base64: %v", err)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil || cfg.Width != 100 || cfg.Height != 50 {
		t.Errorf("image sent: %+v, %v (want downscaled to 100x50)", cfg, err)
	}

	// What was written and said.
	saved := filepath.Join(out, "ComfyUI_00001_.png")
	if b, err := os.ReadFile(saved); err != nil || !bytes.Equal(b, pngBytes) {
		t.Errorf("output file: %v", err)
	}
	if stdout.String() != saved+"\n" {
		t.Errorf("stdout %q, want the saved path", stdout)
	}
	for _, want := range []string{"set 689.seed = 123456789", "job job-1 IN_QUEUE", "job job-1 IN_PROGRESS", `progress {"progress":"step 3/20"}`,
		"job job-1 COMPLETED (queued 31s, ran 4.2s)", "saved " + saved} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), cliTestKey) {
		t.Error("the API key was printed")
	}
	if strings.Contains(stderr.String(), "\x1b[") {
		t.Error("terminal escapes written to a non-terminal")
	}
}

func TestRunWorkflowAsStringAndStdinInput(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	rp.on("run", 200, `{"id":"job-2","status":"IN_QUEUE"}`)
	rp.on("status-sync", 200, `{"id":"job-2","status":"COMPLETED","output":{"text":"hello"}}`)
	f, in, stdout, stderr := jobsFactory(rp.base())
	wfString, _ := json.Marshal(testWorkflow)
	in.WriteString(`{"workflow": ` + string(wfString) + `, "params": {"strength": 0.8}}`)
	code := Run(context.Background(), f, []string{"run", "--input", "-", "--set", "689.steps=30"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sent struct {
		Input struct {
			Workflow string         `json:"workflow"`
			Params   map[string]any `json:"params"`
		} `json:"input"`
	}
	if err := json.Unmarshal(rp.bodies("run")[0], &sent); err != nil {
		t.Fatalf("workflow no longer a string: %v", err)
	}
	if !strings.Contains(sent.Input.Workflow, `"steps":30`) || sent.Input.Params["strength"] != 0.8 {
		t.Errorf("sent %+v", sent.Input)
	}
	// An output without files is printed.
	if strings.TrimSpace(stdout.String()) != `{"text":"hello"}` {
		t.Errorf("stdout %q", stdout)
	}
}

// TestRunInputUnwrapsTestInputFile sends a test_input.json file
// ({"input": {…}}) with --input: the inner object is the job's input.
func TestRunInputUnwrapsTestInputFile(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	rp.on("run", 200, `{"id":"job-3","status":"IN_QUEUE"}`)
	rp.on("status-sync", 200, `{"id":"job-3","status":"COMPLETED","output":{"text":"ok"}}`)
	f, in, _, stderr := jobsFactory(rp.base())
	in.WriteString(`{"input": {"params": {"prompt": "a cat"}}}`)
	if code := Run(context.Background(), f, []string{"run", "--input", "-"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sent struct {
		Input map[string]json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(rp.bodies("run")[0], &sent); err != nil {
		t.Fatal(err)
	}
	if _, wrapped := sent.Input["input"]; wrapped || string(sent.Input["params"]) != `{"prompt":"a cat"}` {
		t.Errorf("sent input %s", rp.bodies("run")[0])
	}
}

func TestRunSyncAndJSON(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	done, _ := completedPNG(t, "sync-1")
	rp.on("runsync", 200, done)
	f, in, stdout, stderr := jobsFactory(rp.base())
	in.WriteString(`{"prompt":"x"}`)
	code := Run(context.Background(), f, []string{"run", "--input", "-", "--sync", "--json"})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.TrimSpace(stdout.String()) != done {
		t.Errorf("stdout is not the status:\n%s", stdout)
	}
	if len(rp.bodies("runsync")) != 1 || len(rp.bodies("run")) != 0 {
		t.Errorf("did not use /runsync")
	}
}

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	failed := `{"id":"j","status":"FAILED","error":"{\"error_type\": \"<class 'RuntimeError'>\", \"error_message\": \"CUDA out of memory\", \"error_traceback\": \"Traceback (most recent call last):\\n  File handler.py\"}"}`
	cases := []struct {
		name   string
		setup  func(*fakeRunPod)
		code   int
		stderr []string
	}{
		{"completed", func(rp *fakeRunPod) {
			rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status-sync", 200, `{"id":"j","status":"COMPLETED"}`)
		}, ExitOK, []string{"job j COMPLETED"}},
		{"failed", func(rp *fakeRunPod) {
			rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status-sync", 200, failed)
		}, ExitFailed, []string{"RuntimeError: CUDA out of memory", "worker traceback:\nTraceback (most recent call last):"}},
		{"cancelled", func(rp *fakeRunPod) {
			rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status-sync", 200, `{"id":"j","status":"CANCELLED"}`)
		}, ExitFailed, []string{"was cancelled"}},
		{"timed out at RunPod", func(rp *fakeRunPod) {
			rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status-sync", 200, `{"id":"j","status":"TIMED_OUT"}`)
		}, ExitFailed, []string{"timed out at RunPod"}},
		{"unauthorized", func(rp *fakeRunPod) { rp.on("run", 401, `{"error":"Unauthorized"}`) }, ExitAuth, []string{"check RUNPOD_API_KEY"}},
		{"unknown endpoint", func(rp *fakeRunPod) {}, ExitNotFound, []string{"check RUNPOD_ENDPOINT_ID"}},
		{"client-side timeout", func(rp *fakeRunPod) {
			rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status-sync", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("status", 200, `{"id":"j","status":"IN_QUEUE"}`)
			rp.on("health", 200, `{"workers":{"idle":0,"running":0}}`)
			rp.on("cancel", 200, `{"id":"j","status":"CANCELLED"}`)
		}, ExitTimeout, []string{"timed out after 2m0s", "cancelled it at RunPod", "model is loading (cold start)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rp := newFakeRunPod(t)
			tc.setup(rp)
			f, in, _, stderr := jobsFactory(rp.base())
			in.WriteString(`{"prompt":"x"}`)
			cmd := NewRootCmd(f)
			// Swap run for one with a fake clock, so waits take no time.
			for _, c := range cmd.Commands() {
				if c.Name() == "run" {
					cmd.RemoveCommand(c)
				}
			}
			cmd.AddCommand(NewCmdRun(f, func(ctx context.Context, o *RunOptions) error {
				o.ClientOptions = []runpod.Option{runpod.WithClock(&cliClock{now: time.Unix(0, 0)})}
				return runRun(ctx, o)
			}))
			cmd.SetArgs([]string{"run", "--input", "-", "--timeout", "2m"})
			err := cmd.ExecuteContext(context.Background())
			if code := exitCode(err); code != tc.code {
				t.Errorf("exit %d, want %d (err %v)", code, tc.code, err)
			}
			all := stderr.String()
			if err != nil {
				all += err.Error()
			}
			for _, want := range tc.stderr {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
			if strings.Contains(all, cliTestKey) {
				t.Error("the API key was printed")
			}
		})
	}
}

func TestRunLiveLineOnTerminal(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	var queued []string
	for range 20 {
		queued = append(queued, `{"id":"j","status":"IN_QUEUE"}`)
	}
	done, _ := completedPNG(t, "j")
	rp.on("run", 200, `{"id":"j","status":"IN_QUEUE"}`)
	rp.on("status-sync", 200, append(queued, done)...)
	rp.on("health", 200, `{"workers":{"idle":0,"running":0,"initializing":1}}`)
	f, in, stdout, stderr := jobsFactory(rp.base())
	f.IO.StderrTTY = true
	in.WriteString(`{"prompt":"x"}`)
	out := t.TempDir()
	cmd := NewCmdRun(f, func(ctx context.Context, o *RunOptions) error {
		// Each empty long poll pauses 250 ms of fake time; 20 of them pass
		// the cold-start threshold only with a larger step, so start late.
		o.ClientOptions = []runpod.Option{runpod.WithClock(&stepClock{cliClock: cliClock{now: time.Unix(0, 0)}, step: 2 * time.Second})}
		return runRun(ctx, o)
	})
	cmd.SetArgs([]string{"--input", "-", "--out", out})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	s := stderr.String()
	for _, want := range []string{"\r\x1b[2K", "IN_QUEUE", "job j", "model is loading (cold start)…", "job j COMPLETED", "saved "} {
		if !strings.Contains(s, want) {
			t.Errorf("stderr lacks %q:\n%q", want, s)
		}
	}
	if !strings.HasSuffix(stdout.String(), "ComfyUI_00001_.png\n") {
		t.Errorf("stdout %q", stdout)
	}
}

// stepClock advances by step on every Now, so fake time passes quickly.
type stepClock struct {
	cliClock
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func TestInputValue(t *testing.T) {
	t.Parallel()
	rnd := func() uint64 { return 1<<64 - 1 }
	for _, tc := range []struct {
		cur, value, want string
	}{
		{`1`, `42`, `42`},
		{`1`, `-1.5e3`, `-1.5e3`},
		{`1`, `random`, `9007199254740991`},
		{`"a dog"`, `a cat`, `"a cat"`},
		{`"a dog"`, `"quoted"`, `"quoted"`},
		{`"a dog"`, `42`, `"42"`},
		{`"a dog"`, `true`, `"true"`},
		{`"x"`, `random`, `"random"`},
		{`true`, `false`, `false`},
		{`null`, `7`, `7`},
		{`"x"`, `{"a":1}`, `"{\"a\":1}"`},
	} {
		got, _, err := inputValue(json.RawMessage(tc.cur), tc.value, rnd)
		if err != nil || string(got) != tc.want {
			t.Errorf("inputValue(%s, %s) = %s, %v; want %s", tc.cur, tc.value, got, err, tc.want)
		}
	}
}
