package worker_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"golang.org/x/sys/unix"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
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

// The image-brush bindings on its model-free preview workflow: the target
// as a data: URI param, the reference by its name in images, the mask as
// base64; pixels outside the mask are the target's, inside they are not.
func TestWorkerParamsWithManifest(t *testing.T) {
	t.Parallel()
	cfg := &devstack.Config{}
	brushManifest(t, &cfg.Worker)
	st := startStack(t, cfg, newTestNodes())

	target := patternImage(200, 160, 3)
	mask := image.NewNRGBA(image.Rect(0, 0, 200, 160))
	for y := range 160 {
		for x := range 200 {
			c := color.NRGBA{0, 0, 0, 255}
			if x >= 80 && x < 120 && y >= 60 && y < 100 {
				c = color.NRGBA{255, 255, 255, 255}
			}
			mask.SetNRGBA(x, y, c)
		}
	}
	out := mustComplete(t, st, map[string]any{
		"images": []any{map[string]any{"name": "style.png", "image": b64(pngBytes(t, 90, 75, 9))}},
		"params": map[string]any{
			"target":    dataURI(encodePNG(t, target)),
			"reference": "style.png",
			"mask":      b64(encodePNG(t, mask)),
			"strength":  0.5,
		},
	})
	if len(out.Images) != 1 {
		t.Fatalf("images = %d, want 1", len(out.Images))
	}
	if f := out.Images[0]; !strings.HasPrefix(f.Filename, "out_") || f.Node != "9" {
		t.Errorf("image entry %+v: want out_… from node 9", fileMeta(f))
	}
	got := decodePNG(t, out.Images[0].Data)
	if got.Bounds().Size() != image.Pt(200, 160) {
		t.Fatalf("output is %v, want 200x160", got.Bounds().Size())
	}
	same := func(x, y int) bool {
		r, g, b, _ := got.At(x, y).RGBA()
		w := target.NRGBAAt(x, y)
		return uint8(r>>8) == w.R && uint8(g>>8) == w.G && uint8(b>>8) == w.B
	}
	for _, p := range []image.Point{{5, 5}, {195, 5}, {5, 155}, {195, 155}, {30, 80}} {
		if !same(p.X, p.Y) {
			t.Errorf("pixel %v outside the mask changed", p)
		}
	}
	if same(100, 80) && same(95, 75) && same(105, 85) {
		t.Error("pixels inside the mask are the target's: the reference was not painted in")
	}
	if string(out.Params["strength"]) != "0.5" {
		t.Errorf("params echoed = %v, want strength 0.5", out.Params)
	}
	if _, ok := out.Params["target"]; ok {
		t.Errorf("image params are echoed: %v", out.Params)
	}
	if v, ok := out.Params["seed"]; !ok || len(v) == 0 {
		t.Errorf("the drawn seed is not reported: %v", out.Params)
	}
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A VHS video (reported under "gifs") comes back in videos[], whole; the
// first-frame PNG VHS writes beside it is cleaned up too.
func TestWorkerVideoOutput(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil, newTestNodes())
	wf := map[string]any{
		"1":  map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 4, "color": 0}},
		"15": map[string]any{"class_type": "VHS_VideoCombine", "inputs": map[string]any{"images": []any{"1", 0}, "frame_rate": 16.0, "filename_prefix": "dance/clip", "bytes": 5000}},
	}
	out := mustComplete(t, st, map[string]any{"workflow": wf})
	if len(out.Videos) != 1 || len(out.Images) != 0 {
		t.Fatalf("videos %d images %d, want 1 and 0", len(out.Videos), len(out.Images))
	}
	v := out.Videos[0]
	if v.Filename != "clip_00001.mp4" || v.Type != "base64" || v.Format != "video/mp4" || v.Node != "15" {
		t.Errorf("video entry = %+v", fileMeta(v))
	}
	data, err := base64.StdEncoding.DecodeString(v.Data)
	if err != nil || len(data) != 5000 || string(data[4:12]) != "ftypmp42" {
		t.Errorf("video data: %d bytes, err %v", len(data), err)
	}
	if files := engineFiles(t, st); len(files) != 0 {
		t.Errorf("files left on the ComfyUI side: %q", files)
	}
}

// fakeS3 is an S3-compatible server on loopback with one bucket.
func fakeS3(t testing.TB, bucket string) *httptest.Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	return ts
}

// fetchURL GETs a URL the job returned.
func fetchURL(t testing.TB, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET the returned URL: %s: %s", resp.Status, data)
	}
	return data
}

// Outputs go to the endpoint's bucket (worker-comfyui's BUCKET_* settings)
// as presigned URLs that fetch the right bytes; the secret is in no log line.
func TestWorkerS3FromEndpointConfig(t *testing.T) {
	t.Parallel()
	s3 := fakeS3(t, "outputs")
	var logs logSink
	cfg := &devstack.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	cfg.Worker.S3 = &worker.S3Config{EndpointURL: s3.URL + "/outputs", AccessKeyID: "AKIAWORKER", SecretAccessKey: "worker-secret-value", Prefix: "comfy"}
	st := startStack(t, cfg, newTestNodes())
	in := pngBytes(t, 20, 10, 4)
	status, je := runJob(t, st, &runpod.Request{Input: map[string]any{
		"workflow": invertWorkflow("a.png"),
		"images":   []any{map[string]any{"name": "a.png", "image": b64(in)}},
	}})
	if je != nil {
		t.Fatalf("job failed: %s", je.Message)
	}
	out := output(t, status)
	if len(out.Images) != 1 || out.Images[0].Type != "s3_url" {
		t.Fatalf("images = %+v", out.Images)
	}
	u := out.Images[0].Data
	if !strings.Contains(u, "/outputs/comfy/"+status.ID+"/ComfyUI_00001_.png") || !strings.Contains(u, "X-Amz-Signature=") {
		t.Errorf("URL %s: want a presigned URL of outputs/comfy/<job>/ComfyUI_00001_.png", u)
	}
	img, err := png.Decode(bytes.NewReader(fetchURL(t, u)))
	if err != nil {
		t.Fatal(err)
	}
	assertInverted(t, img, patternImage(20, 10, 4))
	if strings.Contains(logs.String(), "worker-secret-value") {
		t.Error("the S3 secret is in the logs")
	}
}

// A job's own s3Config wins; its endpoint must pass the URL guard.
func TestWorkerS3FromJobConfig(t *testing.T) {
	t.Parallel()
	s3 := fakeS3(t, "jobbucket")
	cfg := &devstack.Config{}
	cfg.Worker.URLs = worker.URLPolicy{AllowHTTP: true, Allow: []string{strings.TrimPrefix(s3.URL, "http://")}}
	st := startStack(t, cfg, newTestNodes())
	wf := map[string]any{
		"1":  map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"15": map[string]any{"class_type": "VHS_VideoCombine", "inputs": map[string]any{"images": []any{"1", 0}, "frame_rate": 8.0, "filename_prefix": "v", "bytes": 3000}},
	}
	status, je := runJob(t, st, &runpod.Request{Input: map[string]any{"workflow": wf},
		S3Config: &runpod.S3Config{AccessID: "AKIAJOB", AccessSecret: "job-secret", BucketName: "jobbucket", EndpointURL: s3.URL, ObjectPath: "runs"}})
	if je != nil {
		t.Fatalf("job failed: %s", je.Message)
	}
	out := output(t, status)
	if len(out.Videos) != 1 || out.Videos[0].Type != "s3_url" {
		t.Fatalf("videos = %+v", out.Videos)
	}
	if !strings.Contains(out.Videos[0].Data, "/jobbucket/runs/"+status.ID+"/v_00001.mp4") {
		t.Errorf("URL %s", out.Videos[0].Data)
	}
	data := fetchURL(t, out.Videos[0].Data)
	if len(data) != 3000 || string(data[4:12]) != "ftypmp42" {
		t.Errorf("fetched %d bytes", len(data))
	}
}

// A job that runs past the worker's job timeout is interrupted in ComfyUI
// and fails with a clear message; the next job runs normally.
func TestWorkerJobTimeoutInterruptsComfyUI(t *testing.T) {
	t.Parallel()
	tn := newTestNodes()
	cfg := &devstack.Config{}
	cfg.Worker.JobTimeout = 300 * time.Millisecond
	st := startStack(t, cfg, tn)
	_, je := runJob(t, st, &runpod.Request{Input: map[string]any{"workflow": slowWorkflow()}})
	if je == nil {
		t.Fatal("the job completed")
	}
	if !strings.Contains(je.Message, "job timeout of 300ms; ComfyUI was interrupted") {
		t.Errorf("error = %q", je.Message)
	}
	waitFor(t, tn.slowInterrupted, "the slow node to be interrupted")
	assertServesNext(t, st)
}

func slowWorkflow() map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"2": map[string]any{"class_type": "TestSlow", "inputs": map[string]any{"image": []any{"1", 0}}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "slow"}},
	}
}

func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// assertServesNext runs a good job on the stack.
func assertServesNext(t testing.TB, st *devstack.Stack) {
	t.Helper()
	out := mustComplete(t, st, map[string]any{
		"workflow": invertWorkflow("next.png"),
		"images":   []any{map[string]any{"name": "next.png", "image": b64(pngBytes(t, 6, 6, 5))}},
	})
	if len(out.Images) != 1 {
		t.Fatalf("the next job returned %d images", len(out.Images))
	}
	assertInverted(t, decodePNG(t, out.Images[0].Data), patternImage(6, 6, 5))
}

// Cancelling a running job (RunPod's job-stop) interrupts ComfyUI.
func TestWorkerCancelInterruptsComfyUI(t *testing.T) {
	t.Parallel()
	tn := newTestNodes()
	st := startStack(t, nil, tn)
	ctx := testCtx(t)
	c := client(t, st)
	job, err := c.Run(ctx, &runpod.Request{Input: map[string]any{"workflow": slowWorkflow()}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tn.slowStarted, "the slow node to start")
	status, err := job.Cancel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status.Close()
	waitFor(t, tn.slowInterrupted, "the slow node to be interrupted")
	final, err := st.Control().WaitStatus(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != "CANCELLED" {
		t.Errorf("job ended %s, want CANCELLED", final.Status)
	}
	assertServesNext(t, st)
}

// Progress reaches RunPod while the job runs: the running node and its
// steps.
func TestWorkerReportsProgress(t *testing.T) {
	t.Parallel()
	tn := newTestNodes()
	cfg := &devstack.Config{}
	cfg.Worker.ProgressInterval = time.Millisecond
	st := startStack(t, cfg, tn)
	ctx := testCtx(t)
	job, err := client(t, st).Run(ctx, &runpod.Request{Input: map[string]any{"workflow": slowWorkflow()}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, tn.slowStarted, "the slow node to start")
	var seen string
	err = st.Control().Await(ctx, func() bool {
		j, ok := st.Control().Job(job.ID)
		if !ok {
			return false
		}
		seen = string(j.Output)
		return strings.Contains(seen, `"node":"2"`) && strings.Contains(seen, `"class_type":"TestSlow"`) && strings.Contains(seen, `"max":4`)
	})
	if err != nil {
		t.Fatalf("no progress naming the slow node arrived (last output %s): %v", seen, err)
	}
	close(tn.release)
	status, err := job.Wait(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	if status.State != runpod.StateCompleted {
		t.Errorf("state %s", status.State)
	}
}

// The warm-up workflow runs before the first job is taken; a failing
// warm-up is logged, or stops the start when required.
func TestWorkerWarmup(t *testing.T) {
	t.Parallel()
	warm := `{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
	  "2": {"class_type": "TestCount", "inputs": {"image": ["1", 0]}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "warm"}}}`
	t.Run("runs", func(t *testing.T) {
		t.Parallel()
		tn := newTestNodes()
		cfg := &devstack.Config{}
		cfg.Worker.Warmup = []byte(warm)
		st := startStack(t, cfg, tn)
		if n := tn.counted.Load(); n != 1 {
			t.Errorf("the warm-up node ran %d times, want 1", n)
		}
		if files := engineFiles(t, st); len(files) != 0 {
			t.Errorf("the warm-up left files: %q", files)
		}
		assertServesNext(t, st)
	})
	t.Run("failure is logged", func(t *testing.T) {
		t.Parallel()
		var logs logSink
		cfg := &devstack.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		cfg.Worker.Warmup = []byte(`{"1": {"class_type": "NoSuchNode", "inputs": {}}}`)
		st := startStack(t, cfg, newTestNodes())
		if !strings.Contains(logs.String(), "warm-up workflow failed") || !strings.Contains(logs.String(), "NoSuchNode") {
			t.Errorf("logs: %s", logs.String())
		}
		assertServesNext(t, st)
	})
	t.Run("required", func(t *testing.T) {
		t.Parallel()
		cfg := &devstack.Config{EngineDir: t.TempDir()}
		cfg.Worker.Warmup = []byte(`{"workflow": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}`)
		cfg.Worker.WarmupRequired = true
		_, err := devstack.Start(testCtx(t), cfg)
		if err == nil || !strings.Contains(err.Error(), "warm-up workflow failed") || !strings.Contains(err.Error(), "NoSuchNode") {
			t.Fatalf("Start: %v", err)
		}
	})
}

// gate is a proxy to ComfyUI that answers 503 until opened, counting polls.
type gate struct {
	open  atomic.Bool
	polls chan struct{}
	next  http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.open.Load() {
		select {
		case g.polls <- struct{}{}:
		default:
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

func TestWorkerWaitsForComfyUI(t *testing.T) {
	t.Parallel()
	t.Run("late", func(t *testing.T) {
		t.Parallel()
		st := startStack(t, nil, nil)
		proxied, _ := urlParse(st.ComfyURL())
		g := &gate{polls: make(chan struct{}, 1), next: httputilProxy(proxied)}
		ts := httptest.NewServer(g)
		defer ts.Close()
		h, err := worker.New(&worker.Config{ComfyURL: ts.URL, ReadyInterval: time.Millisecond, Alive: func() error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		done := make(chan error, 1)
		go func() { done <- h.WaitReady(testCtx(t)) }()
		waitFor(t, g.polls, "a first poll")
		waitFor(t, g.polls, "a second poll")
		select {
		case err := <-done:
			t.Fatalf("WaitReady returned before ComfyUI was up: %v", err)
		default:
		}
		g.open.Store(true)
		if err := waitFor(t, done, "WaitReady"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("dead process", func(t *testing.T) {
		t.Parallel()
		// A child that exited but was not reaped: a zombie, as ComfyUI
		// becomes under the worker after the entrypoint's exec.
		cmd := exec.Command("true")
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start a process: %v", err)
		}
		pidFile := filepath.Join(t.TempDir(), "comfyui.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Wait for it to exit without reaping it.
		waitExited(t, cmd.Process.Pid)
		defer cmd.Wait()
		ln := closedPort(t)
		h, err := worker.New(&worker.Config{ComfyURL: "http://" + ln, PIDFile: pidFile, ReadyInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		err = h.WaitReady(testCtx(t))
		if !errors.Is(err, worker.ErrComfyUnavailable) || !strings.Contains(err.Error(), "has exited") {
			t.Fatalf("WaitReady: %v", err)
		}
	})
	t.Run("no liveness: bounded polls", func(t *testing.T) {
		t.Parallel()
		h, err := worker.New(&worker.Config{ComfyURL: "http://" + closedPort(t), ReadyInterval: time.Millisecond, ReadyAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		err = h.WaitReady(testCtx(t))
		if !errors.Is(err, worker.ErrComfyUnavailable) || !strings.Contains(err.Error(), "after 3 polls") {
			t.Fatalf("WaitReady: %v", err)
		}
	})
}

// waitExited blocks until child process pid has exited, leaving it
// unreaped (a zombie).
func waitExited(t testing.TB, pid int) {
	t.Helper()
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Skipf("waitid: %v", err)
	}
}

// When ComfyUI's process dies mid-life, the job fails saying so and asks
// RunPod to replace the worker (stopPod).
func TestWorkerComfyUIDiedAsksForReplacement(t *testing.T) {
	t.Parallel()
	var dead atomic.Bool
	h, err := worker.New(&worker.Config{ComfyURL: "http://" + closedPort(t), Alive: func() error {
		if dead.Load() {
			return errors.New("pid 42 has exited")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dead.Store(true)
	res, err := h.Handle(testCtx(t), &serverless.Job{ID: "j", Input: []byte(`{"workflow": {"1": {"class_type": "SaveImage", "inputs": {}}}}`)})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	r, ok := res.(serverless.Result)
	if !ok || !r.RefreshWorker || !strings.Contains(r.Error, "ComfyUI's process has exited (pid 42 has exited)") {
		t.Fatalf("result = %#v", res)
	}
}
