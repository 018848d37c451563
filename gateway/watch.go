package gateway

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/internal/truncate"
	"github.com/comfypod/comfypod/runpod"
)

// Watching constants.
const (
	// maxProgressBytes caps a progress report kept in the store.
	maxProgressBytes = 16 << 10
	// unknownPoll is how often a job whose submission answer was lost looks
	// for news in the store (an id stored late, or its webhook).
	unknownPoll = 5 * time.Second
	// failureBackoffMax caps the backoff after failed status calls.
	failureBackoffMax = time.Minute
	// adoptBatch is how many jobs one AdoptJobs call takes over.
	adoptBatch = 200
)

// watcher follows the in-flight jobs this replica holds a lease on. One
// scheduler hands jobs that are due to a fixed pool of pollers, never faster
// than PollRate: ten thousand jobs cost a heap entry each, not a goroutine or
// a connection each. Each job's interval adapts: short after a change,
// backing off while nothing happens, slow when a webhook will report the end.
type watcher struct {
	s    *Service
	work chan *entry
	wake chan struct{}

	mu       sync.Mutex
	entries  map[string]*entry
	due      entryHeap
	rateNext time.Time
}

// entry is one watched job.
type entry struct {
	id       string
	runpodID string
	state    store.State
	cold     bool
	started  bool
	progress []byte
	// submitted and deadline come from the store.
	submitted time.Time
	deadline  time.Time
	created   time.Time
	// unknown: submitted without an answer; only its webhook can tell.
	unknown bool
	webhook bool
	cancel  bool

	interval time.Duration
	failures int
	next     time.Time
	idx      int // in due; -1 while a poller has it
	gone     bool
	// added is when the entry was made, so that a lease renewal that began
	// before it does not drop it.
	added time.Time
}

func newWatcher(s *Service) *watcher {
	return &watcher{s: s, work: make(chan *entry), wake: make(chan struct{}, 1), entries: map[string]*entry{}}
}

func (w *watcher) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries)
}

func (w *watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// add starts watching j, or refreshes what is known of it.
func (w *watcher) add(j *store.Job) {
	if j.State.Terminal() || j.State == store.StateQueued || j.State == store.StateClaimed {
		return
	}
	now := w.s.clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.entries[j.ID]
	if !ok {
		e = &entry{id: j.ID, idx: -1, interval: w.s.cfg.PollMin, next: now.Add(jitter(w.s.cfg.PollMin)), added: now}
		w.entries[j.ID] = e
		e.state, e.cold, e.started = j.State, j.ColdStart, !j.StartedAt.IsZero()
		e.progress = j.Progress
	}
	e.runpodID = j.RunPodID
	e.unknown = j.RunPodID == ""
	e.webhook = j.WebhookHash != ""
	e.submitted, e.deadline, e.created = j.SubmittedAt, j.Deadline, j.CreatedAt
	e.cancel = e.cancel || j.CancelRequested
	if e.cancel && e.idx >= 0 {
		e.next = now
		heap.Fix(&w.due, e.idx)
	}
	if !ok {
		heap.Push(&w.due, e)
	}
	w.poke()
}

// markCancel makes a watched job cancel at its next poll, which is now.
func (w *watcher) markCancel(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.entries[id]; ok {
		e.cancel = true
		if e.idx >= 0 {
			e.next = w.s.clock.Now()
			heap.Fix(&w.due, e.idx)
		}
		w.poke()
	}
}

// drop stops watching id.
func (w *watcher) drop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropLocked(id)
}

func (w *watcher) dropLocked(id string) {
	e, ok := w.entries[id]
	if !ok {
		return
	}
	e.gone = true
	delete(w.entries, id)
	if e.idx >= 0 {
		heap.Remove(&w.due, e.idx)
	}
}

// sync makes the watched set what the store said, at since, this replica
// holds: entries of jobs it no longer holds go (unless they were made after
// since), and jobs at RunPod it holds are watched. A job held while
// submitting is left to this replica's own submitter, which knows its fate.
func (w *watcher) sync(held []*store.Job, since time.Time) {
	ids := make(map[string]bool, len(held))
	for _, j := range held {
		ids[j.ID] = true
	}
	w.mu.Lock()
	for id, e := range w.entries {
		if !ids[id] && e.added.Before(since) {
			w.dropLocked(id)
		}
	}
	var add []*store.Job
	for _, j := range held {
		if _, watched := w.entries[j.ID]; watched || (j.State != store.StateSubmitting && j.RunPodID != "") {
			add = append(add, j)
		}
	}
	w.mu.Unlock()
	for _, j := range add {
		w.add(j)
	}
}

// schedule hands due jobs to the pollers, pacing status calls to PollRate.
func (w *watcher) schedule() {
	s := w.s
	defer close(w.work)
	step := time.Duration(float64(time.Second) / s.cfg.PollRate)
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		var e *entry
		var wait time.Duration = -1
		if len(w.due) > 0 {
			now := s.clock.Now()
			at := w.due[0].next
			if w.rateNext.After(at) {
				at = w.rateNext
			}
			if !at.After(now) {
				e = heap.Pop(&w.due).(*entry)
				w.rateNext = now.Add(step)
				if w.rateNext.Before(at) {
					w.rateNext = at.Add(step)
				}
			} else {
				wait = at.Sub(now)
			}
		}
		w.mu.Unlock()
		if e != nil {
			select {
			case w.work <- e:
			case <-s.life.Done():
				return
			}
			continue
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.Chan()
		}
		select {
		case <-s.life.Done():
			return
		case <-w.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

func (w *watcher) pollLoop() {
	s := w.s
	for e := range w.work {
		// Poll a copy: add and markCancel change the entry meanwhile.
		w.mu.Lock()
		c := *e
		w.mu.Unlock()
		s.jobsWG.Add(1)
		var next time.Duration
		err := recoverPanic(func() error {
			next = w.poll(s.work, &c)
			return nil
		})
		s.jobsWG.Done()
		if err != nil {
			s.log.LogAttrs(s.work, slog.LevelError, "watching a job panicked", slog.String("job", e.id), slog.String("err", err.Error()))
			next = failureBackoffMax
		}
		w.mu.Lock()
		e.state, e.cold, e.started, e.progress = c.state, c.cold, c.started, c.progress
		e.interval, e.failures = c.interval, c.failures
		if e.unknown && !c.unknown {
			e.unknown, e.runpodID, e.submitted = false, c.runpodID, c.submitted
		}
		if next > 0 && !e.gone && w.entries[e.id] == e {
			e.next = s.clock.Now().Add(jitter(next))
			if e.cancel {
				e.next = s.clock.Now()
			}
			heap.Push(&w.due, e)
		} else if w.entries[e.id] == e {
			delete(w.entries, e.id)
		}
		w.mu.Unlock()
		w.poke()
	}
}

// poll checks one job and returns when to check it next (0: it is no longer
// watched).
func (w *watcher) poll(ctx context.Context, e *entry) time.Duration {
	s := w.s
	now := s.clock.Now()
	if e.unknown {
		return w.pollUnknown(ctx, e, now)
	}
	if e.cancel {
		j := &store.Job{ID: e.id, RunPodID: e.runpodID}
		if _, err := s.cancelAtRunPod(ctx, j); err != nil {
			return w.backoff(e)
		}
		return 0
	}
	if now.After(e.deadline) {
		s.metrics.runpodCalls.WithLabelValues("cancel").Inc()
		cst, err := s.rp.Cancel(ctx, e.runpodID)
		if err == nil {
			defer cst.Close()
			if cst.State == runpod.StateCompleted {
				// It finished just in time; the cancel's answer has no output.
				s.metrics.runpodCalls.WithLabelValues("status").Inc()
				st, err := s.rp.Status(ctx, e.runpodID)
				if err != nil {
					return w.backoff(e)
				}
				defer st.Close()
				return w.completeOrGiveUp(ctx, e, st, now)
			}
		} else if !errors.Is(err, runpod.ErrJobNotFound) {
			s.metrics.runpodErrs.WithLabelValues("cancel").Inc()
			s.log.LogAttrs(ctx, slog.LevelWarn, "could not cancel a job past its deadline at RunPod", slog.String("job", e.id), slog.String("err", scrub(err.Error())))
		}
		s.finish(ctx, e.id, store.Finish{State: store.StateTimedOut, At: now, ErrorCode: "timeout",
			Error: fmt.Sprintf("no result within %s (the job was %s); it was cancelled at RunPod", s.cfg.Timeout, statusWord(e))})
		return 0
	}
	s.metrics.runpodCalls.WithLabelValues("status").Inc()
	st, err := s.rp.Status(ctx, e.runpodID)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		if errors.Is(err, runpod.ErrJobNotFound) {
			s.finish(ctx, e.id, store.Finish{State: store.StateFailed, At: now, ErrorCode: "runpod_expired",
				Error: "RunPod no longer knows this job: it was deleted, or its result expired (RunPod keeps results 30 minutes) while nobody was watching"})
			return 0
		}
		s.metrics.runpodErrs.WithLabelValues("status").Inc()
		level := slog.LevelWarn
		if errors.Is(err, runpod.ErrUnauthorized) || errors.Is(err, runpod.ErrEndpointNotFound) {
			level = slog.LevelError
		}
		s.log.LogAttrs(ctx, level, "status check failed; trying again", slog.String("job", e.id), slog.String("err", scrub(err.Error())))
		return w.backoff(e)
	}
	defer st.Close()
	e.failures = 0
	if st.State.Terminal() {
		return w.completeOrGiveUp(ctx, e, st, now)
	}
	u := store.Update{State: e.state, ColdStart: e.cold}
	switch st.State {
	case runpod.StateInQueue:
		u.State = store.StateInQueue
		after := s.cfg.ColdStartAfter
		if !e.cold && after > 0 && !e.submitted.IsZero() && now.Sub(e.submitted) >= after {
			if h := s.health.get(ctx); h == nil || !h.Warm() {
				u.ColdStart = true
			}
		}
	default: // IN_PROGRESS, RUNNING
		u.State, u.ColdStart = store.StateRunning, false
		if !e.started {
			u.StartedAt = now
		}
		if len(st.Output) > 0 && len(st.Output) <= maxProgressBytes && !bytes.Equal(st.Output, e.progress) {
			u.Progress = bytes.Clone(st.Output)
		}
	}
	if u.State == e.state && u.ColdStart == e.cold && u.Progress == nil && u.StartedAt.IsZero() {
		return w.slower(e)
	}
	j, err := s.st.UpdateJob(ctx, e.id, s.cfg.ReplicaID, u)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return 0 // ended elsewhere, or another replica holds it now
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "recording a job's progress failed", slog.String("job", e.id), slog.String("err", err.Error()))
		return w.backoff(e)
	}
	e.state, e.cold, e.started = j.State, j.ColdStart, !j.StartedAt.IsZero()
	if u.Progress != nil {
		e.progress = u.Progress
	}
	if u.ColdStart && !e.cold {
		e.cold = true
	}
	if j.ColdStart {
		s.log.LogAttrs(ctx, slog.LevelInfo, "cold start: no worker is up, the model is loading", slog.String("job", e.id),
			slog.Duration("queued", now.Sub(e.submitted).Round(time.Second)))
	}
	s.changed(j)
	e.interval = s.cfg.PollMin
	return e.interval
}

// completeOrGiveUp ends a job RunPod reports ended. When that fails (the
// output store or an output's URL does not answer) it is tried again later,
// until the job's deadline and a grace period have passed: then the job
// fails, saying why.
func (w *watcher) completeOrGiveUp(ctx context.Context, e *entry, st *runpod.Status, now time.Time) time.Duration {
	s := w.s
	err := s.complete(ctx, e.id, st)
	if err == nil || ctx.Err() != nil {
		return 0
	}
	if now.After(e.deadline.Add(s.cfg.UnknownGrace)) {
		s.log.LogAttrs(ctx, slog.LevelError, "giving up on a job's outputs", slog.String("job", e.id), slog.String("err", scrub(err.Error())))
		s.finish(ctx, e.id, store.Finish{State: store.StateFailed, At: now, ErrorCode: "output_unavailable", RunPodID: st.ID,
			Error: "the job completed at RunPod but its output could not be stored: " + truncate.Bytes(scrub(err.Error()), 500)})
		return 0
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "ending a job failed; trying again", slog.String("job", e.id), slog.String("err", scrub(err.Error())))
	return w.backoff(e)
}

// pollUnknown follows a job whose /run answer was lost: its webhook (or a
// late MarkSubmitted) may yet give it an id; after its deadline and a grace
// period, it fails as unknown.
func (w *watcher) pollUnknown(ctx context.Context, e *entry, now time.Time) time.Duration {
	s := w.s
	j, err := s.st.GetJob(ctx, e.id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0
		}
		return w.backoff(e)
	}
	if j.State.Terminal() {
		return 0
	}
	if j.RunPodID != "" {
		e.unknown, e.runpodID, e.state, e.submitted = false, j.RunPodID, j.State, j.SubmittedAt
		return s.cfg.PollMin
	}
	if !e.webhook || now.After(e.deadline.Add(s.cfg.UnknownGrace)) {
		s.finish(ctx, e.id, s.unknownFate())
		return 0
	}
	return unknownPoll
}

// slower backs a job's polling off while nothing changes.
func (w *watcher) slower(e *entry) time.Duration {
	limit := w.s.cfg.PollMax
	if e.webhook {
		limit = w.s.cfg.WebhookPollMax
	}
	e.interval = min(max(e.interval*3/2, w.s.cfg.PollMin), limit)
	return e.interval
}

// backoff spaces the checks of a job whose checks fail.
func (w *watcher) backoff(e *entry) time.Duration {
	e.failures++
	return min(w.s.cfg.PollMax<<min(e.failures, 6), failureBackoffMax)
}

func statusWord(e *entry) string {
	switch {
	case e.state == store.StateRunning:
		return "running"
	case e.cold:
		return "waiting for a worker to start (cold start)"
	}
	return "waiting in RunPod's queue"
}

// entryHeap orders entries by their next check.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// leaseLoop renews this replica's leases, follows what changed in the store
// (jobs ended or cancelled elsewhere), and takes over jobs whose replica died.
func (s *Service) leaseLoop() {
	every := s.cfg.LeaseTTL / 3
	timer := s.clock.NewTimer(jitter(every))
	defer timer.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-timer.Chan():
		}
		ctx := s.life
		since := s.clock.Now()
		held, err := s.st.RenewLeases(ctx, s.rp.EndpointID(), s.cfg.ReplicaID, since.Add(s.cfg.LeaseTTL))
		if err != nil {
			if ctx.Err() == nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "renewing leases failed", slog.String("err", err.Error()))
			}
		} else {
			s.watch.sync(held, since)
		}
		if err := s.adopt(ctx, false); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "taking over jobs failed", slog.String("err", err.Error()))
		}
		timer.Reset(jitter(every))
	}
}

// adopt takes over in-flight jobs whose lease expired (and, at start-up,
// this replica's own from a previous run). A claimed job was never sent and
// goes back to the queue; a submitting one without an id waits for its
// webhook or fails as unknown; the others are watched.
func (s *Service) adopt(ctx context.Context, own bool) error {
	for {
		now := s.clock.Now()
		jobs, err := s.st.AdoptJobs(ctx, store.AdoptParams{Endpoint: s.rp.EndpointID(), Replica: s.cfg.ReplicaID,
			Now: now, LeaseUntil: now.Add(s.cfg.LeaseTTL), Max: adoptBatch, IncludeOwn: own})
		if err != nil {
			return err
		}
		for _, j := range jobs {
			switch {
			case j.State == store.StateClaimed:
				if _, err := s.st.Requeue(ctx, j.ID, s.cfg.ReplicaID, store.Requeue{NotBefore: now}); err != nil && !errors.Is(err, store.ErrConflict) {
					return err
				}
				s.disp.poke()
			case j.State == store.StateSubmitting && j.RunPodID == "" && j.WebhookHash == "":
				s.finish(ctx, j.ID, s.unknownFate())
			default:
				s.watch.add(j)
			}
		}
		if len(jobs) > 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "took over jobs", slog.Int("jobs", len(jobs)), slog.Bool("own", own))
		}
		if len(jobs) < adoptBatch {
			return nil
		}
	}
}

// healthCache keeps the endpoint's /health answer for a while: cold-start
// checks of many jobs and readiness probes share one call.
type healthCache struct {
	s  *Service
	mu sync.Mutex
	h  *runpod.Health
	at time.Time
	// err is the last call's error.
	err error
}

const healthTTL = 10 * time.Second

// get returns the endpoint's health, or nil when /health fails.
func (c *healthCache) get(ctx context.Context) *runpod.Health {
	h, _ := c.check(ctx)
	return h
}

func (c *healthCache) check(ctx context.Context) (*runpod.Health, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.s.clock.Since(c.at) < healthTTL {
		return c.h, c.err
	}
	c.s.metrics.runpodCalls.WithLabelValues("health").Inc()
	h, err := c.s.rp.Health(ctx)
	if err != nil && ctx.Err() != nil {
		// The caller gave up (a readiness probe's timeout): that is not
		// RunPod's answer, and caching it would call the endpoint down and
		// every queued job a cold start for healthTTL.
		return c.h, err
	}
	if err != nil {
		c.s.metrics.runpodErrs.WithLabelValues("health").Inc()
	}
	c.record(h, err)
	return c.h, c.err
}

// record keeps an answer, from a call of ours or of the keep-warm.
func (c *healthCache) record(h *runpod.Health, err error) {
	c.h, c.err, c.at = h, err, c.s.clock.Now()
	if h != nil {
		w := c.s.metrics.workers
		w.WithLabelValues("idle").Set(float64(h.Workers.Idle))
		w.WithLabelValues("running").Set(float64(h.Workers.Running))
		w.WithLabelValues("initializing").Set(float64(h.Workers.Initializing))
		w.WithLabelValues("ready").Set(float64(h.Workers.Ready))
		w.WithLabelValues("throttled").Set(float64(h.Workers.Throttled))
		w.WithLabelValues("unhealthy").Set(float64(h.Workers.Unhealthy))
	}
}
