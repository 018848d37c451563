package serverless

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func answer(code int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: header, Body: io.NopCloser(strings.NewReader(body))}
}

func TestCheckResponse(t *testing.T) {
	t.Parallel()
	if err := checkResponse("job-done", answer(200, nil, ""), time.Now()); err != nil {
		t.Fatal(err)
	}
	err := checkResponse("job-done", answer(404, nil, `{"error":"job abc not found; result discarded"}`), time.Now())
	var ae *APIError
	if !errors.As(err, &ae) || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthorized) ||
		err.Error() != "job-done: HTTP 404 Not Found: job abc not found; result discarded" {
		t.Errorf("404: %v", err)
	}
	err = checkResponse("job-take", answer(429, http.Header{"Retry-After": {"7"}}, "slow down\nmore"), time.Now())
	if !errors.As(err, &ae) || ae.RetryAfter != 7*time.Second || !errors.Is(err, ErrTooManyRequests) || ae.Message != "slow down" || !ae.temporary() {
		t.Errorf("429: %+v", ae)
	}
	err = checkResponse("ping", answer(401, nil, strings.Repeat("x", 10000)), time.Now())
	if !errors.As(err, &ae) || !errors.Is(err, ErrUnauthorized) || len(ae.Body) != maxErrorBody || len(ae.Message) > 210 || ae.temporary() {
		t.Errorf("401: body %d message %d", len(ae.Body), len(ae.Message))
	}
	if err := checkResponse("job-done", answer(400, nil, ""), time.Now()); !errors.Is(err, ErrRejected) {
		t.Errorf("400: %v", err)
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	err = checkResponse("job-take", answer(503, http.Header{"Retry-After": {future}}, ""), time.Now())
	if !errors.As(err, &ae) || ae.RetryAfter < 50*time.Minute || !ae.temporary() {
		t.Errorf("503 with a date: %+v", ae)
	}
}

func TestTakeBackoff(t *testing.T) {
	t.Parallel()
	w := &Worker{cfg: (&Config{ErrorBackoff: time.Second, ErrorBackoffMax: 8 * time.Second, RateLimitDelay: 5 * time.Second, Rand: rand.NewPCG(3, 4)}).WithDefaults()}
	other := errors.New("connection refused")
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 9: 8 * time.Second} {
		d := w.takeBackoff(other, failures)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("failure %d: %v, want %v ±20%%", failures, d, want)
		}
	}
	if d := w.takeBackoff(&APIError{StatusCode: 429}, 3); d != 5*time.Second {
		t.Errorf("429: %v", d)
	}
	if d := w.takeBackoff(&APIError{StatusCode: 429, RetryAfter: time.Hour}, 1); d != maxRetryAfter {
		t.Errorf("429 with a long Retry-After: %v", d)
	}
	p := RetryPolicy{Attempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	if d := p.delay(1, 0, 0); d != 100*time.Millisecond {
		t.Errorf("delay 1: %v", d)
	}
	if d := p.delay(4, 0, 0); d != 300*time.Millisecond {
		t.Errorf("delay 4: %v", d)
	}
	if d := p.delay(2, 0.999, 0); d <= 150*time.Millisecond || d > 200*time.Millisecond {
		t.Errorf("jittered delay 2: %v", d)
	}
	if d := p.delay(1, 0, time.Minute); d != 300*time.Millisecond {
		t.Errorf("capped Retry-After: %v", d)
	}
}

func TestHeartbeatFailuresLogged(t *testing.T) {
	t.Parallel()
	p := newPlane(t, nil)
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpPing, Action: runpodtest.FaultServerError, Times: 3, StatusCode: 502}); err != nil {
		t.Fatal(err)
	}
	cfg := p.workerConfig(t, "w-pingfail")
	clock := newFakeClock()
	cfg.Clock = clock
	log, sink := newLogSink(t)
	cfg.Logger = log
	cfg.Handler = func(contextT, *Job) (any, error) { return nil, nil }
	startWorker(t, cfg)
	for i := 1; i <= 4; i++ {
		p.rec.await(t, fmt.Sprintf("ping %d", i), func() bool { return len(p.rec.all("ping")) >= i })
		if i < 4 {
			clock.Advance(cfg.PingInterval)
		}
	}
	sink.await(t, "Ping succeeded again")
	text := sink.text()
	if strings.Count(text, "WARN   | Ping Request Error: ping: HTTP 502 Bad Gateway") != 1 || strings.Count(text, "DEBUG  | Ping Request Error") != 2 {
		t.Errorf("want one warning then debug lines for 3 failed pings:\n%s", text)
	}
}

func TestStopPollRateLimited(t *testing.T) {
	t.Parallel()
	p := newPlane(t, func(c *runpodtest.Config) { c.WorkerPollWait = time.Millisecond })
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpStop, Action: runpodtest.FaultRateLimit, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.srv.AddFault(runpodtest.Fault{Op: runpodtest.OpStop, Action: runpodtest.FaultServerError, Times: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := p.workerConfig(t, "w-stop429")
	clock := newFakeClock()
	cfg.Clock = clock
	cfg.PingURL = ""
	log, sink := newLogSink(t)
	cfg.Logger = log
	cfg.Handler = func(contextT, *Job) (any, error) { return nil, nil }
	startWorker(t, cfg)
	// 429: the poll sleeps Retry-After (1 s) on the clock; then a 500 is
	// logged and the poll sleeps StopPollInterval.
	if err := clock.BlockUntilContext(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	sink.await(t, "Failed to get stop signals. | job-stop: HTTP 500")
	if n := len(p.rec.all("job-stop")); n != 2 {
		t.Errorf("%d stop polls", n)
	}
}
