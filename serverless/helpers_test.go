package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests; a test that needs it has
// hung.
const waitTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// recorded is one request the control plane received.
type recorded struct {
	At     time.Time // on the plane's clock
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// op names the protocol call of a recorded request.
func (r recorded) op() string {
	for _, seg := range []string{"job-take-batch", "job-take", "job-done", "job-stream", "job-stop", "ping"} {
		if strings.Contains(r.Path, "/"+seg+"/") {
			return seg
		}
	}
	return ""
}

// jobID is the job id of a done or stream post.
func (r recorded) jobID() string {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	return parts[len(parts)-1]
}

// recorder keeps every request that passes through it.
type recorder struct {
	clock clockwork.Clock

	mu      sync.Mutex
	reqs    []recorded
	changed chan struct{}
}

func newRecorder(clock clockwork.Clock) *recorder {
	return &recorder{clock: clock, changed: make(chan struct{})}
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{
			At: rec.clock.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
			Header: r.Header.Clone(), Body: body,
		})
		close(rec.changed)
		rec.changed = make(chan struct{})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// all returns the recorded requests of the given op (every op when empty).
func (rec *recorder) all(op string) []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []recorded
	for _, r := range rec.reqs {
		if op == "" || r.op() == op {
			out = append(out, r)
		}
	}
	return out
}

// await blocks until cond holds, re-checking after every request.
func (rec *recorder) await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	awaitCond(t, func() <-chan struct{} {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.changed
	}, cond, func() string { return what })
}

// awaitCond blocks until cond holds, checking it again each time the
// channel changed returns is closed; after waitTimeout it fails the test,
// saying what it waited for.
func awaitCond(t testing.TB, changed func() <-chan struct{}, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what())
		}
	}
}

// plane is a runpodtest control plane behind a recording proxy.
type plane struct {
	srv *runpodtest.Server
	rec *recorder
	url string
}

// newPlane starts a runpodtest server (edited by edit) mounted behind a
// recorder on loopback. It is closed when the test ends.
func newPlane(t testing.TB, edit func(*runpodtest.Config)) *plane {
	t.Helper()
	return newPlaneWrapped(t, func(h http.Handler) http.Handler { return h }, edit)
}

// newPlaneWrapped is newPlane with wrap between the recorder and the server,
// to change answers on their way out.
func newPlaneWrapped(t testing.TB, wrap func(http.Handler) http.Handler, edit ...func(*runpodtest.Config)) *plane {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg := &runpodtest.Config{
		URL:     "http://" + ts.Listener.Addr().String(),
		APIKey:  "rpa_WORKERKEY123",
		Rand:    rand.NewPCG(7, 8),
		GPUName: "NVIDIA H100 PCIe",
	}
	for _, e := range edit {
		if e != nil {
			e(cfg)
		}
	}
	srv, err := runpodtest.New(cfg)
	if err != nil {
		t.Fatalf("runpodtest.New: %v", err)
	}
	rec := newRecorder(srv.Clock())
	ts.Config.Handler = rec.wrap(wrap(srv))
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return &plane{srv: srv, rec: rec, url: ts.URL}
}

// workerConfig returns a worker Config read from the environment the plane
// hands worker id, with test-friendly pacing.
func (p *plane) workerConfig(t testing.TB, id string) *Config {
	t.Helper()
	env := p.srv.WorkerEnv(id)
	if env == nil {
		t.Fatalf("WorkerEnv(%q) = nil", id)
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	cfg.Logger = testLogger(t)
	cfg.Rand = rand.NewPCG(1, 2)
	cfg.RecheckInterval = 20 * time.Millisecond
	cfg.StopPollInterval = 20 * time.Millisecond
	cfg.ErrorBackoff = 5 * time.Millisecond
	cfg.ErrorBackoffMax = 20 * time.Millisecond
	cfg.ResultRetry = RetryPolicy{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	return cfg
}

// enqueue queues a job and returns its id.
func (p *plane) enqueue(t testing.TB, input any) string {
	t.Helper()
	id, err := p.srv.Enqueue(runpodtest.JobRequest{Input: input})
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

// wait blocks until job id is in a terminal status (or one of want).
func (p *plane) wait(t testing.TB, id string, want ...runpodtest.Status) runpodtest.Job {
	t.Helper()
	j, err := p.srv.WaitStatus(testCtx(t), id, want...)
	if err != nil {
		t.Fatalf("WaitStatus(%s): %v", id, err)
	}
	return j
}

// cancel cancels a job through the client API, as a RunPod client would.
func (p *plane) cancel(t testing.TB, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.srv.BaseURL()+"/"+p.srv.EndpointID()+"/cancel/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+p.srv.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("cancel: HTTP %d: %s", resp.StatusCode, b)
	}
}

// startWorker builds and starts a worker; it is hard-stopped when the test
// ends if the test did not stop it.
func startWorker(t testing.TB, cfg *Config) *Worker {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := w.StopAndCancel(ctx); err != nil {
			t.Errorf("StopAndCancel: %v", err)
		}
	})
	return w
}

// logSink collects log records for tests to wait on.
type logSink struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	t       testing.TB
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.lines = append(s.lines, string(p))
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return len(p), nil
}

func (s *logSink) has(substr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "")
}

// await blocks until a line containing substr is logged.
func (s *logSink) await(t testing.TB, substr string) {
	t.Helper()
	awaitCond(t, func() <-chan struct{} {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.changed
	}, func() bool { return s.has(substr) }, func() string { return fmt.Sprintf("log line %q; log:\n%s", substr, s.text()) })
}

// newLogSink returns a logger writing text lines to a sink.
func newLogSink(t testing.TB) (*slog.Logger, *logSink) {
	s := &logSink{changed: make(chan struct{}), t: t}
	return slog.New(NewLogHandler(s, &LogOptions{Level: slog.LevelDebug})), s
}

// testLogger logs to the test's log only when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(NewLogHandler(tWriter{t}, &LogOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// decodeBody decodes a recorded JSON body into a map.
func decodeBody(t testing.TB, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s is not a JSON object: %v", b, err)
	}
	return m
}

// waitChan waits for ch to be closed or to deliver.
func waitChan[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func jsonString(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s is not a JSON string: %v", raw, err)
	}
	return s
}

// epoch is where fake clocks start.
var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newFakeClock() *clockwork.FakeClock { return clockwork.NewFakeClockAt(epoch) }

// newScriptedPlane serves h on loopback, for answers runpodtest does not give.
func newScriptedPlane(t testing.TB, h func(w http.ResponseWriter, r *http.Request, body []byte)) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h(w, r, body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

// meeting lets handlers wait until n of them run at once, which shows that
// jobs ran side by side; a handler whose partners never come ends with its
// context.
type meeting struct {
	n       int32
	arrived atomic.Int32
	all     chan struct{}
	once    sync.Once
}

func newMeeting(n int32) *meeting { return &meeting{n: n, all: make(chan struct{})} }

// wait blocks until n handlers have called it, or ctx ends.
func (m *meeting) wait(ctx context.Context) error {
	if m.arrived.Add(1) == m.n {
		m.once.Do(func() { close(m.all) })
	}
	select {
	case <-m.all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// contextT keeps handler literals in tables short.
type contextT = context.Context
