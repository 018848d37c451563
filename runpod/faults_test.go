package runpod_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// The fault-schedule suite runs the client against the local control plane
// under randomized but reproducible schedules of injected faults: each
// schedule is a fresh emulator with a random mix of 429s (with Retry-After),
// 5xx answers, dropped connections, slow answers, truncated bodies, answers
// dropped after the work was done, and job expiry, on random operations; one
// job submitted with /run or /runsync, followed with Wait or Stream, worked
// by a test worker or driven directly, and ending in a random outcome:
// COMPLETED with an output, FAILED with an error, TIMED_OUT, CANCELLED by a
// third party, or deleted (404).
//
// Every schedule checks that the client reports the right outcome (the
// terminal state with its output or decoded error, ErrMaybeSubmitted exactly
// when the submission's answer was lost, ErrJobNotFound when the job was
// deleted), that a submission reached the emulator once plus once per 429
// (so no job is ever created twice), that each 429's Retry-After was waited
// out, that a third party's cancel was resent once per failure and never
// more, that stream chunks arrive once and in order, and that nothing hangs:
// every schedule runs under a deadline. TestMain's goleak check finds
// goroutines left behind.
//
// A failing schedule prints its seed. Replay it alone with
//
//	COMFYPOD_FAULT_SEED=<seed> go test -race -run '^TestFaultSchedules$' -v ./runpod
//
// or with -run 'TestFaultSchedules/batch=NN/seed=<seed>$'. COMFYPOD_FAULT_SCHEDULES
// sets how many schedules run (1000 by default, 100 with -short), and
// COMFYPOD_FAULT_FIRST_SEED where their seeds start (0), to explore beyond the
// usual ones.

const (
	envFaultSeed      = "COMFYPOD_FAULT_SEED"
	envFaultSchedules = "COMFYPOD_FAULT_SCHEDULES"
	envFaultFirstSeed = "COMFYPOD_FAULT_FIRST_SEED"

	faultSchedulesDefault = 1000
	faultSchedulesShort   = 100
	faultBatch            = 50 // schedules per parallel subtest
	faultConcurrency      = 25 // schedules running at once in a batch
	scheduleDeadline      = 30 * time.Second

	// retryAfterFloor separates Retry-After waits (whole seconds, at least
	// 2 s here) from the client's own pauses (at most about 1 s).
	retryAfterFloor = 1500 * time.Millisecond
)

func TestFaultSchedules(t *testing.T) {
	t.Parallel()
	if v := os.Getenv(envFaultSeed); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", envFaultSeed, v)
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSchedule(t, newSchedule(seed)) })
		return
	}
	n := faultSchedulesDefault
	if testing.Short() {
		n = faultSchedulesShort
	}
	if v := os.Getenv(envFaultSchedules); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envFaultSchedules, v)
		}
	}
	var first uint64
	if v := os.Getenv(envFaultFirstSeed); v != "" {
		var err error
		if first, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want a number", envFaultFirstSeed, v)
		}
	}
	for b := 0; b*faultBatch < n; b++ {
		lo, hi := b*faultBatch, min((b+1)*faultBatch, n)
		t.Run(fmt.Sprintf("batch=%02d", b), func(t *testing.T) {
			t.Parallel()
			sem := make(chan struct{}, faultConcurrency)
			var wg sync.WaitGroup
			for i := lo; i < hi; i++ {
				seed := first + uint64(i)
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSchedule(t, newSchedule(seed)) })
				})
			}
			wg.Wait()
		})
	}
}

// outcome is how a schedule's job ends.
type outcome int

const (
	outCompleted outcome = iota // COMPLETED with an output
	outFailed                   // FAILED with an error
	outTimedOut                 // TIMED_OUT: ran past its execution timeout
	outCancelled                // CANCELLED by another client
	outExpired                  // deleted, as when its ttl runs out: 404
)

func (o outcome) String() string {
	return [...]string{"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED by a third party", "expired (404)"}[o]
}

// state is the emulator status the outcome ends in ("" for a deleted job).
func (o outcome) state() runpodtest.Status {
	return [...]runpodtest.Status{runpodtest.StatusCompleted, runpodtest.StatusFailed, runpodtest.StatusTimedOut, runpodtest.StatusCancelled, ""}[o]
}

// sentinel is the error a client sees for the outcome (nil for COMPLETED).
func (o outcome) sentinel() error {
	return [...]error{nil, runpod.ErrJobFailed, runpod.ErrJobTimedOut, runpod.ErrJobCancelled, runpod.ErrJobNotFound}[o]
}

// schedule is one randomized run: what is submitted how, which faults the
// emulator injects, and how the job ends. Everything in it follows from seed.
type schedule struct {
	seed uint64

	runSync bool // submit with /runsync (else /run)
	stream  bool // follow with Job.Stream (else Wait); /run only
	worker  bool // a TestWorker works the job (else the test drives it)
	outcome outcome
	// expireByFault deletes the job through an expire fault on the first
	// status-sync (or /status, when polling) instead of by the test.
	expireByFault bool
	// lateDrive holds the outcome back until /runsync's own wait has ended
	// and the client is long-polling /status-sync on the id.
	lateDrive bool
	// startFirst moves a directly driven job to IN_PROGRESS before its end.
	startFirst bool
	// poll makes the client poll /status instead of long-polling
	// /status-sync.
	poll bool
	// spool makes the client spool every answer to a temporary file
	// (WithMemoryLimit(0)) instead of keeping it in memory.
	spool bool

	submitFault *runpodtest.Fault // on run or runsync
	faults      []runpodtest.Fault

	progress []string
	chunks   []string
	output   json.RawMessage // for COMPLETED
	errText  string          // for FAILED
	python   bool            // errText is runpod-python's JSON-in-a-string
}

// lost reports whether the submission's answer is lost (a 5xx, a dropped
// connection, a truncated answer, or one dropped after the work), so the
// client cannot know whether the job was created. Truncate and drop-answer do
// the work first, so then the job exists (jobCreated).
func (s *schedule) lost() bool {
	if s.submitFault == nil {
		return false
	}
	switch s.submitFault.Action {
	case runpodtest.FaultServerError, runpodtest.FaultDrop, runpodtest.FaultTruncate, runpodtest.FaultDropAnswer:
		return true
	}
	return false
}

// truncatedRefusal is a lost /runsync answer that still says what happened:
// the job was deleted while RunPod held the answer, and a truncated 404
// keeps its status line.
func (s *schedule) truncatedRefusal() bool {
	return s.runSync && s.outcome == outExpired && s.lost() && s.submitFault.Action == runpodtest.FaultTruncate
}

// jobCreated reports whether the emulator creates the job.
func (s *schedule) jobCreated() bool {
	return !s.lost() || s.submitFault.Action == runpodtest.FaultTruncate || s.submitFault.Action == runpodtest.FaultDropAnswer
}

func (s *schedule) submitOp() runpodtest.Op {
	if s.runSync {
		return runpodtest.OpRunsync
	}
	return runpodtest.OpRun
}

// faultOps are the operations faults may hit, weighted by how often the
// schedule's clients call them: status-sync or stream to follow the job,
// status and health now and then (fallbacks, 404 checks), cancel for the
// third party.
func (s *schedule) faultOps() []runpodtest.Op {
	ops := []runpodtest.Op{runpodtest.OpStatus, runpodtest.OpHealth}
	follow := s.waitOp()
	if s.stream {
		follow = runpodtest.OpStream
	}
	ops = append(ops, follow, follow, follow)
	if s.outcome == outExpired {
		ops = append(ops, runpodtest.OpHealth)
	}
	if s.outcome == outCancelled {
		ops = append(ops, runpodtest.OpCancel, runpodtest.OpCancel)
	}
	return ops
}

// waitOp is the operation Wait and RunSync follow the job with.
func (s *schedule) waitOp() runpodtest.Op {
	if s.poll {
		return runpodtest.OpStatus
	}
	return runpodtest.OpStatusSync
}

func newSchedule(seed uint64) *schedule {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s := &schedule{seed: seed}
	s.runSync = r.IntN(10) < 3
	s.stream = !s.runSync && r.IntN(4) == 0
	s.outcome = outcome(r.IntN(5))
	if r.IntN(2) == 0 {
		s.submitFault = randomFault(r, s.submitOp(), true)
	}
	s.worker = r.IntN(10) < 3
	s.poll = !s.stream && r.IntN(4) == 0
	s.spool = r.IntN(4) == 0
	s.lateDrive = s.runSync && !s.poll && !s.lost() && !s.worker && r.IntN(5) == 0
	s.expireByFault = s.outcome == outExpired && !s.runSync && !s.stream && !s.lost() && r.IntN(2) == 0
	s.startFirst = r.IntN(2) == 0

	ops := s.faultOps()
	for range r.IntN(4) {
		s.faults = append(s.faults, *randomFault(r, ops[r.IntN(len(ops))], false))
	}
	if s.expireByFault {
		s.faults = append(s.faults, runpodtest.Fault{Op: s.waitOp(), Action: runpodtest.FaultExpire, Times: 1})
	}

	for i := range r.IntN(3) {
		s.progress = append(s.progress, fmt.Sprintf("step %d of 3", i+1))
	}
	if s.stream {
		for i := range 1 + r.IntN(4) {
			s.chunks = append(s.chunks, fmt.Sprintf("chunk-%d-%d", seed, i))
		}
	}
	img := make([]byte, 16+r.IntN(64))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	s.output, _ = json.Marshal(map[string]any{
		"images": []map[string]string{{"filename": fmt.Sprintf("out-%d.png", seed), "type": "base64", "data": base64.StdEncoding.EncodeToString(img)}},
		"seed":   seed,
	})
	s.python = r.IntN(10) < 7
	s.errText = fmt.Sprintf("CUDA out of memory (schedule %d)", seed)
	return s
}

// randomFault draws a fault on op. On a submission every action fires once
// (a 429 up to three times), so the outcome follows from the schedule.
func randomFault(r *rand.Rand, op runpodtest.Op, submit bool) *runpodtest.Fault {
	f := &runpodtest.Fault{Op: op, Times: 1}
	if !submit {
		f.Times = 1 + r.IntN(3)
		f.Skip = r.IntN(3)
	}
	switch r.IntN(6) {
	case 0:
		f.Action = runpodtest.FaultRateLimit
		f.Times = 1 + r.IntN(3)
		f.RetryAfter = []time.Duration{1500 * time.Millisecond, 2 * time.Second, 2500 * time.Millisecond, 3 * time.Second}[r.IntN(4)]
	case 1:
		f.Action = runpodtest.FaultServerError
		f.StatusCode = []int{500, 502, 503, 504}[r.IntN(4)]
	case 2:
		f.Action = runpodtest.FaultDrop
	case 3:
		f.Action = runpodtest.FaultTruncate
	case 4:
		f.Action = runpodtest.FaultDropAnswer
	default:
		f.Action = runpodtest.FaultLatency
		f.Latency = time.Duration(1+r.IntN(20)) * time.Millisecond
		if r.IntN(2) == 0 {
			f.Probability = 0.5
		}
	}
	return f
}

func (s *schedule) String() string {
	var b strings.Builder
	submit, follow, by := "/run", "Wait", "the test"
	if s.runSync {
		submit, follow = "/runsync", "RunSync"
	} else if s.stream {
		follow = "Stream"
	}
	if s.worker {
		by = "a test worker"
	}
	fmt.Fprintf(&b, "seed %d: submit with %s, follow with %s, worked by %s, outcome %s", s.seed, submit, follow, by, s.outcome)
	if s.expireByFault {
		fmt.Fprintf(&b, " (by an expire fault on %s)", s.waitOp())
	}
	if s.poll {
		b.WriteString(", polling /status")
	}
	if s.spool {
		b.WriteString(", answers spooled to disk")
	}
	if s.lateDrive {
		b.WriteString(", outcome after the client moved on to status-sync")
	}
	fmt.Fprintf(&b, "\n  %d progress updates, %d stream chunks, python error %v", len(s.progress), len(s.chunks), s.python)
	if s.submitFault != nil {
		fmt.Fprintf(&b, "\n  submission fault: %s", describeFault(*s.submitFault))
	}
	for _, f := range s.faults {
		fmt.Fprintf(&b, "\n  fault: %s", describeFault(f))
	}
	return b.String()
}

func describeFault(f runpodtest.Fault) string {
	s := fmt.Sprintf("%s %s times=%d skip=%d", f.Op, f.Action, f.Times, f.Skip)
	switch f.Action {
	case runpodtest.FaultRateLimit:
		s += " retry-after=" + f.RetryAfter.String()
	case runpodtest.FaultServerError:
		s += " status=" + strconv.Itoa(f.StatusCode)
	case runpodtest.FaultLatency:
		s += " latency=" + f.Latency.String()
	}
	if f.Probability > 0 {
		s += fmt.Sprintf(" p=%.1f", f.Probability)
	}
	return s
}

// errorText is the error the job fails with, as the worker reports it.
func (s *schedule) errorText(t testing.TB) string {
	if s.python {
		return pythonError(t, "ValueError", s.errText, "pod-"+strconv.FormatUint(s.seed, 10))
	}
	return s.errText
}

// run is one schedule in progress: the emulator, the two clients and what
// happened.
type run struct {
	t   *testing.T
	s   *schedule
	srv *runpodtest.Server
	ctx context.Context

	a, b       *runpod.Client  // the submitter, and a third party that cancels
	lim        *runpod.Limiter // the submitter's
	aClk, bClk *stepClock
	faultIDs   []int // of s.faults
	submitID   int   // of s.submitFault

	jobID    atomic.Value // string: the job as the emulator created it
	worker   *runpodtest.TestWorker
	events   eventLog
	progress map[string]bool
}

func runSchedule(t *testing.T, s *schedule) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("schedule %s\nreplay: %s=%d go test -race -run '^TestFaultSchedules$' -v ./runpod", s, envFaultSeed, s.seed)
		}
	})
	cfg := &runpodtest.Config{Rand: rand.NewPCG(s.seed, 1)}
	if s.outcome == outTimedOut {
		cfg.ExecutionTimeout = 10 * time.Millisecond
	}
	r := &run{t: t, s: s, srv: startEmulator(t, cfg), aClk: newStepClock(), bClk: newStepClock(), progress: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), scheduleDeadline)
	defer cancel()
	r.ctx = ctx
	opts := []runpod.Option{
		runpod.WithRetryPolicy(fastRetry(30)),
		runpod.WithPolling(5*time.Millisecond, 50*time.Millisecond),
		runpod.WithRequestTimeout(10 * time.Second),
	}
	lim, err := runpod.NewLimiter(1)
	if err != nil {
		t.Fatal(err)
	}
	r.lim = lim
	aOpts := append(slices.Clone(opts), runpod.WithLimiter(lim))
	if s.poll {
		aOpts = append(aOpts, runpod.WithLongPoll(0))
	}
	if s.spool {
		aOpts = append(aOpts, runpod.WithMemoryLimit(0), runpod.WithTempDir(t.TempDir()))
	}
	r.a = newClient(t, r.srv, r.aClk, aOpts...)
	r.b = newClient(t, r.srv, r.bClk, opts...)
	for _, p := range s.progress {
		r.progress[strconv.Quote(p)] = true
	}
	if s.submitFault != nil {
		id, err := r.srv.AddFault(*s.submitFault)
		if err != nil {
			t.Fatal(err)
		}
		r.submitID = id
	}
	for _, f := range s.faults {
		id, err := r.srv.AddFault(f)
		if err != nil {
			t.Fatal(err)
		}
		r.faultIDs = append(r.faultIDs, id)
	}
	if s.worker {
		w, err := r.srv.StartWorker(ctx, r.handle, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.worker = w
		defer w.Stop()
	}

	driven := make(chan error, 1)
	go func() { driven <- r.drive() }()
	res := r.submitAndFollow()
	var derr error
	select {
	case derr = <-driven:
	case <-ctx.Done():
		derr = ctx.Err()
	}
	if derr != nil {
		t.Errorf("driving the job: %v", derr)
	}
	// A job whose submission was lost is still worked (or timed out) at
	// the emulator; let it end before looking.
	if id := r.id(res); id != "" && s.outcome != outExpired {
		if _, err := r.srv.WaitStatus(ctx, id); err != nil {
			t.Errorf("the job never ended at the emulator: %v", err)
		}
	}
	if r.worker != nil {
		r.worker.Stop() // its last posts are in before the chunks are counted
	}
	r.check(res)
}

// handle is the test worker's handler: it reports progress and streams, then
// ends as the schedule says (or waits to be stopped).
func (r *run) handle(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
	for _, p := range r.s.progress {
		if err := job.Progress(ctx, p); err != nil {
			return nil, err
		}
	}
	for _, ch := range r.s.chunks {
		if err := job.Stream(ctx, ch); err != nil {
			return nil, err
		}
	}
	switch r.s.outcome {
	case outCompleted:
		return r.s.output, nil
	case outFailed:
		return nil, errors.New(r.s.errorText(r.t))
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// drive waits for the job to appear on the emulator and brings about the
// schedule's outcome.
func (r *run) drive() error {
	s, srv, ctx := r.s, r.srv, r.ctx
	if !s.jobCreated() || s.expireByFault {
		// Nothing to do; an expire fault may delete the job before it
		// could be seen here.
		return nil
	}
	var id string
	if err := srv.Await(ctx, func() bool {
		if jobs := srv.Jobs(); len(jobs) > 0 {
			id = jobs[0].ID
			return true
		}
		return false
	}); err != nil {
		return err
	}
	r.jobID.Store(id)
	if s.lateDrive {
		if err := awaitHeld(ctx, srv, runpodtest.OpStatusSync, 1); err != nil {
			return fmt.Errorf("the client never long-polled the id after /runsync: %w", err)
		}
	}
	if s.worker {
		switch s.outcome {
		case outCancelled:
			if _, err := srv.WaitStatus(ctx, id, runpodtest.StatusInProgress); err != nil {
				return err
			}
			return r.thirdPartyCancel(id)
		case outExpired:
			if _, err := srv.WaitStatus(ctx, id, runpodtest.StatusInProgress); err != nil {
				return err
			}
			return srv.ExpireJob(id)
		}
		return nil // the worker completes or fails it, or it times out
	}

	// A timed-out job may end while it is still being updated.
	tolerate := func(err error) error {
		if s.outcome == outTimedOut && errors.Is(err, runpodtest.ErrJobFinished) {
			return nil
		}
		return err
	}
	if s.startFirst || s.outcome == outTimedOut {
		if err := srv.StartJob(id); err != nil {
			return tolerate(err)
		}
	}
	for _, p := range s.progress {
		if err := srv.ProgressJob(id, p); err != nil {
			return tolerate(err)
		}
	}
	for _, ch := range s.chunks {
		if err := srv.StreamJob(id, ch); err != nil {
			return tolerate(err)
		}
	}
	switch s.outcome {
	case outCompleted:
		return srv.CompleteJob(id, s.output)
	case outFailed:
		return srv.FailJob(id, s.errorText(r.t))
	case outCancelled:
		return r.thirdPartyCancel(id)
	case outExpired:
		return srv.ExpireJob(id)
	}
	return nil // TIMED_OUT: the execution timeout ends it
}

// thirdPartyCancel cancels the job through another client, as someone else
// would.
func (r *run) thirdPartyCancel(id string) error {
	st, err := r.b.Cancel(r.ctx, id)
	if err != nil {
		return fmt.Errorf("third-party cancel: %w", err)
	}
	if st.State != runpod.StateCancelled {
		return fmt.Errorf("third-party cancel answered %s", st.State)
	}
	return nil
}

// result is what the submitting client saw.
type result struct {
	submitErr error          // a lost submission
	jobID     string         // as the client learned it
	st        *runpod.Status // Wait's or RunSync's status
	err       error          // Wait's or RunSync's error, or the last one Stream yielded
	chunks    []string
	final     *runpod.Status // /status after a completed stream
}

func (r *run) submitAndFollow() result {
	s, ctx := r.s, r.ctx
	req := &runpod.Request{Input: map[string]any{"schedule": s.seed}}
	wo := runpod.WaitOptions{ColdStartAfter: -1, OnEvent: r.events.add}
	var res result
	if s.runSync {
		st, err := r.a.RunSync(ctx, req, &runpod.RunSyncOptions{Wait: time.Second, WaitOptions: wo})
		if s.lost() {
			res.submitErr = err
			return res
		}
		res.st, res.err = st, err
		if st != nil {
			res.jobID = st.ID
		}
		return res
	}
	job, err := r.a.Run(ctx, req)
	if err != nil {
		res.submitErr = err
		return res
	}
	res.jobID = job.ID
	if !s.stream {
		res.st, res.err = job.Wait(ctx, &wo)
		return res
	}
	for ch, err := range job.Stream(ctx) {
		if err != nil {
			res.err = err
			continue
		}
		var v string
		if err := json.Unmarshal(ch.Output, &v); err != nil {
			res.err = fmt.Errorf("chunk %s: %w", ch.Raw, err)
			continue
		}
		res.chunks = append(res.chunks, v)
	}
	if res.err == nil {
		res.final, res.err = job.Status(ctx)
	}
	return res
}

// id is the job's id: as the emulator made it, or as the client learned it
// (when an expire fault deleted it before the test could look).
func (r *run) id(res result) string {
	if id, _ := r.jobID.Load().(string); id != "" {
		return id
	}
	return res.jobID
}

// fired returns how often each installed rule acted, by id.
func (r *run) fired() map[int]int {
	out := map[int]int{}
	for _, f := range r.srv.Faults() {
		out[f.ID] = f.Fired
	}
	return out
}

func (r *run) check(res result) {
	t, s, srv := r.t, r.s, r.srv
	defer res.st.Close()
	defer res.final.Close()
	for _, err := range []error{res.submitErr, res.err} {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("the client hung: no answer within %s: %v", scheduleDeadline, err)
		}
	}
	fired := r.fired()

	// The submission reached the emulator once, plus once per 429 (which
	// RunPod refuses before doing anything); the other submit route never.
	want429 := 0
	if s.submitFault != nil && s.submitFault.Action == runpodtest.FaultRateLimit {
		want429 = fired[r.submitID]
	}
	other := runpodtest.OpRunsync
	if s.runSync {
		other = runpodtest.OpRun
	}
	if got := srv.Requests(s.submitOp()); got != 1+want429 || srv.Requests(other) != 0 {
		t.Errorf("%d %s and %d %s requests for one submission that met %d 429s", got, s.submitOp(), srv.Requests(other), other, want429)
	}

	// Exactly the jobs that should exist do (one, or none).
	id := r.id(res)
	live := srv.Jobs()
	created := len(live)
	if id != "" {
		if j, ok := srv.Job(id); ok && j.Deleted != "" {
			created++
		}
	}
	if want := map[bool]int{true: 1, false: 0}[s.jobCreated()]; created != want {
		t.Errorf("%d jobs created at the emulator, want %d", created, want)
	}

	// The client's verdict.
	switch {
	case s.truncatedRefusal():
		var ae *runpod.APIError
		if !errors.Is(res.submitErr, runpod.ErrJobNotFound) || errors.Is(res.submitErr, runpod.ErrMaybeSubmitted) || !errors.As(res.submitErr, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Errorf("a truncated 404 from /runsync: %v, want ErrJobNotFound", res.submitErr)
		}
	case s.lost():
		var se *runpod.SubmitError
		if !errors.Is(res.submitErr, runpod.ErrMaybeSubmitted) || !errors.As(res.submitErr, &se) || se.Path != "/"+string(s.submitOp()) {
			t.Errorf("lost submission: %v, want a SubmitError for /%s matching ErrMaybeSubmitted", res.submitErr, s.submitOp())
		}
	default:
		if res.submitErr != nil {
			t.Fatalf("submission: %v", res.submitErr)
		}
		if id != "" && res.jobID != "" && res.jobID != id {
			t.Errorf("the client followed job %s, the emulator made %s", res.jobID, id)
		}
		r.checkOutcome(res)
	}
	if res.err != nil && errors.Is(res.err, runpod.ErrMaybeSubmitted) {
		t.Errorf("ErrMaybeSubmitted after the submission was answered: %v", res.err)
	}

	// The emulator agrees on how the job ended.
	if id != "" {
		j, _ := srv.Job(id)
		switch {
		case s.outcome == outExpired && j.Deleted == "":
			t.Errorf("the emulator's job is %s, want it deleted", j.Status)
		case s.outcome != outExpired && (j.Deleted != "" || j.Status != s.outcome.state()):
			t.Errorf("the emulator's job is %s (deleted: %q), want %s", j.Status, j.Deleted, s.outcome.state())
		}
	}

	// Every 429 was waited out for its Retry-After, by the client it hit.
	var wantA, wantB []time.Duration
	addWaits := func(f runpodtest.Fault, n int) {
		if f.Action != runpodtest.FaultRateLimit {
			return
		}
		d := time.Duration(math.Ceil(f.RetryAfter.Seconds())) * time.Second
		for range n {
			if f.Op == runpodtest.OpCancel {
				wantB = append(wantB, d)
			} else {
				wantA = append(wantA, d)
			}
		}
	}
	if s.submitFault != nil {
		addWaits(*s.submitFault, fired[r.submitID])
	}
	for i, f := range s.faults {
		addWaits(f, fired[r.faultIDs[i]])
	}
	slices.Sort(wantA)
	slices.Sort(wantB)
	if got := r.aClk.SleepsOver(retryAfterFloor); !slices.Equal(got, wantA) {
		t.Errorf("the client waited %v over %s, want the Retry-After of each 429: %v", got, retryAfterFloor, wantA)
	}
	if got := r.bClk.SleepsOver(retryAfterFloor); !slices.Equal(got, wantB) {
		t.Errorf("the third party waited %v, want %v", got, wantB)
	}

	// Only the third party cancels, once plus once per failed attempt;
	// the client never gave up on the job.
	wantCancels := 0
	if s.outcome == outCancelled && s.jobCreated() {
		wantCancels = 1
		for i, f := range s.faults {
			if f.Op == runpodtest.OpCancel && f.Action != runpodtest.FaultLatency {
				wantCancels += fired[r.faultIDs[i]]
			}
		}
	}
	if got := srv.Requests(runpodtest.OpCancel); got != wantCancels {
		t.Errorf("%d cancel requests, want %d", got, wantCancels)
	}

	// However the job ended, the submitter's limiter slot is free again.
	if n := r.lim.InUse(); n != 0 {
		t.Errorf("%d limiter slots still taken after the job ended", n)
	}

	r.checkEvents()
}

// checkOutcome checks what the client reported for an answered submission.
func (r *run) checkOutcome(res result) {
	t, s := r.t, r.s
	if s.stream {
		r.checkStream(res)
	}
	switch s.outcome {
	case outCompleted:
		if res.err != nil {
			t.Fatalf("a completed job: %v", res.err)
		}
		st := res.st
		if s.stream {
			st = res.final
		}
		if st == nil || st.State != runpod.StateCompleted {
			t.Fatalf("status %+v, want COMPLETED", st)
		}
		r.checkOutput(st)
		return
	case outExpired:
		var ae *runpod.APIError
		if !errors.Is(res.err, runpod.ErrJobNotFound) || errors.Is(res.err, runpod.ErrEndpointNotFound) || !errors.As(res.err, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Errorf("a deleted job: %v, want a 404 matching ErrJobNotFound (and not ErrEndpointNotFound)", res.err)
		}
		return
	}
	var je *runpod.JobError
	if !errors.Is(res.err, s.outcome.sentinel()) || !errors.As(res.err, &je) {
		t.Fatalf("a job %s: %v, want a JobError matching %v", s.outcome, res.err, s.outcome.sentinel())
	}
	if !s.stream && (res.st == nil || string(res.st.State) != string(s.outcome.state())) {
		t.Errorf("a job %s: status %+v", s.outcome, res.st)
	}
	switch s.outcome {
	case outFailed:
		if je.Message != s.errText {
			t.Errorf("error message %q, want %q", je.Message, s.errText)
		}
		if s.python && (je.Type != "ValueError" || je.WorkerID != "pod-"+strconv.FormatUint(s.seed, 10) || !strings.HasPrefix(je.Traceback, "Traceback") || je.RunpodVersion != "1.12.0") {
			t.Errorf("the Python error was not decoded: %+v", je)
		}
	case outTimedOut:
		if !strings.Contains(je.Message, "timed out") {
			t.Errorf("timed-out job's message %q", je.Message)
		}
	}
}

func (r *run) checkOutput(st *runpod.Status) {
	t, s := r.t, r.s
	var got, want any
	if err := st.DecodeOutput(&got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(s.output, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("output %s, want %s", st.Output, s.output)
	}
	files, err := st.Outputs()
	if err != nil || len(files) != 1 {
		t.Fatalf("outputs %v, %v", files, err)
	}
	rc, err := files[0].Open(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	var out struct {
		Images []struct{ Data string }
	}
	_ = json.Unmarshal(s.output, &out)
	if err != nil || base64.StdEncoding.EncodeToString(data) != out.Images[0].Data {
		t.Errorf("the output file differs from the worker's (%v)", err)
	}
}

// checkStream checks the chunks: each once, in order; all of them unless an
// answer carrying some was lost (RunPod hands a chunk out only once).
func (r *run) checkStream(res result) {
	t, s := r.t, r.s
	// The chunks the emulator accepted, whoever posted them.
	j, _ := r.srv.Job(r.id(res))
	var posted []string
	for _, raw := range j.Stream {
		var ch struct{ Output string }
		if err := json.Unmarshal(raw, &ch); err != nil {
			t.Fatalf("emulator chunk %s: %v", raw, err)
		}
		posted = append(posted, ch.Output)
	}
	if len(posted) > len(s.chunks) || !slices.Equal(posted, s.chunks[:len(posted)]) {
		t.Errorf("the emulator holds chunks %q, posted %q", posted, s.chunks)
	}
	i := 0
	for _, c := range res.chunks {
		for i < len(posted) && posted[i] != c {
			i++
		}
		if i == len(posted) {
			t.Errorf("chunks %q are not the posted %q, once each and in order", res.chunks, posted)
			return
		}
		i++
	}
	lossy := 0
	fired := r.fired()
	for k, f := range s.faults {
		if f.Op == runpodtest.OpStream && (f.Action == runpodtest.FaultTruncate || f.Action == runpodtest.FaultDropAnswer) {
			lossy += fired[r.faultIDs[k]]
		}
	}
	if lossy == 0 && s.outcome != outExpired && len(res.chunks) != len(posted) {
		t.Errorf("chunks %q, want all of %q", res.chunks, posted)
	}
}

// checkEvents checks Wait's events: progress the job really reported, and
// one terminal state, last.
func (r *run) checkEvents() {
	t := r.t
	terminal := -1
	events := r.events.all()
	for i, e := range events {
		switch e.Kind {
		case runpod.EventProgress:
			if !r.progress[string(e.Progress)] {
				t.Errorf("progress event %s was never reported", e.Progress)
			}
		case runpod.EventState:
			if e.State.Terminal() {
				if terminal >= 0 {
					t.Errorf("two terminal events: %v", r.events.kinds())
				}
				terminal = i
			}
		case runpod.EventColdStart, runpod.EventQueued:
			t.Errorf("a %s event with cold-start checks off", e.Kind)
		}
	}
	if terminal >= 0 && terminal != len(events)-1 {
		t.Errorf("events after the terminal state: %v", r.events.kinds())
	}
}
