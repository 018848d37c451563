package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/runpod/runpodtest"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
)

// Defaults of Config.
const (
	// WorkersDefault is the number of workers started.
	WorkersDefault = 1
	// AddrDefault is where the control plane and the engine listen: a free
	// loopback port each.
	AddrDefault = "127.0.0.1:0"
	// ShutdownGraceDefault is how long Close lets running jobs finish when
	// its context has no deadline.
	ShutdownGraceDefault = 10 * time.Second
)

// Config configures a Stack. The zero value runs one worker against the
// built-in engine in a temporary folder.
type Config struct {
	// Workers is the number of serverless workers (WorkersDefault).
	Workers int
	// Concurrency is the number of jobs each worker runs at once (1).
	Concurrency int

	// ComfyURL is a ComfyUI to use instead of the built-in engine. ComfyDir
	// is its base folder when it runs on this machine (so jobs' files are
	// deleted after each job).
	ComfyURL string
	ComfyDir string
	// EngineDir is the built-in engine's base folder; a temporary folder,
	// removed by Close, when empty.
	EngineDir string
	// EngineAddr is where the engine listens (AddrDefault).
	EngineAddr string
	// EngineClasses are node classes the engine serves besides its core ones
	// (test doubles, stand-ins for custom nodes).
	EngineClasses []*node.Class

	// Addr is where the control plane listens (AddrDefault).
	Addr string
	// EndpointID and APIKey are the endpoint's id (runpodtest's default
	// when empty) and the key clients send (random when empty).
	EndpointID string
	APIKey     string
	// Control adjusts the control plane's configuration (timeouts, clock,
	// limits) before it starts; Addr, Endpoints, APIKey and Logger are set
	// from the fields above.
	Control func(*runpodtest.Config)
	// ColdStart, when > 0, makes the stack behave like a RunPod endpoint
	// scaled to zero: the workers start when the first job arrives, and each
	// stays initializing (unserved, and so in /health) for ColdStart before
	// it takes jobs, as a worker loading a model does. The control plane's
	// ColdStart is set to it.
	ColdStart time.Duration

	// Worker is the template of the handler's configuration: manifest,
	// workflows, limits, S3, warm-up. ComfyURL, ComfyDir and Logger are
	// filled in from the stack.
	Worker worker.Config
	// Serverless adjusts each worker's runtime configuration before it
	// starts.
	Serverless func(*serverless.Config)

	// Logger receives the logs of every part, each with a "part"
	// attribute; nil discards them.
	Logger *slog.Logger
}

// Stack is a running local trip. Close it when done.
type Stack struct {
	control  *runpodtest.Server
	engine   *engine.Server
	engSrv   *http.Server
	engDone  chan error
	comfyURL string
	comfyDir string
	tempDir  string
	handler  *worker.Handler
	logger   *slog.Logger

	mu      sync.Mutex
	workers []*serverless.Worker
	// stopLazy and lazyDone stop the goroutine that starts the workers on
	// the first job, with a cold start.
	stopLazy context.CancelFunc
	lazyDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start starts the control plane, the engine (unless cfg.ComfyURL is set),
// waits for ComfyUI, runs the handler's start-up checks and warm-up, then
// starts the workers. On error everything started is stopped again.
func Start(ctx context.Context, cfg *Config) (*Stack, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := cfg.Workers
	if n == 0 {
		n = WorkersDefault
	}
	if n < 0 || n > 64 {
		return nil, fmt.Errorf("devstack: %d workers: want 1 to 64", n)
	}
	if cfg.ColdStart < 0 {
		return nil, fmt.Errorf("devstack: ColdStart %s is negative", cfg.ColdStart)
	}
	s := &Stack{logger: logger}
	ok := false
	defer func() {
		if !ok {
			_ = s.Close(context.Background())
		}
	}()

	// ComfyUI: the built-in engine, or the one given.
	if cfg.ComfyURL != "" {
		s.comfyURL, s.comfyDir = cfg.ComfyURL, cfg.ComfyDir
	} else if err := s.startEngine(cfg); err != nil {
		return nil, err
	}

	// The control plane.
	rc := &runpodtest.Config{}
	if cfg.Control != nil {
		cfg.Control(rc)
	}
	rc.Addr, rc.APIKey, rc.Logger = orDefault(cfg.Addr, AddrDefault), cfg.APIKey, logger.With("part", "runpod")
	if cfg.ColdStart > 0 {
		rc.ColdStart = cfg.ColdStart
	}
	if cfg.EndpointID != "" {
		rc.Endpoints = []string{cfg.EndpointID}
	}
	control, err := runpodtest.NewServer(rc)
	if err != nil {
		return nil, fmt.Errorf("devstack: starting the control plane: %w", err)
	}
	s.control = control

	// The handler, shared by the workers.
	wc := cfg.Worker
	wc.ComfyURL, wc.ComfyDir = s.comfyURL, s.comfyDir
	if wc.Logger == nil {
		wc.Logger = logger.With("part", "worker")
	}
	h, err := worker.New(&wc)
	if err != nil {
		return nil, err
	}
	s.handler = h
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}

	// The workers: now, or on the first job after a cold start.
	if cfg.ColdStart > 0 {
		// Checked now, so that a mistake fails Start and not the first job.
		if _, err := s.workerConfig(cfg, wc.Logger, "dev-worker-1"); err != nil {
			return nil, err
		}
		lazy, stop := context.WithCancel(context.WithoutCancel(ctx))
		s.stopLazy, s.lazyDone = stop, make(chan struct{})
		go func() {
			defer close(s.lazyDone)
			err := control.Await(lazy, func() bool {
				return control.Requests(runpodtest.OpRun)+control.Requests(runpodtest.OpRunsync) > 0
			})
			if err != nil {
				return // closed before any job came
			}
			logger.Info("devstack: the first job arrived; starting the workers (cold start)", "workers", n, "cold_start", cfg.ColdStart)
			if err := s.startWorkers(lazy, cfg, n, wc.Logger); err != nil && lazy.Err() == nil {
				logger.Error("devstack: starting the workers failed", "err", err)
			}
		}()
	} else if err := s.startWorkers(ctx, cfg, n, wc.Logger); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// workerConfig is the runtime configuration of worker id.
func (s *Stack) workerConfig(cfg *Config, logger *slog.Logger, id string) (*serverless.Config, error) {
	env, err := s.control.WorkerEnvFor(s.control.EndpointID(), id)
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	sc, err := serverless.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		return nil, fmt.Errorf("devstack: worker environment: %w", err)
	}
	sc.Handler = s.handler.Handle
	sc.Logger = logger.With("worker", id)
	if cfg.Concurrency > 0 {
		sc.Concurrency = cfg.Concurrency
	}
	if cfg.Serverless != nil {
		cfg.Serverless(sc)
	}
	return sc, nil
}

// startWorkers starts n workers.
func (s *Stack) startWorkers(ctx context.Context, cfg *Config, n int, logger *slog.Logger) error {
	for i := range n {
		id := fmt.Sprintf("dev-worker-%d", i+1)
		sc, err := s.workerConfig(cfg, logger, id)
		if err != nil {
			return err
		}
		w, err := serverless.New(sc)
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		if err := w.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("devstack: starting worker %s: %w", id, err)
		}
		s.mu.Lock()
		s.workers = append(s.workers, w)
		s.mu.Unlock()
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// startEngine runs the built-in engine on its own listener.
func (s *Stack) startEngine(cfg *Config) error {
	dir := cfg.EngineDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "comfypod-dev-")
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		s.tempDir, dir = tmp, tmp
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("devstack: engine folder %s: %w", dir, err)
	}
	eng, err := engine.New(&engine.Config{Dir: abs, Logger: s.logger.With("part", "engine"), Classes: cfg.EngineClasses, DisableMetadata: true})
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.engine = eng
	if err := eng.Start(context.Background()); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	ln, err := net.Listen("tcp", orDefault(cfg.EngineAddr, AddrDefault))
	if err != nil {
		return fmt.Errorf("devstack: engine listener: %w", err)
	}
	s.engSrv = &http.Server{Handler: eng, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.logger.With("part", "engine").Handler(), slog.LevelWarn)}
	s.engDone = make(chan error, 1)
	go func() { s.engDone <- s.engSrv.Serve(ln) }()
	s.comfyURL = "http://" + ln.Addr().String()
	s.comfyDir = abs
	return nil
}

// BaseURL is the RunPod API base clients use (RUNPOD_ENDPOINT_BASE_URL).
func (s *Stack) BaseURL() string { return s.control.BaseURL() }

// EndpointID is the endpoint's id (RUNPOD_ENDPOINT_ID).
func (s *Stack) EndpointID() string { return s.control.EndpointID() }

// APIKey is the key clients send (RUNPOD_API_KEY).
func (s *Stack) APIKey() string { return s.control.APIKey() }

// Env returns the three variables a RunPod client needs.
func (s *Stack) Env() map[string]string {
	return map[string]string{
		runpodtest.EnvBaseURL:    s.BaseURL(),
		runpodtest.EnvEndpointID: s.EndpointID(),
		runpodtest.EnvAPIKey:     s.APIKey(),
	}
}

// ComfyURL is the ComfyUI the workers drive (the engine's address, or
// Config.ComfyURL).
func (s *Stack) ComfyURL() string { return s.comfyURL }

// ComfyDir is ComfyUI's base folder, when known.
func (s *Stack) ComfyDir() string { return s.comfyDir }

// Control is the control plane, for inspection and fault injection.
func (s *Stack) Control() *runpodtest.Server { return s.control }

// Engine is the built-in engine, or nil with an external ComfyUI.
func (s *Stack) Engine() *engine.Server { return s.engine }

// Handler is the job handler the workers share.
func (s *Stack) Handler() *worker.Handler { return s.handler }

// Workers are the running workers (none before the first job when
// Config.ColdStart is set).
func (s *Stack) Workers() []*serverless.Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*serverless.Worker(nil), s.workers...)
}

// Close stops the workers (letting running jobs finish until ctx ends, or
// ShutdownGraceDefault when ctx has no deadline, then cancelling them), the
// control plane and the engine, and removes the temporary folder. It returns
// once everything has stopped; calling it again returns the first result.
func (s *Stack) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Stack) close(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ShutdownGraceDefault)
		defer cancel()
	}
	if s.stopLazy != nil {
		s.stopLazy()
		<-s.lazyDone
	}
	var errs []error
	var wg sync.WaitGroup
	workers := s.Workers()
	werrs := make([]error, len(workers))
	for i, w := range workers {
		wg.Go(func() { werrs[i] = w.Stop(ctx) })
	}
	wg.Wait()
	errs = append(errs, werrs...)
	if s.handler != nil {
		s.handler.Close()
	}
	if s.control != nil {
		s.control.Close()
	}
	if s.engSrv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := s.engSrv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("engine HTTP shutdown: %w", err))
		}
		cancel()
		if err := <-s.engDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("engine HTTP server: %w", err))
		}
	}
	if s.engine != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := s.engine.Stop(sctx); err != nil {
			errs = append(errs, fmt.Errorf("engine: %w", err))
		}
		cancel()
	}
	if s.tempDir != "" {
		if err := os.RemoveAll(s.tempDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
