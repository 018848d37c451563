package runpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// KeepWarmIntervalDefault is how often a KeepWarm checks the endpoint.
const KeepWarmIntervalDefault = time.Minute

// KeepWarmConfig configures a KeepWarm.
type KeepWarmConfig struct {
	// Interval is the time between checks (KeepWarmIntervalDefault when 0).
	Interval time.Duration
	// Warmup, when set, is submitted whenever /health shows no worker up and
	// nothing queued or running, so that RunPod starts a worker. /health
	// alone does not start workers: without Warmup, a KeepWarm only watches.
	// Give it a cheap input and a short Policy.TTL. Warm-up jobs take no
	// Limiter slot.
	Warmup *Request
	// OnHealth, when set, is called after each check with its result.
	OnHealth func(*Health, error)
}

// KeepWarm periodically checks an endpoint's health and, if configured,
// submits a warm-up job when no worker is up, so that users do not wait for a
// cold start. Start it once; Stop waits for its goroutine to end.
type KeepWarm struct {
	c   *Client
	cfg KeepWarmConfig

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// NewKeepWarm returns a stopped KeepWarm for the client's endpoint.
func (c *Client) NewKeepWarm(cfg KeepWarmConfig) (*KeepWarm, error) {
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("runpod: keep-warm interval %s: want > 0", cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = KeepWarmIntervalDefault
	}
	if cfg.Warmup != nil {
		if _, err := cfg.Warmup.encode(); err != nil {
			return nil, fmt.Errorf("runpod: keep-warm request: %w", err)
		}
	}
	return &KeepWarm{c: c, cfg: cfg}, nil
}

// Start begins checking in a goroutine; the first check is immediate. The
// loop ends when Stop is called or ctx is done. A KeepWarm starts only once.
func (k *KeepWarm) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started {
		return errors.New("runpod: keep-warm already started")
	}
	k.started = true
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	k.cancel = func() { stop(); cancel() }
	k.done = make(chan struct{})
	go func() {
		defer close(k.done)
		k.loop(lctx)
	}()
	return nil
}

// Stop ends the loop and waits for it, or until ctx is done. It is safe to
// call twice, and before Start.
func (k *KeepWarm) Stop(ctx context.Context) error {
	k.mu.Lock()
	cancel, done := k.cancel, k.done
	k.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runpod: keep-warm stop: %w", ctx.Err())
	}
}

func (k *KeepWarm) loop(ctx context.Context) {
	c := k.c
	for {
		h, err := c.Health(ctx)
		if ctx.Err() != nil {
			return
		}
		if k.cfg.OnHealth != nil {
			k.cfg.OnHealth(h, err)
		}
		switch {
		case err != nil:
			c.log.LogAttrs(ctx, slog.LevelWarn, "runpod: keep-warm health check failed", slog.String("err", err.Error()))
		case k.cfg.Warmup != nil && !h.Warm() && h.Jobs.InQueue+h.Jobs.InProgress == 0:
			job, err := c.submit(ctx, k.cfg.Warmup, false)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.log.LogAttrs(ctx, slog.LevelWarn, "runpod: keep-warm job not submitted", slog.String("err", err.Error()))
			} else {
				c.log.LogAttrs(ctx, slog.LevelInfo, "runpod: no worker up; submitted a warm-up job", slog.String("job", job.ID))
			}
		}
		if c.clock.Sleep(ctx, jitter(k.cfg.Interval, c.rand)) != nil {
			return
		}
	}
}
