package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/internal/truncate"
	"github.com/comfypod/comfypod/runpod"
)

// Requeue backoff after a submission that failed before reaching RunPod.
const (
	requeueBase = 5 * time.Second
	requeueMax  = 2 * time.Minute
)

// expireBatch bounds the queued jobs timed out per pass.
const expireBatch = 200

// dispatcher moves queued jobs to RunPod: one loop claims jobs from the
// store, never more than the concurrency limit over every replica and never
// more than the submitters free to send them; the submitters send them.
type dispatcher struct {
	s    *Service
	wake chan struct{}
	jobs chan *store.Job
	busy atomic.Int64 // jobs claimed and not yet handled by a submitter
}

func newDispatcher(s *Service) *dispatcher {
	return &dispatcher{s: s, wake: make(chan struct{}, 1), jobs: make(chan *store.Job, s.cfg.Submitters)}
}

// poke makes the loop look at the queue now: a job arrived or a slot freed.
func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	s := d.s
	defer close(d.jobs)
	timer := s.clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-d.wake:
		case <-timer.Chan():
		}
		d.pass()
		timer.Reset(jitter(s.cfg.DispatchInterval))
	}
}

// pass times out queued jobs past their deadline and claims what fits.
func (d *dispatcher) pass() {
	s := d.s
	ctx := s.life
	now := s.clock.Now()
	expired, err := s.st.ExpireQueued(ctx, s.rp.EndpointID(), store.Finish{
		State: store.StateTimedOut, At: now, ErrorCode: "timeout",
		Error: fmt.Sprintf("no result within %s: the job was never sent to RunPod (at most %d jobs run at once); try again later",
			s.cfg.Timeout, s.cfg.Concurrency),
	}, expireBatch)
	if err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "expiring queued jobs failed", slog.String("err", err.Error()))
	}
	for _, j := range expired {
		s.finished(j)
	}
	for ctx.Err() == nil {
		free := int64(s.cfg.Submitters) - d.busy.Load()
		if free <= 0 {
			return
		}
		now := s.clock.Now()
		jobs, err := s.st.ClaimJobs(ctx, store.ClaimParams{
			Endpoint: s.rp.EndpointID(), Replica: s.cfg.ReplicaID, Now: now, LeaseUntil: now.Add(s.cfg.LeaseTTL),
			Limit: s.cfg.Concurrency, Max: int(free),
		})
		if err != nil {
			if ctx.Err() == nil {
				s.log.LogAttrs(ctx, slog.LevelWarn, "claiming jobs failed", slog.String("err", err.Error()))
			}
			return
		}
		for _, j := range jobs {
			d.busy.Add(1)
			d.jobs <- j // never blocks: busy counts the room taken
		}
		if int64(len(jobs)) < free {
			return
		}
	}
}

func (d *dispatcher) submitLoop() {
	for j := range d.jobs {
		if d.s.life.Err() != nil {
			// Stopping: leave the claim; ReleaseLeases puts it back.
			d.busy.Add(-1)
			continue
		}
		d.s.jobsWG.Add(1)
		err := recoverPanic(func() error { d.s.submit(d.s.work, j); return nil })
		d.s.jobsWG.Done()
		if err != nil {
			// A bug: end the job rather than leave it claimed for ever.
			d.s.log.LogAttrs(d.s.work, slog.LevelError, "submitting a job panicked", slog.String("job", j.ID), slog.String("err", err.Error()))
			d.s.finish(d.s.work, j.ID, store.Finish{State: store.StateFailed, At: d.s.clock.Now(), ErrorCode: "internal",
				Error: "the service failed while sending the job; the details are in its log"})
		}
		d.busy.Add(-1)
		d.poke()
	}
}

// submit sends one claimed job to RunPod. The job is marked submitting
// before /run, and from then on it is never sent again: a lost answer leaves
// it to the webhook or fails it as unknown.
func (s *Service) submit(ctx context.Context, j *store.Job) {
	log := s.log.With(slog.String("job", j.ID))
	now := s.clock.Now()
	if now.After(j.Deadline) {
		s.finish(ctx, j.ID, store.Finish{State: store.StateTimedOut, At: now, ErrorCode: "timeout",
			Error: fmt.Sprintf("no result within %s: the job waited for a free slot the whole time", s.cfg.Timeout)})
		return
	}
	input, err := s.st.JobInput(ctx, j.ID)
	if errors.Is(err, store.ErrNotFound) {
		s.finish(ctx, j.ID, store.Finish{State: store.StateFailed, At: now, ErrorCode: "internal", Error: "the job's input was lost before it could be sent"})
		return
	}
	if err != nil {
		s.requeue(ctx, j, fmt.Errorf("reading the input: %w", err))
		return
	}
	var hook, hash string
	if s.cfg.PublicURL != "" {
		secret := randomID(20)
		hash = HashKey(secret)
		hook = s.cfg.PublicURL + "/v1/runpod/webhook/" + j.ID + "." + secret
	}
	if _, err := s.st.MarkSubmitting(ctx, j.ID, s.cfg.ReplicaID, hash, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return // cancelled, or another replica took it over
		}
		s.requeue(ctx, j, fmt.Errorf("marking the job: %w", err))
		return
	}
	s.metrics.submitting.Inc()
	s.metrics.runpodCalls.WithLabelValues("run").Inc()
	rj, err := s.rp.Run(ctx, &runpod.Request{Input: json.RawMessage(input), Webhook: hook})
	s.metrics.submitting.Dec()
	if err != nil {
		s.metrics.runpodErrs.WithLabelValues("run").Inc()
		s.submitFailed(ctx, j, hook != "", err)
		return
	}
	rj.Release()
	var sj *store.Job
	for attempt := 0; ; attempt++ {
		sj, err = s.st.MarkSubmitted(ctx, j.ID, rj.ID, s.clock.Now())
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || attempt == 8 || ctx.Err() != nil {
			break
		}
		// RunPod has the job: its id must be kept. Try hard.
		log.LogAttrs(ctx, slog.LevelWarn, "storing RunPod's job id failed; retrying", slog.String("runpod_id", rj.ID), slog.String("err", err.Error()))
		if s.sleep(ctx, min(time.Duration(1<<attempt)*100*time.Millisecond, 5*time.Second)) != nil {
			break
		}
	}
	if errors.Is(err, store.ErrConflict) {
		// The job ended while /run was answered: by its webhook (fine), or
		// another replica gave up on it as unknown, in which case RunPod
		// must not run it for nothing.
		cur, gerr := s.st.GetJob(ctx, j.ID)
		if gerr == nil && cur.State.Terminal() && cur.ErrorCode == "submission_unknown" {
			s.metrics.runpodCalls.WithLabelValues("cancel").Inc()
			if st, cerr := s.rp.Cancel(ctx, rj.ID); cerr == nil {
				_ = st.Close()
			}
		}
		return
	}
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "RunPod has the job but its id could not be stored; it will be resolved by its webhook or failed as unknown after a restart",
			slog.String("runpod_id", rj.ID), slog.String("err", err.Error()))
		return
	}
	s.metrics.dispatch.Observe(sj.SubmittedAt.Sub(sj.CreatedAt).Seconds())
	s.changed(sj)
	log.LogAttrs(ctx, slog.LevelInfo, "job submitted", slog.String("runpod_id", rj.ID))
	if sj.CancelRequested {
		if _, err := s.cancelAtRunPod(ctx, sj); err == nil {
			return
		}
	}
	if sj.LeaseOwner == s.cfg.ReplicaID {
		s.watch.add(sj)
	}
}

// submitFailed decides what a failed /run means for a job.
func (s *Service) submitFailed(ctx context.Context, j *store.Job, webhook bool, err error) {
	log := s.log.With(slog.String("job", j.ID))
	var ae *runpod.APIError
	switch {
	case errors.Is(err, runpod.ErrMaybeSubmitted) || ctx.Err() != nil:
		// RunPod may have the job. It is never sent twice.
		if webhook {
			log.LogAttrs(ctx, slog.LevelWarn, "RunPod's answer to /run was lost; not resending, waiting for its webhook", slog.String("err", scrub(err.Error())))
			if cur, gerr := s.st.GetJob(ctx, j.ID); gerr == nil && !cur.State.Terminal() {
				s.watch.add(cur)
			}
			return
		}
		log.LogAttrs(ctx, slog.LevelWarn, "RunPod's answer to /run was lost; not resending", slog.String("err", scrub(err.Error())))
		s.finish(ctx, j.ID, s.unknownFate())
	case errors.Is(err, runpod.ErrPayloadTooLarge):
		s.finish(ctx, j.ID, store.Finish{State: store.StateFailed, At: s.clock.Now(), ErrorCode: "runpod_refused",
			Error: "RunPod refused the job as too large (10 MB per job): send smaller images"})
	case errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest:
		s.finish(ctx, j.ID, store.Finish{State: store.StateFailed, At: s.clock.Now(), ErrorCode: "runpod_refused",
			Error: truncate.Bytes("RunPod refused the job: "+scrub(ae.Message), maxErrorText)})
	default:
		// RunPod certainly does not have the job (refused connection, 429,
		// bad key, unknown endpoint): it may be sent again.
		level := slog.LevelWarn
		if errors.Is(err, runpod.ErrUnauthorized) || errors.Is(err, runpod.ErrEndpointNotFound) {
			level = slog.LevelError
		}
		log.LogAttrs(ctx, level, "submission failed; the job waits and is sent again", slog.String("err", scrub(err.Error())))
		s.requeue(ctx, j, err)
	}
}

// unknownFate is how a job ends whose submission cannot be known to have
// reached RunPod or not.
func (s *Service) unknownFate() store.Finish {
	return store.Finish{State: store.StateFailed, At: s.clock.Now(), ErrorCode: "submission_unknown",
		Error: "the answer to the submission was lost, so it is not known whether RunPod ran the job; " +
			"it was not sent again, so that it cannot run twice. Submit it again if you still want it."}
}

// requeue puts a job that never reached RunPod back in the queue, later.
func (s *Service) requeue(ctx context.Context, j *store.Job, cause error) {
	backoff := min(requeueBase<<min(j.Attempts, 10), requeueMax)
	_, err := s.st.Requeue(ctx, j.ID, s.cfg.ReplicaID, store.Requeue{
		NotBefore: s.clock.Now().Add(jitter(backoff)),
		Error:     truncate.Bytes("the last attempt to send the job failed: "+scrub(cause.Error()), maxErrorText),
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "requeueing a job failed; it goes back when its lease expires",
			slog.String("job", j.ID), slog.String("err", err.Error()))
	}
}

// finish ends a job and publishes the end.
func (s *Service) finish(ctx context.Context, id string, f store.Finish) {
	j, changed, err := s.st.Finish(ctx, id, f)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "ending a job failed", slog.String("job", id), slog.String("err", err.Error()))
		return
	}
	if changed {
		s.finished(j)
	}
}
