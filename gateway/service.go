package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/runpod"
)

// Service is the Image Brush service: an http.Handler serving the jobs API,
// the RunPod webhook, health, metrics and the page, plus the background work
// that submits jobs and watches them. Start it before serving, Stop it after.
type Service struct {
	cfg   *Config
	log   *slog.Logger
	clock clockwork.Clock
	st    store.Store
	blobs blob.Store
	rp    *runpod.Client
	pkg   *pkg

	handler http.Handler
	metrics *metrics
	auth    *authenticator
	cache   *jobCache
	hub     *hub
	disp    *dispatcher
	watch   *watcher
	health  *healthCache
	warm    *runpod.KeepWarm
	// thumbs holds a token per thumbnail being made.
	thumbs chan struct{}

	// life ends when the service stops: background loops and event streams
	// watch it. work ends only on a hard stop: submissions and output copies
	// in progress run on it.
	life       context.Context
	endLife    context.CancelFunc
	work       context.Context
	cancelWork context.CancelFunc

	mu      sync.Mutex
	started bool
	stopped bool
	wg      sync.WaitGroup // loops
	jobsWG  sync.WaitGroup // submissions and completions in progress
	stopErr error
}

// beginJobWork counts work on a job that Stop waits for, from a goroutine
// Stop does not track itself (a request handler); call jobsWG.Done when it
// ends. It refuses once Stop has begun, so that no Add races Stop's Wait.
func (s *Service) beginJobWork() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.jobsWG.Add(1)
	return true
}

// New checks cfg, loads the package and returns a stopped Service.
func New(cfg *Config) (*Service, error) {
	if cfg == nil {
		return nil, errors.New("gateway: nil Config")
	}
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	p, err := loadPackage(c.Package, c.Workflow)
	if err != nil {
		return nil, err
	}
	if c.ReplicaID == "" {
		c.ReplicaID = "replica-" + randomID(5)
	}
	s := &Service{
		cfg:    c,
		log:    c.Logger,
		clock:  c.Clock,
		st:     c.Store,
		blobs:  c.Outputs,
		rp:     c.RunPod,
		pkg:    p,
		cache:  newJobCache(),
		hub:    newHub(),
		thumbs: make(chan struct{}, thumbWorkers),
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	s.work, s.cancelWork = context.WithCancel(context.Background())
	s.auth = newAuthenticator(c.Store, c.Open, s.clock.Now)
	s.health = &healthCache{s: s}
	s.watch = newWatcher(s)
	s.disp = newDispatcher(s)
	if s.metrics, err = newMetrics(c.Registry, s); err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	if c.KeepWarm > 0 {
		if s.warm, err = s.newKeepWarm(); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// ReplicaID returns the id this replica holds leases under.
func (s *Service) ReplicaID() string { return s.cfg.ReplicaID }

// Webhooks reports whether jobs are submitted with a webhook (PublicURL set).
func (s *Service) Webhooks() bool { return s.cfg.PublicURL != "" }

// Endpoint returns the RunPod endpoint id jobs run on.
func (s *Service) Endpoint() string { return s.rp.EndpointID() }

// Start takes over this replica's jobs from a previous run (and any whose
// lease expired), then starts submitting and watching. ctx bounds the
// take-over only. A Service starts once.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("gateway: Start called twice")
	}
	if s.stopped {
		return errors.New("gateway: Start after Stop")
	}
	if err := s.adopt(ctx, true); err != nil {
		return fmt.Errorf("gateway: taking over in-flight jobs: %w", err)
	}
	if s.warm != nil {
		if err := s.warm.Start(s.life); err != nil {
			return fmt.Errorf("gateway: starting keep-warm: %w", err)
		}
	}
	s.started = true
	s.loop(s.disp.run)
	for range s.cfg.Submitters {
		s.loop(s.disp.submitLoop)
	}
	s.loop(s.watch.schedule)
	for range s.cfg.Pollers {
		s.loop(s.watch.pollLoop)
	}
	s.loop(s.leaseLoop)
	if l, ok := s.st.(store.Listener); ok {
		s.loop(func() { s.listenLoop(l) })
	}
	if s.cfg.Retention > 0 {
		s.loop(s.pruneLoop)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "gateway started", slog.String("replica", s.cfg.ReplicaID),
		slog.String("endpoint", s.rp.EndpointID()), slog.Int("concurrency", s.cfg.Concurrency),
		slog.Bool("webhooks", s.Webhooks()), slog.Int("watching", s.watch.size()), slog.Duration("retention", max(s.cfg.Retention, 0)))
	return nil
}

func (s *Service) loop(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Stop stops taking jobs, lets submissions and output copies in progress
// finish, ends event streams, and hands this replica's jobs back (another
// replica, or this one restarted, watches them on). When ctx ends first,
// the work in progress is cancelled: a submission cut short this way is never
// resent. Stop returns once every goroutine has returned; calling it twice is
// safe.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return s.stopErr
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()

	s.endLife()
	if s.warm != nil {
		_ = s.warm.Stop(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.jobsWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.cancelWork()
		<-done
		err = fmt.Errorf("gateway: stop: work in progress was cancelled: %w", ctx.Err())
	}
	s.cancelWork()
	if started {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if rerr := s.st.ReleaseLeases(rctx, s.rp.EndpointID(), s.cfg.ReplicaID, s.clock.Now()); rerr != nil {
			s.log.LogAttrs(rctx, slog.LevelWarn, "could not hand jobs back; others take them when the leases expire", slog.String("err", rerr.Error()))
		}
		cancel()
	}
	s.mu.Lock()
	s.stopErr = err
	s.mu.Unlock()
	return err
}

// ServeHTTP serves the API, the webhook, health, metrics and the page.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// newRand returns a source for "random" params, seeded from crypto/rand.
func (s *Service) newRand() *mrand.Rand {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])))
}

// sleep waits for d on the service's clock, or until ctx ends.
func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/10 + time.Duration(mrand.Int64N(int64(d/5)+1))
}

// finished records a job that just ended on this replica.
func (s *Service) finished(j *store.Job) {
	s.metrics.jobFinished(j)
	s.changed(j)
	s.disp.poke()
	s.log.LogAttrs(s.life, slog.LevelInfo, "job ended", slog.String("job", j.ID), slog.String("status", string(statusOf(j))),
		slog.String("runpod_id", j.RunPodID), slog.String("code", j.ErrorCode), slog.String("error", scrub(j.Error)))
}

// changed publishes a new version of a job to the cache and event streams.
func (s *Service) changed(j *store.Job) {
	s.cache.put(j, s.clock.Now())
	s.hub.notify(j.ID)
}

// listenLoop follows the store's announcements of job changes, made by any
// replica: event streams and the cache learn of them at once, instead of at
// their next poll (which stays, for when the announcements stop).
func (s *Service) listenLoop(l store.Listener) {
	backoff := time.Second
	for s.life.Err() == nil {
		started := s.clock.Now()
		err := l.ListenJobs(s.life, func(id string, version int64) {
			if s.cache.outdated(id, version) {
				s.hub.notify(id)
			}
		})
		if s.life.Err() != nil {
			return
		}
		if s.clock.Since(started) > time.Minute {
			backoff = time.Second
		}
		s.log.LogAttrs(s.life, slog.LevelWarn, "following other replicas' changes failed; polling until it is back",
			slog.String("err", scrub(fmt.Sprint(err))), slog.Duration("retry_in", backoff))
		if s.sleep(s.life, jitter(backoff)) != nil {
			return
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// recoverPanic turns a panic in fn into an error with its stack, so a bug in
// one job's handling fails that job and not the service.
func recoverPanic(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return fn()
}
