package serverless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// heartbeat pings RunPod every PingInterval with the in-flight job ids,
// starting at once. It runs on its own goroutine and HTTP client, so busy
// handlers and a saturated connection pool cannot hold it up. Failures are
// logged and the loop goes on.
func (w *Worker) heartbeat(ctx context.Context) {
	defer w.loopsWG.Done()
	t := w.clock.NewTicker(w.cfg.PingInterval)
	defer t.Stop()
	failing := false
	for {
		err := w.ping(ctx, w.pingURL(w.runningIDs()))
		switch {
		case err != nil && ctx.Err() == nil:
			// The first failure in a row is a warning, later ones
			// debug lines, so a long outage does not flood the log.
			msg := "Ping Request Error: " + w.scrub.String(err.Error())
			if !failing {
				w.log.Warn(msg)
			} else {
				w.log.Debug(msg)
			}
			failing = true
		case err == nil && failing:
			w.log.Info("Ping succeeded again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}

// stopLoop long-polls job-stop and cancels the jobs RunPod names. A 404 means
// the endpoint has no stop channel: it is logged once and polling ends.
func (w *Worker) stopLoop(ctx context.Context) {
	defer w.loopsWG.Done()
	if w.urls.stop == "" {
		w.log.Warn("RUNPOD_WEBHOOK_GET_JOB has no /job-take/ segment, so there is no job-stop URL; RunPod can only stop jobs by stopping the worker")
		return
	}
	for ctx.Err() == nil {
		ids, err := w.pollStop(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, ErrNotFound):
			w.log.Info("job-stop answered 404: this endpoint has no per-job stop channel; polling it ends")
			return
		case errors.Is(err, ErrTooManyRequests):
			wait := w.cfg.RateLimitDelay
			var ae *APIError
			if errors.As(err, &ae) && ae.RetryAfter > 0 {
				wait = min(ae.RetryAfter, maxRetryAfter)
			}
			sleepClock(ctx, w.clock, wait)
		case err != nil:
			w.log.Warn("Failed to get stop signals. | " + w.scrub.String(err.Error()))
			sleepClock(ctx, w.clock, w.cfg.StopPollInterval)
		case len(ids) == 0:
			sleepClock(ctx, w.clock, w.cfg.StopPollInterval)
		default:
			w.stopJobs(ids)
		}
	}
}

// stopJobs cancels the named jobs that are running here.
func (w *Worker) stopJobs(ids []string) {
	for _, id := range ids {
		w.mu.Lock()
		r := w.running[id]
		w.mu.Unlock()
		if r == nil {
			w.log.Debug("job-stop named a job not running here", slog.String(JobIDKey, id))
			continue
		}
		if r.stop() {
			w.log.Info("RunPod stopped the job; cancelling it", slog.String(JobIDKey, id))
		}
	}
}

// maxUnhealthyReason caps the reason on an unhealthy ping, as
// runpod-python does.
const maxUnhealthyReason = 256

// runFitnessChecks runs the configured checks in order. On the first
// failure it tells RunPod, with one unhealthy ping, and returns the failure.
func (w *Worker) runFitnessChecks(ctx context.Context) error {
	for _, fc := range w.cfg.FitnessChecks {
		err := runCheck(ctx, fc)
		if err == nil {
			continue
		}
		reason := w.scrub.String(err.Error())
		w.log.Error(fmt.Sprintf("Fitness check %q failed: %s", fc.Name, reason))
		if w.urls.ping != "" {
			w.reportUnhealthy(ctx, fc.Name, reason)
		}
		return fmt.Errorf("serverless: fitness check %q failed: %w", fc.Name, w.scrub.Err(err))
	}
	return nil
}

// runCheck runs one check, turning a panic into an error.
func runCheck(ctx context.Context, fc FitnessCheck) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fc.Check(ctx)
}

// reportUnhealthy sends runpod-python's unhealthy ping:
// status=unhealthy&check=<name>&reason=<at most 256 chars>, 2 s timeout.
func (w *Worker) reportUnhealthy(ctx context.Context, check, reason string) {
	if r := []rune(reason); len(r) > maxUnhealthyReason {
		reason = string(r[:maxUnhealthyReason])
	}
	u := appendQuery(w.urls.ping, "status", "unhealthy")
	u = appendQuery(u, "check", check)
	u = appendQuery(u, "reason", strings.TrimSpace(reason))
	u = appendQuery(u, "runpod_version", w.cfg.RunpodVersion)
	reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := w.newRequest(reqCtx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := w.pingClient.Do(req)
	if err != nil {
		w.log.Warn("Could not report the failed fitness check: " + w.scrub.String(err.Error()))
		return
	}
	drainClose(resp)
}
