package runpodtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/comfypod/comfypod/internal/redact"
)

// WorkerHandler runs one job in a TestWorker. A non-nil error fails the job
// with err.Error(); otherwise output (any JSON-encodable value) completes it.
// ctx ends when the job is cancelled, times out or the worker stops.
type WorkerHandler func(ctx context.Context, job *WorkerJob) (output any, err error)

// WorkerJob is a job as a TestWorker took it.
type WorkerJob struct {
	// ID is the job id.
	ID string
	// Input is the job's input as the client sent it.
	Input json.RawMessage
	// Webhook, Policy and S3Config are the request's, when it had them.
	Webhook  string
	Policy   json.RawMessage
	S3Config json.RawMessage

	w *TestWorker
}

// Progress posts a progress update, shown by /status while the job runs.
func (j *WorkerJob) Progress(ctx context.Context, output any) error {
	return j.w.post(ctx, j.w.url(EnvPostOutput, j.ID, "isStream=false"), map[string]any{"status": StatusInProgress, "output": output})
}

// Stream posts one chunk, returned by /stream.
func (j *WorkerJob) Stream(ctx context.Context, output any) error {
	return j.w.post(ctx, j.w.url(EnvPostStream, j.ID, "isStream=false"), map[string]any{"output": output})
}

// WorkerOptions configure a TestWorker; the zero value is one worker of the
// default endpoint running one job at a time.
type WorkerOptions struct {
	// Endpoint is the endpoint id to serve (the default endpoint when empty).
	Endpoint string
	// ID is the worker id (RUNPOD_POD_ID); random when empty.
	ID string
	// Concurrency is how many jobs run at once (1 when zero).
	Concurrency int
}

// TestWorker is a small worker for tests that speaks the real HTTP worker
// protocol against its Server: take (long-poll), handler, job-done, plus a
// heartbeat and the job-stop channel. It is not a production runtime: no
// batching, no refresh, no local modes.
type TestWorker struct {
	srv    *Server
	id     string
	env    map[string]string
	h      WorkerHandler
	slots  int
	client *http.Client

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu      sync.Mutex
	running map[string]context.CancelFunc // by job id
	stopped map[string]bool               // jobs the server told it to stop
}

// workerVersion is the runpod_version the test worker reports on pings.
const workerVersion = "runpodtest"

// StartWorker starts a TestWorker running h. It runs until ctx ends, Stop is
// called or the server closes.
func (s *Server) StartWorker(ctx context.Context, h WorkerHandler, opts *WorkerOptions) (*TestWorker, error) {
	if h == nil {
		return nil, errors.New("runpodtest: StartWorker needs a handler")
	}
	var o WorkerOptions
	if opts != nil {
		o = *opts
	}
	if o.Endpoint == "" {
		o.Endpoint = s.EndpointID()
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("runpodtest: worker concurrency %d is negative", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("runpodtest: server closed")
	}
	if o.ID == "" {
		o.ID = "worker-" + s.uuidLocked()[:8]
	}
	s.mu.Unlock()
	env, err := s.WorkerEnvFor(o.Endpoint, o.ID)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &TestWorker{
		srv: s, id: o.ID, env: env, h: h, slots: o.Concurrency,
		client:  &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: o.Concurrency + 2}},
		ctx:     wctx,
		cancel:  cancel,
		running: map[string]context.CancelFunc{},
		stopped: map[string]bool{},
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, errors.New("runpodtest: server closed")
	}
	s.testWorkers[w] = struct{}{}
	s.mu.Unlock()
	// Server.Close stops every registered worker.
	w.wg.Add(2 + w.slots)
	go w.pingLoop()
	go w.stopLoop()
	for range w.slots {
		go w.takeLoop()
	}
	return w, nil
}

// ID is the worker's id (RUNPOD_POD_ID).
func (w *TestWorker) ID() string { return w.id }

// Stop stops the worker hard: in-flight handlers see their context cancelled
// and post nothing, as a killed container would. It returns once every
// goroutine of the worker has returned; calling it twice is safe.
func (w *TestWorker) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		w.wg.Wait()
		w.client.CloseIdleConnections()
		w.srv.mu.Lock()
		delete(w.srv.testWorkers, w)
		w.srv.mu.Unlock()
	})
}

// url fills the env template name as runpod-python does: $RUNPOD_POD_ID and
// $ID, then appends query with ? or & as the template needs.
func (w *TestWorker) url(name, jobID, query string) string {
	u := strings.ReplaceAll(w.env[name], "$RUNPOD_POD_ID", w.id)
	if jobID == "" {
		jobID = w.id
	}
	u = strings.ReplaceAll(u, "$ID", jobID)
	return joinQuery(u, query)
}

// joinQuery appends query to u with ? or &.
func joinQuery(u, query string) string {
	switch {
	case query == "":
		return u
	case !strings.Contains(u, "?"):
		return u + "?" + query
	case strings.HasSuffix(u, "?"), strings.HasSuffix(u, "&"):
		return u + query
	}
	return u + "&" + query
}

// do sends one worker request with the raw key, as runpod-python does.
func (w *TestWorker) do(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", w.env[EnvWorkerAPIKey])
	if body != nil {
		// The Python SDK's quirk, reproduced on purpose.
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// pause waits d on the server's clock; false when the worker is stopping.
func (w *TestWorker) pause(d time.Duration) bool {
	t := w.srv.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-w.ctx.Done():
		return false
	}
}

func (w *TestWorker) takeLoop() {
	defer w.wg.Done()
	backoff := 100 * time.Millisecond
	for w.ctx.Err() == nil {
		w.mu.Lock()
		busy := len(w.running) > 0
		w.mu.Unlock()
		inProgress := "job_in_progress=0"
		if busy {
			inProgress = "job_in_progress=1"
		}
		code, body, err := w.do(w.ctx, http.MethodGet, w.url(EnvGetJob, "", inProgress), nil)
		switch {
		case err != nil || code == http.StatusTooManyRequests || code >= 500:
			if !w.pause(backoff) {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		case code != http.StatusOK:
			continue // 204 or 400: no job
		}
		backoff = 100 * time.Millisecond
		var tj takenJob
		if err := json.Unmarshal(body, &tj); err != nil || tj.ID == "" || tj.Input == nil {
			w.srv.log.Warn("runpodtest: test worker got a malformed job", "worker", w.id)
			continue
		}
		w.run(&WorkerJob{ID: tj.ID, Input: tj.Input, Webhook: tj.Webhook, Policy: tj.Policy, S3Config: tj.S3Config, w: w})
	}
}

// run runs one job and posts its result, unless the server told the worker
// to stop it or the worker is stopping.
func (w *TestWorker) run(job *WorkerJob) {
	jctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	w.mu.Lock()
	w.running[job.ID] = cancel
	w.mu.Unlock()
	out, err := w.call(jctx, job)
	w.mu.Lock()
	delete(w.running, job.ID)
	stopped := w.stopped[job.ID]
	delete(w.stopped, job.ID)
	w.mu.Unlock()
	if stopped || w.ctx.Err() != nil {
		return
	}
	body := map[string]any{"output": out}
	if err != nil {
		body = map[string]any{"error": err.Error()}
	}
	if err := w.post(w.ctx, w.url(EnvPostOutput, job.ID, "isStream=false"), body); err != nil {
		w.srv.log.Warn("runpodtest: test worker could not post a result", "worker", w.id, "job", job.ID, "err", err)
	}
}

// call runs the handler, turning a panic into an error with its stack.
func (w *TestWorker) call(ctx context.Context, job *WorkerJob) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return w.h(ctx, job)
}

// post sends a JSON body to a worker URL, retrying transport errors, 429 and
// 5xx up to three attempts; 404 (the job expired or was taken away) is
// reported as an error without retry.
func (w *TestWorker) post(ctx context.Context, u string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		body, _ = json.Marshal(map[string]string{"error": "cannot encode the handler output: " + err.Error()})
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		code, resp, err := w.do(ctx, http.MethodPost, u, body)
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s answered %d: %s", redact.URL(u), code, bytes.TrimSpace(resp))
			if code != http.StatusTooManyRequests && code < 500 {
				return err
			}
		}
		if attempt == 3 || !w.pause(backoff) {
			return err
		}
		backoff *= 2
	}
}

// pingLoop sends the heartbeat at once and then every PingInterval, listing
// the jobs in flight.
func (w *TestWorker) pingLoop() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		ids := make([]string, 0, len(w.running))
		for id := range w.running {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		slices.Sort(ids)
		q := url.Values{}
		if len(ids) > 0 {
			q.Set("job_id", strings.Join(ids, ","))
		}
		q.Set("runpod_version", workerVersion)
		_, _, _ = w.do(w.ctx, http.MethodGet, w.url(EnvPing, "", q.Encode()), nil)
		if !w.pause(w.srv.cfg.PingInterval) {
			return
		}
	}
}

// stopLoop long-polls job-stop and cancels the jobs it names.
func (w *TestWorker) stopLoop() {
	defer w.wg.Done()
	stopURL := strings.Replace(w.url(EnvGetJob, "", ""), "/job-take/", "/job-stop/", 1)
	for w.ctx.Err() == nil {
		code, body, err := w.do(w.ctx, http.MethodGet, stopURL, nil)
		switch {
		case err != nil || code == http.StatusTooManyRequests || code >= 500:
			if !w.pause(time.Second) {
				return
			}
			continue
		case code == http.StatusNotFound:
			return // no stop channel on this server
		case code != http.StatusOK:
			continue
		}
		var msg struct {
			JobsToStop []string `json:"jobsToStop"`
		}
		if json.Unmarshal(body, &msg) != nil {
			continue
		}
		w.mu.Lock()
		for _, id := range msg.JobsToStop {
			if cancel, ok := w.running[id]; ok {
				w.stopped[id] = true
				cancel()
			}
		}
		w.mu.Unlock()
	}
}
