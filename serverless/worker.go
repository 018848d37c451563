package serverless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/internal/redact"
)

// Worker takes jobs from RunPod, runs them with the configured handler and
// posts their results, with a heartbeat and the per-job stop channel beside
// it. It is what runpod-python's serverless.start runs, as a value with a
// lifecycle: New, Start, then Stop (soft) or StopAndCancel (hard).
type Worker struct {
	cfg        *Config
	log        *slog.Logger
	clock      clockwork.Clock
	urls       endpoints
	exec       *executor
	scrub      redact.Secrets
	pingClient *http.Client // heartbeat: a transport of its own
	stopClient *http.Client // job-stop long-poll: a transport of its own
	ownClient  bool         // cfg.HTTPClient was made by WithDefaults

	mu          sync.Mutex
	started     bool
	running     map[string]*jobRun // jobs taken and not yet reported
	concurrency int
	cancelled   int // jobs a hard stop cancelled

	slotFreed chan struct{} // a job left running (cap 1)
	idle      chan struct{} // a job left running, for the supervisor (cap 1)
	softCh    chan struct{} // closed: take no more jobs
	hardCh    chan struct{} // closed: cancel running jobs
	done      chan struct{} // closed: every goroutine is gone
	softOnce  sync.Once
	hardOnce  sync.Once

	takeCtx     context.Context // ends when taking stops
	takeCancel  context.CancelFunc
	loopsCtx    context.Context // heartbeat and job-stop poll
	loopsCancel context.CancelFunc
	jobsCtx     context.Context // parent of job contexts
	postCtx     context.Context // result posts
	postCancel  context.CancelFunc

	takeDone chan struct{}  // closed when the take loop has returned
	loopsWG  sync.WaitGroup // heartbeat, job-stop poll
	jobsWG   sync.WaitGroup // job goroutines that were not abandoned
}

// New returns a Worker for cfg, after applying defaults and checking every
// field. A local-mode config (no TakeURL) is refused: run it with RunLocal or
// a LocalAPI instead, or through Start, which picks the mode.
func New(cfg *Config) (*Worker, error) {
	if cfg == nil {
		return nil, errors.New("serverless: nil Config")
	}
	if cfg.Local() {
		return nil, errors.New("serverless: no job-take URL (RUNPOD_WEBHOOK_GET_JOB is unset), which means local mode: use RunLocal or NewLocalAPI, or Start, which runs the test input")
	}
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	ownClient := cfg.HTTPClient == nil
	urls, err := newEndpoints(c)
	if err != nil {
		return nil, err
	}
	scrub := redact.NewSecrets(c.APIKey)
	pingTransport := newTransport()
	pingTransport.MaxIdleConnsPerHost = 2
	stopTransport := newTransport()
	stopTransport.MaxIdleConnsPerHost = 2
	w := &Worker{
		cfg:         c,
		log:         c.Logger,
		clock:       c.Clock,
		urls:        urls,
		exec:        newExecutor(c, scrub),
		scrub:       scrub,
		pingClient:  &http.Client{Transport: pingTransport},
		stopClient:  &http.Client{Transport: stopTransport},
		ownClient:   ownClient,
		running:     make(map[string]*jobRun),
		concurrency: c.Concurrency,
		slotFreed:   make(chan struct{}, 1),
		idle:        make(chan struct{}, 1),
		softCh:      make(chan struct{}),
		hardCh:      make(chan struct{}),
		done:        make(chan struct{}),
		takeDone:    make(chan struct{}),
	}
	return w, nil
}

// ID returns the worker id reported to RunPod.
func (w *Worker) ID() string { return w.cfg.WorkerID }

// Start runs the fitness checks, then starts taking jobs, the heartbeat and
// the job-stop poll, and returns. Job contexts carry ctx's values but not its
// cancellation; cancelling ctx hard-stops the worker as StopAndCancel does.
// Start returns an error when called twice or when a fitness check fails
// (RunPod is then told the worker is unhealthy).
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("serverless: worker already started")
	}
	w.started = true
	w.mu.Unlock()

	if err := w.runFitnessChecks(ctx); err != nil {
		w.finishWithoutRunning()
		return err
	}

	base := context.WithoutCancel(ctx)
	w.mu.Lock()
	w.takeCtx, w.takeCancel = context.WithCancel(base)
	w.loopsCtx, w.loopsCancel = context.WithCancel(base)
	w.postCtx, w.postCancel = context.WithCancel(base)
	w.jobsCtx = base
	select {
	case <-w.softCh: // Stop came during the fitness checks
		w.takeCancel()
	default:
	}
	w.mu.Unlock()

	w.log.Info(fmt.Sprintf("--- Starting Serverless Worker | Version %s ---", w.cfg.RunpodVersion),
		slog.String("worker_id", w.cfg.WorkerID), slog.Int("concurrency", w.concurrency))

	if w.urls.ping != "" {
		w.loopsWG.Add(1)
		go w.heartbeat(w.loopsCtx)
	} else {
		w.log.Warn("RUNPOD_WEBHOOK_PING is not set; no heartbeat is sent")
	}
	w.loopsWG.Add(1)
	go w.stopLoop(w.loopsCtx)
	go w.takeLoop(w.takeCtx)
	go w.supervise(ctx)
	return nil
}

// finishWithoutRunning marks a worker that never ran as stopped.
func (w *Worker) finishWithoutRunning() {
	w.softOnce.Do(func() { close(w.softCh) })
	w.hardOnce.Do(func() { close(w.hardCh) })
	close(w.done)
}

// Stop stops taking jobs and waits for the running ones to finish and their
// results to be posted; the heartbeat keeps them alive meanwhile. A job-take
// under way is given Config.TakeGrace to be answered, and a job it brings is
// run like the others, so a job RunPod hands out as the worker stops is not
// left IN_PROGRESS with no one running it. If ctx ends
// first, it hard-stops as StopAndCancel does and returns an error wrapping
// ctx.Err(). Stop returns only when the worker's goroutines are gone (except
// handlers that ignore cancellation, which are abandoned after CancelGrace);
// it is safe to call more than once and from several goroutines.
func (w *Worker) Stop(ctx context.Context) error {
	if w.stopUnstarted() {
		return nil
	}
	w.requestSoft()
	select {
	case <-w.done:
		return nil
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.requestHard()
		<-w.done
		w.mu.Lock()
		n := w.cancelled
		w.mu.Unlock()
		if n == 0 {
			return nil // the jobs finished as the deadline passed
		}
		return fmt.Errorf("serverless: %d job(s) still running when the stop deadline passed were cancelled and reported FAILED: %w", n, ctx.Err())
	}
}

// StopAndCancel stops taking jobs, cancels the running jobs' contexts (cause
// ErrWorkerShutdown) and reports each as FAILED ("worker shut down before the
// job finished") unless its handler still returns a result, so no client is
// left waiting for a timeout. It waits for the worker's goroutines like Stop;
// if ctx ends first it returns ctx.Err() while the shutdown completes.
func (w *Worker) StopAndCancel(ctx context.Context) error {
	if w.stopUnstarted() {
		return nil
	}
	w.requestHard()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the worker has stopped: after Stop or StopAndCancel,
// or on its own after draining when Config.RefreshWorker is set.
func (w *Worker) Done() <-chan struct{} { return w.done }

// stopUnstarted makes Stop on a worker that never started a no-op that
// leaves it stopped.
func (w *Worker) stopUnstarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return false
	}
	w.started = true
	w.softOnce.Do(func() { close(w.softCh) })
	w.hardOnce.Do(func() { close(w.hardCh) })
	close(w.done)
	return true
}

// requestSoft stops taking jobs. The take loop's context is cancelled here,
// not later by the supervisor, so a slot freed right after cannot start one
// more take; a take already under way is left to watchTake.
func (w *Worker) requestSoft() {
	w.softOnce.Do(func() {
		w.mu.Lock()
		close(w.softCh)
		if w.takeCancel != nil {
			w.takeCancel()
		}
		w.mu.Unlock()
	})
}

func (w *Worker) requestHard() {
	w.requestSoft()
	w.hardOnce.Do(func() { close(w.hardCh) })
}

// supervise waits for a stop request and carries it out: stop taking, let
// running jobs finish (or cancel them on a hard stop), then stop the
// heartbeat and the job-stop poll.
func (w *Worker) supervise(startCtx context.Context) {
	defer close(w.done)
	select {
	case <-w.softCh:
	case <-startCtx.Done():
		w.requestHard()
	}
	w.takeCancel()
	<-w.takeDone
	w.log.Info("Worker stopping: no more jobs are taken", slog.Int("running", w.runningCount()))

	// Soft phase: wait for the running jobs, unless a hard stop comes.
	hard := false
	for !hard && w.runningCount() > 0 {
		select {
		case <-w.idle:
		case <-w.hardCh:
			hard = true
		case <-startCtx.Done():
			w.requestHard()
			hard = true
		}
	}
	if hard {
		w.cancelRunning()
	}
	// Let the job goroutines post their results. On a hard stop, posts
	// still retrying after CancelGrace are cut short.
	posted := make(chan struct{})
	go func() {
		w.jobsWG.Wait()
		close(posted)
	}()
	if hard {
		t := w.clock.NewTimer(w.cfg.CancelGrace)
		select {
		case <-posted:
		case <-t.Chan():
			w.log.Warn("Hard stop: giving up on result posts still being retried")
			w.postCancel()
		}
		t.Stop()
	}
	<-posted
	w.postCancel()
	w.loopsCancel()
	w.loopsWG.Wait()
	w.pingClient.CloseIdleConnections()
	w.stopClient.CloseIdleConnections()
	if w.ownClient {
		w.cfg.HTTPClient.CloseIdleConnections()
	}
	w.log.Info("Worker stopped")
}

// cancelRunning cancels every running job and waits CancelGrace for their
// handlers to return. The handlers that do not are abandoned: their FAILED
// result is posted here and their goroutines are no longer waited for.
func (w *Worker) cancelRunning() {
	w.mu.Lock()
	runs := make([]*jobRun, 0, len(w.running))
	for _, r := range w.running {
		runs = append(runs, r)
	}
	w.cancelled = len(runs)
	w.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	w.log.Warn("Hard stop: cancelling running jobs", slog.Int("jobs", len(runs)))
	for _, r := range runs {
		r.cancel(ErrWorkerShutdown)
	}
	grace := w.clock.NewTimer(w.cfg.CancelGrace)
	defer grace.Stop()
	for _, r := range runs {
		select {
		case <-r.handlerDone:
			continue
		case <-grace.Chan():
		}
		break
	}
	var posts sync.WaitGroup
	for _, r := range runs {
		select {
		case <-r.handlerDone:
			continue
		default:
		}
		if !r.claimFinal() {
			if r.state.Load() == runStopped {
				// Stopped by RunPod: nothing to post, only stop waiting.
				w.abandon(r)
			}
			continue
		}
		w.log.Error("Handler did not return after cancellation; reporting the job FAILED and abandoning it",
			slog.String(JobIDKey, r.job.ID), slog.Duration("waited", w.cfg.CancelGrace))
		posts.Add(1)
		go func() {
			defer posts.Done()
			ctx, cancel := clockwork.WithTimeout(w.postCtx, w.clock, w.cfg.CancelGrace)
			defer cancel()
			out := w.exec.meta.failure(shutdownMessage, nil, false)
			w.postFinalLocked(ctx, r, out, w.cfg.StreamHandler != nil)
		}()
		w.abandon(r)
	}
	posts.Wait()
}

// shutdownMessage is the error of a job cut short by a hard stop.
const shutdownMessage = "worker shut down before the job finished"

// abandon stops waiting for a job whose handler ignores cancellation. Like
// endJob, it releases the job only if it is still registered, so the two
// never release it twice.
func (w *Worker) abandon(r *jobRun) {
	w.endJob(r)
}

func (w *Worker) runningCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

func (w *Worker) signalFreed() {
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
	select {
	case w.idle <- struct{}{}:
	default:
	}
}

// takeLoop takes jobs while the worker has room, until ctx ends.
func (w *Worker) takeLoop(ctx context.Context) {
	defer close(w.takeDone)
	failures := 0
	for ctx.Err() == nil {
		conc := w.evalConcurrency()
		w.mu.Lock()
		inFlight := len(w.running)
		w.mu.Unlock()
		need := conc - inFlight
		if need <= 0 {
			w.waitForSlot(ctx)
			continue
		}
		began := time.Now()
		jobs, err := w.takeJobs(ctx, need, inFlight > 0)
		if err == nil && len(jobs) == 0 {
			// RunPod holds an empty take open (a long-poll), so the next
			// one can follow at once. A server that answers at once
			// instead would have the loop spin; keep a small gap.
			paceEmptyTake(ctx, time.Since(began))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := w.takeBackoff(err, failures)
			w.logTakeError(err, wait)
			sleepClock(ctx, w.clock, wait)
			continue
		}
		failures = 0
		if len(jobs) > need {
			w.log.Warn(fmt.Sprintf("job-take returned %d jobs for %d free slots; running them all", len(jobs), need))
		}
		for _, j := range jobs {
			w.startJob(j)
		}
	}
}

// minEmptyTakeGap is the least time between two empty job-takes. It is
// measured and waited in real time: it guards the network, like a timeout.
const minEmptyTakeGap = 50 * time.Millisecond

// paceEmptyTake waits out the rest of minEmptyTakeGap after an empty take
// that took elapsed.
func paceEmptyTake(ctx context.Context, elapsed time.Duration) {
	if elapsed >= minEmptyTakeGap {
		return
	}
	t := time.NewTimer(minEmptyTakeGap - elapsed)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitForSlot waits for a running job to end. With a concurrency modifier it
// also wakes every RecheckInterval, as the modifier may raise the target.
func (w *Worker) waitForSlot(ctx context.Context) {
	var tick <-chan time.Time
	if w.cfg.ConcurrencyModifier != nil {
		t := w.clock.NewTimer(w.cfg.RecheckInterval)
		defer t.Stop()
		tick = t.Chan()
	}
	select {
	case <-w.slotFreed:
	case <-tick:
	case <-ctx.Done():
	}
}

// maxRetryAfter caps a server's Retry-After on job-take.
const maxRetryAfter = 5 * time.Minute

// takeBackoff is the pause after a failed take: the server's Retry-After or
// RateLimitDelay after a 429, else ErrorBackoff doubling per failure up to
// ErrorBackoffMax, with ±20% jitter.
func (w *Worker) takeBackoff(err error, failures int) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests {
		if ae.RetryAfter > 0 {
			return min(ae.RetryAfter, maxRetryAfter)
		}
		return w.cfg.RateLimitDelay
	}
	d := w.cfg.ErrorBackoff
	for i := 1; i < failures && d < w.cfg.ErrorBackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.ErrorBackoffMax)
	jitter := 0.8 + 0.4*unitFloat(w.cfg.Rand)
	return time.Duration(float64(d) * jitter)
}

func (w *Worker) logTakeError(err error, wait time.Duration) {
	msg := fmt.Sprintf("Failed to get job. | %s | retrying in %v", w.scrub.String(err.Error()), wait.Round(time.Millisecond))
	switch {
	case errors.Is(err, ErrTooManyRequests):
		w.log.Info(msg)
	case errors.Is(err, ErrUnauthorized):
		w.log.Error(msg + " | RunPod refused RUNPOD_AI_API_KEY")
	default:
		w.log.Error(msg)
	}
}

// evalConcurrency asks the modifier for the number of jobs to run at once,
// keeping the value in range and surviving a panicking modifier.
func (w *Worker) evalConcurrency() int {
	w.mu.Lock()
	cur := w.concurrency
	w.mu.Unlock()
	mod := w.cfg.ConcurrencyModifier
	if mod == nil {
		return cur
	}
	next := cur
	func() {
		defer func() {
			if p := recover(); p != nil {
				w.log.Error(fmt.Sprintf("concurrency modifier panicked: %v; keeping concurrency %d", p, cur))
				next = cur
			}
		}()
		next = mod(cur)
	}()
	switch {
	case next < 1:
		w.log.Warn(fmt.Sprintf("concurrency modifier returned %d; using 1", next))
		next = 1
	case next > ConcurrencyLimit:
		w.log.Warn(fmt.Sprintf("concurrency modifier returned %d; using the limit %d", next, ConcurrencyLimit))
		next = ConcurrencyLimit
	}
	if next != cur {
		w.log.Info(fmt.Sprintf("Concurrency set to %d", next))
		w.mu.Lock()
		w.concurrency = next
		w.mu.Unlock()
	}
	return next
}

// startJob registers a taken job and runs it on a goroutine of its own.
func (w *Worker) startJob(j *Job) {
	j.log = w.exec.jobLogger(j)
	r := newJobRun(w.jobsCtx, j)
	r.aggregate = w.cfg.ReturnAggregateStream
	r.maxBytes = w.cfg.MaxResultBytes
	r.postProgress = func(ctx context.Context, body []byte) error {
		u := appendQuery(jobURL(w.urls.done, j.ID), "isStream", "false")
		once := RetryPolicy{Attempts: 1}
		return w.post(ctx, "job-done", u, j.ID, body, once, progressTimeout, false)
	}
	if w.urls.stream != "" {
		r.postChunk = func(ctx context.Context, body []byte) error {
			u := appendQuery(jobURL(w.urls.stream, j.ID), "isStream", "false")
			return w.post(ctx, "job-stream", u, j.ID, body, w.cfg.ResultRetry, progressTimeout, true)
		}
	}
	w.mu.Lock()
	if _, dup := w.running[j.ID]; dup {
		w.mu.Unlock()
		r.cancel(nil)
		w.log.Warn("job-take returned a job that is already running; ignoring the copy", slog.String(JobIDKey, j.ID))
		return
	}
	w.running[j.ID] = r
	w.mu.Unlock()
	w.jobsWG.Add(1)
	go w.runJob(r)
}

// runJob runs one job to its end and reports it.
func (w *Worker) runJob(r *jobRun) {
	log := r.job.Logger()
	log.Info("Started.")
	out, isStream := w.exec.execute(r)

	switch r.state.Load() {
	case runStopped:
		log.Info("Stopped by RunPod; no result is posted")
		w.endJob(r)
		return
	case runFinished:
		return // abandoned: cancelRunning reported it and released it
	}
	if errors.Is(context.Cause(r.ctx), ErrWorkerShutdown) && out.failed {
		out = w.exec.meta.failure(shutdownMessage, nil, false)
	}
	if !r.claimFinal() {
		if r.state.Load() == runStopped {
			log.Info("Stopped by RunPod; no result is posted")
			w.endJob(r)
		}
		return
	}
	w.postFinalLocked(w.postCtx, r, out, isStream)
	r.cancel(nil)
	if out.stopPod && w.cfg.RefreshWorker {
		w.log.Info("refresh_worker is set: no more jobs are taken; the worker stops once the running jobs finish")
		w.requestSoft()
	}
	w.endJob(r)
}

// postFinalLocked posts the final result while holding the job's post lock,
// so it goes out after any progress update already under way.
func (w *Worker) postFinalLocked(ctx context.Context, r *jobRun, out outcome, isStream bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.postFinal(ctx, r.job.ID, out, isStream)
}

// endJob removes a finished job from the running set.
func (w *Worker) endJob(r *jobRun) {
	w.mu.Lock()
	owned := w.running[r.job.ID] == r
	if owned {
		delete(w.running, r.job.ID)
	}
	w.mu.Unlock()
	if owned {
		w.jobsWG.Done()
		w.signalFreed()
	}
}

// runningIDs returns the ids of the jobs in flight.
func (w *Worker) runningIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.running))
	for id := range w.running {
		ids = append(ids, id)
	}
	return ids
}

// sleepClock waits d on clock; it returns false when ctx ends first.
func sleepClock(ctx context.Context, clock clockwork.Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
