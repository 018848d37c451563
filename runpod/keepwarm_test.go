package runpod

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// gateClock is a Clock whose Sleep waits for the test to open the gate (or
// for ctx), so a background loop runs one step at a time.
type gateClock struct {
	*fakeClock
	gate chan struct{}
}

func (c *gateClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.gate:
		return c.fakeClock.Sleep(ctx, d)
	}
}

func TestKeepWarm(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("health", sequence(
		rawReply(200, `{"jobs":{"inQueue":0,"inProgress":0},"workers":{"idle":0,"running":0}}`),
		rawReply(200, `{"jobs":{"inQueue":1},"workers":{"initializing":1}}`),
		rawReply(200, `{"workers":{"idle":1}}`),
	))
	e.on("run", rawReply(200, `{"id":"warm-1","status":"IN_QUEUE"}`))
	lim, _ := NewLimiter(1)
	clk := &gateClock{fakeClock: newFakeClock(), gate: make(chan struct{})}
	c, _ := e.client(WithClock(clk), WithLimiter(lim))
	checks := make(chan *Health, 10)
	kw, err := c.NewKeepWarm(KeepWarmConfig{
		Interval: 30 * time.Second,
		Warmup:   &Request{Input: map[string]any{"warmup": true}, Policy: &Policy{TTL: time.Minute}},
		OnHealth: func(h *Health, err error) {
			if err != nil {
				t.Error(err)
			}
			checks <- h
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := kw.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	ctx := context.Background()
	if err := kw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kw.Start(ctx); err == nil {
		t.Error("second Start accepted")
	}
	next := func() *Health {
		t.Helper()
		select {
		case h := <-checks:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("no health check")
			return nil
		}
	}
	if h := next(); h.Warm() {
		t.Fatal("first check should find no worker")
	}
	clk.gate <- struct{}{} // next step: the warm-up was submitted before this sleep
	if n := len(e.requests("run")); n != 1 {
		t.Fatalf("%d warm-up jobs, want 1", n)
	}
	if lim.InUse() != 0 {
		t.Errorf("a warm-up job took a limiter slot")
	}
	next() // a worker is starting: no new warm-up
	clk.gate <- struct{}{}
	if h := next(); !h.Warm() {
		t.Error("third check should find a worker")
	}
	if err := kw.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kw.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if n := len(e.requests("run")); n != 1 {
		t.Errorf("%d warm-up jobs, want 1", n)
	}
	if s := clk.Sleeps(); len(s) != 2 || s[0] != 30*time.Second {
		t.Errorf("intervals %v", s)
	}
}

func TestKeepWarmStopsWithItsContext(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("health", rawReply(200, `{"workers":{"idle":1}}`))
	clk := &gateClock{fakeClock: newFakeClock(), gate: make(chan struct{})}
	c, _ := e.client(WithClock(clk))
	kw, err := c.NewKeepWarm(KeepWarmConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := kw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := kw.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
}

func TestKeepWarmConfig(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	if _, err := c.NewKeepWarm(KeepWarmConfig{Interval: -time.Second}); err == nil {
		t.Error("negative interval accepted")
	}
	if _, err := c.NewKeepWarm(KeepWarmConfig{Warmup: &Request{}}); err == nil {
		t.Error("warm-up without input accepted")
	}
	e := newEndpoint(t)
	e.on("health", rawReply(500, "down"))
	c2, _ := e.client(WithRetryPolicy(NoRetry()))
	failed := make(chan error, 1)
	clk := &gateClock{fakeClock: newFakeClock(), gate: make(chan struct{})}
	c2.clock = clk
	kw, _ := c2.NewKeepWarm(KeepWarmConfig{OnHealth: func(_ *Health, err error) { failed <- err }})
	if err := kw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusInternalServerError {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no check")
	}
	if err := kw.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
