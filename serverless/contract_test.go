package serverless

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// The contract suite: the runtime against runpodtest, RunPod's protocol as
// runpod-python speaks it, checked on the wire through the recorder.

func TestContractTakeAndDone(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	type seen struct {
		job *Job
	}
	got := make(chan seen, 1)
	cfg := p.workerConfig(t, "worker-1")
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		got <- seen{job: job}
		var in struct{ Prompt string }
		if err := json.Unmarshal(job.Input, &in); err != nil {
			return nil, err
		}
		return map[string]any{"echo": in.Prompt, "job": job.ID}, nil
	}
	startWorker(t, cfg)

	id, err := p.srv.Enqueue(runpodtest.JobRequest{
		Input:    map[string]any{"prompt": "a <red> & blue cat"},
		Webhook:  "http://127.0.0.1:1/hook",
		Policy:   &runpodtest.Policy{ExecutionTimeout: time.Hour, TTL: 2 * time.Hour},
		S3Config: map[string]string{"accessId": "AKIA1", "accessSecret": "s3cr3t-value", "bucketName": "out", "endpointUrl": "http://s3.local"},
	})
	if err != nil {
		t.Fatal(err)
	}
	j := p.wait(t, id)
	if j.Status != runpodtest.StatusCompleted {
		t.Fatalf("status %s (error %q), want COMPLETED", j.Status, j.Error)
	}
	var out map[string]string
	if err := json.Unmarshal(j.Output, &out); err != nil || out["echo"] != "a <red> & blue cat" || out["job"] != id {
		t.Fatalf("output %s (%v)", j.Output, err)
	}
	s := waitChan(t, got, "the handler")
	if s.job.ID != id || s.job.Webhook != "http://127.0.0.1:1/hook" {
		t.Errorf("job id %q webhook %q", s.job.ID, s.job.Webhook)
	}
	if s.job.S3Config == nil || s.job.S3Config.AccessSecret != "s3cr3t-value" || s.job.S3Config.BucketName != "out" {
		t.Errorf("S3Config %+v", s.job.S3Config)
	}
	if s.job.Policy == nil || s.job.Policy.ExecutionTimeout != 3_600_000 || s.job.Policy.TTL != 7_200_000 {
		t.Errorf("Policy %+v", s.job.Policy)
	}

	// The wire: raw key, query joined with '&' after ?gpu=, the SDK's
	// headers on job-done, and no HTML escaping in the body.
	takes := p.rec.all("job-take")
	if len(takes) == 0 {
		t.Fatal("no job-take request")
	}
	tk := takes[0]
	if got := tk.Header.Get("Authorization"); got != "rpa_WORKERKEY123" {
		t.Errorf("take Authorization %q, want the raw key", got)
	}
	if tk.Query.Get("gpu") != "NVIDIA H100 PCIe" || tk.Query.Get("job_in_progress") != "0" || !strings.HasSuffix(tk.Path, "/job-take/worker-1") {
		t.Errorf("take %s?%s", tk.Path, tk.Query.Encode())
	}
	dones := p.rec.all("job-done")
	if len(dones) != 1 {
		t.Fatalf("%d job-done posts, want 1", len(dones))
	}
	d := dones[0]
	if !strings.HasSuffix(d.Path, "/job-done/worker-1/"+id) || d.Query.Get("isStream") != "false" || d.Query.Get("gpu") == "" {
		t.Errorf("done %s?%s", d.Path, d.Query.Encode())
	}
	for k, want := range map[string]string{
		"Authorization": "rpa_WORKERKEY123",
		"Content-Type":  "application/x-www-form-urlencoded",
		"Charset":       "utf-8",
		"X-Request-Id":  id,
	} {
		if got := d.Header.Get(k); got != want {
			t.Errorf("done header %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(string(d.Body), "<red> & blue") {
		t.Errorf("done body %s: HTML was escaped", d.Body)
	}
}

func TestContractBodyForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		ret        any
		err        error
		panicWith  any
		wantStatus runpodtest.Status
		check      func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job)
	}{
		{
			name: "map output", ret: map[string]any{"images": []string{"a.png"}}, wantStatus: runpodtest.StatusCompleted,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if string(body["output"]) != `{"images":["a.png"]}` || len(body) != 1 {
					t.Errorf("body %v", body)
				}
			},
		},
		{
			name: "map with error", ret: map[string]any{"error": "bad seed", "details": []int{1}}, wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if j.Error != "bad seed" || string(body["output"]) != `{"details":[1]}` {
					t.Errorf("error %q body %v", j.Error, body)
				}
			},
		},
		{
			name: "map with only error", ret: map[string]any{"error": "bad seed"}, wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if _, ok := body["output"]; ok || j.Error != "bad seed" {
					t.Errorf("body %v, want only error", body)
				}
			},
		},
		{
			name: "falsy error is dropped", ret: map[string]any{"error": "", "x": 1}, wantStatus: runpodtest.StatusCompleted,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if string(body["output"]) != `{"x":1}` || body["error"] != nil {
					t.Errorf("body %v", body)
				}
			},
		},
		{
			name: "empty map", ret: map[string]any{}, wantStatus: runpodtest.StatusCompleted,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if len(body) != 0 {
					t.Errorf("body %v, want {}", body)
				}
			},
		},
		{
			name: "string", ret: "hello", wantStatus: runpodtest.StatusCompleted,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if string(body["output"]) != `"hello"` {
					t.Errorf("body %v", body)
				}
			},
		},
		{
			name: "nil", ret: nil, wantStatus: runpodtest.StatusCompleted,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if string(body["output"]) != `null` {
					t.Errorf("body %v", body)
				}
			},
		},
		{
			name: "Result with error and output", ret: Result{Output: []int{1, 2}, Error: "partial"}, wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if string(body["output"]) != `[1,2]` || j.Error != "partial" {
					t.Errorf("body %v", body)
				}
			},
		},
		{
			name: "JobError is a plain message", err: &JobError{Message: "Job processing failed", Output: map[string]any{"details": []string{"node 3"}}}, wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if j.Error != "Job processing failed" || string(body["output"]) != `{"details":["node 3"]}` {
					t.Errorf("error %q body %v", j.Error, body)
				}
			},
		},
		{
			name: "wrapped Fail", err: fmt.Errorf("loading workflow: %w", Fail("unknown node %q", "Foo")), wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				if j.Error != `loading workflow: unknown node "Foo"` {
					t.Errorf("error %q", j.Error)
				}
			},
		},
		{
			name: "plain error is runpod-python's exception JSON", err: fmt.Errorf("decode: %w", errors.New("unexpected EOF")), wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				var info exceptionInfo
				if err := json.Unmarshal([]byte(j.Error), &info); err != nil {
					t.Fatalf("error %q is not JSON: %v", j.Error, err)
				}
				if info.ErrorType != "*fmt.wrapError" || info.ErrorMessage != "decode: unexpected EOF" ||
					info.WorkerID != "w-forms" || info.Hostname != "unknown" || info.RunpodVersion != RunpodVersionDefault ||
					!strings.Contains(info.ErrorTraceback, "*errors.errorString: unexpected EOF") {
					t.Errorf("info %+v", info)
				}
			},
		},
		{
			name: "panic", panicWith: "boom", wantStatus: runpodtest.StatusFailed,
			check: func(t *testing.T, body map[string]json.RawMessage, j runpodtest.Job) {
				var info exceptionInfo
				if err := json.Unmarshal([]byte(j.Error), &info); err != nil {
					t.Fatalf("error %q is not JSON: %v", j.Error, err)
				}
				if info.ErrorType != "panic: string" || info.ErrorMessage != "boom" || !strings.Contains(info.ErrorTraceback, "TestContractBodyForms") {
					t.Errorf("info %+v", info)
				}
			},
		},
	}
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-forms")
	var mu sync.Mutex
	byID := map[string]int{}
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		mu.Lock()
		c := cases[byID[job.ID]]
		mu.Unlock()
		if c.panicWith != nil {
			panic(c.panicWith)
		}
		return c.ret, c.err
	}
	ids := make([]string, len(cases))
	mu.Lock()
	for i := range cases {
		ids[i] = p.enqueue(t, map[string]int{"case": i})
		byID[ids[i]] = i
	}
	mu.Unlock()
	startWorker(t, cfg)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := p.wait(t, ids[i])
			if j.Status != c.wantStatus {
				t.Fatalf("status %s (error %q), want %s", j.Status, j.Error, c.wantStatus)
			}
			var body map[string]json.RawMessage
			for _, r := range p.rec.all("job-done") {
				if r.jobID() == ids[i] {
					body = decodeBody(t, r.Body)
				}
			}
			c.check(t, body, j)
		})
	}
}

func TestContractBatchTake(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-batch")
	cfg.Concurrency = 3
	all := newMeeting(3)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		// Every job waits until all three run at once.
		if err := all.wait(ctx); err != nil {
			return nil, err
		}
		return job.ID, nil
	}
	ids := []string{p.enqueue(t, 1), p.enqueue(t, 2), p.enqueue(t, 3)}
	startWorker(t, cfg)
	for _, id := range ids {
		if j := p.wait(t, id); j.Status != runpodtest.StatusCompleted {
			t.Fatalf("%s: %s %q", id, j.Status, j.Error)
		}
	}
	batches := p.rec.all("job-take-batch")
	if len(batches) == 0 {
		t.Fatal("no job-take-batch request")
	}
	b := batches[0]
	if b.Query.Get("batch_size") != "3" || b.Query.Get("job_in_progress") != "0" || b.Query.Get("gpu") == "" {
		t.Errorf("batch take query %s", b.Query.Encode())
	}
}

func TestContractStream(t *testing.T) {
	t.Parallel()
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", aggregate), func(t *testing.T) {
			t.Parallel()
			p := newPlane(t, nil)
			cfg := p.workerConfig(t, "w-stream")
			cfg.ReturnAggregateStream = aggregate
			cfg.StreamHandler = func(ctx context.Context, job *Job, emit func(any) error) error {
				for i := range 3 {
					if err := emit(map[string]int{"token": i}); err != nil {
						return err
					}
				}
				return nil
			}
			startWorker(t, cfg)
			id := p.enqueue(t, "go")
			j := p.wait(t, id)
			if j.Status != runpodtest.StatusCompleted {
				t.Fatalf("status %s %q", j.Status, j.Error)
			}
			if len(j.Stream) != 3 || string(j.Stream[0]) != `{"output":{"token":0}}` || string(j.Stream[2]) != `{"output":{"token":2}}` {
				t.Errorf("stream %s", j.Stream)
			}
			want := `[]`
			if aggregate {
				want = `[{"token":0},{"token":1},{"token":2}]`
			}
			if string(j.Output) != want {
				t.Errorf("output %s, want %s", j.Output, want)
			}
			for _, r := range p.rec.all("job-stream") {
				if r.Query.Get("isStream") != "false" {
					t.Errorf("stream chunk with isStream=%q", r.Query.Get("isStream"))
				}
			}
			dones := p.rec.all("job-done")
			if len(dones) != 1 || dones[0].Query.Get("isStream") != "true" {
				t.Fatalf("final post %v", dones)
			}
		})
	}
	t.Run("error chunk ends the stream", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-stream-err")
		emitErr := make(chan error, 1)
		cfg.StreamHandler = func(ctx context.Context, job *Job, emit func(any) error) error {
			_ = emit("first")
			emitErr <- emit(map[string]any{"error": "out of memory"})
			return emit("never sent")
		}
		startWorker(t, cfg)
		j := p.wait(t, p.enqueue(t, 1))
		if j.Status != runpodtest.StatusFailed || j.Error != "out of memory" || len(j.Stream) != 1 {
			t.Fatalf("status %s error %q stream %s", j.Status, j.Error, j.Stream)
		}
		if err := <-emitErr; !errors.Is(err, ErrJobFinished) {
			t.Errorf("emit after an error chunk = %v, want ErrJobFinished", err)
		}
	})
}

func TestContractProgress(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-progress")
	var saved *Job
	var mu sync.Mutex
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		mu.Lock()
		saved = job
		mu.Unlock()
		for i := range 3 {
			if err := job.Progress(ctx, map[string]int{"step": i}); err != nil {
				return nil, err
			}
		}
		// Updates fired off concurrently right before returning must
		// never land after the result (runpod-python#250).
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = job.Progress(context.Background(), map[string]int{"late": i})
			}()
		}
		return "done", nil
	}
	startWorker(t, cfg)
	id := p.enqueue(t, 1)
	j := p.wait(t, id)
	if j.Status != runpodtest.StatusCompleted || string(j.Output) != `"done"` {
		t.Fatalf("status %s output %s error %q", j.Status, j.Output, j.Error)
	}
	if j.ProgressUpdates < 3 {
		t.Errorf("%d progress updates, want at least 3", j.ProgressUpdates)
	}
	mu.Lock()
	job := saved
	mu.Unlock()
	if err := job.Progress(context.Background(), "after"); !errors.Is(err, ErrJobFinished) {
		t.Errorf("Progress after the result = %v, want ErrJobFinished", err)
	}
	// On the wire: every progress post precedes the final one, and has the
	// IN_PROGRESS form with isStream=false.
	dones := p.rec.all("job-done")
	final := -1
	for i, r := range dones {
		m := decodeBody(t, r.Body)
		if r.Query.Get("isStream") != "false" {
			t.Errorf("post %d isStream=%q", i, r.Query.Get("isStream"))
		}
		if string(m["status"]) == `"IN_PROGRESS"` {
			if final >= 0 {
				t.Errorf("progress post %d after the final post %d: %s", i, final, r.Body)
			}
			if _, ok := m["output"]; !ok {
				t.Errorf("progress post without output: %s", r.Body)
			}
			continue
		}
		final = i
	}
	if final != len(dones)-1 {
		t.Errorf("final post is %d of %d", final, len(dones))
	}
	if !strings.Contains(string(dones[0].Body), `"status":"IN_PROGRESS","output":{"step":0}`) {
		t.Errorf("first progress body %s", dones[0].Body)
	}
}

func TestContractPingListsJobs(t *testing.T) {
	t.Parallel()
	p := newPlane(t, func(c *runpodtest.Config) { c.PingInterval = 50 * time.Millisecond })
	cfg := p.workerConfig(t, "w-ping")
	if cfg.PingInterval != 50*time.Millisecond {
		t.Fatalf("PingInterval %v from RUNPOD_PING_INTERVAL", cfg.PingInterval)
	}
	release := make(chan struct{})
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		<-release
		return nil, nil
	}
	startWorker(t, cfg)
	id := p.enqueue(t, 1)
	p.rec.await(t, "a ping listing the job", func() bool {
		for _, r := range p.rec.all("ping") {
			if r.Query.Get("job_id") == id {
				return true
			}
		}
		return false
	})
	close(release)
	p.wait(t, id)
	for _, r := range p.rec.all("ping") {
		if r.Query.Get("runpod_version") != RunpodVersionDefault || r.Header.Get("Authorization") != "rpa_WORKERKEY123" || r.Query.Get("gpu") == "" {
			t.Fatalf("ping %s?%s auth %q", r.Path, r.Query.Encode(), r.Header.Get("Authorization"))
		}
	}
	w := p.srv.Workers()
	if len(w) != 1 || w[0].RunpodVersion != RunpodVersionDefault {
		t.Errorf("workers %+v", w)
	}
}

func TestContractJobStop(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-stop")
	causes := make(chan error, 1)
	started := make(chan string, 2)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		started <- job.ID
		if strings.Contains(string(job.Input), "quick") {
			return "quick", nil
		}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		_ = job.Progress(context.Background(), "too late") // dropped
		return "swallowed cancellation", nil
	}
	startWorker(t, cfg)
	id := p.enqueue(t, "slow")
	waitChan(t, started, "the job to start")
	p.cancel(t, id)
	if cause := waitChan(t, causes, "the handler's cancellation"); !errors.Is(cause, ErrJobCancelled) {
		t.Fatalf("cause %v, want ErrJobCancelled", cause)
	}
	// The worker goes on serving, and posted nothing for the stopped job.
	next := p.enqueue(t, "quick")
	if j := p.wait(t, next); j.Status != runpodtest.StatusCompleted {
		t.Fatalf("next job %s", j.Status)
	}
	if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusCancelled {
		t.Errorf("stopped job %s", j.Status)
	}
	for _, r := range p.rec.all("job-done") {
		if r.jobID() == id {
			t.Errorf("a job-done post for the stopped job: %s", r.Body)
		}
	}
}

func TestContractRefreshPerJob(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-refresh")
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		if strings.Contains(string(job.Input), "refresh") {
			return map[string]any{"refresh_worker": true, "x": 1}, nil
		}
		return Result{Output: "r", RefreshWorker: true}, nil
	}
	startWorker(t, cfg)
	a := p.enqueue(t, "refresh")
	if j := p.wait(t, a); j.Status != runpodtest.StatusCompleted || string(j.Output) != `{"x":1}` {
		t.Fatalf("job %s output %s", j.Status, j.Output)
	}
	// The worker keeps taking jobs after a per-job refresh.
	b := p.enqueue(t, "result")
	if j := p.wait(t, b); j.Status != runpodtest.StatusCompleted {
		t.Fatalf("second job %s", j.Status)
	}
	for _, r := range p.rec.all("job-done") {
		if string(decodeBody(t, r.Body)["stopPod"]) != "true" {
			t.Errorf("body %s without stopPod", r.Body)
		}
	}
	if w := p.srv.Workers(); len(w) != 1 || w[0].Refreshes != 2 {
		t.Errorf("workers %+v", w)
	}
}

func TestContractRefreshGlobal(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-refresh-all")
	cfg.RefreshWorker = true
	var calls atomic.Int32
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		calls.Add(1)
		return nil, Fail("even errors refresh")
	}
	first := p.enqueue(t, 1)
	second := p.enqueue(t, 2)
	// Start returns by itself once the first job is reported.
	if err := Start(testCtx(t), cfg.Handler, cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if j := p.wait(t, first); j.Status != runpodtest.StatusFailed || j.Error != "even errors refresh" {
		t.Fatalf("first job %s %q", j.Status, j.Error)
	}
	if j, _ := p.srv.Job(second); j.Status != runpodtest.StatusInQueue {
		t.Errorf("second job %s, want IN_QUEUE: a refreshing worker takes no more", j.Status)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
	dones := p.rec.all("job-done")
	if len(dones) != 1 || string(decodeBody(t, dones[0].Body)["stopPod"]) != "true" {
		t.Errorf("done posts %v", dones)
	}
}

func TestContractConcurrencyModifier(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-mod")
	var asked []int
	var mu sync.Mutex
	cfg.ConcurrencyModifier = func(cur int) int {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, cur)
		switch len(asked) {
		case 1:
			return 0 // out of range: clamped to 1
		case 2:
			panic("modifier bug") // keeps the current value
		}
		return 2
	}
	both := newMeeting(2)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		return nil, both.wait(ctx)
	}
	startWorker(t, cfg)
	a, b := p.enqueue(t, 1), p.enqueue(t, 2)
	p.wait(t, a)
	p.wait(t, b)
	mu.Lock()
	if len(asked) < 3 || asked[0] != 1 || asked[1] != 1 || asked[2] != 1 {
		t.Errorf("modifier saw %v, want 1, 1, 1, …", asked)
	}
	mu.Unlock()
	// Two jobs ran at once, so the modifier's 2 took effect.
	if n := both.arrived.Load(); n != 2 {
		t.Errorf("%d jobs ran", n)
	}
}

func TestContractResultTooLarge(t *testing.T) {
	t.Parallel()
	t.Run("over the worker's limit", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-large")
		cfg.MaxResultBytes = 4096
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
			return map[string]string{"image": strings.Repeat("A", 5000)}, nil
		}
		startWorker(t, cfg)
		j := p.wait(t, p.enqueue(t, 1))
		if j.Status != runpodtest.StatusFailed || !strings.Contains(j.Error, "over the 4096 bytes RunPod accepts") ||
			!strings.Contains(j.Error, "BUCKET_ENDPOINT_URL") || !strings.Contains(j.Error, "s3Config") {
			t.Fatalf("status %s error %q", j.Status, j.Error)
		}
		if len(j.Output) != 0 {
			t.Errorf("output %d bytes", len(j.Output))
		}
	})
	t.Run("refused by RunPod", func(t *testing.T) {
		t.Parallel()
		j := runRefused(t, "w-refused", func(ctx context.Context, job *Job) (any, error) {
			return strings.Repeat("B", 5000), nil
		})
		if j.Status != runpodtest.StatusFailed || !strings.Contains(j.Error, "RunPod rejected the job's result (job-done answered 400 Bad Request to a 5013 bytes body): Bad Request: the job result is larger than") {
			t.Fatalf("status %s error %q", j.Status, j.Error)
		}
	})
}

// A failure whose output RunPod refuses still ends FAILED, not stuck.
func TestContractRejectedFailure(t *testing.T) {
	t.Parallel()
	j := runRefused(t, "w-refused-err", func(ctx context.Context, job *Job) (any, error) {
		return nil, &JobError{Message: "Job processing failed", Output: map[string]string{"details": strings.Repeat("x", 5000)}}
	})
	if j.Status != runpodtest.StatusFailed || !strings.HasPrefix(j.Error, "RunPod rejected the job's result") {
		t.Fatalf("status %s error %q", j.Status, j.Error)
	}
}

// runRefused runs one job with handler on a worker whose control plane
// refuses results over 4096 bytes, and returns the job once it has ended.
func runRefused(t *testing.T, id string, handler Handler) runpodtest.Job {
	t.Helper()
	p := newPlane(t, func(c *runpodtest.Config) { c.MaxResultBytes = 4096 })
	cfg := p.workerConfig(t, id)
	cfg.Handler = handler
	startWorker(t, cfg)
	return p.wait(t, p.enqueue(t, 1))
}

func TestContractResultRetries(t *testing.T) {
	t.Parallel()
	for _, action := range []runpodtest.FaultAction{runpodtest.FaultServerError, runpodtest.FaultDrop, runpodtest.FaultRateLimit} {
		t.Run(string(action), func(t *testing.T) {
			t.Parallel()
			p := newPlane(t, nil)
			if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpDone, Action: action, Times: 2, StatusCode: 503, RetryAfter: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			cfg := p.workerConfig(t, "w-retry")
			cfg.ResultRetry.MaxBackoff = 5 * time.Millisecond // caps Retry-After: 1 s
			cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return "ok", nil }
			startWorker(t, cfg)
			id := p.enqueue(t, 1)
			if j := p.wait(t, id); j.Status != runpodtest.StatusCompleted || string(j.Output) != `"ok"` {
				t.Fatalf("status %s output %s", j.Status, j.Output)
			}
			if n := len(p.rec.all("job-done")); n != 3 {
				t.Errorf("%d job-done attempts, want 3", n)
			}
		})
	}
	t.Run("gives up after Attempts", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpDone, Action: runpodtest.FaultServerError}); err != nil {
			t.Fatal(err)
		}
		cfg := p.workerConfig(t, "w-giveup")
		log, sink := newLogSink(t)
		cfg.Logger = log
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return "ok", nil }
		startWorker(t, cfg)
		p.enqueue(t, 1)
		sink.await(t, "Failed to return job results.")
		if n := len(p.rec.all("job-done")); n != cfg.ResultRetry.Attempts {
			t.Errorf("%d attempts, want %d", n, cfg.ResultRetry.Attempts)
		}
	})
}

func TestContractDoneNotFound(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpDone, Action: runpodtest.FaultExpire, Times: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := p.workerConfig(t, "w-404")
	log, sink := newLogSink(t)
	cfg.Logger = log
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return "ok", nil }
	startWorker(t, cfg)
	first := p.enqueue(t, 1)
	sink.await(t, "job-done answered 404")
	// The worker goes on serving.
	if j := p.wait(t, p.enqueue(t, 2)); j.Status != runpodtest.StatusCompleted {
		t.Fatalf("next job %s", j.Status)
	}
	n := 0
	for _, r := range p.rec.all("job-done") {
		if r.jobID() == first {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d posts for the expired job, want 1 (no retry on 404)", n)
	}
}

func TestContractTakeRateLimited(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpTake, Action: runpodtest.FaultRateLimit, Times: 1, RetryAfter: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	cfg := p.workerConfig(t, "w-429")
	clock := newFakeClock()
	cfg.Clock = clock
	cfg.PingURL = "" // nothing else waits on the clock
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return "ok", nil }
	id := p.enqueue(t, 1)
	startWorker(t, cfg)
	// The take loop sleeps Retry-After on the worker's clock…
	if err := clock.BlockUntilContext(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusInQueue {
		t.Fatalf("job %s before the pause ended", j.Status)
	}
	// …and takes the job once it is over.
	clock.Advance(3 * time.Second)
	if j := p.wait(t, id); j.Status != runpodtest.StatusCompleted {
		t.Fatalf("job %s", j.Status)
	}
}

func TestContractSoftStop(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-soft")
	log, sink := newLogSink(t)
	cfg.Logger = log
	cfg.ShutdownGrace = time.Hour
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "finished in the grace period", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	first := p.enqueue(t, 1)
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	done := make(chan error, 1)
	go func() { done <- Start(ctx, cfg.Handler, cfg) }()
	waitChan(t, started, "the job to start")
	sigterm()
	sink.await(t, "no more jobs are taken")
	second := p.enqueue(t, 2)
	close(release)
	if err := waitChan(t, done, "Start to return"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if j := p.wait(t, first); j.Status != runpodtest.StatusCompleted || string(j.Output) != `"finished in the grace period"` {
		t.Fatalf("in-flight job %s %s", j.Status, j.Output)
	}
	if j, _ := p.srv.Job(second); j.Status != runpodtest.StatusInQueue {
		t.Errorf("job queued after SIGTERM is %s, want IN_QUEUE", j.Status)
	}
}

func TestContractHardStop(t *testing.T) {
	t.Parallel()
	t.Run("grace runs out", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-grace")
		cfg.ShutdownGrace = 10 * time.Millisecond
		causes := make(chan error, 1)
		started := make(chan struct{}, 1)
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		}
		id := p.enqueue(t, 1)
		ctx, sigterm := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Start(ctx, cfg.Handler, cfg) }()
		waitChan(t, started, "the job to start")
		sigterm()
		err := waitChan(t, done, "Start to return")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start = %v, want the grace deadline", err)
		}
		if c := waitChan(t, causes, "the cancellation"); !errors.Is(c, ErrWorkerShutdown) {
			t.Errorf("cause %v", c)
		}
		if j := p.wait(t, id); j.Status != runpodtest.StatusFailed || j.Error != "worker shut down before the job finished" {
			t.Fatalf("job %s %q", j.Status, j.Error)
		}
	})
	t.Run("StopAndCancel", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-hard")
		cfg.Concurrency = 2
		started := make(chan struct{}, 2)
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		a, b := p.enqueue(t, 1), p.enqueue(t, 2)
		w := startWorker(t, cfg)
		waitChan(t, started, "job 1")
		waitChan(t, started, "job 2")
		if err := w.StopAndCancel(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{a, b} {
			if j := p.wait(t, id); j.Status != runpodtest.StatusFailed || j.Error != "worker shut down before the job finished" {
				t.Errorf("%s: %s %q", id, j.Status, j.Error)
			}
		}
		select {
		case <-w.Done():
		default:
			t.Error("Done not closed after StopAndCancel")
		}
		if err := w.Stop(testCtx(t)); err != nil { // safe twice
			t.Errorf("Stop after StopAndCancel: %v", err)
		}
	})
	t.Run("handler ignores cancellation", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-stuck")
		cfg.CancelGrace = 10 * time.Millisecond
		release := make(chan struct{})
		returned := make(chan struct{})
		started := make(chan struct{}, 1)
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
			defer close(returned)
			started <- struct{}{}
			<-release // ignores ctx
			return "late", nil
		}
		id := p.enqueue(t, 1)
		w := startWorker(t, cfg)
		waitChan(t, started, "the job")
		if err := w.StopAndCancel(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if j := p.wait(t, id); j.Status != runpodtest.StatusFailed || j.Error != "worker shut down before the job finished" {
			t.Fatalf("job %s %q", j.Status, j.Error)
		}
		close(release)
		waitChan(t, returned, "the abandoned handler")
		// Its late result is dropped: the one post is the FAILED one.
		if n := len(p.rec.all("job-done")); n != 1 {
			t.Errorf("%d job-done posts", n)
		}
	})
}

// A job RunPod stopped whose handler ignores the cancellation does not hold
// a hard stop up.
func TestContractHardStopAfterJobStop(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-stopped-stuck")
	cfg.CancelGrace = 10 * time.Millisecond
	log, sink := newLogSink(t)
	cfg.Logger = log
	release := make(chan struct{})
	returned := make(chan struct{})
	started := make(chan struct{}, 1)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		defer close(returned)
		started <- struct{}{}
		<-release
		return "late", nil
	}
	id := p.enqueue(t, 1)
	w := startWorker(t, cfg)
	waitChan(t, started, "the job")
	p.cancel(t, id)
	sink.await(t, "RunPod stopped the job")
	if err := w.StopAndCancel(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitChan(t, returned, "the handler")
	if n := len(p.rec.all("job-done")); n != 0 {
		t.Errorf("%d job-done posts for a stopped job", n)
	}
	if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusCancelled {
		t.Errorf("job %s", j.Status)
	}
}

func TestContractHeartbeatDuringLongJob(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := newPlane(t, func(c *runpodtest.Config) { c.Clock = clock })
	cfg := p.workerConfig(t, "w-long")
	cfg.Clock = clock
	if cfg.PingInterval != 10*time.Second {
		t.Fatalf("PingInterval %v", cfg.PingInterval)
	}
	release := make(chan struct{})
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		select {
		case <-release:
			return "ten minutes later", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	id, err := p.srv.Enqueue(runpodtest.JobRequest{Input: 1, Policy: &runpodtest.Policy{ExecutionTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, cfg)
	p.wait(t, id, runpodtest.StatusInProgress)
	pingsWithJob := func() []recorded {
		var out []recorded
		for _, r := range p.rec.all("ping") {
			if r.Query.Get("job_id") == id {
				out = append(out, r)
			}
		}
		return out
	}
	// The first ping after the take may be the one sent at start; move on
	// interval by interval until a ping lists the job, then for ten minutes.
	for len(pingsWithJob()) == 0 {
		n := len(p.rec.all("ping"))
		clock.Advance(cfg.PingInterval)
		p.rec.await(t, "the next ping", func() bool { return len(p.rec.all("ping")) > n })
	}
	const steps = 60 // 10 minutes of 10 s intervals
	for range steps {
		n := len(p.rec.all("ping"))
		clock.Advance(cfg.PingInterval)
		p.rec.await(t, "the next ping", func() bool { return len(p.rec.all("ping")) > n })
	}
	pings := pingsWithJob()
	if len(pings) < steps+1 {
		t.Fatalf("%d pings listed the job over 10 minutes, want %d", len(pings), steps+1)
	}
	for i := 1; i < len(pings); i++ {
		if d := pings[i].At.Sub(pings[i-1].At); d != cfg.PingInterval {
			t.Fatalf("ping %d came %v after the previous one, want %v", i, d, cfg.PingInterval)
		}
	}
	if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusInProgress || j.Retries != 0 {
		t.Fatalf("after 10 minutes the job is %s (retries %d): the worker was lost", j.Status, j.Retries)
	}
	if w := p.srv.Workers(); len(w) != 1 || w[0].State != runpodtest.WorkerRunning || !slices.Equal(w[0].ReportedJobs, []string{id}) {
		t.Fatalf("worker %+v", w)
	}
	close(release)
	if j := p.wait(t, id); j.Status != runpodtest.StatusCompleted || string(j.Output) != `"ten minutes later"` {
		t.Fatalf("job %s %s", j.Status, j.Output)
	}
}

// TestContractTakeEdgeCases drives answers runpodtest does not give: the
// take answering 400 (FlashBoot), a job without id, a job without input and
// extra keys.
func TestContractTakeEdgeCases(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	step, stops := 0, 0
	var dones []recorded
	doneCh := make(chan struct{}, 10)
	srv := newScriptedPlane(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch {
		case strings.Contains(r.URL.Path, "/job-take/"):
			mu.Lock()
			step++
			s := step
			mu.Unlock()
			switch s {
			case 1:
				w.WriteHeader(http.StatusBadRequest) // FlashBoot: retake at once
			case 2:
				w.Header().Set("Content-Type", "text/plain")  // lenient on the type
				_, _ = w.Write([]byte(`{"input": {"a": 1}}`)) // no id: logged only
			case 3:
				_, _ = w.Write([]byte(`{"id": "no-input", "delayTime": 5}`))
			case 4:
				_, _ = w.Write([]byte(`{"id": "good", "input": "x", "delayTime": 12, "retries": 0, "status": "IN_PROGRESS"}`))
			default:
				<-r.Context().Done()
			}
		case strings.Contains(r.URL.Path, "/job-done/"):
			mu.Lock()
			dones = append(dones, recorded{Path: r.URL.Path, Body: body})
			mu.Unlock()
			doneCh <- struct{}{}
		case strings.Contains(r.URL.Path, "/job-stop/"):
			mu.Lock()
			stops++
			mu.Unlock()
			w.WriteHeader(http.StatusNotFound)
		}
	})
	env := map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB":     srv.URL + "/v2/ep/job-take/$ID?",
		"RUNPOD_WEBHOOK_POST_OUTPUT": srv.URL + "/v2/ep/job-done/$RUNPOD_POD_ID/$ID?",
		"RUNPOD_POD_ID":              "w1",
	}
	cfg := must(ConfigFromEnv(func(k string) string { return env[k] }))
	log, sink := newLogSink(t)
	cfg.Logger = log
	var extra map[string]json.RawMessage
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		mu.Lock()
		extra = job.Extra
		mu.Unlock()
		return "ok", nil
	}
	startWorker(t, cfg)
	waitChan(t, doneCh, "the no-input job's FAILED post")
	waitChan(t, doneCh, "the good job's post")
	sink.await(t, "job-stop answered 404")
	mu.Lock()
	defer mu.Unlock()
	if len(dones) != 2 {
		t.Fatalf("%d posts", len(dones))
	}
	if !strings.HasSuffix(dones[0].Path, "/no-input") || !strings.Contains(string(dones[0].Body), "missing field(s): input") {
		t.Errorf("post for the job without input: %s %s", dones[0].Path, dones[0].Body)
	}
	if !strings.HasSuffix(dones[1].Path, "/good") || string(dones[1].Body) != `{"output":"ok"}` {
		t.Errorf("post for the good job: %s %s", dones[1].Path, dones[1].Body)
	}
	if string(extra["delayTime"]) != "12" || string(extra["status"]) != `"IN_PROGRESS"` {
		t.Errorf("Extra %v", extra)
	}
	// job-stop answered 404 once: the feature is off, polling ended.
	if stops != 1 {
		t.Errorf("%d job-stop polls", stops)
	}
	if !sink.has("job has missing field(s): id") {
		t.Errorf("the job without id was not reported:\n%s", sink.text())
	}
}

// takeHold sits in front of a runpodtest plane and holds the answer of a
// job-take that carries a job: the plane has handed the job out (it is
// IN_PROGRESS, held by the worker) but the worker has not read it yet. It
// reproduces a take answered just as the worker is told to stop.
type takeHold struct {
	split     bool          // send the status line and half the body, hold the rest
	committed chan struct{} // a job was handed out; its answer is held
	release   chan struct{} // send the (rest of the) answer
}

func (h *takeHold) wrap(next http.Handler) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/job-take/") {
			next.ServeHTTP(w, r)
			return
		}
		// The plane answers in full, even to a worker that gives up.
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		body := rec.Body.Bytes()
		held := false
		if rec.Code == http.StatusOK {
			once.Do(func() { held = true })
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if !held {
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		if h.split {
			_, _ = w.Write(body[:len(body)/2])
			body = body[len(body)/2:]
		}
		_ = http.NewResponseController(w).Flush()
		close(h.committed)
		<-h.release
		_, _ = w.Write(body)
	})
}

// headersSeen is a transport that reports when the worker has the status
// line and headers of a job-take answer that carries a job.
type headersSeen struct {
	next http.RoundTripper
	once sync.Once
	seen chan struct{}
}

func (h *headersSeen) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && strings.Contains(r.URL.Path, "/job-take/") {
		h.once.Do(func() { close(h.seen) })
	}
	return resp, err
}

// A job RunPod hands out as the worker stops is run (soft stop) or
// reported FAILED (hard stop), never left IN_PROGRESS until RunPod misses
// the worker's pings.
func TestContractStopDuringTake(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, split bool, handler Handler) (*plane, *takeHold, *Worker, string, *headersSeen) {
		t.Helper()
		hold := &takeHold{split: split, committed: make(chan struct{}), release: make(chan struct{})}
		p := newPlaneWrapped(t, hold.wrap)
		cfg := p.workerConfig(t, "w-stop-take")
		tr := newTransport()
		t.Cleanup(tr.CloseIdleConnections)
		seen := &headersSeen{next: tr, seen: make(chan struct{})}
		cfg.HTTPClient = &http.Client{Transport: seen}
		cfg.TakeGrace = waitTimeout
		cfg.CancelGrace = waitTimeout
		cfg.Handler = handler
		w := startWorker(t, cfg)
		if err := p.srv.AwaitWaiting(testCtx(t), runpodtest.OpTake, 1); err != nil {
			t.Fatal(err)
		}
		id := p.enqueue(t, "handed out as the worker stops")
		waitChan(t, hold.committed, "the plane to hand the job out")
		if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusInProgress {
			t.Fatalf("job %s before the answer is read", j.Status)
		}
		return p, hold, w, id, seen
	}

	t.Run("soft stop runs the job", func(t *testing.T) {
		t.Parallel()
		p, hold, w, id, _ := setup(t, false, func(ctx context.Context, job *Job) (any, error) { return "ran", nil })
		stopped := make(chan error, 1)
		go func() { stopped <- w.Stop(testCtx(t)) }()
		waitChan(t, w.softCh, "the soft stop to begin")
		close(hold.release)
		if err := waitChan(t, stopped, "Stop to return"); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if j := p.wait(t, id); j.Status != runpodtest.StatusCompleted || string(j.Output) != `"ran"` {
			t.Fatalf("job %s %s %q", j.Status, j.Output, j.Error)
		}
	})

	t.Run("hard stop reports the job FAILED", func(t *testing.T) {
		t.Parallel()
		p, hold, w, id, seen := setup(t, true, func(ctx context.Context, job *Job) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		// A take cancelled before its answer arrives loses the job until
		// RunPod misses the pings; one being read is read through.
		waitChan(t, seen.seen, "the worker to read the answer's headers")
		stopped := make(chan error, 1)
		go func() { stopped <- w.StopAndCancel(testCtx(t)) }()
		waitChan(t, w.hardCh, "the hard stop to begin")
		close(hold.release)
		if err := waitChan(t, stopped, "StopAndCancel to return"); err != nil {
			t.Fatalf("StopAndCancel: %v", err)
		}
		if j := p.wait(t, id); j.Status != runpodtest.StatusFailed || j.Error != shutdownMessage {
			t.Fatalf("job %s %q", j.Status, j.Error)
		}
	})

	t.Run("a take with no answer ends after TakeGrace", func(t *testing.T) {
		t.Parallel()
		p := newPlane(t, nil)
		cfg := p.workerConfig(t, "w-stop-idle")
		cfg.TakeGrace = 10 * time.Millisecond
		cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return nil, nil }
		w := startWorker(t, cfg)
		if err := p.srv.AwaitWaiting(testCtx(t), runpodtest.OpTake, 1); err != nil {
			t.Fatal(err)
		}
		if err := w.Stop(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := p.srv.Await(testCtx(t), func() bool { return p.srv.Waiting(runpodtest.OpTake) == 0 }); err != nil {
			t.Fatalf("the take is still held open after Stop: %v", err)
		}
		id := p.enqueue(t, 1)
		if j, _ := p.srv.Job(id); j.Status != runpodtest.StatusInQueue {
			t.Errorf("job queued after Stop is %s", j.Status)
		}
	})
}
