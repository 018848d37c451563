package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/serverless"
)

// Handler runs ComfyUI jobs: it is the serverless.Handler of a ComfyUI
// worker (use Handle). One Handler serves any number of concurrent jobs
// against one ComfyUI.
type Handler struct {
	cfg    *Config
	client *comfy.Client
	log    *slog.Logger
	fetch  *fetcher
	s3     *s3Target // the endpoint's bucket, nil without one
	scrub  redact.Secrets
	alive  func() error

	mu      sync.Mutex
	classes map[string]*comfy.ClassInfo // /object_info entries seen so far

	// background holds clean-up calls that finish after their job's
	// result; Close waits for them. Once closed, they run in line.
	background sync.WaitGroup
	bgMu       sync.Mutex
	closed     bool

	rndMu sync.Mutex
	rnd   *rand.Rand
}

// New returns a Handler for cfg. It checks the configuration but does not
// contact ComfyUI: call Start (or use FitnessCheck) before the first job.
func New(cfg *Config) (*Handler, error) {
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:     c,
		log:     c.Logger,
		fetch:   newFetcher(c.URLs),
		classes: map[string]*comfy.ClassInfo{},
		rnd:     rand.New(c.Rand),
		alive:   c.Alive,
	}
	h.scrub = redact.NewSecrets(c.ComfyOrgAPIKey)
	if c.S3 != nil {
		t, err := resolveS3(c.S3)
		if err != nil {
			return nil, fmt.Errorf("worker: S3: %w", err)
		}
		h.s3 = t
		h.scrub = h.scrub.With(c.S3.SecretAccessKey)
	}
	if h.alive == nil && c.PIDFile != "" {
		h.alive = pidAlive(c.PIDFile)
	}
	client, err := comfy.NewClient(c.ComfyURL,
		comfy.WithHTTPClient(c.HTTPClient),
		comfy.WithLogger(c.Logger),
		comfy.WithClock(c.Clock),
		comfy.WithReconnect(c.ReconnectAttempts, c.ReconnectDelay),
		comfy.WithIDGenerator(h.newUUID),
	)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	h.client = client
	return h, nil
}

// inBackground runs f on a goroutine Close waits for, or at once after
// Close.
func (h *Handler) inBackground(f func()) {
	h.bgMu.Lock()
	if h.closed {
		h.bgMu.Unlock()
		f()
		return
	}
	h.background.Add(1)
	h.bgMu.Unlock()
	go func() {
		defer h.background.Done()
		f()
	}()
}

// Client returns the ComfyUI client the handler uses.
func (h *Handler) Client() *comfy.Client { return h.client }

// Close waits for the clean-up of finished jobs and releases idle
// connections. Jobs still running are not affected.
func (h *Handler) Close() {
	h.bgMu.Lock()
	h.closed = true
	h.bgMu.Unlock()
	h.background.Wait()
	h.fetch.close()
	h.cfg.HTTPClient.CloseIdleConnections()
}

// FitnessCheck returns Start as a serverless fitness check, so the worker
// takes no job before ComfyUI is ready (and RunPod hears of a ComfyUI that
// never comes up).
func (h *Handler) FitnessCheck() serverless.FitnessCheck {
	return serverless.FitnessCheck{Name: "comfyui", Check: h.Start}
}

// Start gets the worker ready for jobs: it waits for ComfyUI (see
// WaitReady), checks that the manifest's bindings still fit its workflows and
// this ComfyUI's nodes, and runs the warm-up workflow.
func (h *Handler) Start(ctx context.Context) error {
	if err := h.WaitReady(ctx); err != nil {
		return err
	}
	if err := h.checkPackage(ctx); err != nil {
		return err
	}
	if len(h.cfg.Warmup) > 0 {
		if err := h.Warmup(ctx); err != nil {
			if h.cfg.WarmupRequired {
				return err
			}
			h.log.Warn("the warm-up workflow failed; serving jobs anyway", "err", err)
		}
	}
	return nil
}

// checkPackage verifies every shipped workflow against the manifest and the
// server's node classes.
func (h *Handler) checkPackage(ctx context.Context) error {
	m := h.cfg.Manifest
	if m == nil {
		return nil
	}
	for _, name := range m.Workflows() {
		wf := h.cfg.Workflows[name]
		info, missing, err := h.objectInfo(ctx, wf)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			h.log.Warn("the package's workflow uses node classes this ComfyUI does not have", "workflow", name, "classes", missing)
		}
		if err := m.Check(wf, name, info); err != nil {
			return fmt.Errorf("the manifest does not fit workflow %q: %w", name, err)
		}
	}
	return nil
}

// newUUID makes ComfyUI client and prompt ids from the handler's source.
func (h *Handler) newUUID() string {
	h.rndMu.Lock()
	a, b := h.rnd.Uint64(), h.rnd.Uint64()
	h.rndMu.Unlock()
	a = a&^(0xf<<12) | 0x4<<12 // version 4
	b = b&^(0x3<<62) | 0x2<<62 // variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// newTag makes the per-job tag that prefixes every file name of the job.
func (h *Handler) newTag() string {
	h.rndMu.Lock()
	defer h.rndMu.Unlock()
	return fmt.Sprintf("cp%010x", h.rnd.Uint64()&0xffffffffff)
}

// jobRand returns a generator for one job's random params and seeds.
func (h *Handler) jobRand() *rand.Rand {
	h.rndMu.Lock()
	defer h.rndMu.Unlock()
	return rand.New(rand.NewPCG(h.rnd.Uint64(), h.rnd.Uint64()))
}

// objectInfo returns the /object_info entries of the workflow's classes,
// fetching the ones not seen before, and the classes the server lacks.
func (h *Handler) objectInfo(ctx context.Context, wf *comfy.Workflow) (comfy.ObjectInfo, []string, error) {
	info := comfy.ObjectInfo{}
	var need []string
	h.mu.Lock()
	for _, n := range wf.Nodes() {
		if _, done := info[n.ClassType]; done {
			continue
		}
		if ci, ok := h.classes[n.ClassType]; ok {
			info[n.ClassType] = ci
		} else if n.ClassType != "" {
			info[n.ClassType] = nil
			need = append(need, n.ClassType)
		}
	}
	h.mu.Unlock()
	// Fetch the new classes side by side: a package's first check asks for
	// a few dozen.
	found := make([]*comfy.ClassInfo, len(need))
	errs := make([]error, len(need))
	var g errgroup.Group
	g.SetLimit(8)
	for i, class := range need {
		g.Go(func() error {
			ci, ok, err := h.client.ClassInfo(ctx, class)
			if ok {
				found[i] = ci
			}
			errs[i] = err
			return nil
		})
	}
	_ = g.Wait()
	var missing []string
	for i, class := range need {
		if errs[i] != nil {
			return nil, nil, h.unavailable(ctx, errs[i])
		}
		if found[i] == nil {
			delete(info, class)
			missing = append(missing, class)
			continue
		}
		info[class] = found[i]
		h.mu.Lock()
		h.classes[class] = found[i]
		h.mu.Unlock()
	}
	return info, missing, nil
}

// unavailable explains a failed call to ComfyUI.
func (h *Handler) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if h.alive != nil {
		if aerr := h.alive(); aerr != nil {
			return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("ComfyUI's process has exited (%v); the worker will be replaced", aerr), replace: true}
		}
	}
	var comfyAPI *comfy.APIError
	if errors.As(err, &comfyAPI) {
		return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("ComfyUI at %s answered an unexpected error: %v", redactURL(h.client.BaseURL()), err)}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) {
		return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("ComfyUI at %s does not answer (%v)", redactURL(h.client.BaseURL()), err)}
	}
	return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("talking to ComfyUI at %s failed: %v", redactURL(h.client.BaseURL()), err)}
}

// Handle runs one job: the serverless.Handler of a ComfyUI worker. Jobs
// that cannot run fail with a message that says what to fix and, as the
// job's output, {"details": [problems…]}; the handler stays serviceable for
// the next job.
func (h *Handler) Handle(ctx context.Context, job *serverless.Job) (any, error) {
	r := h.newRun(job)
	out, err := r.run(ctx)
	if err != nil {
		err = h.jobError(ctx, r, err)
		var re refreshError
		if errors.As(err, &re) {
			return re.res, nil
		}
		return nil, err
	}
	return serverless.Result{Output: out}, nil
}

// jobError turns a run's error into what the runtime posts.
func (h *Handler) jobError(ctx context.Context, r *jobRun, err error) error {
	var we *Error
	if !errors.As(err, &we) {
		if ctx.Err() != nil {
			// RunPod stopped the job or the worker is shutting down: the
			// runtime knows what to post (or not to).
			return context.Cause(ctx)
		}
		r.log.Error("job failed", "err", r.scrub.String(err.Error()))
		return err
	}
	msg := r.scrub.String(we.Error())
	level := slog.LevelInfo
	if errors.Is(we, ErrComfyUnavailable) || errors.Is(we, ErrOutput) {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, "job failed", "kind", we.Kind, "err", msg)
	var details any
	if len(we.Problems) > 0 {
		ps := make([]Problem, len(we.Problems))
		for i, p := range we.Problems {
			p.Message = r.scrub.String(p.Message)
			ps[i] = p
		}
		details = map[string]any{"details": ps}
	}
	if we.replace {
		// Posted as a result so that RunPod also hears stopPod.
		return refreshError{serverless.Result{Output: details, Error: msg, RefreshWorker: true}}
	}
	return &serverless.JobError{Message: msg, Output: details}
}

// refreshError carries a failed result that asks RunPod to replace the
// worker; Handle returns its Result.
type refreshError struct{ res serverless.Result }

func (e refreshError) Error() string { return e.res.Error }

// now is the handler's clock.
func (h *Handler) now() time.Time { return h.cfg.Clock.Now() }

// guardedTransport returns the transport for a job-supplied S3 endpoint: the URL
// guard's, so a job cannot aim the worker at internal addresses.
func (h *Handler) guardedTransport() http.RoundTripper { return h.fetch.client.Transport }
