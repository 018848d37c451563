package runpodtest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// echo is a handler returning {"echo": input}.
func echo(_ context.Context, job *WorkerJob) (any, error) {
	return map[string]json.RawMessage{"echo": job.Input}, nil
}

// recv receives from ch, failing after a generous timeout.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("nothing received within 30 s")
		var zero T
		return zero
	}
}

func startWorker(t *testing.T, h *harness, fn WorkerHandler, opts *WorkerOptions) *TestWorker {
	t.Helper()
	w, err := h.srv.StartWorker(t.Context(), fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

func (h *harness) waitStatus(id string, want ...Status) Job {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j, err := h.srv.WaitStatus(ctx, id, want...)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func TestWorkerRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := startWorker(t, h, func(ctx context.Context, job *WorkerJob) (any, error) {
		var in struct{ Mode string }
		_ = json.Unmarshal(job.Input, &in)
		switch in.Mode {
		case "fail":
			return nil, errors.New("bad seed")
		case "panic":
			panic("kaboom")
		case "progress":
			if err := job.Progress(ctx, "half"); err != nil {
				return nil, err
			}
			if err := job.Stream(ctx, "chunk"); err != nil {
				return nil, err
			}
		}
		return echo(ctx, job)
	}, &WorkerOptions{ID: "tw1"})
	if w.ID() != "tw1" {
		t.Fatalf("ID() = %q", w.ID())
	}

	id := h.run(map[string]string{"mode": "ok"})
	st := h.wait(h.async("GET", "/v2/local/status-sync/"+id+"?wait=60000", nil)).json(t)
	if st["status"] != "COMPLETED" || st["workerId"] != "tw1" || st["output"].(map[string]any)["echo"].(map[string]any)["mode"] != "ok" {
		t.Fatalf("completed: %v", st)
	}
	if j := h.waitStatus(h.run(map[string]string{"mode": "fail"})); j.Status != StatusFailed || j.Error != "bad seed" {
		t.Fatalf("failed: %+v", j)
	}
	if j := h.waitStatus(h.run(map[string]string{"mode": "panic"})); j.Status != StatusFailed || !strings.Contains(j.Error, "handler panic: kaboom") || !strings.Contains(j.Error, "goroutine") {
		t.Fatalf("panicked: %+v", j)
	}
	j := h.waitStatus(h.run(map[string]string{"mode": "progress"}))
	if j.Status != StatusCompleted || j.ProgressUpdates != 1 || len(j.Stream) != 1 || string(j.Stream[0]) != `{"output":"chunk"}` {
		t.Fatalf("progress and stream: %+v", j)
	}
	ws := h.srv.Workers()
	if len(ws) != 1 || ws[0].RunpodVersion != workerVersion || ws[0].ID != "tw1" {
		t.Fatalf("workers: %+v", ws)
	}
}

func TestWorkerCancelStopsHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	started := make(chan string, 1)
	ended := make(chan error, 1)
	startWorker(t, h, func(ctx context.Context, job *WorkerJob) (any, error) {
		started <- job.ID
		<-ctx.Done()
		ended <- ctx.Err()
		return "too late", nil
	}, nil)
	id := h.run(1)
	if got := recv(t, started); got != id {
		t.Fatalf("started %s", got)
	}
	h.do("POST", "/v2/local/cancel/"+id, nil)
	if err := recv(t, ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context after cancel: %v", err)
	}
	// The worker moves on to the next job and posted nothing for the
	// cancelled one.
	next := h.run(2)
	if got := recv(t, started); got != next {
		t.Fatalf("started %s", got)
	}
	if n := h.srv.Requests(OpDone); n != 0 {
		t.Fatalf("%d results posted for a cancelled job", n)
	}
	if j := h.job(id); j.Status != StatusCancelled || j.Output != nil {
		t.Fatalf("cancelled job: %+v", j)
	}
	// Completing it directly stops the handler through job-stop too.
	if err := h.srv.CompleteJob(next, 0); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("handler context after CompleteJob: %v", err)
	}
}

func TestWorkerConcurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	started := make(chan string, 2)
	release := make(chan struct{})
	startWorker(t, h, func(ctx context.Context, job *WorkerJob) (any, error) {
		started <- job.ID
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 1, nil
	}, &WorkerOptions{Concurrency: 2})
	a, b := h.run(1), h.run(2)
	got := map[string]bool{recv(t, started): true, recv(t, started): true}
	if !got[a] || !got[b] {
		t.Fatalf("started %v, want both jobs at once", got)
	}
	if ws := h.srv.Workers(); len(ws) != 1 || len(ws[0].Jobs) != 2 {
		t.Fatalf("worker holds %+v", ws)
	}
	close(release)
	h.waitStatus(a)
	h.waitStatus(b)
}

func TestWorkerStopLosesJobWhichIsRequeued(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	started := make(chan struct{}, 1)
	w := startWorker(t, h, func(ctx context.Context, _ *WorkerJob) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}, &WorkerOptions{ID: "dies"})
	id := h.run(1)
	recv(t, started)
	w.Stop()
	w.Stop()
	if j := h.job(id); j.Status != StatusInProgress {
		t.Fatalf("a killed worker posted for its job: %+v", j)
	}
	// Its silence counts from the end of its last request, which the server
	// sees shortly after the worker hung up.
	h.await("the killed worker's requests to end", func() bool { return h.srv.Workers()[0].OpenRequests == 0 })
	h.clock.Advance(h.srv.cfg.PingTimeout)
	if j := h.job(id); j.Status != StatusInQueue || j.Retries != 1 {
		t.Fatalf("job of a dead worker: %+v", j)
	}
	startWorker(t, h, echo, &WorkerOptions{ID: "replacement"})
	if j := h.waitStatus(id); j.Status != StatusCompleted || j.WorkerID != "replacement" {
		t.Fatalf("requeued job: %+v", j)
	}
}

func TestStartWorkerErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		fn   WorkerHandler
		opts *WorkerOptions
	}{
		{nil, nil},
		{echo, &WorkerOptions{Endpoint: "zzz"}},
		{echo, &WorkerOptions{ID: "bad id"}},
		{echo, &WorkerOptions{Concurrency: -1}},
	} {
		if w, err := h.srv.StartWorker(t.Context(), tc.fn, tc.opts); err == nil {
			w.Stop()
			t.Errorf("StartWorker(%+v) accepted", tc.opts)
		}
	}
	h.srv.Close()
	if _, err := h.srv.StartWorker(t.Context(), echo, nil); err == nil {
		t.Fatal("StartWorker on a closed server")
	}
}

func TestCloseStopsWorkersAndHeldRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	startWorker(t, h, echo, nil)
	h.held(OpStop, 1) // the worker's job-stop poll
	h.held(OpTake, 1) // and its take
	id, _ := h.srv.Enqueue(JobRequest{Input: 1})
	h.waitStatus(id)
	sid, _ := h.srv.Enqueue(JobRequest{Input: 2})
	_ = h.srv.ExpireJob(sid) // keep the worker idle
	other, _ := h.srv.Enqueue(JobRequest{Input: 3})
	_ = h.srv.StartJob(other) // started directly: no worker will finish it
	stream := h.async("GET", "/v2/local/stream/"+other+"?wait=300000", nil)
	h.held(OpStream, 1)
	h.srv.Close()
	if r := h.wait(stream); r.code != 200 || !strings.Contains(string(r.body), "IN_PROGRESS") {
		t.Fatalf("held stream on Close: %d %s", r.code, r.body)
	}
	if r, err := h.try(context.Background(), "GET", "/v2/local/health", nil); err == nil {
		t.Fatalf("served after Close: %d", r.code)
	}
}

func TestWorkerRetriesResultPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Clock = clockwork.NewRealClock() })
	if _, err := h.srv.AddFault(Fault{Op: OpDone, Action: FaultServerError, StatusCode: 502, Times: 1}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, h, echo, nil)
	id := h.run("x")
	if j := h.waitStatus(id); j.Status != StatusCompleted {
		t.Fatalf("job: %+v", j)
	}
	if n := h.srv.Requests(OpDone); n != 2 {
		t.Fatalf("%d result posts, want 2 (one refused with 502, one retried)", n)
	}
	// Back to waiting for work: one slot, one held take.
	h.held(OpTake, 1)
	if n := h.srv.Waiting(OpTake); n != 1 {
		t.Fatalf("Waiting(take) = %d, want 1", n)
	}
}

func TestJoinQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range [][3]string{
		{"http://h/p", "a=1", "http://h/p?a=1"},
		{"http://h/p?", "a=1", "http://h/p?a=1"},
		{"http://h/p?gpu=X", "a=1", "http://h/p?gpu=X&a=1"},
		{"http://h/p?gpu=X&", "a=1", "http://h/p?gpu=X&a=1"},
		{"http://h/p?gpu=X", "", "http://h/p?gpu=X"},
	} {
		if got := joinQuery(tc[0], tc[1]); got != tc[2] {
			t.Errorf("joinQuery(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
