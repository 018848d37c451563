package serverless

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func TestWorkerLifecycle(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-life")
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return nil, nil }

	// Stop before Start is a no-op that leaves the worker stopped.
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err == nil {
		t.Error("Start after Stop accepted")
	}

	w = startWorker(t, cfg)
	if w.ID() != "w-life" {
		t.Errorf("ID %q", w.ID())
	}
	if err := w.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start: %v", err)
	}
	// Concurrent Stops all return once the worker is gone.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Stop(testCtx(t)); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-w.Done():
	default:
		t.Fatal("Done open after Stop")
	}
}

func TestWorkerStartContextHardStops(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-ctx")
	started := make(chan struct{}, 1)
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	id := p.enqueue(t, 1)
	waitChan(t, started, "the job")
	cancel()
	waitChan(t, w.Done(), "the worker to stop")
	if j := p.wait(t, id); j.Status != runpodtest.StatusFailed || j.Error != shutdownMessage {
		t.Errorf("job %s %q", j.Status, j.Error)
	}
}

func TestFitnessCheckFailure(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	cfg := p.workerConfig(t, "w-unfit")
	cfg.Handler = func(ctx context.Context, job *Job) (any, error) { return nil, nil }
	var ran []string
	cfg.FitnessChecks = []FitnessCheck{
		{Name: "memory", Check: func(context.Context) error { ran = append(ran, "memory"); return nil }},
		{Name: "gpu", Check: func(context.Context) error { ran = append(ran, "gpu"); return errors.New("no CUDA device") }},
		{Name: "disk", Check: func(context.Context) error { ran = append(ran, "disk"); return nil }},
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `fitness check "gpu" failed: no CUDA device`) {
		t.Fatalf("Start: %v", err)
	}
	if strings.Join(ran, ",") != "memory,gpu" {
		t.Errorf("checks ran: %v", ran)
	}
	pings := p.rec.all("ping")
	if len(pings) != 1 {
		t.Fatalf("%d pings", len(pings))
	}
	q := pings[0].Query
	if q.Get("status") != "unhealthy" || q.Get("check") != "gpu" || q.Get("reason") != "no CUDA device" || q.Get("runpod_version") != RunpodVersionDefault {
		t.Errorf("unhealthy ping %s", q.Encode())
	}
	if ws := p.srv.Workers(); len(ws) != 1 || ws[0].State != runpodtest.WorkerUnhealthy {
		t.Errorf("workers %+v", ws)
	}
	if len(p.rec.all("job-take")) != 0 {
		t.Error("an unfit worker took jobs")
	}
	waitChan(t, w.Done(), "Done")
	if err := w.Stop(testCtx(t)); err != nil {
		t.Errorf("Stop: %v", err)
	}

	// A panicking check is a failure too.
	cfg.FitnessChecks = []FitnessCheck{{Name: "boom", Check: func(context.Context) error { panic("oops") }}}
	w, _ = New(cfg)
	if err := w.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "panic: oops") {
		t.Errorf("panicking check: %v", err)
	}
}

// The heartbeat has a client of its own: a worker whose connection pool is
// held by a stuck post still pings.
func TestHeartbeatNotStarvedByPool(t *testing.T) {
	t.Parallel()
	p := newPlane(t, func(c *runpodtest.Config) { c.PingInterval = 20 * time.Millisecond })
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpStreamPost, Action: runpodtest.FaultLatency, Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	cfg := p.workerConfig(t, "w-pool")
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	cfg.StreamHandler = func(ctx context.Context, job *Job, emit func(any) error) error {
		return emit("stuck") // held by the server for an hour
	}
	startWorker(t, cfg)
	id := p.enqueue(t, 1)
	p.rec.await(t, "the stuck stream post", func() bool { return len(p.rec.all("job-stream")) == 1 })
	n := len(p.rec.all("ping"))
	p.rec.await(t, "pings while the pool is held", func() bool {
		k := 0
		for _, r := range p.rec.all("ping")[n:] {
			if r.Query.Get("job_id") == id {
				k++
			}
		}
		return k >= 3
	})
}

func TestJobProgressOutsideWorker(t *testing.T) {
	t.Parallel()
	j := &Job{ID: "x"}
	if err := j.Progress(context.Background(), 1); err != nil {
		t.Errorf("Progress on a bare Job: %v", err)
	}
	j.Logger().Info("discarded")
}
