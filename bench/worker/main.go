// Command worker measures comfypod's ComfyUI worker against the engine, side
// by side in one run:
//
//	(a) per-job time of a 1024² LoadImage → ImageInvert → SaveImage job:
//	    the ComfyUI API called directly (upload, prompt, websocket wait,
//	    view), the worker's handler on the same engine, and the whole trip
//	    through the local control plane and the RunPod client (/runsync);
//	(b) process start → first job-take of the real comfypod worker binary
//	    against the control plane and the engine;
//	(c) that process's resident memory: idle after its first take, and its
//	    peak (VmHWM) over one job.
//
// The headline is the worker's overhead per job: the in-process worker's
// time from the job-take answer to its result fully posted, minus the
// direct ComfyUI API path, taken round by round; below it, the handler's
// and the runtime's shares. Every row starts after a garbage collection;
// for the worker's own row the control plane holds the job-take answer
// until the client's request is queued and the heap collected (on RunPod
// the client and the control plane run elsewhere). The runsync trip is
// also timed without that pause, with its worker part beside it.
//
//	go run ./bench/worker -n 30
//	go run ./bench/worker -skip-process -cpuprofile cpu.out   # then go tool pprof
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/comfypod/comfypod/bench/internal/plane"
	"github.com/comfypod/comfypod/bench/internal/proc"
	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
)

func main() {
	n := flag.Int("n", 30, "jobs per row of (a)")
	starts := flag.Int("starts", 20, "process starts for (b)")
	side := flag.Int("side", 1024, "image width and height")
	bin := flag.String("bin", "", "comfypod binary for (b) and (c) (default: built from ./cmd/comfypod)")
	flag.Func("worker-env", "`KEY=VALUE` added to the worker process's environment (repeatable), e.g. GODEBUG=gctrace=1", func(s string) error {
		if !strings.Contains(s, "=") {
			return errors.New("want KEY=VALUE")
		}
		workerEnv = append(workerEnv, s)
		return nil
	})
	skipA := flag.Bool("skip-per-job", false, "skip (a)")
	skipBC := flag.Bool("skip-process", false, "skip (b) and (c)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of (a) to `file`")
	flag.Parse()
	skipPerJob, skipProcess, cpuProfilePath = *skipA, *skipBC, *cpuProfile
	if err := run(*n, *starts, *side, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/worker:", err)
		os.Exit(1)
	}
}

// workerEnv is added to the worker process's environment.
var workerEnv []string

// skipPerJob skips (a); skipProcess skips (b) and (c).
var skipPerJob, skipProcess bool

// cpuProfilePath is where (a)'s CPU profile goes, when set.
var cpuProfilePath string

// photo returns a PNG that compresses like a photograph: smooth gradients
// with some grain.
func photo(side int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	rnd := rand.New(rand.NewPCG(1, 2))
	for y := range side {
		for x := range side {
			g := func(base int) uint8 { return uint8(max(0, min(255, base+rnd.IntN(13)-6))) }
			img.SetNRGBA(x, y, color.NRGBA{g(x * 255 / side), g(y * 255 / side), g((x + y) * 127 / side), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func workflow(image, prefix string) map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": image}},
		"2": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"1", 0}}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": prefix}},
	}
}

type stats []time.Duration

func (s stats) row(name string) string {
	if len(s) == 0 {
		return fmt.Sprintf("%-44s (no samples)", name)
	}
	c := slices.Clone(s)
	slices.Sort(c)
	q := func(p float64) time.Duration { return c[min(len(c)-1, int(p*float64(len(c))))] }
	return fmt.Sprintf("%-44s %9s %9s %9s %9s", name, ms(c[0]), ms(q(0.5)), ms(q(0.9)), ms(c[len(c)-1]))
}

func (s stats) median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func run(n, starts, side int, bin string) error {
	ctx := context.Background()
	img := photo(side)
	dir, err := os.MkdirTemp("", "bench-worker-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	eng, err := engine.New(&engine.Config{Dir: filepath.Join(dir, "comfy"), DisableMetadata: true})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	defer eng.Stop(context.Background())
	es := httptest.NewServer(eng)
	defer es.Close()

	fmt.Printf("comfypod worker benchmarks (%s, %d CPUs)\n", runtime.Version(), runtime.NumCPU())
	fmt.Printf("input: %dx%d PNG, %.2f MB (%.2f MB base64); LoadImage → ImageInvert → SaveImage on comfy/engine\n\n",
		side, side, float64(len(img))/1e6, float64(base64.StdEncoding.EncodedLen(len(img)))/1e6)

	if !skipPerJob {
		if err := perJob(ctx, es.URL, filepath.Join(dir, "comfy"), img, n); err != nil {
			return err
		}
	}
	if skipProcess {
		return nil
	}
	if bin == "" {
		var err error
		if bin, err = proc.Build(dir); err != nil {
			return err
		}
	}
	return process(ctx, bin, es.URL, img, starts)
}

// perJob is (a).
func perJob(ctx context.Context, comfyURL, comfyDir string, img []byte, n int) error {
	c, err := comfy.NewClient(comfyURL)
	if err != nil {
		return err
	}
	h, err := worker.New(&worker.Config{ComfyURL: comfyURL, ComfyDir: comfyDir})
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Start(ctx); err != nil {
		return err
	}

	// The whole trip: control plane, an in-process worker, the client.
	pl, err := plane.New()
	if err != nil {
		return err
	}
	defer pl.Close()
	cp := pl.Server()
	sc, err := serverless.ConfigFromEnv(func(k string) string { return cp.WorkerEnv("bench")[k] })
	if err != nil {
		return err
	}
	sc.Handler = func(ctx context.Context, job *serverless.Job) (any, error) {
		pl.HandlerBegan()
		defer pl.HandlerEnded()
		return h.Handle(ctx, job)
	}
	w, err := serverless.New(sc)
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.StopAndCancel(context.Background())
	rc, err := runpod.New(cp.EndpointID(), runpod.WithBaseURL(cp.BaseURL()), runpod.WithAPIKey(cp.APIKey()))
	if err != nil {
		return err
	}

	b64 := base64.StdEncoding.EncodeToString(img)
	input, err := json.Marshal(map[string]any{
		"workflow": workflow("input.png", "ComfyUI"),
		"images":   []any{map[string]any{"name": "input.png", "image": "data:image/png;base64," + b64}},
	})
	if err != nil {
		return err
	}

	direct := func(i int) error {
		name := fmt.Sprintf("direct-%d.png", i)
		up, err := c.UploadImage(ctx, comfy.Upload{Name: name, Data: bytes.NewReader(img), Overwrite: true})
		if err != nil {
			return err
		}
		wfJSON, _ := json.Marshal(workflow(up.Ref(), fmt.Sprintf("direct%d", i)))
		wf, err := comfy.ParseWorkflow(wfJSON)
		if err != nil {
			return err
		}
		res, err := c.Run(ctx, wf, comfy.RunOptions{})
		if err != nil {
			return err
		}
		for _, f := range res.Files() {
			d, err := c.View(ctx, f.FileRef)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, d)
			d.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	handler := func(i int, encode bool) error {
		out, err := h.Handle(ctx, &serverless.Job{ID: "bench-" + strconv.Itoa(i), Input: input})
		if err != nil {
			return err
		}
		if encode {
			// As the runtime encodes it: by its AppendJSON when it has one.
			switch o := out.(serverless.Result).Output.(type) {
			case serverless.JSONAppender:
				_, err = o.AppendJSON([]byte(`{"output":`))
			default:
				_, err = json.Marshal(o)
			}
		}
		return err
	}
	trip := func() error {
		st, err := rc.RunSync(ctx, &runpod.Request{Input: json.RawMessage(input)}, nil)
		if err != nil {
			return err
		}
		defer st.Close()
		var out worker.Output
		if err := st.DecodeOutput(&out); err != nil {
			return err
		}
		if len(out.Images) != 1 {
			return errors.New("no image")
		}
		return nil
	}

	// newJob returns the control plane's timing of the job a path ran.
	newJob := func(path func() error) (plane.Timing, error) {
		k := len(pl.Jobs())
		if err := path(); err != nil {
			return plane.Timing{}, err
		}
		jobs := pl.Jobs()
		if len(jobs) != k+1 {
			return plane.Timing{}, fmt.Errorf("the control plane saw %d results for one job", len(jobs)-k)
		}
		return jobs[k], nil
	}
	// settled is a runsync trip whose job-take answer is held until the
	// client's request has been encoded, sent and queued and the heap
	// collected: the worker's job then starts from a settled process, as
	// the direct and handler rows do, and not on the heap the client and
	// the control plane (on another machine on RunPod) just filled.
	settled := func() error {
		held, release := pl.HoldNextAnswer()
		defer release()
		done := make(chan error, 1)
		go func() { done <- trip() }()
		select {
		case <-held:
		case err := <-done:
			if err == nil {
				err = errors.New("the job ran without its job-take answer being held")
			}
			return err
		}
		runtime.GC()
		release()
		return <-done
	}

	// Warm up each path, then interleave them so drift hits all alike.
	for i := range 3 {
		if err := direct(-1 - i); err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		if err := handler(-1-i, true); err != nil {
			return fmt.Errorf("handler: %w", err)
		}
		if err := trip(); err != nil {
			return fmt.Errorf("trip: %w", err)
		}
	}
	if cpuProfilePath != "" {
		f, err := os.Create(cpuProfilePath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pl.Reset() // the warm-up's
	// Each round runs every path once, in an order that rotates from round
	// to round so that no path always follows the same one; the overhead
	// is also taken round by round (worker − direct of the same round),
	// which cancels the drift of a shared machine.
	var (
		sDirect, sHandler, sEncoded, sTrip, paired stats
		worked, before, inner, after, inTrip       stats
	)
	for i := range n {
		var settledJob plane.Timing
		paths := []func() error{
			func() error { return timed(&sDirect, func() error { return direct(i) }) },
			func() error { return timed(&sHandler, func() error { return handler(i, false) }) },
			func() error { return timed(&sEncoded, func() error { return handler(n+i, true) }) },
			func() error {
				t, err := newJob(func() error { return timed(&sTrip, trip) })
				inTrip = append(inTrip, t.Worked)
				return err
			},
			func() error {
				var err error
				settledJob, err = newJob(settled)
				return err
			},
		}
		for j := range paths {
			if err := paths[(i+j)%len(paths)](); err != nil {
				return err
			}
		}
		t := settledJob
		worked = append(worked, t.Worked)
		if t.Split {
			before, inner, after = append(before, t.Before), append(inner, t.Handler), append(after, t.After)
		}
		paired = append(paired, t.Worked-sDirect[len(sDirect)-1])
	}
	fmt.Printf("(a) per job, %d runs each%*s %9s %9s %9s %9s\n", n, 44-len(fmt.Sprintf("(a) per job, %d runs each", n)), "", "min", "median", "p90", "max")
	fmt.Println(sDirect.row("ComfyUI API directly (upload+prompt+ws+view)"))
	fmt.Println(sHandler.row("worker handler"))
	fmt.Println(sEncoded.row("worker handler + result JSON"))
	fmt.Println(worked.row("in-process worker: job taken → result posted"))
	fmt.Println(inner.row("  its handler (called → returned)"))
	fmt.Println(sTrip.row("client → control plane → worker (runsync)"))
	fmt.Println(inTrip.row("  its worker part, started at once"))
	fmt.Println()
	fmt.Printf("%-52s %9s   (target ≤ 8 ms)\n", "WORKER OVERHEAD per job (taken→posted − direct)", ms(paired.median()))
	fmt.Printf("%-52s %9s\n", "  (median of the rounds; difference of the medians)", ms(worked.median()-sDirect.median()))
	fmt.Printf("%-52s %9s\n", "  handler share (handler + result JSON − direct)", ms(sEncoded.median()-sDirect.median()))
	fmt.Printf("%-52s %9s\n", "  runtime share (taken→posted − handler + JSON)", ms(worked.median()-sEncoded.median()))
	fmt.Printf("%-52s %9s\n", "    take answered → handler called (median)", ms(before.median()))
	fmt.Printf("%-52s %9s\n", "    handler returned → result posted (median)", ms(after.median()))
	fmt.Printf("%-52s %9s\n\n", "whole-trip overhead (runsync − direct)", ms(sTrip.median()-sDirect.median()))
	return nil
}

// timed runs f after a garbage collection, so every path starts on a clean
// heap, and appends its duration to s.
func timed(s *stats, f func() error) error {
	runtime.GC()
	t0 := time.Now()
	if err := f(); err != nil {
		return err
	}
	*s = append(*s, time.Since(t0))
	return nil
}

// process is (b) and (c).
func process(ctx context.Context, bin, comfyURL string, img []byte, starts int) error {
	p, err := plane.New()
	if err != nil {
		return err
	}
	defer p.Close()
	start := func(id string, extra ...string) (*exec.Cmd, time.Duration, error) {
		first := p.Expect(id)
		cmd := exec.Command(bin, append([]string{"worker", "--comfy-url", comfyURL}, extra...)...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "RUNPOD_LOG_LEVEL=ERROR"}, workerEnv...)
		for k, v := range p.Server().WorkerEnv(id) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, 0, err
		}
		select {
		case t1 := <-first:
			return cmd, t1.Sub(t0), nil
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, 0, errors.New("the worker did not take a job within 60 s")
		}
	}
	stop := func(cmd *exec.Cmd) error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}

	var firsts stats
	for i := range starts {
		cmd, d, err := start(fmt.Sprintf("start-%d", i))
		if err != nil {
			return err
		}
		firsts = append(firsts, d)
		if err := stop(cmd); err != nil {
			return fmt.Errorf("worker exit: %w", err)
		}
	}
	fmt.Printf("(b) process start → first job-take, %d starts%*s %9s %9s %9s %9s\n", starts, 44-len(fmt.Sprintf("(b) process start → first job-take, %d starts", starts))+2, "", "min", "median", "p90", "max")
	fmt.Println(firsts.row("comfypod worker (exec → GET job-take)"))
	if _, err := os.Stat("packages/image-brush/comfypod.json"); err == nil {
		var withPkg stats
		for i := range starts {
			cmd, d, err := start(fmt.Sprintf("pkg-%d", i), "--package", "packages/image-brush", "--workflow", "preview")
			if err != nil {
				return err
			}
			withPkg = append(withPkg, d)
			if err := stop(cmd); err != nil {
				return fmt.Errorf("worker exit: %w", err)
			}
		}
		fmt.Println(withPkg.row("  … serving packages/image-brush"))
	}

	// (c): one more process, one job.
	cmd, _, err := start("rss")
	if err != nil {
		return err
	}
	defer stop(cmd)
	idle, _, err := proc.Mem(cmd.Process.Pid)
	if err != nil {
		return err
	}
	srv := p.Server()
	rc, err := runpod.New(srv.EndpointID(), runpod.WithBaseURL(srv.BaseURL()), runpod.WithAPIKey(srv.APIKey()))
	if err != nil {
		return err
	}
	input, _ := json.Marshal(map[string]any{
		"workflow": workflow("input.png", "ComfyUI"),
		"images":   []any{map[string]any{"name": "input.png", "image": base64.StdEncoding.EncodeToString(img)}},
	})
	jobs := 3
	p.Reset()
	for range jobs {
		st, err := rc.RunSync(ctx, &runpod.Request{Input: json.RawMessage(input)}, nil)
		if err != nil {
			return fmt.Errorf("job on the worker process: %w", err)
		}
		st.Close()
	}
	after, hwm, err := proc.Mem(cmd.Process.Pid)
	if err != nil {
		return err
	}
	var worked stats
	for _, t := range p.Jobs() {
		worked = append(worked, t.Worked)
	}
	fmt.Println(worked.row("worker process: job taken → result posted"))
	fmt.Printf("\n(c) worker process memory (%d jobs of the input above)\n", jobs)
	fmt.Printf("%-44s %9.1f MB\n", "RSS idle after the first job-take", float64(idle)/1e6)
	fmt.Printf("%-44s %9.1f MB\n", "RSS after the jobs", float64(after)/1e6)
	fmt.Printf("%-44s %9.1f MB\n", "peak RSS (VmHWM)", float64(hwm)/1e6)
	return nil
}
