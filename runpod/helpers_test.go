package runpod

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "rpa_TESTKEY0123456789"

// fakeClock is a Clock whose Sleep returns at once and moves time forward,
// recording each wait: tests never wait for real.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// recorded is one request the test server saw.
type recorded struct {
	Method, Path, Query, Auth string
	Body                      []byte
}

// endpoint is a test server for one endpoint ("ep1"): a handler per
// operation, and a log of the requests.
type endpoint struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	handlers map[string]http.HandlerFunc // key: operation, e.g. "run", "status", "status-sync"
	reqs     []recorded
}

func newEndpoint(t testing.TB) *endpoint {
	t.Helper()
	e := &endpoint{t: t, handlers: map[string]http.HandlerFunc{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/ep1/")
	if !ok {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	op, _, _ := strings.Cut(rest, "/")
	e.mu.Lock()
	e.reqs = append(e.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
	h := e.handlers[op]
	e.mu.Unlock()
	if h == nil {
		http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
		return
	}
	h(w, r)
}

// on sets the handler of an operation.
func (e *endpoint) on(op string, h http.HandlerFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[op] = h
}

// requests returns the requests seen for an operation ("" for all).
func (e *endpoint) requests(op string) []recorded {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []recorded
	for _, r := range e.reqs {
		if op == "" || strings.HasPrefix(r.Path, "/v2/ep1/"+op+"/") || r.Path == "/v2/ep1/"+op {
			out = append(out, r)
		}
	}
	return out
}

// client returns a client for the endpoint with a fake clock and no jitter.
func (e *endpoint) client(opts ...Option) (*Client, *fakeClock) {
	e.t.Helper()
	clk := newFakeClock()
	base := []Option{
		WithAPIKey(testKey),
		WithBaseURL(e.srv.URL + "/v2"),
		WithClock(clk),
		WithRand(func() float64 { return 0.5 }),
		WithRetryPolicy(&Backoff{Retries: 3, Base: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.5 }}),
	}
	c, err := New("ep1", append(base, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c, clk
}

// jsonReply writes v as a JSON answer.
func jsonReply(code int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
}

// rawReply writes s as the answer.
func rawReply(code int, s string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, s)
	}
}

// sequence answers with each handler in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(i, len(hs)-1)]
		i++
		mu.Unlock()
		h(w, r)
	}
}

// hangUp closes the connection without an answer, after reading the request.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

func statusJSON(id string, state State, extra string) string {
	s := `{"id":"` + id + `","status":"` + string(state) + `"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}
