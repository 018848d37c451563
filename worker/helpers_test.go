package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests; it is generous because a
// wait only ends early when something is broken.
const waitTimeout = 60 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testNodes are engine node classes standing in for custom nodes and for
// misbehaving ones.
type testNodes struct {
	slowStarted     chan string      // a TestSlow node began
	slowInterrupted chan string      // a TestSlow node saw its run cancelled
	release         chan struct{}    // closed to let TestSlow nodes finish
	counted         atomic.Int64     // TestCount executions
	videos          chan loadedVideo // what VHS_LoadVideo nodes read
}

// loadedVideo is a file a VHS_LoadVideo stand-in read from the input
// folder.
type loadedVideo struct {
	name string
	data []byte
}

func newTestNodes() *testNodes {
	return &testNodes{slowStarted: make(chan string, 16), slowInterrupted: make(chan string, 16), release: make(chan struct{}),
		videos: make(chan loadedVideo, 16)}
}

// nextVideo returns the next file a VHS_LoadVideo node read.
func (tn *testNodes) nextVideo(t testing.TB) loadedVideo {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case v := <-tn.videos:
		return v
	case <-timer.C:
		t.Fatal("no VHS_LoadVideo node ran")
		return loadedVideo{}
	}
}

// videoExtensions are the files VideoHelperSuite's loader lists.
var videoExtensions = []string{".webm", ".mp4", ".mkv", ".gif", ".mov"}

func nodeInfo(t testing.TB, js string) *node.Info {
	t.Helper()
	var info node.Info
	if err := json.Unmarshal([]byte(js), &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// classes returns:
//   - VHS_LoadVideo: as VideoHelperSuite declares it (its files a plain
//     combo of the input folder's videos, checked by VALIDATE_INPUTS); it
//     reads the file from the input folder, reports it on tn.videos, fails
//     as OpenCV would on a file that is not a video, and returns
//     frame_load_cap 8×8 frames;
//   - VHS_VideoCombine: writes <prefix>_00001.mp4 of `bytes` random bytes (and
//     its first-frame PNG beside it) and reports them under "gifs", as
//     VideoHelperSuite does;
//   - TestSlow: passes its image through once released, reporting progress;
//     it waits for the prompt to be interrupted otherwise;
//   - TestFail: raises a ValueError;
//   - TestCount: counts its runs and passes its image through;
//   - TestValidated: refuses mode "bad" in its VALIDATE_INPUTS, which only
//     the server knows.
func (tn *testNodes) classes(t testing.TB) []*node.Class {
	vhs := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"images": ["IMAGE", {}], "frame_rate": ["FLOAT", {"default": 8, "min": 1}], "filename_prefix": ["STRING", {"default": "AnimateDiff"}], "bytes": ["INT", {"default": 64, "min": 1, "max": 100000000}]}},
	  "input_order": {"required": ["images", "frame_rate", "filename_prefix", "bytes"]}, "output": [], "output_is_list": [], "output_name": [],
	  "name": "VHS_VideoCombine", "display_name": "Video Combine", "description": "", "python_module": "test", "category": "test", "output_node": true}`),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			prefix := in.String("filename_prefix")
			dir, base := filepath.Split(prefix)
			full := filepath.Join(env.OutputDir, dir)
			if err := os.MkdirAll(full, 0o755); err != nil {
				return nil, err
			}
			data := make([]byte, in.Int("bytes"))
			rnd := rand.New(rand.NewPCG(uint64(len(data)), 7))
			for i := range data {
				data[i] = byte(rnd.Uint32())
			}
			copy(data, "\x00\x00\x00\x18ftypmp42")
			name := base + "_00001.mp4"
			if err := os.WriteFile(filepath.Join(full, name), data, 0o644); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(full, base+"_00001.png"), pngBytes(t, 4, 4, 1), 0o644); err != nil {
				return nil, err
			}
			return &node.Result{UI: map[string]any{"gifs": []any{map[string]any{
				"filename": name, "subfolder": strings.TrimSuffix(dir, "/"), "type": "output", "format": "video/h264-mp4",
				"frame_rate": in.Float("frame_rate"), "workflow": base + "_00001.png", "fullpath": filepath.Join(full, name)}}}}, nil
		}}
	loadVideo := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"video": [[]], "force_rate": ["FLOAT", {"default": 0, "min": 0, "max": 60}],
	  "frame_load_cap": ["INT", {"default": 0, "min": 0}]}}, "input_order": {"required": ["video", "force_rate", "frame_load_cap"]},
	  "output": ["IMAGE", "INT"], "output_is_list": [false, false], "output_name": ["IMAGE", "frame_count"],
	  "name": "VHS_LoadVideo", "display_name": "Load Video (Upload)", "description": "", "python_module": "test", "category": "test", "output_node": false}`),
		DynamicOptions: func(env *node.Env) (map[string][]string, error) {
			entries, err := os.ReadDir(env.InputDir)
			if err != nil {
				return nil, err
			}
			var files []string
			for _, e := range entries {
				if !e.IsDir() && slices.Contains(videoExtensions, strings.ToLower(filepath.Ext(e.Name()))) {
					files = append(files, e.Name())
				}
			}
			return map[string][]string{"video": files}, nil
		},
		ValidateInputs: func(env *node.Env, in node.Inputs) error {
			p, err := env.InputPath(in.String("video"))
			if err == nil {
				_, err = os.Stat(p)
			}
			if err != nil {
				return errorString("Invalid video file: " + in.String("video"))
			}
			return nil
		},
		ValidateSkips: []string{"video"},
		NotIdempotent: true,
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			p, err := env.InputPath(in.String("video"))
			if err != nil {
				return nil, err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			select {
			case tn.videos <- loadedVideo{name: in.String("video"), data: data}:
			default:
			}
			isVideo := len(data) >= 12 && string(data[4:8]) == "ftyp" || bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}) || bytes.HasPrefix(data, []byte("GIF8"))
			if !isVideo {
				return nil, node.Errorf("ValueError", "%s could not be loaded with cv.", p)
			}
			n := max(int(in.Int("frame_load_cap")), 1)
			return &node.Result{Outputs: []any{node.NewImage(n, 8, 8, 3), int64(n)}}, nil
		}}
	slow := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"image": ["IMAGE", {}]}}, "input_order": {"required": ["image"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "TestSlow", "display_name": "Slow", "description": "",
	  "python_module": "test", "category": "test", "output_node": false}`),
		NotIdempotent: true,
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			env.ReportProgress(1, 4)
			tn.slowStarted <- env.PromptID
			select {
			case <-tn.release:
				for i := 2; i <= 4; i++ {
					env.ReportProgress(float64(i), 4)
				}
				return &node.Result{Outputs: []any{im}}, nil
			case <-ctx.Done():
				tn.slowInterrupted <- env.PromptID
				return nil, ctx.Err()
			}
		}}
	fail := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"image": ["IMAGE", {}]}}, "input_order": {"required": ["image"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "TestFail", "display_name": "Fail", "description": "",
	  "python_module": "test", "category": "test", "output_node": false}`),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			return nil, node.Errorf("ValueError", "the test node failed on purpose")
		}}
	count := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"image": ["IMAGE", {}]}}, "input_order": {"required": ["image"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "TestCount", "display_name": "Count", "description": "",
	  "python_module": "test", "category": "test", "output_node": false}`),
		NotIdempotent: true,
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			tn.counted.Add(1)
			im, err := in.Image("image")
			return &node.Result{Outputs: []any{im}}, err
		}}
	validated := &node.Class{Info: nodeInfo(t, `{"input": {"required": {"image": ["IMAGE", {}], "mode": ["STRING", {"default": "good"}]}}, "input_order": {"required": ["image", "mode"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "TestValidated", "display_name": "Validated", "description": "",
	  "python_module": "test", "category": "test", "output_node": false}`),
		ValidateInputs: func(env *node.Env, in node.Inputs) error {
			if in.String("mode") == "bad" {
				return errorString("mode \"bad\" cannot be used with this image")
			}
			return nil
		},
		ValidateSkips: []string{"mode"},
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			return &node.Result{Outputs: []any{im}}, err
		}}
	return []*node.Class{loadVideo, vhs, slow, fail, count, validated}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// startStack starts a devstack with the test nodes; cfg may be nil. The
// manifest of the image-brush test package is loaded unless cfg sets one.
func startStack(t testing.TB, cfg *devstack.Config, tn *testNodes) *devstack.Stack {
	t.Helper()
	if cfg == nil {
		cfg = &devstack.Config{}
	}
	if tn != nil {
		cfg.EngineClasses = append(cfg.EngineClasses, tn.classes(t)...)
	}
	if cfg.EngineDir == "" && cfg.ComfyURL == "" {
		cfg.EngineDir = t.TempDir()
	}
	if testing.Verbose() && cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	st, err := devstack.Start(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("devstack.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// brushManifest loads the image-brush test package into a worker config,
// with its model-free preview workflow as the default.
func brushManifest(t testing.TB, wc *worker.Config) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "comfy", "testdata", "image-brush")
	data, err := os.ReadFile(filepath.Join(dir, "comfypod.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := m.LoadWorkflows(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	wc.Manifest, wc.Workflows, wc.Workflow = m, wfs, "preview"
}

// motionManifest loads the motion test package into a worker config: a
// video param bound to VHS_LoadVideo, a video out of VHS_VideoCombine.
func motionManifest(t testing.TB, wc *worker.Config) {
	t.Helper()
	dir := filepath.Join("testdata", "motion")
	data, err := os.ReadFile(filepath.Join(dir, "comfypod.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := m.LoadWorkflows(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	wc.Manifest, wc.Workflows, wc.Workflow = m, wfs, ""
}

// client returns a RunPod client for the stack.
func client(t testing.TB, st *devstack.Stack) *runpod.Client {
	t.Helper()
	c, err := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()), runpod.WithLongPoll(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runJob submits input and waits for the job to end. It returns the final
// status and, for a job that did not complete, its *runpod.JobError.
func runJob(t testing.TB, st *devstack.Stack, req *runpod.Request) (*runpod.Status, *runpod.JobError) {
	t.Helper()
	ctx := testCtx(t)
	job, err := client(t, st).Run(ctx, req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	status, err := job.Wait(ctx, &runpod.WaitOptions{Timeout: waitTimeout})
	t.Cleanup(func() { status.Close() })
	if err != nil {
		var je *runpod.JobError
		if ok := asJobError(err, &je); ok {
			return status, je
		}
		t.Fatalf("Wait: %v", err)
	}
	return status, nil
}

// output decodes a completed job's output.
func output(t testing.TB, status *runpod.Status) *worker.Output {
	t.Helper()
	var out worker.Output
	if err := status.DecodeOutput(&out); err != nil {
		t.Fatalf("decoding the output: %v", err)
	}
	return &out
}

// mustComplete runs a job that must complete and returns its output.
func mustComplete(t testing.TB, st *devstack.Stack, input any) *worker.Output {
	t.Helper()
	status, je := runJob(t, st, &runpod.Request{Input: input})
	if je != nil {
		t.Fatalf("job failed: %s (details %s)", je.Message, je.Details)
	}
	return output(t, status)
}

// pngBytes returns a w×h RGB PNG with a deterministic pattern.
func pngBytes(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, patternImage(w, h, seed)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func patternImage(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), uint8(rnd.IntN(256)), 255})
		}
	}
	return img
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

func dataURI(data []byte) string { return "data:image/png;base64," + b64(data) }

// decodePNG decodes a base64 PNG.
func decodePNG(t testing.TB, s string) image.Image {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("output is not base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	return img
}

// invertWorkflow is LoadImage → ImageInvert → SaveImage.
func invertWorkflow(image string) map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": image}},
		"2": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"1", 0}}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "ComfyUI"}},
	}
}

// engineFiles lists the files below the engine's input/, output/ and temp/.
func engineFiles(t testing.TB, st *devstack.Stack) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"input", "output", "temp"} {
		root := filepath.Join(st.ComfyDir(), sub)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(st.ComfyDir(), p)
				files = append(files, rel)
			}
			return nil
		})
	}
	return files
}

// logSink collects log lines for assertions about what was logged.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func asJobError(err error, je **runpod.JobError) bool { return errors.As(err, je) }

// testLogger writes every part's logs to stderr under go test -v.
func testLogger(testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustJSONString(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fileMeta returns an output file without its data, for messages.
func fileMeta(f worker.File) worker.File {
	f.Data = truncated(f.Data)
	return f
}

func truncated(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

func httputilProxy(u *url.URL) http.Handler { return httputil.NewSingleHostReverseProxy(u) }

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
