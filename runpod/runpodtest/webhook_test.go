package runpodtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook endpoint answering a scripted list of status codes
// (200 once the list is spent).
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	codes []int
	got   []string
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	rc := &receiver{codes: codes}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, r.Method+" "+r.Header.Get("Content-Type")+" "+string(b))
		code := http.StatusOK
		if len(rc.codes) > 0 {
			code, rc.codes = rc.codes[0], rc.codes[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) bodies() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

func TestWebhookDelivered(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	h := newHarness(t, nil)
	r := h.do("POST", "/v2/local/run", map[string]any{"input": 1, "webhook": rc.srv.URL + "/hook?token=s3cret"})
	id, _ := r.json(t)["id"].(string)
	h.take("w1")
	h.clock.Advance(1500 * time.Millisecond)
	h.done("w1", id, `{"output":{"ok":true}}`)
	h.await("one delivery", func() bool { return len(h.srv.Webhooks()) == 1 })
	d := h.srv.Webhooks()[0]
	want := `{"delayTime":0,"executionTime":1500,"id":"` + id + `","output":{"ok":true},"status":"COMPLETED","workerId":"w1"}`
	if !d.Delivered || d.Attempt != 1 || d.StatusCode != 200 || string(d.Body) != want || d.URL != rc.srv.URL+"/hook?token=s3cret" {
		t.Fatalf("delivery: %+v", d)
	}
	if got := rc.bodies(); len(got) != 1 || got[0] != "POST application/json "+want {
		t.Fatalf("receiver got %q", got)
	}
	// Every terminal status is delivered: FAILED, CANCELLED, TIMED_OUT.
	for _, end := range []func(id string){
		func(id string) { _ = h.srv.FailJob(id, "x") },
		func(id string) { h.do("POST", "/v2/local/cancel/"+id, nil) },
		func(id string) {
			_ = h.srv.StartJob(id)
			h.clock.Advance(ExecutionTimeoutDefault)
		},
	} {
		r := h.do("POST", "/v2/local/run", map[string]any{"input": 1, "webhook": rc.srv.URL})
		end(r.json(t)["id"].(string))
	}
	h.await("four deliveries", func() bool { return len(h.srv.Webhooks()) == 4 })
	var got []string
	for _, b := range rc.bodies()[1:] {
		for _, st := range []string{"FAILED", "CANCELLED", "TIMED_OUT"} {
			if strings.Contains(b, `"status":"`+st+`"`) {
				got = append(got, st)
			}
		}
	}
	slices.Sort(got) // deliveries run concurrently
	if strings.Join(got, ",") != "CANCELLED,FAILED,TIMED_OUT" {
		t.Fatalf("terminal statuses delivered: %v", got)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 500, 204, 200)
	h := newHarness(t, nil)
	id, err := h.srv.Enqueue(JobRequest{Input: 1, Webhook: rc.srv.URL + "/h?sig=abc"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.CompleteJob(id, 1); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		h.await("a failed attempt", func() bool { return len(h.srv.Webhooks()) == n })
		h.clock.Advance(WebhookRetryDelayDefault - time.Millisecond)
		if len(h.srv.Webhooks()) != n {
			t.Fatal("retried before the delay")
		}
		h.clock.Advance(time.Millisecond)
	}
	h.await("the third attempt", func() bool { return len(h.srv.Webhooks()) == 3 })
	ds := h.srv.Webhooks()
	if ds[0].StatusCode != 500 || ds[0].Delivered || !strings.Contains(ds[0].Err, "answered 500; RunPod wants 200") {
		t.Fatalf("first attempt: %+v", ds[0])
	}
	if ds[1].StatusCode != 204 || ds[1].Delivered || !ds[1].At.Equal(epoch.Add(WebhookRetryDelayDefault)) {
		t.Fatalf("second attempt (204 is not 200): %+v", ds[1])
	}
	if !ds[2].Delivered || ds[2].Attempt != 3 || !ds[2].At.Equal(epoch.Add(2*WebhookRetryDelayDefault)) {
		t.Fatalf("third attempt: %+v", ds[2])
	}
}

func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 503, 503, 503, 503)
	h := newHarness(t, func(c *Config) { c.WebhookRetryDelay = time.Second })
	id, _ := h.srv.Enqueue(JobRequest{Input: 1, Webhook: rc.srv.URL})
	_ = h.srv.FailJob(id, "x")
	for n := 1; n <= 2; n++ {
		h.await("an attempt", func() bool { return len(h.srv.Webhooks()) == n })
		h.clock.Advance(time.Second)
	}
	h.await("three attempts", func() bool { return len(h.srv.Webhooks()) == 3 })
	// No timer is left for a fourth attempt: Close (in Cleanup) would hang
	// on a delivery goroutine otherwise, and goleak would catch it.
	h.clock.Advance(time.Hour)
	if n := len(rc.bodies()); n != 3 {
		t.Fatalf("receiver saw %d attempts, want 3", n)
	}

	// An unreachable receiver is an attempt with an error, no secret in it.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/x?token=s3cret"
	dead.Close()
	id, _ = h.srv.Enqueue(JobRequest{Input: 1, Webhook: deadURL})
	_ = h.srv.CompleteJob(id, 1)
	h.await("an attempt at a dead receiver", func() bool { return len(h.srv.Webhooks()) == 4 })
	d := h.srv.Webhooks()[3]
	if d.Delivered || d.Err == "" || strings.Contains(d.Err, "s3cret") || d.StatusCode != 0 {
		t.Fatalf("attempt at a dead receiver: %+v", d)
	}
}
