package runpodtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// faultHarness is a harness whose client opens a fresh connection per
// request, so the transport never silently retries a dropped one.
func faultHarness(t *testing.T, edit func(*Config)) *harness {
	h := newHarness(t, edit)
	h.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(h.client.CloseIdleConnections)
	return h
}

func addFault(t *testing.T, h *harness, f Fault) int {
	t.Helper()
	id, err := h.srv.AddFault(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestFaultRateLimit(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	addFault(t, h, Fault{Op: OpRun, Action: FaultRateLimit, Times: 1, RetryAfter: 1500 * time.Millisecond})
	r := h.do("POST", "/v2/local/run", map[string]any{"input": 1})
	if r.code != 429 || r.header.Get("Retry-After") != "2" || !strings.Contains(r.errMsg(t), "retry after 2 s") {
		t.Fatalf("rate-limited /run: %d %v %s", r.code, r.header, r.body)
	}
	if len(h.srv.Jobs()) != 0 {
		t.Fatal("a rate-limited /run created a job")
	}
	if r := h.do("POST", "/v2/local/run", map[string]any{"input": 1}); r.code != 200 {
		t.Fatalf("second /run (the fault is spent): %d", r.code)
	}
	if n := h.srv.Requests(OpRun); n != 2 {
		t.Fatalf("%d /run requests counted, want 2", n)
	}
	fs := h.srv.Faults()
	if len(fs) != 1 || fs[0].Fired != 1 || fs[0].Matched != 1 {
		t.Fatalf("fault counters: %+v", fs)
	}
}

func TestFaultServerErrorSkipAndEndpoint(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, func(c *Config) { c.Endpoints = []string{"local", "b"} })
	addFault(t, h, Fault{Op: OpHealth, Endpoint: "local", Action: FaultServerError, StatusCode: 503, Skip: 1, Times: 2})
	var codes []int
	for range 4 {
		codes = append(codes, h.do("GET", "/v2/local/health", nil).code)
	}
	if codes[0] != 200 || codes[1] != 503 || codes[2] != 503 || codes[3] != 200 {
		t.Fatalf("codes %v, want 200 503 503 200", codes)
	}
	if r := h.do("GET", "/v2/b/health", nil); r.code != 200 {
		t.Fatalf("another endpoint: %d", r.code)
	}
	id := addFault(t, h, Fault{Action: FaultServerError}) // every op
	if r := h.do("GET", "/v2/b/status/x", nil); r.code != 500 || !strings.Contains(r.errMsg(t), "injected") {
		t.Fatalf("catch-all fault: %d %s", r.code, r.body)
	}
	if !h.srv.RemoveFault(id) || h.srv.RemoveFault(id) {
		t.Fatal("RemoveFault")
	}
	if r := h.do("GET", "/v2/b/health", nil); r.code != 200 {
		t.Fatalf("after RemoveFault: %d", r.code)
	}
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	addFault(t, h, Fault{Op: OpRun, Action: FaultDrop, Times: 1})
	if _, err := h.try(context.Background(), "POST", "/v2/local/run", map[string]any{"input": 1}); err == nil {
		t.Fatal("a dropped /run got an answer")
	}
	if len(h.srv.Jobs()) != 0 {
		t.Fatal("a dropped /run created a job")
	}
}

func TestFaultDropAnswerCreatesTheJob(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	addFault(t, h, Fault{Op: OpRun, Action: FaultDropAnswer, Times: 1})
	if _, err := h.try(context.Background(), "POST", "/v2/local/run", map[string]any{"input": "once"}); err == nil {
		t.Fatal("the answer was not dropped")
	}
	jobs := h.srv.Jobs()
	if len(jobs) != 1 || string(jobs[0].Input) != `"once"` || h.srv.Requests(OpRun) != 1 {
		t.Fatalf("the job must exist though the client never learnt its id: %+v", jobs)
	}
	// The same on the worker side: the job is taken but the worker never
	// hears of it, so it times out.
	h2 := faultHarness(t, alwaysAlive)
	addFault(t, h2, Fault{Op: OpTake, Action: FaultDropAnswer, Times: 1})
	id := h2.run(1)
	if _, err := h2.try(context.Background(), "GET", takePath("w1"), nil, "Authorization", testKey); err == nil {
		t.Fatal("take answer not dropped")
	}
	if j := h2.job(id); j.Status != StatusInProgress || j.WorkerID != "w1" {
		t.Fatalf("orphaned job: %+v", j)
	}
	h2.clock.Advance(ExecutionTimeoutDefault)
	if h2.job(id).Status != StatusTimedOut {
		t.Fatal("an orphaned job did not time out")
	}
}

func TestFaultTruncate(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	addFault(t, h, Fault{Op: OpRun, Action: FaultTruncate, Times: 1})
	req, _ := http.NewRequest("POST", h.srv.URL+"/v2/local/run", strings.NewReader(`{"input":1}`))
	req.Header.Set("Authorization", testKey)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("headers should arrive: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) || len(b) == 0 || json.Valid(b) {
		t.Fatalf("truncated answer: %d %q %v", resp.StatusCode, b, err)
	}
	if len(h.srv.Jobs()) != 1 {
		t.Fatal("the work behind a truncated answer was not done")
	}
}

func TestFaultExpire(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	id := h.run(1)
	h.take("w1")
	addFault(t, h, Fault{Op: OpDone, Action: FaultExpire, Times: 1})
	r := h.done("w1", id, `{"output":1}`)
	if r.code != 404 || !strings.Contains(r.errMsg(t), "result discarded") {
		t.Fatalf("done on an expired job: %d %s", r.code, r.body)
	}
	if j := h.job(id); !strings.Contains(j.Deleted, "injected fault") {
		t.Fatalf("job: %+v", j)
	}
	addFault(t, h, Fault{Op: OpHealth, Action: FaultExpire, Times: 1})
	if r := h.do("GET", "/v2/local/health", nil); r.code != 404 {
		t.Fatalf("expire on a route without a job: %d", r.code)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	addFault(t, h, Fault{Op: OpStatus, Action: FaultLatency, Latency: 3 * time.Second, Times: 1})
	addFault(t, h, Fault{Op: OpStatus, Action: FaultLatency, Latency: 2 * time.Second, Times: 1})
	id := h.run(1)
	ch := h.async("GET", "/v2/local/status/"+id, nil)
	// Both latencies add up: the request is answered only once the clock
	// has moved 5 s.
	h.held(OpStatus, 1)
	h.clock.Advance(4 * time.Second)
	select {
	case r := <-ch:
		t.Fatalf("answered before the latency ran out: %d", r.code)
	default:
	}
	h.clock.Advance(time.Second)
	if r := h.wait(ch); r.code != 200 {
		t.Fatalf("status after the latency: %d", r.code)
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	t.Parallel()
	pattern := func(seed uint64) string {
		h := faultHarness(t, func(c *Config) { c.Rand = rand.NewPCG(seed, 7) })
		addFault(t, h, Fault{Op: OpHealth, Action: FaultServerError, Probability: 0.5})
		var b strings.Builder
		for range 40 {
			if h.do("GET", "/v2/local/health", nil).code == 200 {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b, c := pattern(1), pattern(1), pattern(2)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Fatalf("probability 0.5 gave %s (seed 1) and %s (seed 2)", a, c)
	}
}

func TestFaultValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, f := range []Fault{
		{Op: "runn", Action: FaultDrop},
		{Action: "explode"},
		{Action: FaultLatency},
		{Action: FaultServerError, StatusCode: 404},
		{Action: FaultDrop, Probability: 1.5},
		{Action: FaultDrop, Times: -1},
	} {
		if _, err := h.srv.AddFault(f); err == nil {
			t.Errorf("AddFault(%+v) accepted", f)
		}
	}
}

func TestFaultsOverJSON(t *testing.T) {
	t.Parallel()
	h := faultHarness(t, nil)
	r := h.do("POST", "/_emulator/faults", `{"op":"status","action":"rate-limit","retryAfterMs":3000,"times":1}`)
	if r.code != 200 || r.json(t)["id"] != 1.0 {
		t.Fatalf("add: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v2/local/status/x", nil); r.code != 429 || r.header.Get("Retry-After") != "3" {
		t.Fatalf("faulted status: %d %v", r.code, r.header)
	}
	r = h.do("GET", "/_emulator/faults", nil)
	if string(r.body) != `[{"id":1,"fault":{"op":"status","action":"rate-limit","times":1,"retryAfterMs":3000},"matched":1,"fired":1}]` {
		t.Fatalf("list: %s", r.body)
	}
	for _, bad := range []string{`{"action":"nope"}`, `{"action":"latency","latencyMs":-1}`, `[`, `{"action":"drop","probability":"x"}`} {
		if r := h.do("POST", "/_emulator/faults", bad); r.code != 400 {
			t.Errorf("bad fault %s: %d", bad, r.code)
		}
	}
	if r := h.do("DELETE", "/_emulator/faults/1", nil); r.code != 200 {
		t.Fatalf("delete one: %d", r.code)
	}
	if r := h.do("DELETE", "/_emulator/faults/1", nil); r.code != 404 {
		t.Fatalf("delete twice: %d", r.code)
	}
	h.do("POST", "/_emulator/faults", `{"action":"drop"}`)
	if r := h.do("DELETE", "/_emulator/faults", nil); r.code != 200 || len(h.srv.Faults()) != 0 {
		t.Fatalf("clear: %d", r.code)
	}
}
