package comfy_test

// These tests run the client against comfy/engine, the ComfyUI-compatible
// server in Go, so the whole trip — upload, queue, websocket, history, view —
// is exercised against a server that executes the workflows.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// startEngine serves a fresh engine on loopback and stops it with the test.
func startEngine(t testing.TB, classes ...*node.Class) (*engine.Server, *httptest.Server) {
	t.Helper()
	s, err := engine.New(&engine.Config{Dir: t.TempDir(), Classes: classes, DisableMetadata: true, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = s.Stop(ctx)
		hs.Close()
	})
	return s, hs
}

// caseInputs uploads a case's input files the way the capture did.
func uploadCaseInputs(t testing.TB, c *comfy.Client, name string) {
	t.Helper()
	data, err := os.ReadFile(conformanceFile(t, "cases", name, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs struct {
		Inputs []struct {
			File   string
			Upload struct{ Filename, Subfolder, Overwrite string }
		}
	}
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	for _, in := range cs.Inputs {
		f, err := os.Open(conformanceFile(t, "cases", name, filepath.FromSlash(in.File)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadImage(testCtx(t), comfy.Upload{Name: in.Upload.Filename, Subfolder: in.Upload.Subfolder, Overwrite: in.Upload.Overwrite == "true", Data: f})
		f.Close()
		if err != nil {
			t.Fatalf("upload %s: %v", in.File, err)
		}
	}
}

var tempName = regexp.MustCompile(`ComfyUI_temp_[a-z]{5}_`)

func normalizeTemp(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = tempName.ReplaceAllString(k, "ComfyUI_temp_?????_")
	}
	sort.Strings(out)
	return out
}

func TestEngineRunsTheConformanceCases(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob(conformanceFile(t, "cases", "*", "case.json"))
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		var cs struct{ Expect string }
		data, _ := os.ReadFile(d)
		_ = json.Unmarshal(data, &cs)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "fail_empty_prompt" {
				// {} is refused before it reaches a server.
				data, _ := os.ReadFile(conformanceFile(t, "cases", name, "workflow.json"))
				if _, err := comfy.ParseWorkflow(data); !errors.Is(err, comfy.ErrInvalidWorkflow) {
					t.Errorf("empty prompt: %v", err)
				}
				return
			}
			_, hs := startEngine(t)
			c := newTestClient(t, hs.URL)
			uploadCaseInputs(t, c, name)
			res, err := c.Run(testCtx(t), caseWorkflow(t, name), comfy.RunOptions{})
			switch cs.Expect {
			case "success":
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got, want := normalizeTemp(fileKeys(res.Files())), normalizeTemp(viewEntries(t, name)); !slices.Equal(got, want) {
					t.Errorf("files\n got %v\nwant %v", got, want)
				}
			case "runtime_error":
				var ee *comfy.ExecutionError
				if !errors.As(err, &ee) {
					t.Fatalf("want *ExecutionError, got %v", err)
				}
				want := capturedExecutionError(t, name)
				if ee.NodeID != want.NodeID || ee.NodeType != want.NodeType || ee.ExceptionType != want.ExceptionType {
					t.Errorf("engine: %v\ncapture: %v", ee, want)
				}
			case "validation_error":
				var pe *comfy.PromptError
				if !errors.As(err, &pe) {
					t.Fatalf("want *PromptError, got %v", err)
				}
				if got, want := promptErrorShape(pe), promptErrorShape(capturedPromptError(t, name)); got != want {
					t.Errorf("engine:  %s\ncapture: %s", got, want)
				}
			}
		})
	}
}

func capturedExecutionError(t testing.TB, name string) *comfy.ExecutionError {
	data, err := os.ReadFile(conformanceFile(t, "cases", name, "expected", "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	hs, err := comfy.DecodeHistory(data)
	if err != nil || len(hs) != 1 {
		t.Fatal(err)
	}
	var ee *comfy.ExecutionError
	if !errors.As(hs[0].Err(), &ee) {
		t.Fatalf("capture %s has no execution error", name)
	}
	return ee
}

func capturedPromptError(t testing.TB, name string) *comfy.PromptError {
	data, err := os.ReadFile(conformanceFile(t, "cases", name, "expected", "prompt_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Status int
		Body   json.RawMessage
	}
	_ = json.Unmarshal(data, &pr)
	pe, err := comfy.DecodePromptError(pr.Status, pr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return pe
}

// promptErrorShape summarises what must agree between two refusals: type,
// and per node the class, error types and input names (order-free).
func promptErrorShape(pe *comfy.PromptError) string {
	var parts []string
	for _, ne := range pe.NodeErrors {
		for _, d := range ne.Errors {
			parts = append(parts, ne.NodeID+"/"+ne.ClassType+"/"+d.Type+"/"+d.InputName())
		}
	}
	sort.Strings(parts)
	return pe.Type + " " + strings.Join(parts, " ")
}

// blockingClass is a model-like test node: it reports progress steps and
// then waits until the test releases it (or the prompt is interrupted).
type blockingClass struct {
	started chan string
	release chan struct{}
}

func newBlockingClass(t testing.TB) (*blockingClass, *node.Class) {
	t.Helper()
	b := &blockingClass{started: make(chan string, 4), release: make(chan struct{})}
	var info node.Info
	err := json.Unmarshal([]byte(`{"input": {"required": {"image": ["IMAGE", {}], "seed": ["INT", {"default": 0, "min": 0, "max": 18446744073709551615, "control_after_generate": true}]}},
	  "input_order": {"required": ["image", "seed"]}, "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"],
	  "name": "TestSampler", "display_name": "Test Sampler", "description": "", "python_module": "test", "category": "test", "output_node": false}`), &info)
	if err != nil {
		t.Fatal(err)
	}
	return b, &node.Class{Info: &info, Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
		im, err := in.Image("image")
		if err != nil {
			return nil, err
		}
		for i := 1; i <= 3; i++ {
			env.ReportProgress(float64(i), 3)
		}
		b.started <- env.NodeID
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &node.Result{Outputs: []any{im}}, nil
	}}
}

func samplerWorkflow(t testing.TB) *comfy.Workflow {
	wf, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
	  "2": {"class_type": "TestSampler", "inputs": {"image": ["1", 0], "seed": 5}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "sampled"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func TestEngineProgressEventsAndUniqueOutputsPerJob(t *testing.T) {
	t.Parallel()
	b, cls := newBlockingClass(t)
	close(b.release)
	_, hs := startEngine(t, cls)
	c := newTestClient(t, hs.URL)
	info, err := c.ObjectInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var prev []string
	for job := range 2 {
		wf := samplerWorkflow(t)
		if err := wf.Validate(info); err != nil {
			t.Fatal(err)
		}
		wf.RandomizeSeeds(rand.New(rand.NewPCG(uint64(job), 9)), info)
		if _, err := wf.UniquePrefixes("job" + string(rune('A'+job))); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var progress []float64
		res, err := c.Run(testCtx(t), wf, comfy.RunOptions{OnEvent: func(e comfy.Event) {
			if e.Progress != nil && e.Progress.Node == "2" {
				mu.Lock()
				progress = append(progress, e.Progress.Value)
				mu.Unlock()
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(progress, []float64{1, 2, 3}) {
			t.Errorf("job %d progress = %v", job, progress)
		}
		files := fileKeys(res.Files())
		if len(files) != 1 || slices.Equal(files, prev) {
			t.Errorf("job %d files %v (previous %v): each job must write its own file", job, files, prev)
		}
		prev = files
	}
}

func TestEngineInterruptAndCancel(t *testing.T) {
	t.Parallel()
	b, cls := newBlockingClass(t)
	_, hs := startEngine(t, cls)
	c := newTestClient(t, hs.URL)

	// InterruptPrompt while Run waits: Run returns *ExecutionInterrupted.
	errc := make(chan error, 1)
	ids := make(chan string, 1)
	go func() {
		_, err := c.Run(testCtx(t), samplerWorkflow(t), comfy.RunOptions{OnEvent: func(e comfy.Event) {
			if e.Start != nil {
				ids <- e.Start.PromptID
			}
		}})
		errc <- err
	}()
	var id string
	select {
	case id = <-ids:
	case err := <-errc:
		t.Fatalf("Run ended before the prompt started: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the prompt did not start")
	}
	select {
	case <-b.started:
	case err := <-errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the sampler did not start")
	}
	if err := c.InterruptPrompt(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, comfy.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}

	// Cancelling Run's context stops the prompt on the server.
	ctx, cancel := contextWithCancel(t)
	go func() {
		_, err := c.Run(ctx, samplerWorkflow(t), comfy.RunOptions{PromptID: "to-cancel"})
		errc <- err
	}()
	select {
	case <-b.started:
	case err := <-errc:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("the sampler did not start")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	// The engine records the interrupted run once it has stopped it; queue
	// broadcasts on a socket of our own say when to look.
	waitForHistory(t, c, "to-cancel", func(h *comfy.HistoryEntry) {
		if !errors.Is(h.Err(), comfy.ErrInterrupted) {
			t.Errorf("history of the cancelled prompt: %v", h.Err())
		}
	})
}

// waitForHistory waits until prompt id has a history entry, woken by the
// server's queue broadcasts, and passes it to check.
func waitForHistory(t testing.TB, c *comfy.Client, id string, check func(*comfy.HistoryEntry)) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := c.Connect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		h, found, err := c.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			check(h)
			return
		}
		for {
			e, err := conn.Next(ctx)
			if err != nil {
				t.Fatalf("waiting for the history of %s: %v", id, err)
			}
			if e.Status != nil {
				break
			}
		}
	}
}

// TestEngineImageBrushPreviewPackage is the worker's trip in miniature: the
// image-brush manifest binds uploaded images into its model-free preview
// workflow, which the engine runs.
func TestEngineImageBrushPreviewPackage(t *testing.T) {
	t.Parallel()
	_, hs := startEngine(t)
	c := newTestClient(t, hs.URL)
	m := brushManifest(t)
	wf := brushWorkflows(t)["preview"].Clone()
	info, err := c.ObjectInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(wf, "preview", info); err != nil {
		t.Fatal(err)
	}
	params := map[string]any{}
	for param, file := range map[string]string{"target": "target_200x160.png", "reference": "reference_180x150.png", "mask": "mask_200x160.png"} {
		data, err := os.ReadFile(conformanceFile(t, "cases", "brush_422_590_698", "inputs", file))
		if err != nil {
			t.Fatal(err)
		}
		// Two uploads under one name with different bytes: the second is
		// renamed, and the param carries the name the server chose.
		if _, err := c.UploadImage(testCtx(t), comfy.Upload{Name: "input-" + param + ".png", Data: bytes.NewReader([]byte("\x89PNG other bytes"))}); err != nil {
			t.Fatal(err)
		}
		up, err := c.UploadImage(testCtx(t), comfy.Upload{Name: "input-" + param + ".png", Data: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		if up.Name != "input-"+param+" (1).png" {
			t.Errorf("upload renamed to %q", up.Name)
		}
		params[param] = up.Ref()
	}
	if _, err := m.Apply(wf, "preview", params, comfy.ApplyOptions{Rand: rand.New(rand.NewPCG(1, 1)), Info: info}); err != nil {
		t.Fatal(err)
	}
	prefixes, err := wf.UniquePrefixes("job-7")
	if err != nil || prefixes["9"] != "brush/job-7_out" {
		t.Fatalf("prefixes %v %v", prefixes, err)
	}
	res, err := c.Run(testCtx(t), wf, comfy.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := res.Files()
	if len(files) != 1 || files[0].Filename != "job-7_out_00001_.png" || files[0].Subfolder != "brush" {
		t.Fatalf("files %+v", files)
	}
	d, err := c.View(testCtx(t), files[0].FileRef)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg, err := png.DecodeConfig(d)
	if err != nil || cfg.Width != 200 || cfg.Height != 160 {
		t.Errorf("output image %dx%d, %v", cfg.Width, cfg.Height, err)
	}
}

func TestEngineVideoOutputFamily(t *testing.T) {
	t.Parallel()
	// A stand-in for VHS_VideoCombine reporting its file under "gifs".
	var info node.Info
	if err := json.Unmarshal([]byte(`{"input": {"required": {"images": ["IMAGE", {}], "frame_rate": ["FLOAT", {"default": 8, "min": 1}], "filename_prefix": ["STRING", {"default": "AnimateDiff"}]}},
	  "input_order": {"required": ["images", "frame_rate", "filename_prefix"]}, "output": [], "output_is_list": [], "output_name": [],
	  "name": "VHS_VideoCombine", "display_name": "Video Combine", "description": "", "python_module": "test", "category": "test", "output_node": true}`), &info); err != nil {
		t.Fatal(err)
	}
	vhs := &node.Class{Info: &info, Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
		name := in.String("filename_prefix") + "_00001.mp4"
		if err := os.WriteFile(filepath.Join(env.OutputDir, name), []byte("fake mp4"), 0o644); err != nil {
			return nil, err
		}
		return &node.Result{UI: map[string]any{"gifs": []any{map[string]any{
			"filename": name, "subfolder": "", "type": "output", "format": "video/h264-mp4", "frame_rate": in.Float("frame_rate"),
			"workflow": strings.TrimSuffix(name, ".mp4") + ".png", "fullpath": filepath.Join(env.OutputDir, name)}}}}, nil
	}}
	_, hs := startEngine(t, vhs)
	c := newTestClient(t, hs.URL)
	wf, _ := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 4, "color": 0}},
	  "15": {"class_type": "VHS_VideoCombine", "inputs": {"images": ["1", 0], "frame_rate": 16.0, "filename_prefix": "dance"}}}`))
	res, err := c.Run(testCtx(t), wf, comfy.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Files()
	if len(f) != 1 || f[0].Key != "gifs" || f[0].Format != "video/h264-mp4" || f[0].FrameRate != 16 || f[0].Filename != "dance_00001.mp4" {
		t.Fatalf("files %+v", f)
	}
	d, err := c.View(testCtx(t), f[0].FileRef)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(d)
	d.Close()
	if b.String() != "fake mp4" {
		t.Errorf("view = %q", b.String())
	}
}

func TestEngineServerCalls(t *testing.T) {
	t.Parallel()
	_, hs := startEngine(t)
	c := newTestClient(t, hs.URL)
	ctx := testCtx(t)
	if err := c.WaitReady(ctx, comfy.ReadyOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.SystemStats(ctx)
	if err != nil || s.System.ComfyUIVersion != engine.ComfyUIVersion {
		t.Errorf("system stats: %+v %v", s, err)
	}
	info, err := c.ObjectInfo(ctx)
	if err != nil || len(info) < 30 {
		t.Fatalf("object_info: %d classes, %v", len(info), err)
	}
	// Every captured workflow validates against the engine's object_info as
	// it does against the real server's.
	for name, data := range conformanceWorkflows(t) {
		wf, err := comfy.DecodeWorkflow(data)
		if err != nil {
			continue
		}
		err = wf.Validate(info)
		switch {
		case name == "fail_missing_image_file":
			// A missing input file is the server's to find: LoadImage's
			// option list is its input folder, which Validate does not judge.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case strings.HasPrefix(name, "fail_") || name == "runtime_blend_bad_mode" || name == "partial_valid_outputs":
			if err == nil {
				t.Errorf("%s: no problem found", name)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if n, err := c.QueueRemaining(ctx); err != nil || n != 0 {
		t.Errorf("queue remaining %d %v", n, err)
	}
	if err := c.Free(ctx, comfy.FreeOptions{FreeMemory: true}); err != nil {
		t.Error(err)
	}
	if err := c.ClearQueue(ctx); err != nil {
		t.Error(err)
	}
	if err := c.Interrupt(ctx); err != nil {
		t.Error(err)
	}
	f, err := c.Features(ctx)
	if err != nil || f.MaxUploadSize != engine.MaxUploadSizeDefault {
		t.Errorf("features %+v %v", f, err)
	}
	if _, err := c.View(ctx, comfy.FileRef{Filename: "nope.png"}); !errors.Is(err, comfy.ErrNotFound) {
		t.Errorf("view of a missing file: %v", err)
	}
}
