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
	"sync"
	"time"

	"github.com/comfypod/comfypod/internal/redact"
)

// Request-size limits of the local API: RunPod's own limits for /run and
// /runsync, so a payload that works locally also fits in production.
const (
	maxRunBody     = 10 << 20
	maxRunsyncBody = 20 << 20
)

// webhookTimeout bounds a local API webhook post, as in runpod-python.
const webhookTimeout = 10 * time.Second

// LocalAPI is the development server runpod-python starts with
// --rp_serve_api: RunPod's job routes answered in-process by the handler, so
// a worker can be tried with curl or any RunPod client.
//
//	POST /run             store a job: {"id": "test-<uuid>", "status": "IN_PROGRESS"}
//	POST /runsync         run a job now: {"id", "status": "COMPLETED", "output"} or {"id", "status": "FAILED", "error"}
//	POST /status/{id}     run a job stored by /run and forget it (GET works too)
//	POST /stream/{id}     run a stored job with a StreamHandler: {"id", "status", "stream": [{"output"}…]} (GET works too)
//	POST /{endpoint}/realtime   with Config.EndpointID: the raw job-done body
//
// Unlike runpod-python's, it runs up to Config.Concurrency jobs at once in
// one process. Inputs may be any JSON value except null.
type LocalAPI struct {
	runner *localRunner
	log    *slog.Logger
	mux    *http.ServeMux
	sem    chan struct{}
	client *http.Client

	mu   sync.Mutex
	jobs map[string]*Job

	bgCtx    context.Context // webhook posts
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// NewLocalAPI returns the local API for cfg's handler. cfg needs no URLs.
func NewLocalAPI(cfg *Config) (*LocalAPI, error) {
	l, err := newLocalRunner(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &LocalAPI{
		runner:   l,
		log:      l.cfg.Logger,
		mux:      http.NewServeMux(),
		sem:      make(chan struct{}, l.cfg.Concurrency),
		client:   &http.Client{Transport: newTransport(), Timeout: webhookTimeout},
		jobs:     make(map[string]*Job),
		bgCtx:    ctx,
		bgCancel: cancel,
	}
	a.mux.HandleFunc("GET /{$}", a.index)
	a.mux.HandleFunc("POST /run", a.handleRun)
	a.mux.HandleFunc("POST /runsync", a.handleRunsync)
	a.mux.HandleFunc("POST /status/{id}", a.handleStatus)
	a.mux.HandleFunc("GET /status/{id}", a.handleStatus)
	a.mux.HandleFunc("POST /stream/{id}", a.handleStream)
	a.mux.HandleFunc("GET /stream/{id}", a.handleStream)
	if ep := l.cfg.EndpointID; ep != "" {
		a.mux.HandleFunc("POST /"+ep+"/realtime", a.handleRealtime)
	}
	return a, nil
}

// ServeHTTP answers one request.
func (a *LocalAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// Close cancels webhook posts still under way and waits for them.
func (a *LocalAPI) Close() {
	a.bgCancel()
	a.bg.Wait()
}

// Serve answers requests on ln until ctx ends, then shuts the server down
// (letting requests in progress finish for up to Config.ShutdownGrace) and
// closes the API.
func (a *LocalAPI) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("Local API listening on http://" + ln.Addr().String())
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.runner.cfg.ShutdownGrace)
		err = srv.Shutdown(sctx)
		cancel()
		if err != nil {
			_ = srv.Close()
		}
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	a.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// runRequest is the body of /run and /runsync.
type runRequest struct {
	Input    json.RawMessage `json:"input"`
	Webhook  string          `json:"webhook,omitempty"`
	S3Config *S3Config       `json:"s3Config,omitempty"`
	Policy   *Policy         `json:"policy,omitempty"`
}

func (a *LocalAPI) readRun(w http.ResponseWriter, r *http.Request, limit int64) (*runRequest, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body is over %d MB, RunPod's limit for %s; send large inputs as URLs", limit>>20, r.URL.Path)})
			return nil, false
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the request body: " + err.Error()})
		return nil, false
	}
	var req runRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a JSON object such as {\"input\": {...}}: " + err.Error()})
		return nil, false
	}
	if len(req.Input) == 0 || isNull(req.Input) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body has no \"input\"; send {\"input\": {...}}"})
		return nil, false
	}
	return &req, true
}

func (a *LocalAPI) newJob(req *runRequest) *Job {
	return &Job{
		ID:       "test-" + newUUID(a.runner.cfg.Rand),
		Input:    req.Input,
		Webhook:  req.Webhook,
		S3Config: req.S3Config,
		Policy:   req.Policy,
	}
}

func (a *LocalAPI) handleRun(w http.ResponseWriter, r *http.Request) {
	req, ok := a.readRun(w, r, maxRunBody)
	if !ok {
		return
	}
	job := a.newJob(req)
	a.mu.Lock()
	a.jobs[job.ID] = job
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"id": job.ID, "status": StatusInProgress})
}

func (a *LocalAPI) handleRunsync(w http.ResponseWriter, r *http.Request) {
	req, ok := a.readRun(w, r, maxRunsyncBody)
	if !ok {
		return
	}
	job := a.newJob(req)
	res, ok := a.runJob(w, r, job)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// takeStored removes and returns a job stored by /run.
func (a *LocalAPI) takeStored(id string) *Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	job := a.jobs[id]
	delete(a.jobs, id)
	return job
}

func notFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": StatusFailed, "error": "Job ID not found"})
}

func (a *LocalAPI) handleStatus(w http.ResponseWriter, r *http.Request) {
	if res, ok := a.runStored(w, r, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// runStored runs the stored job id, answering the request itself (and
// reporting false) when there is no such job or no slot frees up.
func (a *LocalAPI) runStored(w http.ResponseWriter, r *http.Request, id string) (*LocalResult, bool) {
	job := a.takeStored(id)
	if job == nil {
		notFound(w, id)
		return nil, false
	}
	return a.runJob(w, r, job)
}

// streamAnswer is /stream's answer.
type streamAnswer struct {
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Stream []streamOutput `json:"stream,omitempty"`
	Error  string         `json:"error,omitempty"`
}

type streamOutput struct {
	Output json.RawMessage `json:"output"`
}

func (a *LocalAPI) handleStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.runner.exec.stream == nil {
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": StatusFailed, "error": "Stream not supported, handler must be a StreamHandler."})
		return
	}
	res, ok := a.runStored(w, r, id)
	if !ok {
		return
	}
	ans := streamAnswer{ID: res.ID, Status: res.Status, Error: res.Error, Stream: []streamOutput{}}
	for _, c := range res.Chunks {
		ans.Stream = append(ans.Stream, streamOutput{Output: c})
	}
	writeJSON(w, http.StatusOK, ans)
}

func (a *LocalAPI) handleRealtime(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRunsyncBody))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request body too large or unreadable"})
		return
	}
	job, err := decodeJob(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error() + "; send {\"id\": \"...\", \"input\": {...}}"})
		return
	}
	res, ok := a.runJob(w, r, job)
	if !ok {
		return
	}
	out := writeBody(res.Output, res.Error, res.RefreshWorker, "")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// runJob runs a job once a concurrency slot is free. It answers 503 itself
// when the client gives up while waiting for a slot.
func (a *LocalAPI) runJob(w http.ResponseWriter, r *http.Request, job *Job) (*LocalResult, bool) {
	select {
	case a.sem <- struct{}{}:
	case <-r.Context().Done():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the request ended while waiting for a free worker slot"})
		return nil, false
	}
	defer func() { <-a.sem }()
	res := a.runner.run(r.Context(), job)
	if job.Webhook != "" && !res.Failed() {
		a.sendWebhook(job.Webhook, writeBody(res.Output, "", false, ""))
	}
	return res, true
}

// sendWebhook posts a job's output to its webhook in the background, as
// runpod-python's local API does.
func (a *LocalAPI) sendWebhook(url string, body []byte) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		req, err := http.NewRequestWithContext(a.bgCtx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			a.log.Warn("WEBHOOK | bad URL: " + redact.Signatures(err.Error()))
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.client.Do(req)
		if err != nil {
			a.log.Warn("WEBHOOK | Request failed: " + redact.Signatures(err.Error()))
			return
		}
		defer drainClose(resp)
		if resp.StatusCode >= 300 {
			a.log.Warn(fmt.Sprintf("WEBHOOK | %s answered HTTP %d", redact.Signatures(url), resp.StatusCode))
		}
	}()
}

func (a *LocalAPI) index(w http.ResponseWriter, _ *http.Request) {
	routes := []string{"POST /run", "POST /runsync", "POST|GET /status/{id}", "POST|GET /stream/{id}"}
	if ep := a.runner.cfg.EndpointID; ep != "" {
		routes = append(routes, "POST /"+ep+"/realtime")
	}
	writeJSON(w, http.StatusOK, map[string]any{"title": "comfypod serverless worker: local API", "routes": routes})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := encodeJSON(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"the result cannot be encoded as JSON"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}
