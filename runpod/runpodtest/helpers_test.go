package runpodtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// epoch is where fake clocks start.
var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const testKey = "rpa_TESTKEY"

// harness is a server on a fake clock plus an HTTP client for it.
type harness struct {
	t      testing.TB
	srv    *Server
	clock  *clockwork.FakeClock
	client *http.Client
}

// newHarness starts a server on a fake clock with a fixed key and seed; edit
// adjusts the Config first.
func newHarness(t testing.TB, edit func(*Config)) *harness {
	t.Helper()
	clock := clockwork.NewFakeClockAt(epoch)
	cfg := &Config{APIKey: testKey, Clock: clock, Rand: rand.NewPCG(1, 2)}
	if edit != nil {
		edit(cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return &harness{t: t, srv: srv, clock: clock, client: client}
}

// reply is an HTTP answer.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", r.code, err, r.body)
	}
	return m
}

// errMsg returns the "error" of an error answer.
func (r reply) errMsg(t testing.TB) string {
	t.Helper()
	s, _ := r.json(t)["error"].(string)
	if s == "" {
		t.Fatalf("answer %d has no error message: %s", r.code, r.body)
	}
	return s
}

// do sends a request with Authorization: Bearer <key> unless hdr sets it.
// body is sent as is when it is a string or []byte, else JSON-encoded.
func (h *harness) do(method, path string, body any, hdr ...string) reply {
	h.t.Helper()
	r, err := h.try(context.Background(), method, path, body, hdr...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// try is do that returns transport errors.
func (h *harness) try(ctx context.Context, method, path string, body any, hdr ...string) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+h.srv.APIKey())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: b}, err
}

// async runs do in a goroutine; the result arrives on the channel.
func (h *harness) async(method, path string, body any, hdr ...string) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		r, err := h.try(context.Background(), method, path, body, hdr...)
		if err != nil {
			r = reply{code: -1, body: []byte(err.Error())}
		}
		ch <- r
	}()
	return ch
}

// wait receives an async answer, failing after a generous timeout.
func (h *harness) wait(ch <-chan reply) reply {
	h.t.Helper()
	select {
	case r := <-ch:
		if r.code == -1 {
			h.t.Fatalf("request failed: %s", r.body)
		}
		return r
	case <-time.After(30 * time.Second):
		h.t.Fatal("no answer within 30 s")
		return reply{}
	}
}

// held waits until n requests of op are held open.
func (h *harness) held(op Op, n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.AwaitWaiting(ctx, op, n); err != nil {
		h.t.Fatal(err)
	}
}

// await waits for cond with a generous timeout.
func (h *harness) await(what string, cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Await(ctx, cond); err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

// run submits input through /run and returns the job id.
func (h *harness) run(input any) string {
	h.t.Helper()
	r := h.do("POST", "/v2/local/run", map[string]any{"input": input})
	if r.code != http.StatusOK {
		h.t.Fatalf("/run: %d %s", r.code, r.body)
	}
	id, _ := r.json(h.t)["id"].(string)
	return id
}

// job returns the snapshot of id, failing when it is unknown.
func (h *harness) job(id string) Job {
	h.t.Helper()
	j, ok := h.srv.Job(id)
	if !ok {
		h.t.Fatalf("job %s unknown", id)
	}
	return j
}

// statuses lists the statuses of a job's history.
func statuses(j Job) []Status {
	out := make([]Status, len(j.History))
	for i, tr := range j.History {
		out[i] = tr.Status
	}
	return out
}

// worker paths.
func takePath(wid string) string { return "/v2/local/job-take/" + wid }
func donePath(wid, jid string) string {
	return "/v2/local/job-done/" + wid + "/" + jid + "?isStream=false"
}

// take claims one queued job for worker wid through job-take (the job must be
// queued already) and returns it.
func (h *harness) take(wid string) map[string]any {
	h.t.Helper()
	r := h.do("GET", takePath(wid)+"?job_in_progress=0", nil, "Authorization", h.srv.APIKey())
	if r.code != http.StatusOK {
		h.t.Fatalf("job-take: %d %s", r.code, r.body)
	}
	return r.json(h.t)
}

// done posts a job-done body as runpod-python does (form content type).
func (h *harness) done(wid, jid string, body string) reply {
	h.t.Helper()
	return h.do("POST", donePath(wid, jid), body, "Authorization", h.srv.APIKey(), "Content-Type", "application/x-www-form-urlencoded")
}
