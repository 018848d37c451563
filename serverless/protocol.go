package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxTakeBody caps a job-take answer. RunPod accepts inputs up to 20 MB
// (/runsync), so a batch of several large jobs fits.
const maxTakeBody = 512 << 20

// maxPingJobIDs caps the job_id list on a ping, as runpod-python's 64 KiB
// shared buffer does; the list is cut at a comma.
const maxPingJobIDs = 64 << 10

// newRequest builds a control-plane request with the headers runpod-python
// sends on every call: the raw API key as Authorization, and a User-Agent.
func (w *Worker) newRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if w.cfg.APIKey != "" {
		req.Header.Set("Authorization", w.cfg.APIKey)
	}
	req.Header.Set("User-Agent", w.cfg.UserAgent)
	return req, nil
}

// drainClose reads a little of what is left of a response, so the
// connection can be reused, and closes it.
func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// errBodyTooLarge is an answer over the size readBody accepts.
var errBodyTooLarge = errors.New("the answer is too large")

// readBody reads an answer of at most limit bytes. One that declares its
// length is read into a buffer of exactly that size, so a job-take carrying
// a 20 MB input costs one allocation rather than io.ReadAll's doubling
// series (about 2.4 times the body), and one declared over limit is refused
// before anything is read.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 {
		if n > limit {
			return nil, fmt.Errorf("%w (%s)", errBodyTooLarge, formatBytes(n))
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > limit {
		return nil, fmt.Errorf("%w (over %s)", errBodyTooLarge, formatBytes(limit))
	}
	return b.Bytes(), nil
}

// takeJobs makes one job-take (or job-take-batch) long-poll. It returns the
// jobs to run; entries that cannot run are logged, and failed on RunPod when
// they carry an id, so their clients do not wait for nothing.
func (w *Worker) takeJobs(ctx context.Context, need int, inProgress bool) ([]*Job, error) {
	u := w.urls.take
	if need > 1 && w.urls.batch != "" {
		u = appendQuery(w.urls.batch, "batch_size", strconv.Itoa(need))
	}
	flag := "0"
	if inProgress {
		flag = "1"
	}
	u = appendQuery(u, "job_in_progress", flag)

	// The request outlives ctx, which ends when taking stops: watchTake
	// decides when a stop may cut it short.
	reqCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.TakeTimeout)
	defer cancel()
	answered, finished, watched := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		w.watchTake(cancel, answered, finished)
	}()
	defer func() {
		close(finished)
		<-watched
	}()
	req, err := w.newRequest(reqCtx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.cfg.HTTPClient.Do(req)
	close(answered)
	if err != nil {
		if reqCtx.Err() != nil && ctx.Err() == nil {
			// The long-poll ran its course; not an error.
			return nil, nil
		}
		return nil, err
	}
	defer drainClose(resp)
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusBadRequest:
		w.log.Debug("job-take answered 400, expected when FlashBoot is enabled")
		return nil, nil
	}
	if err := checkResponse("job-take", resp, w.clock.Now()); err != nil {
		return nil, err
	}
	body, err := readBody(resp, maxTakeBody)
	if errors.Is(err, errBodyTooLarge) {
		return nil, fmt.Errorf("job-take: %w, over the %d MB a job-take answer may hold; its jobs cannot be run", err, maxTakeBody>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("job-take: reading the answer: %w", err)
	}
	jobs, errs := decodeTake(body)
	for _, e := range errs {
		w.log.Error("Job-take returned a job that cannot run: " + w.scrub.String(e.Error()))
		var te *takeError
		if errors.As(e, &te) && te.id != "" {
			out := w.exec.meta.failure("the job cannot run: "+te.msg, nil, false)
			w.postFinal(w.postCtx, te.id, out, false)
		}
	}
	return jobs, nil
}

// watchTake cancels a job-take under way when the worker stops, but not a
// take RunPod is answering: one that got its answer (the status line and
// headers) is read through, so the jobs RunPod handed out are run, or on a
// hard stop cancelled and reported FAILED, instead of being left
// IN_PROGRESS. Before the answer, a soft stop cancels the take after
// TakeGrace and a hard stop at once; while the answer is read, a hard stop
// cuts it short after CancelGrace. It returns when finished is closed.
func (w *Worker) watchTake(cancel context.CancelFunc, answered, finished <-chan struct{}) {
	soft := w.softCh
	var grace <-chan time.Time
waiting:
	for {
		select {
		case <-finished:
			return
		case <-answered:
			break waiting
		case <-w.hardCh:
			cancel()
			return
		case <-soft:
			soft = nil
			t := time.NewTimer(w.cfg.TakeGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			select {
			case <-answered: // both came at once: the answer wins
				break waiting
			default:
			}
			w.log.Debug("Stopping: the job-take under way got no answer within TakeGrace; cancelling it")
			cancel()
			return
		}
	}
	select {
	case <-finished:
		return
	case <-w.hardCh:
	}
	t := time.NewTimer(w.cfg.CancelGrace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		w.log.Warn("Hard stop: the job-take answer is still being read after CancelGrace; cutting it short")
		cancel()
	}
}

// post sends body to url, retrying per policy the failures that may pass.
// unsentOnly limits retries to failures where the request surely did not
// reach the server (a refused connection) or the server answered 429/5xx;
// stream chunks use it, so a chunk is not delivered twice.
func (w *Worker) post(ctx context.Context, op, url, jobID string, body []byte, policy RetryPolicy, timeout timeoutKind, unsentOnly bool) error {
	for attempt := 1; ; attempt++ {
		err := w.postOnce(ctx, op, url, jobID, body, timeout)
		if err == nil {
			return nil
		}
		if attempt >= policy.Attempts || ctx.Err() != nil || !retryable(err, unsentOnly) {
			return err
		}
		var ae *APIError
		var after = policy.delay(attempt, unitFloat(w.cfg.Rand), 0)
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			after = policy.delay(attempt, 0, ae.RetryAfter)
		}
		w.log.Debug(fmt.Sprintf("%s failed, retrying in %v", op, after), slog.String(JobIDKey, jobID), slog.String("error", w.scrub.String(err.Error())), slog.Int("attempt", attempt))
		if !sleepClock(ctx, w.clock, after) {
			return err
		}
	}
}

// timeoutKind picks the per-attempt timeout of a post.
type timeoutKind int

const (
	resultTimeout timeoutKind = iota
	progressTimeout
)

// postOnce makes one POST with runpod-python's headers: the JSON body is
// labelled application/x-www-form-urlencoded with a charset header (the
// SDK's quirk, kept because the server is known to accept exactly that),
// and X-Request-ID is the job id.
func (w *Worker) postOnce(ctx context.Context, op, url, jobID string, body []byte, timeout timeoutKind) error {
	d := w.cfg.ResultTimeout
	if timeout == progressTimeout {
		d = w.cfg.ProgressTimeout
	}
	reqCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := w.newRequest(reqCtx, http.MethodPost, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("charset", "utf-8")
	req.Header.Set("X-Request-ID", jobID)
	resp, err := w.cfg.HTTPClient.Do(req)
	if err != nil {
		return w.scrub.Err(err)
	}
	defer drainClose(resp)
	return checkResponse(op, resp, w.clock.Now())
}

// retryable says whether a failed post may succeed when tried again.
func retryable(err error, unsentOnly bool) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.temporary()
	}
	if unsentOnly {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial"
	}
	return true // a transport error: the connection dropped or timed out
}

// postFinal posts a job's final result to job-done and reports the outcome
// in the log. A 404 means RunPod dropped the job (TTL or cancel) and the
// result is let go; a 400 to a large body is answered with a small FAILED
// body, so the client never sees COMPLETED with no output.
func (w *Worker) postFinal(ctx context.Context, jobID string, out outcome, isStream bool) {
	log := w.log.With(slog.String(JobIDKey, jobID))
	u := appendQuery(jobURL(w.urls.done, jobID), "isStream", strconv.FormatBool(isStream))
	err := w.post(ctx, "job-done", u, jobID, out.body, w.cfg.ResultRetry, resultTimeout, false)
	if errors.Is(err, ErrRejected) {
		// Left alone the job would stay IN_PROGRESS (or show COMPLETED
		// with no output); report it FAILED with a body that fits.
		msg := fmt.Sprintf("RunPod rejected the job's result (job-done answered 400 Bad Request to a %s body)", formatBytes(int64(len(out.body))))
		var ae *APIError
		if errors.As(err, &ae) && ae.Message != "" {
			msg += ": " + ae.Message
		}
		if len(out.body) > 1<<20 {
			msg += "; the usual cause is an output too large for a job result: upload large outputs to S3 (BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY, or the job's s3Config) and return URLs"
		}
		log.Error("Job-done rejected the result; reporting the job FAILED instead", slog.String("error", w.scrub.String(err.Error())))
		small := w.exec.meta.failure(w.scrub.String(msg), nil, out.stopPod)
		err = w.post(ctx, "job-done", u, jobID, small.body, w.cfg.ResultRetry, resultTimeout, false)
	}
	switch {
	case err == nil:
		if out.failed {
			log.Info("Finished (FAILED).")
		} else {
			log.Info("Finished.")
		}
	case errors.Is(err, ErrNotFound):
		log.Info("RunPod no longer knows this job (job-done answered 404: its TTL passed or it was cancelled); result dropped")
	default:
		log.Error("Failed to return job results. | " + w.scrub.String(err.Error()))
	}
}

// pollStop makes one job-stop long-poll and returns the ids RunPod wants
// stopped. Ids that are not strings are dropped, as runpod-python does.
func (w *Worker) pollStop(ctx context.Context) ([]string, error) {
	reqCtx, cancel := context.WithTimeout(ctx, w.cfg.StopPollTimeout)
	defer cancel()
	req, err := w.newRequest(reqCtx, http.MethodGet, w.urls.stop, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.stopClient.Do(req)
	if err != nil {
		if reqCtx.Err() != nil && ctx.Err() == nil {
			return nil, nil
		}
		return nil, w.scrub.Err(err)
	}
	defer drainClose(resp)
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	if err := checkResponse("job-stop", resp, w.clock.Now()); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("job-stop: reading the answer: %w", err)
	}
	return decodeStop(body)
}

// decodeStop reads {"jobsToStop": [...]} and keeps the string ids.
func decodeStop(body []byte) ([]string, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	var v struct {
		JobsToStop []json.RawMessage `json:"jobsToStop"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("job-stop answer is not {\"jobsToStop\": [...]}: %v", err)
	}
	var ids []string
	for _, raw := range v.JobsToStop {
		var id string
		if json.Unmarshal(raw, &id) == nil && id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// pingURL is the heartbeat URL with the in-flight job ids and the version.
func (w *Worker) pingURL(jobIDs []string) string {
	u := w.urls.ping
	if len(jobIDs) > 0 {
		slices.Sort(jobIDs)
		list := strings.Join(jobIDs, ",")
		if len(list) > maxPingJobIDs {
			list = list[:maxPingJobIDs]
			if i := strings.LastIndexByte(list, ','); i >= 0 {
				list = list[:i]
			}
		}
		u = appendQuery(u, "job_id", list)
	}
	return appendQuery(u, "runpod_version", w.cfg.RunpodVersion)
}

// ping sends one heartbeat on the heartbeat's own client.
func (w *Worker) ping(ctx context.Context, url string) error {
	reqCtx, cancel := context.WithTimeout(ctx, 2*w.cfg.PingInterval)
	defer cancel()
	req, err := w.newRequest(reqCtx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := w.pingClient.Do(req)
	if err != nil {
		return w.scrub.Err(err)
	}
	defer drainClose(resp)
	return checkResponse("ping", resp, w.clock.Now())
}
