package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Health is what /health says about an endpoint's jobs and workers.
type Health struct {
	Jobs    HealthJobs    `json:"jobs"`    // job counts by state
	Workers HealthWorkers `json:"workers"` // worker counts by state
}

// HealthJobs counts the endpoint's jobs by state.
type HealthJobs struct {
	Completed  int `json:"completed"`  // ended with an output
	Failed     int `json:"failed"`     // ended with an error
	InProgress int `json:"inProgress"` // running on a worker
	InQueue    int `json:"inQueue"`    // waiting for a worker
	Retried    int `json:"retried"`    // retried by RunPod
}

// HealthWorkers counts the endpoint's workers by state. RunPod documents idle
// and running; the other counters appear in some answers.
type HealthWorkers struct {
	Idle         int `json:"idle"`         // up, waiting for a job
	Running      int `json:"running"`      // running a job
	Initializing int `json:"initializing"` // starting: pulling the image, loading models
	Ready        int `json:"ready"`        // up and ready for a job
	Throttled    int `json:"throttled"`    // held back by lack of GPUs of the chosen type
	Unhealthy    int `json:"unhealthy"`    // failing, e.g. crash-looping
}

// Warm reports whether a worker is up to take a job right away.
func (h *Health) Warm() bool {
	return h.Workers.Idle+h.Workers.Running+h.Workers.Ready > 0
}

// PurgeResult is the answer of PurgeQueue.
type PurgeResult struct {
	// Removed is how many queued jobs were removed.
	Removed int `json:"removed"`
	// Status is RunPod's status word ("completed").
	Status string `json:"status"`
}

// jobIDPattern is what a job id may look like. RunPod's ids are UUIDs with a
// suffix ("…-u1", "sync-…-e1"); the check keeps a mistyped id from naming
// another route.
var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)

func checkJobID(id string) error {
	if !jobIDPattern.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("runpod: job id %q: want letters, digits, '-', '_', '.' or ':'", id)
	}
	return nil
}

// jobPath is "/op/ID".
func jobPath(op, id string) string { return "/" + op + "/" + url.PathEscape(id) }

// Status returns the status of job id (GET /status/{id}). Close it when done
// if it may hold a large output.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	return c.statusCall(ctx, &call{method: http.MethodGet, path: jobPath("status", id), jobID: id})
}

// statusSync long-polls GET /status-sync/{id}?wait=ms: RunPod answers when the
// job ends or the wait is over.
func (c *Client) statusSync(ctx context.Context, id string, wait time.Duration) (*Status, error) {
	return c.statusCall(ctx, &call{
		method:  http.MethodGet,
		path:    jobPath("status-sync", id),
		query:   url.Values{"wait": {strconv.FormatInt(wait.Milliseconds(), 10)}},
		jobID:   id,
		noProbe: true,
		timeout: wait + requestSlack,
	})
}

// statusCall makes a call that answers with a job status, reading the body
// into memory or a spool file.
func (c *Client) statusCall(ctx context.Context, cl *call) (*Status, error) {
	var st *Status
	err := c.do(ctx, cl, func(resp *http.Response) error {
		s, err := c.readStatus(resp.Body, resp.ContentLength)
		st = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// ReadStatus decodes a job status from r, such as the body of a webhook call
// RunPod made with a job's final status. Large outputs are spooled to disk as
// for the client's own calls; Close the status when done.
func (c *Client) ReadStatus(r io.Reader) (*Status, error) {
	st, err := c.readStatus(r, -1)
	if err != nil {
		return nil, fmt.Errorf("runpod: %w", err)
	}
	return st, nil
}

func (c *Client) readStatus(r io.Reader, contentLength int64) (*Status, error) {
	b, err := readBody(r, contentLength, c.spool)
	if err != nil {
		return nil, err
	}
	st, err := decodeStatus(b)
	if err != nil {
		_ = b.close()
		return nil, err
	}
	st.client = c
	return st, nil
}

// decodeSmall reads a small JSON answer (at most 1 MiB) into v, leniently.
func decodeSmall(resp *http.Response, v any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
	if err != nil {
		return err
	}
	if len(b) > 1<<20 {
		return fmt.Errorf("%w: over 1 MiB for a small answer", errTooLarge)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", oneLine(string(b), 100), err)
	}
	return nil
}

// Cancel cancels job id (POST /cancel/{id}) and returns its status. It is
// safe to call on a job that already ended.
func (c *Client) Cancel(ctx context.Context, id string) (*Status, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	return c.statusCall(ctx, &call{method: http.MethodPost, path: jobPath("cancel", id), jobID: id})
}

// Retry re-queues a FAILED or TIMED_OUT job under the same id (POST
// /retry/{id}), as long as RunPod still keeps it. Like a submission, it is not
// sent twice when its answer is lost.
func (c *Client) Retry(ctx context.Context, id string) (*Job, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	release, err := c.limiter.acquire(ctx)
	if err != nil {
		return nil, err
	}
	var ans submitAnswer
	err = c.do(ctx, &call{method: http.MethodPost, path: jobPath("retry", id), jobID: id, submit: true},
		func(resp *http.Response) error { return ans.decode(resp) })
	if err != nil {
		release()
		return nil, err
	}
	if ans.ID == "" {
		ans.ID = id
	}
	return c.newJob(ans.ID, ans.Status, release), nil
}

// PurgeQueue removes every job still waiting in the endpoint's queue (POST
// /purge-queue). Jobs already running are not touched.
func (c *Client) PurgeQueue(ctx context.Context) (*PurgeResult, error) {
	var res PurgeResult
	err := c.do(ctx, &call{method: http.MethodPost, path: "/purge-queue"},
		func(resp *http.Response) error { return decodeSmall(resp, &res) })
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Health reports the endpoint's job counts and workers (GET /health).
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	err := c.do(ctx, &call{method: http.MethodGet, path: "/health"},
		func(resp *http.Response) error { return decodeSmall(resp, &h) })
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// submitAnswer is the answer of /run and /retry.
type submitAnswer struct {
	ID     string `json:"id"`
	Status State  `json:"status"`
}

func (a *submitAnswer) decode(resp *http.Response) error {
	if err := decodeSmall(resp, a); err != nil {
		return err
	}
	if a.ID == "" && a.Status == "" {
		return errors.New("the answer has no job id")
	}
	return nil
}
