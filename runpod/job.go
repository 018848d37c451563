package runpod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Defaults of WaitOptions.
const (
	// WaitTimeoutDefault is how long Wait waits before it gives up and
	// cancels the job: 6 minutes, enough for a cold start and a long run.
	WaitTimeoutDefault = 6 * time.Minute
	// ColdStartAfterDefault is how long a job waits in the queue before Wait
	// checks for a cold start.
	ColdStartAfterDefault = 30 * time.Second
)

// WaitOptions tune Wait. The zero value (or nil) gives the defaults.
type WaitOptions struct {
	// Timeout is the overall deadline (WaitTimeoutDefault when 0; no
	// deadline when negative). When it passes, Wait cancels the job at
	// RunPod and returns a *WaitError matching ErrTimeout.
	Timeout time.Duration
	// ColdStartAfter is how long the job may sit IN_QUEUE before Wait asks
	// /health whether any worker is up (ColdStartAfterDefault when 0; never
	// when negative). With none up, it reports EventColdStart: the endpoint
	// is starting a worker and loading the model.
	ColdStartAfter time.Duration
	// OnEvent, when set, is called from Wait's goroutine for every event:
	// state changes, progress outputs, cold start, queue reports. It should
	// return quickly.
	OnEvent func(Event)
	// LeaveRunning keeps the job running at RunPod when Wait gives up
	// (deadline or context); by default it is cancelled so nobody pays for
	// abandoned work.
	LeaveRunning bool
}

func (o *WaitOptions) withDefaults() WaitOptions {
	var w WaitOptions
	if o != nil {
		w = *o
	}
	if w.Timeout == 0 {
		w.Timeout = WaitTimeoutDefault
	}
	if w.ColdStartAfter == 0 {
		w.ColdStartAfter = ColdStartAfterDefault
	}
	return w
}

// EventKind says what an Event reports.
type EventKind int

// The events Wait reports.
const (
	// EventState: the job changed state (Event.State).
	EventState EventKind = iota + 1
	// EventProgress: a running job reported progress (Event.Progress).
	EventProgress
	// EventColdStart: the job has been queued longer than ColdStartAfter and
	// no worker is up (or /health could not say): a worker is starting and
	// loading the model. Reported once.
	EventColdStart
	// EventQueued: the job is still queued although workers are up; Health
	// says how many jobs are queued and running. Reported every
	// ColdStartAfter while queued.
	EventQueued
)

func (k EventKind) String() string {
	switch k {
	case EventState:
		return "state"
	case EventProgress:
		return "progress"
	case EventColdStart:
		return "cold-start"
	case EventQueued:
		return "queued"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is something Wait saw happen to a job.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// JobID is the job's id.
	JobID string
	// State is the job's state when the event happened.
	State State
	// Elapsed is the time since the job was submitted (or since Wait started,
	// for a job handle made with Client.Job).
	Elapsed time.Duration
	// Progress is the output of an IN_PROGRESS status, for EventProgress.
	Progress []byte
	// Health is the endpoint's health, for EventColdStart and EventQueued
	// (nil if /health failed).
	Health *Health
}

// Job is a handle on a submitted job.
type Job struct {
	// ID is the job's id.
	ID string
	// State is the state RunPod reported at submission.
	State State
	// Submitted is when the job was submitted (by the client's clock), or
	// when the handle was made.
	Submitted time.Time

	client  *Client
	release func()
}

func (c *Client) newJob(id string, state State, release func()) *Job {
	if release == nil {
		release = func() {}
	}
	return &Job{ID: id, State: state, Submitted: c.clock.Now(), client: c, release: release}
}

// Job returns a handle on an existing job, e.g. one submitted by another
// process. It holds no Limiter slot.
func (c *Client) Job(id string) (*Job, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	return c.newJob(id, "", nil), nil
}

// Release gives back the job's Limiter slot, for a caller that hands the job
// to something else (a webhook) instead of waiting. Safe to call twice.
func (j *Job) Release() { j.release() }

// Status returns the job's status; see Client.Status.
func (j *Job) Status(ctx context.Context) (*Status, error) {
	st, err := j.client.Status(ctx, j.ID)
	if err == nil && st.State.Terminal() {
		j.release()
	}
	return st, err
}

// Cancel cancels the job; see Client.Cancel.
func (j *Job) Cancel(ctx context.Context) (*Status, error) {
	st, err := j.client.Cancel(ctx, j.ID)
	if err == nil {
		j.release()
	}
	return st, err
}

// Run submits a job (POST /run) and returns a handle to wait on. With a
// Limiter, it first waits for a free slot. A submission whose answer is lost
// is not sent again: the error then matches ErrMaybeSubmitted.
func (c *Client) Run(ctx context.Context, req *Request) (*Job, error) {
	return c.submit(ctx, req, true)
}

// submit POSTs /run, holding a Limiter slot for the job when limited.
func (c *Client) submit(ctx context.Context, req *Request, limited bool) (*Job, error) {
	body, err := req.encode()
	if err != nil {
		return nil, err
	}
	if err := c.checkPayload("/run", body); err != nil {
		return nil, err
	}
	release := func() {}
	if limited {
		if release, err = c.limiter.acquire(ctx); err != nil {
			return nil, err
		}
	}
	var ans submitAnswer
	err = c.do(ctx, &call{method: http.MethodPost, path: "/run", body: body, submit: true},
		func(resp *http.Response) error { return ans.decode(resp) })
	if err == nil && ans.ID == "" {
		err = &SubmitError{Path: "/run", Err: errors.New("the answer has no job id")}
	}
	if err != nil {
		release()
		return nil, err
	}
	if ans.Status == "" {
		ans.Status = StateInQueue
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "runpod: job submitted", slog.String("job", ans.ID))
	return c.newJob(ans.ID, ans.Status, release), nil
}

// RunSyncOptions tune RunSync.
type RunSyncOptions struct {
	// Wait is how long RunPod holds the /runsync answer while the job runs:
	// 1 s to 300 s, RunPod's default (90 s) when 0. It is shortened to fit
	// the Timeout.
	Wait time.Duration
	// WaitOptions say how to keep waiting when the job has not ended by then,
	// and bound the whole call.
	WaitOptions
}

// RunSync submits a job with POST /runsync and returns its terminal status.
// When RunPod's wait ends before the job does, it keeps waiting on the job as
// Wait does, with the same deadline, cancellation and events. A job that did
// not complete returns its status and a *JobError. If ctx ends before RunPod
// answers /runsync, the job's id is not known and it cannot be cancelled:
// use Run for jobs you may abandon early.
func (c *Client) RunSync(ctx context.Context, req *Request, opts *RunSyncOptions) (*Status, error) {
	var o RunSyncOptions
	if opts != nil {
		o = *opts
	}
	if o.Wait != 0 && (o.Wait < minServerWait || o.Wait > maxServerWait) {
		return nil, fmt.Errorf("runpod: RunSync wait %s: RunPod accepts 1s to 300s", o.Wait)
	}
	wo := o.WaitOptions.withDefaults()
	body, err := req.encode()
	if err != nil {
		return nil, err
	}
	if err := c.checkPayload("/runsync", body); err != nil {
		return nil, err
	}
	start := c.clock.Now()
	release, err := c.limiter.acquire(ctx)
	if err != nil {
		return nil, err
	}
	serverWait := o.Wait
	if serverWait == 0 {
		serverWait = 90 * time.Second
	}
	if wo.Timeout > 0 && serverWait > wo.Timeout {
		// RunPod must answer before our deadline, or we could not cancel the
		// job: we would not know its id.
		serverWait = max(minServerWait, wo.Timeout)
	}
	cl := &call{method: http.MethodPost, path: "/runsync", body: body, submit: true, timeout: serverWait + requestSlack}
	if o.Wait != 0 || serverWait != 90*time.Second {
		cl.query = url.Values{"wait": {strconv.FormatInt(serverWait.Milliseconds(), 10)}}
	}
	var st *Status
	err = c.do(ctx, cl, func(resp *http.Response) error {
		s, err := c.readStatus(resp.Body, resp.ContentLength)
		st = s
		return err
	})
	if err == nil && st.ID == "" && !st.State.Terminal() {
		_ = st.Close()
		err = &SubmitError{Path: "/runsync", Err: errors.New("the answer has no job id to follow")}
	}
	if err != nil {
		release()
		return nil, err
	}
	if st.State.Terminal() {
		release()
		return st, st.Err()
	}
	j := c.newJob(st.ID, st.State, release)
	j.Submitted = start
	_ = st.Close()
	return j.wait(ctx, wo, start)
}

// Wait waits until the job ends and returns its terminal status. A job that
// did not complete (FAILED, CANCELLED, TIMED_OUT) returns its status and a
// *JobError. If the deadline passes or ctx is done first, Wait cancels the
// job at RunPod (unless LeaveRunning) and returns a *WaitError.
//
// Wait long-polls /status-sync, so it learns of the end within moments; when
// the endpoint has no such route it polls /status, fast at first and backing
// off to the client's polling cap.
func (j *Job) Wait(ctx context.Context, opts *WaitOptions) (*Status, error) {
	return j.wait(ctx, opts.withDefaults(), j.client.clock.Now())
}

// waiter is the state of one Wait.
type waiter struct {
	j        *Job
	c        *Client
	o        WaitOptions
	start    time.Time
	deadline time.Time // zero: none
	state    State

	progress     []byte
	coldReported bool
	nextHealth   time.Time
}

func (j *Job) wait(ctx context.Context, o WaitOptions, start time.Time) (*Status, error) {
	c := j.client
	w := &waiter{j: j, c: c, o: o, start: start, state: j.State}
	if o.Timeout > 0 {
		w.deadline = start.Add(o.Timeout)
	}
	if o.ColdStartAfter > 0 {
		w.nextHealth = j.Submitted.Add(o.ColdStartAfter)
	}
	interval := c.pollMin
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, w.abandon(ctx, err)
		}
		remaining := time.Duration(1<<63 - 1)
		if !w.deadline.IsZero() {
			remaining = w.deadline.Sub(c.clock.Now())
			if remaining <= 0 {
				return nil, w.abandon(ctx, ErrTimeout)
			}
		}
		polled := c.clock.Now()
		st, longPolled, err := w.poll(ctx, remaining)
		if err != nil {
			if ctx.Err() != nil {
				return nil, w.abandon(ctx, ctx.Err())
			}
			// Each poll already retried; a few failed polls in a row mean
			// RunPod is not coming back soon.
			if failures++; !transient(err) || failures > maxPollFailures {
				j.release()
				return nil, fmt.Errorf("runpod: waiting for job %s: %w", j.ID, err)
			}
			c.log.LogAttrs(ctx, slog.LevelWarn, "runpod: status check failed; still waiting",
				slog.String("job", j.ID), slog.String("err", err.Error()))
		} else {
			failures = 0
			w.observe(st)
			if st.State.Terminal() {
				j.release()
				return st, st.Err()
			}
			_ = st.Close()
			w.checkColdStart(ctx)
		}
		// Pace the next check. A long poll paces itself, unless RunPod
		// answered early.
		var pause time.Duration
		switch {
		case err == nil && longPolled:
			if c.clock.Now().Sub(polled) < c.pollMin {
				pause = c.pollMin
			}
		default:
			pause = jitter(interval, c.rand)
			interval = min(interval*3/2, c.pollMax)
		}
		if pause > 0 {
			if !w.deadline.IsZero() {
				pause = min(pause, max(0, w.deadline.Sub(c.clock.Now())))
			}
			if err := c.clock.Sleep(ctx, pause); err != nil {
				return nil, w.abandon(ctx, err)
			}
		}
	}
}

// maxPollFailures is how many failed status checks in a row Wait tolerates.
const maxPollFailures = 3

// jitter spreads a pause by ±10% so that many waiters do not poll in step.
func jitter(d time.Duration, r func() float64) time.Duration {
	return d - d/10 + time.Duration(float64(d/5)*r())
}

// poll asks for the job's status once: by long poll while the endpoint
// supports it, else by /status.
func (w *waiter) poll(ctx context.Context, remaining time.Duration) (*Status, bool, error) {
	c, id := w.c, w.j.ID
	if c.longPoll > 0 && !c.noStatusSync.Load() && remaining >= minServerWait {
		st, err := c.statusSync(ctx, id, min(c.longPoll, remaining.Truncate(time.Millisecond)))
		if err == nil {
			return st, true, nil
		}
		var ae *APIError
		if !errors.As(err, &ae) || (ae.StatusCode != http.StatusNotFound && ae.StatusCode != http.StatusMethodNotAllowed && ae.StatusCode != http.StatusNotImplemented) {
			return nil, true, err
		}
		// 405/501: no such route. 404: no such route, or no such job; /status
		// tells them apart.
		st, err = c.Status(ctx, id)
		if err != nil {
			return nil, false, err
		}
		c.noStatusSync.Store(true)
		c.log.LogAttrs(ctx, slog.LevelInfo, "runpod: endpoint has no /status-sync; polling /status instead",
			slog.Int("code", ae.StatusCode))
		return st, false, nil
	}
	st, err := c.Status(ctx, id)
	return st, false, err
}

// observe reports state changes and progress.
func (w *waiter) observe(st *Status) {
	if st.State == StateRunning {
		st.State = StateInProgress
	}
	if st.State != w.state {
		w.state = st.State
		w.emit(Event{Kind: EventState})
	}
	if st.State == StateInProgress && st.Output != nil && !bytes.Equal(st.Output, w.progress) {
		w.progress = bytes.Clone(st.Output)
		w.emit(Event{Kind: EventProgress, Progress: w.progress})
	}
}

// checkColdStart asks /health about a job queued past ColdStartAfter.
func (w *waiter) checkColdStart(ctx context.Context) {
	if w.state != StateInQueue || w.nextHealth.IsZero() || w.c.clock.Now().Before(w.nextHealth) {
		return
	}
	w.nextHealth = w.c.clock.Now().Add(w.o.ColdStartAfter)
	h, err := w.c.Health(ctx)
	if err != nil {
		w.c.log.LogAttrs(ctx, slog.LevelWarn, "runpod: health check failed", slog.String("err", err.Error()))
		h = nil
	}
	if h != nil && h.Warm() {
		w.emit(Event{Kind: EventQueued, Health: h})
		return
	}
	if !w.coldReported {
		w.coldReported = true
		w.c.log.LogAttrs(ctx, slog.LevelInfo, "runpod: cold start: no worker is up, the model is loading",
			slog.String("job", w.j.ID), slog.Duration("queued", w.c.clock.Now().Sub(w.j.Submitted)))
		w.emit(Event{Kind: EventColdStart, Health: h})
	}
}

func (w *waiter) emit(e Event) {
	if w.o.OnEvent == nil {
		return
	}
	e.JobID = w.j.ID
	e.State = w.state
	e.Elapsed = w.c.clock.Now().Sub(w.j.Submitted)
	w.o.OnEvent(e)
}

// abandon gives up on the job: it cancels it at RunPod (with a short context
// of its own, since ctx may be done) unless asked not to.
func (w *waiter) abandon(ctx context.Context, cause error) error {
	defer w.j.release()
	e := &WaitError{JobID: w.j.ID, State: w.state, Waited: w.c.clock.Now().Sub(w.start), Cause: cause}
	if w.o.LeaveRunning {
		return e
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	st, err := w.c.Cancel(cctx, w.j.ID)
	if err != nil {
		e.CancelErr = err
		w.c.log.LogAttrs(ctx, slog.LevelError, "runpod: could not cancel an abandoned job; it may still run",
			slog.String("job", w.j.ID), slog.String("err", err.Error()))
		return e
	}
	// RunPod answers a cancel with the job as it now is: a job that ended
	// between the last look and the cancel keeps its state, and was not
	// cancelled.
	e.Cancelled = st.State == StateCancelled || !st.State.Terminal()
	if st.State != "" {
		e.State = st.State
	}
	_ = st.Close()
	return e
}

// transient says whether an error may go away by itself: server errors, rate
// limits and network trouble, but not refusals like 401 or 404.
func transient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode == http.StatusRequestTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return !errors.Is(err, errTooLarge)
}
