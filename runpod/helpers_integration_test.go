package runpod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// epoch is where fake clocks start.
var epoch = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// testKey is the emulator's API key in these tests.
const testKey = "rpa_INTEGRATIONTESTKEY0123456789"

// startEmulator starts a control plane on loopback, closed when the test
// ends. A nil cfg is the default configuration; the key is always testKey.
func startEmulator(t testing.TB, cfg *runpodtest.Config) *runpodtest.Server {
	t.Helper()
	c := runpodtest.Config{}
	if cfg != nil {
		c = *cfg
	}
	c.APIKey = testKey
	if c.Rand == nil {
		c.Rand = rand.NewPCG(1, 2)
	}
	srv, err := runpodtest.NewServer(&c)
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// stepClock is a runpod.Clock whose Sleep returns at once and moves time on,
// recording every wait: backoff, Retry-After and polling pauses cost no real
// time and can be inspected. With fake set, Now reads the fake clock and Sleep
// advances it, so the client and an emulator on that clock share one time.
type stepClock struct {
	fake *clockwork.FakeClock

	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newStepClock() *stepClock { return &stepClock{now: epoch} }

// sharedStepClock is a stepClock on the emulator's fake clock.
func sharedStepClock(fake *clockwork.FakeClock) *stepClock { return &stepClock{fake: fake} }

func (c *stepClock) Now() time.Time {
	if c.fake != nil {
		return c.fake.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	if c.fake != nil && d > 0 {
		c.fake.Advance(d)
	}
	return nil
}

// Sleeps returns the waits so far.
func (c *stepClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// SleepsOver returns the waits of at least min, sorted.
func (c *stepClock) SleepsOver(min time.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range c.Sleeps() {
		if d >= min {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// timerClock is a runpod.Clock on a fake clock whose Sleep blocks until the
// test advances the fake clock past it, for background loops (KeepWarm) that
// a test steps through.
type timerClock struct{ fake *clockwork.FakeClock }

func (c timerClock) Now() time.Time { return c.fake.Now() }

func (c timerClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.fake.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	}
}

// fastRetry is a retry policy that tries n more times, with backoffs of a few
// milliseconds (which a stepClock skips anyway).
func fastRetry(n int) *runpod.Backoff {
	return &runpod.Backoff{Retries: n, Base: time.Millisecond, Max: 4 * time.Millisecond, Rand: func() float64 { return 0.5 }}
}

// newClient returns a client of the emulator's default endpoint with its own
// connection pool (closed when the test ends), clk as its clock, a fast retry
// policy, 1 s long polls and no polling jitter; opts come last and win.
func newClient(t testing.TB, srv *runpodtest.Server, clk runpod.Clock, opts ...runpod.Option) *runpod.Client {
	t.Helper()
	return newClientFor(t, srv, srv.EndpointID(), testKey, clk, opts...)
}

// newClientFor is newClient for any endpoint id and key.
func newClientFor(t testing.TB, srv *runpodtest.Server, ep, key string, clk runpod.Clock, opts ...runpod.Option) *runpod.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	base := []runpod.Option{
		runpod.WithAPIKey(key),
		runpod.WithBaseURL(srv.BaseURL()),
		runpod.WithHTTPClient(&http.Client{Transport: tr}),
		runpod.WithClock(clk),
		runpod.WithRand(func() float64 { return 0.5 }),
		runpod.WithRetryPolicy(fastRetry(4)),
		runpod.WithLongPoll(time.Second),
		runpod.WithRequestTimeout(20 * time.Second),
	}
	c, err := runpod.New(ep, append(base, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// testContext is a context that ends when the test does, or after d: every
// blocking call of a test is bounded.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// awaitHeld blocks until the n-th request of op has arrived and is held open
// (a long-poll, or a latency fault). For one client calling op in sequence
// this is exact: the emulator stops counting a request as held before it
// answers, so the client cannot send the next one before that.
func awaitHeld(ctx context.Context, srv *runpodtest.Server, op runpodtest.Op, n int) error {
	return srv.Await(ctx, func() bool { return srv.Requests(op) >= n && srv.Waiting(op) >= 1 })
}

// advanceHeld runs, until ctx ends, a loop that advances fake by step each
// time a new request of op is held open, standing in for the time a long
// poll waits. It returns a function that stops the loop and waits for it.
func advanceHeld(ctx context.Context, srv *runpodtest.Server, fake *clockwork.FakeClock, op runpodtest.Op, step time.Duration) (stop func()) {
	return advanceHeldWhile(ctx, srv, fake, op, step, func() bool { return true })
}

// advanceHeldWhile is advanceHeld that advances only while cond holds, and
// otherwise waits for it. A test whose job, once handed to a worker, must
// finish in real time stops the fake clock that way: advancing it on every
// held long poll would let fake time run past the client's deadline before
// the worker, working in real time, has answered.
func advanceHeldWhile(ctx context.Context, srv *runpodtest.Server, fake *clockwork.FakeClock, op runpodtest.Op, step time.Duration, cond func() bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; ; n++ {
			if awaitHeld(ctx, srv, op, n) != nil || srv.Await(ctx, cond) != nil {
				return
			}
			fake.Advance(step)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// testPNG returns a small PNG of w×h pixels, different for each seed.
func testPNG(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x*7) ^ seed, uint8(y * 11), seed, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pythonError is the error string runpod-python posts when a handler raises:
// a JSON object encoded into a string.
func pythonError(t testing.TB, typ, msg, worker string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"error_type":      "<class '" + typ + "'>",
		"error_message":   msg,
		"error_traceback": "Traceback (most recent call last):\n  File \"handler.py\", line 12, in handler\n    raise " + typ + "(" + msg + ")\n",
		"hostname":        "pod-" + worker,
		"worker_id":       worker,
		"runpod_version":  "1.12.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventLog collects Wait's events.
type eventLog struct {
	mu     sync.Mutex
	events []runpod.Event
}

func (l *eventLog) add(e runpod.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) all() []runpod.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// kinds lists the events as "state:IN_PROGRESS", "progress", "cold-start"….
func (l *eventLog) kinds() []string {
	var out []string
	for _, e := range l.all() {
		s := e.Kind.String()
		if e.Kind == runpod.EventState {
			s += ":" + string(e.State)
		}
		out = append(out, s)
	}
	return out
}

// onlyJob returns the id of the emulator's only live job.
func onlyJob(t testing.TB, srv *runpodtest.Server) string {
	t.Helper()
	jobs := srv.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs on the emulator, want 1", len(jobs))
	}
	return jobs[0].ID
}
