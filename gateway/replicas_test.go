package gateway

import (
	"context"
	"image"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// crash stops a replica the way a dead process would: its loops end and its
// HTTP server closes, but it hands no lease back.
func crash(t testing.TB, h *harness) {
	t.Helper()
	h.svc.mu.Lock()
	h.svc.started = false // Stop skips ReleaseLeases
	h.svc.mu.Unlock()
	if err := h.svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// inFlightAtRunPod counts the jobs the control plane holds that have not
// ended.
func inFlightAtRunPod(rp *runpodtest.Server) int {
	n := 0
	for _, j := range rp.Jobs() {
		if !j.Status.Terminal() {
			n++
		}
	}
	return n
}

// TestReplicasShareTheWork runs two replicas on one Postgres database: jobs
// posted to either are run once each, and the concurrency limit holds over
// both.
func TestReplicasShareTheWork(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	schema := freshSchema(t, dsn)
	rp, err := runpodtest.NewServer(&runpodtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	const limit = 3
	conf := func(c *Config) { c.Concurrency = limit }
	a := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "a", config: conf})
	b := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "b", config: conf})

	// Watch the control plane: never more than the limit at RunPod at once.
	var most atomic.Int64
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_ = rp.Await(watchCtx, func() bool {
			if n := int64(inFlightAtRunPod(rp)); n > most.Load() {
				most.Store(n)
			}
			return false
		})
	}()
	for range 2 {
		w, err := rp.StartWorker(context.Background(), brushWorker, &runpodtest.WorkerOptions{Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	f := brushForm(t, 48, 32, image.Rect(4, 4, 12, 12))
	var ids []string
	for i := range 24 {
		h := a
		if i%2 == 1 {
			h = b
		}
		ids = append(ids, h.submit("", f))
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		h := b // followed through the other replica than the one that took it
		if i%2 == 1 {
			h = a
		}
		wg.Go(func() {
			if j := h.wait("", id); j.Status != StatusSucceeded {
				t.Errorf("job %s: %+v %+v", id, j, j.Error)
			}
		})
	}
	wg.Wait()
	stopWatch()
	<-watched
	checkOncePerJob(t, rp, ids)
	if m := most.Load(); m > limit || m < 1 {
		t.Fatalf("%d jobs at RunPod at once, limit %d", m, limit)
	}
	// Both replicas did some of the submitting.
	for _, h := range []*harness{a, b} {
		if !strings.Contains(h.logs.String(), "job submitted") {
			t.Fatalf("replica %s submitted nothing", h.svc.ReplicaID())
		}
	}
}

// TestReplicaDies: a replica dies with jobs in flight; once its leases
// expire the other takes them over and finishes them, sending none twice.
func TestReplicaDies(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	schema := freshSchema(t, dsn)
	rp, err := runpodtest.NewServer(&runpodtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	conf := func(c *Config) { c.Concurrency = 6 }
	a := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "a", config: conf})
	f := brushForm(t, 48, 32, image.Rect(4, 4, 12, 12))
	var ids []string
	for range 6 {
		ids = append(ids, a.submit("", f))
	}
	awaitCond(t, "every job at RunPod with its id stored", func() bool {
		for _, id := range ids {
			if a.get("", id).RunPodID == "" {
				return false
			}
		}
		return true
	})
	crash(t, a)

	b := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "b", config: conf})
	w, err := rp.StartWorker(context.Background(), brushWorker, &runpodtest.WorkerOptions{Concurrency: 6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	for _, id := range ids {
		if j := b.wait("", id); j.Status != StatusSucceeded {
			t.Fatalf("job %s: %+v %+v", id, j, j.Error)
		}
	}
	checkOncePerJob(t, rp, ids)
	if !strings.Contains(b.logs.String(), "took over jobs") {
		t.Fatalf("replica b did not take over:\n%s", b.logs)
	}
}

// TestReplicasFollowEachOther: with Postgres, a change made by one replica
// reaches the event streams of another at once (LISTEN/NOTIFY), not at its
// next poll: here the other replica's streams never poll.
func TestReplicasFollowEachOther(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	schema := freshSchema(t, dsn)
	rp, err := runpodtest.NewServer(&runpodtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	release := make(chan struct{})
	w, err := rp.StartWorker(context.Background(), func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return brushWorker(ctx, job)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	a := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "a"})
	id := a.submit("", brushForm(t, 48, 32, image.Rect(4, 4, 12, 12)))
	awaitCond(t, "the job running on a worker", func() bool { return a.get("", id).Status == StatusRunning })

	b := newHarness(t, hopts{open: true, postgres: true, dsn: schema, rp: rp, replica: "b",
		config: func(c *Config) { c.EventsInterval = time.Hour }})
	ended := make(chan []sseEvent, 1)
	go func() { ended <- b.events("", id, "") }()
	awaitCond(t, "b's event stream", func() bool {
		b.svc.hub.mu.Lock()
		defer b.svc.hub.mu.Unlock()
		return len(b.svc.hub.subs[id]) == 1
	})
	close(release)
	var evs []sseEvent
	select {
	case evs = <-ended:
	case <-time.After(waitTimeout):
		t.Fatal("b's stream did not hear the job end")
	}
	last := decodeJob(t, evs[len(evs)-2].data)
	if last.Status != StatusSucceeded || evs[len(evs)-1].event != "end" {
		t.Fatalf("b's stream: %+v", evs)
	}
	if strings.Contains(b.logs.String(), "job submitted") || strings.Contains(b.logs.String(), "job ended") {
		t.Fatal("replica b did the work itself")
	}
}
