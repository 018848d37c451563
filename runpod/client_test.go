package runpod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, id string
		opts     []Option
		want     string
	}{
		{"no endpoint", "", []Option{WithAPIKey("k")}, "RUNPOD_ENDPOINT_ID"},
		{"url as endpoint", "https://api.runpod.ai/v2/abc", []Option{WithAPIKey("k")}, "not the URL"},
		{"no key", "abc", nil, "RUNPOD_API_KEY"},
		{"blank key", "abc", []Option{WithAPIKey("  ")}, "RUNPOD_API_KEY"},
		{"relative base", "abc", []Option{WithAPIKey("k"), WithBaseURL("api.runpod.ai/v2")}, "absolute http(s) URL"},
		{"base with credentials", "abc", []Option{WithAPIKey("k"), WithBaseURL("https://u:secret@x/v2")}, "credentials"},
		{"long poll out of range", "abc", []Option{WithAPIKey("k"), WithLongPoll(2 * time.Minute)}, "1s to 90s"},
		{"polling inverted", "abc", []Option{WithAPIKey("k"), WithPolling(2*time.Second, time.Second)}, "min <= max"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.id, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%q) error = %v, want one mentioning %q", tc.id, err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks a credential: %v", err)
			}
		})
	}
}

func TestNewBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", BaseURLDefault},
		{BaseURLDev, BaseURLDev},
		{"http://127.0.0.1:8080/v2/", "http://127.0.0.1:8080/v2"},
	} {
		opts := []Option{WithAPIKey("k")}
		if tc.in != "" {
			opts = append(opts, WithBaseURL(tc.in))
		}
		c, err := New("abc", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if c.BaseURL() != tc.want || c.EndpointID() != "abc" {
			t.Errorf("base %q: got %q, %q", tc.in, c.BaseURL(), c.EndpointID())
		}
	}
}

func TestRunSendsTheRequest(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("run", rawReply(200, `{"id":"job-1","status":"IN_QUEUE"}`))
	c, _ := e.client(WithUserAgent("test-agent"))
	job, err := c.Run(context.Background(), &Request{
		Input:    map[string]any{"prompt": "a cat"},
		Webhook:  "https://example.com/hook",
		Policy:   &Policy{ExecutionTimeout: 10 * time.Minute, LowPriority: true, TTL: time.Hour},
		S3Config: &S3Config{AccessID: "id", AccessSecret: "shh", BucketName: "b", EndpointURL: "https://s3.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer job.Release()
	if job.ID != "job-1" || job.State != StateInQueue {
		t.Fatalf("job = %+v", job)
	}
	reqs := e.requests("run")
	if len(reqs) != 1 {
		t.Fatalf("%d /run requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Auth != "Bearer "+testKey {
		t.Errorf("method %s auth %q", r.Method, r.Auth)
	}
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"input":    map[string]any{"prompt": "a cat"},
		"webhook":  "https://example.com/hook",
		"policy":   map[string]any{"executionTimeout": 600000.0, "lowPriority": true, "ttl": 3600000.0},
		"s3Config": map[string]any{"accessId": "id", "accessSecret": "shh", "bucketName": "b", "endpointUrl": "https://s3.example.com"},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("body\n got %s\nwant %s", g, w)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	c, _ := e.client(WithPayloadLimits(1<<10, 2<<10))
	ctx := context.Background()
	cases := []struct {
		name string
		req  *Request
		want string
	}{
		{"nil request", nil, "no input"},
		{"nil input", &Request{}, "no input"},
		{"null input", &Request{Input: json.RawMessage("null")}, "null"},
		{"relative webhook", &Request{Input: 1, Webhook: "/hook"}, "webhook"},
		{"short timeout", &Request{Input: 1, Policy: &Policy{ExecutionTimeout: time.Second}}, "5s to 7 days"},
		{"short ttl", &Request{Input: 1, Policy: &Policy{TTL: time.Second}}, "10s to 7 days"},
		{"too large", &Request{Input: strings.Repeat("x", 1500)}, "1.0 KB limit of /run: use RunSync"},
		{"too large for both", &Request{Input: strings.Repeat("x", 3000)}, "send large images as URLs"},
	}
	for _, tc := range cases {
		_, err := c.Run(ctx, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.Run(ctx, &Request{Input: strings.Repeat("x", 1500)}); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized: %v, want ErrPayloadTooLarge", err)
	}
	if _, err := c.RunSync(ctx, &Request{Input: strings.Repeat("x", 3000)}, nil); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized runsync: %v, want ErrPayloadTooLarge", err)
	}
	if n := len(e.requests("")); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestS3ConfigHidesSecret(t *testing.T) {
	t.Parallel()
	s := S3Config{AccessID: "id", AccessSecret: "TOPSECRET", BucketName: "b", EndpointURL: "https://s3?X-Amz-Signature=abc"}
	for _, text := range []string{s.String(), fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), s.LogValue().String()} {
		if strings.Contains(text, "TOPSECRET") || strings.Contains(text, "abc") {
			t.Errorf("secret in %q", text)
		}
	}
}

func TestOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEndpoint(t)
	e.on("status", rawReply(200, `{"id":"j1","status":"IN_PROGRESS","delayTime":1500,"executionTime":250.7,"workerId":"w1","retries":2,"output":{"step":3},"extra":[1,2]}`))
	e.on("cancel", rawReply(200, `{"id":"j1","status":"CANCELLED"}`))
	e.on("retry", rawReply(200, `{"id":"j1","status":"IN_QUEUE"}`))
	e.on("purge-queue", rawReply(200, `{"removed":2,"status":"completed"}`))
	e.on("health", rawReply(200, `{"jobs":{"completed":1,"failed":5,"inProgress":0,"inQueue":2,"retried":0},"workers":{"idle":0,"running":1,"unhealthy":3,"newCounter":9}}`))
	e.on("stream", rawReply(200, `{"status":"IN_PROGRESS","stream":[{"output":"a"},{"output":{"t":"b"},"metrics":{"n":1}}]}`))
	c, _ := e.client()

	st, err := c.Status(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "j1" || st.State != StateInProgress || st.DelayTime != 1500*time.Millisecond ||
		st.ExecutionTime != 250*time.Millisecond || st.WorkerID != "w1" || st.Retries != 2 || string(st.Output) != `{"step":3}` {
		t.Errorf("status = %+v", st)
	}
	if r := e.requests("status")[0]; r.Method != http.MethodGet || r.Path != "/v2/ep1/status/j1" {
		t.Errorf("status request %s %s", r.Method, r.Path)
	}

	cs, err := c.Cancel(ctx, "j1")
	if err != nil || cs.State != StateCancelled {
		t.Fatalf("cancel: %+v, %v", cs, err)
	}
	if r := e.requests("cancel")[0]; r.Method != http.MethodPost {
		t.Errorf("cancel method %s", r.Method)
	}

	job, err := c.Retry(ctx, "j1")
	if err != nil || job.ID != "j1" || job.State != StateInQueue {
		t.Fatalf("retry: %+v, %v", job, err)
	}
	job.Release()

	pr, err := c.PurgeQueue(ctx)
	if err != nil || pr.Removed != 2 || pr.Status != "completed" {
		t.Fatalf("purge: %+v, %v", pr, err)
	}
	if r := e.requests("purge-queue")[0]; r.Method != http.MethodPost {
		t.Errorf("purge method %s", r.Method)
	}

	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Jobs.Failed != 5 || h.Jobs.InQueue != 2 || h.Workers.Running != 1 || h.Workers.Unhealthy != 3 || !h.Warm() {
		t.Errorf("health = %+v", h)
	}

	sr, err := c.Stream(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if sr.State != StateInProgress || len(sr.Chunks) != 2 || string(sr.Chunks[0].Output) != `"a"` ||
		string(sr.Chunks[1].Output) != `{"t":"b"}` || !bytes.Contains(sr.Chunks[1].Raw, []byte("metrics")) {
		t.Errorf("stream = %+v", sr)
	}
	if r := e.requests("stream")[0]; r.Method != http.MethodGet {
		t.Errorf("stream method %s", r.Method)
	}
}

func TestJobIDsAreChecked(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	c, _ := e.client()
	for _, id := range []string{"", "..", "a/b", "a b", "x?y=1"} {
		if _, err := c.Status(context.Background(), id); err == nil {
			t.Errorf("Status(%q) accepted", id)
		}
	}
	if n := len(e.requests("")); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	bigBody := `{"error":"` + strings.Repeat("x", 200<<10) + `"}`
	cases := []struct {
		name    string
		op      string // operation to call: status, health, run, runsync
		handler http.HandlerFunc
		health  http.HandlerFunc
		is      []error
		code    int
		msg     []string
	}{
		{name: "unauthorized", op: "health", handler: rawReply(401, `Unauthorized`), is: []error{ErrUnauthorized}, code: 401, msg: []string{"RUNPOD_API_KEY"}},
		{name: "forbidden", op: "status", handler: rawReply(403, `{}`), is: []error{ErrUnauthorized}, code: 403, msg: []string{"RUNPOD_API_KEY"}},
		{name: "endpoint 404 on health", op: "health", handler: rawReply(404, `{"error":"not found"}`), is: []error{ErrEndpointNotFound}, code: 404, msg: []string{"RUNPOD_ENDPOINT_ID", `"ep1"`}},
		{name: "endpoint 404 on run", op: "run", handler: rawReply(404, ``), is: []error{ErrEndpointNotFound}, code: 404, msg: []string{"RUNPOD_ENDPOINT_ID"}},
		{name: "endpoint 404 on runsync", op: "runsync", handler: rawReply(404, ``), health: rawReply(404, ``), is: []error{ErrEndpointNotFound}, code: 404, msg: []string{"RUNPOD_ENDPOINT_ID"}},
		{name: "job 404 on runsync", op: "runsync", handler: rawReply(404, `{"error":"job not found"}`), health: rawReply(200, `{}`), is: []error{ErrJobNotFound}, code: 404, msg: []string{"deleted before /runsync answered", "RunPod said: job not found"}},
		{name: "job 404", op: "status", handler: rawReply(404, `{"error":"job not found"}`), health: rawReply(200, `{}`), is: []error{ErrJobNotFound}, code: 404, msg: []string{"expired", "never existed"}},
		{name: "job 404 from unknown endpoint", op: "status", handler: rawReply(404, ``), health: rawReply(404, ``), is: []error{ErrEndpointNotFound}, code: 404, msg: []string{"RUNPOD_ENDPOINT_ID"}},
		{name: "bad request", op: "status", handler: rawReply(400, `{"error":"wait is invalid; must be between 1000 and 300000"}`), code: 400, msg: []string{"wait is invalid"}},
		{name: "payload limit", op: "run", handler: rawReply(400, `{"error":"request size exceeded"}`), is: []error{ErrPayloadTooLarge}, code: 400, msg: []string{"10.0 MB", "20.0 MB", "/run"}},
		{name: "payload limit, larger than", op: "run", handler: rawReply(400, `{"error":"/run payload is larger than the 10 MB limit; pass large inputs (images, video) as URLs"}`), is: []error{ErrPayloadTooLarge}, code: 400, msg: []string{"10.0 MB", "RunPod said: /run payload is larger than the 10 MB limit"}},
		{name: "413", op: "run", handler: rawReply(413, `too big`), is: []error{ErrPayloadTooLarge}, code: 413, msg: []string{"payload limit"}},
		{name: "server error", op: "status", handler: rawReply(500, `{"message":"boom"}`), code: 500, msg: []string{"boom"}},
		{name: "rate limited", op: "health", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(429)
		}, is: []error{ErrRateLimited}, code: 429, msg: []string{"retry after 3s"}},
		{name: "key scrubbed", op: "health", handler: rawReply(400, `{"error":"bad key `+testKey+`"}`), code: 400, msg: []string{"REDACTED"}},
		{name: "body capped", op: "health", handler: rawReply(418, bigBody), code: 418},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t)
			e.on(tc.op, tc.handler)
			if tc.health != nil {
				e.on("health", tc.health)
			}
			c, _ := e.client(WithRetryPolicy(NoRetry()))
			ctx := context.Background()
			var err error
			switch tc.op {
			case "status":
				_, err = c.Status(ctx, "j1")
			case "health":
				_, err = c.Health(ctx)
			case "run":
				_, err = c.Run(ctx, &Request{Input: map[string]any{"a": 1}})
			case "runsync":
				_, err = c.RunSync(ctx, &Request{Input: map[string]any{"a": 1}}, nil)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want an *APIError", err, err)
			}
			if ae.StatusCode != tc.code {
				t.Errorf("status code %d, want %d", ae.StatusCode, tc.code)
			}
			for _, s := range tc.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = false", err, s)
				}
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			if strings.Contains(err.Error(), testKey) || bytes.Contains(ae.Body, []byte(testKey)) {
				t.Errorf("API key leaked: %v", err)
			}
			if len(ae.Body) > maxErrorBody {
				t.Errorf("body of %d bytes kept, cap is %d", len(ae.Body), maxErrorBody)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
		})
	}
}

func TestRateLimitErrorUnwraps(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "Fri, 02 Jan 2026 03:05:05 GMT") // 60 s after the fake clock's now
		w.WriteHeader(429)
	})
	c, _ := e.client(WithRetryPolicy(NoRetry()))
	_, err := c.Health(context.Background())
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Fatalf("err = %v, want a RateLimitError with RetryAfter 1m", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 429 {
		t.Errorf("RateLimitError does not unwrap to the APIError")
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("health", sequence(
		func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Retry-After", "7"); w.WriteHeader(429) },
		rawReply(503, `{"error":"busy"}`),
		rawReply(200, `{"workers":{"idle":1}}`),
	))
	c, clk := e.client()
	h, err := c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Workers.Idle != 1 {
		t.Errorf("health %+v", h)
	}
	sleeps := clk.Sleeps()
	if len(sleeps) != 2 {
		t.Fatalf("sleeps %v, want 2", sleeps)
	}
	if sleeps[0] != 7*time.Second {
		t.Errorf("first backoff %s, want the 7s of Retry-After", sleeps[0])
	}
	// Second retry: Base·2 = 200ms, jittered to [100ms, 200ms].
	if sleeps[1] < 100*time.Millisecond || sleeps[1] > 200*time.Millisecond {
		t.Errorf("second backoff %s, want 100–200ms", sleeps[1])
	}
	if n := len(e.requests("health")); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestRetriesStopWhenThePolicySaysSo(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("status", rawReply(502, `bad gateway`))
	c, clk := e.client()
	_, err := c.Status(context.Background(), "j1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 502 {
		t.Fatalf("err = %v", err)
	}
	if n := len(e.requests("status")); n != 4 {
		t.Errorf("%d attempts, want 4 (1 + 3 retries)", n)
	}
	if n := len(clk.Sleeps()); n != 3 {
		t.Errorf("%d sleeps, want 3", n)
	}
}

func TestNoRetryAfterContextDone(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	ctx, cancel := context.WithCancel(context.Background())
	e.on("status", func(w http.ResponseWriter, r *http.Request) {
		cancel()
		rawReply(503, `busy`)(w, r)
	})
	c, clk := e.client()
	_, err := c.Status(ctx, "j1")
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(e.requests("status")); n != 1 {
		t.Errorf("%d attempts after the context was cancelled, want 1", n)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("slept after cancel: %v", clk.Sleeps())
	}
}

func TestRetryNotPastDeadline(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(429)
	})
	c, clk := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Health(ctx)
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("slept %v although the wait outlasts the deadline", clk.Sleeps())
	}
}

func TestSubmissionIsNeverSentTwice(t *testing.T) {
	t.Parallel()
	truncated := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"id":"j`))
		w.(http.Flusher).Flush()
		hangUp(w, nil)
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"connection dropped after sending", hangUp},
		{"truncated answer", truncated},
		{"500", rawReply(500, `{"error":"internal"}`)},
		{"502", rawReply(502, `bad gateway`)},
		{"garbage answer", rawReply(200, `<html>`)},
		{"answer without id", rawReply(200, `{"status":"IN_QUEUE"}`)},
	}
	for _, tc := range cases {
		for _, op := range []string{"run", "runsync"} {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				e := newEndpoint(t)
				e.on(op, tc.handler)
				c, _ := e.client()
				var err error
				req := &Request{Input: map[string]any{"x": 1}}
				if op == "run" {
					_, err = c.Run(context.Background(), req)
				} else {
					_, err = c.RunSync(context.Background(), req, nil)
				}
				if !errors.Is(err, ErrMaybeSubmitted) {
					t.Fatalf("err = %v, want ErrMaybeSubmitted", err)
				}
				if !strings.Contains(err.Error(), "may have been created") {
					t.Errorf("message %q does not say the job may exist", err)
				}
				if n := len(e.requests(op)); n != 1 {
					t.Errorf("sent %d times, want once", n)
				}
			})
		}
	}
}

func TestSubmissionRetriedWhenCertainlyRefused(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("run", sequence(
		func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Retry-After", "2"); w.WriteHeader(429) },
		rawReply(200, `{"id":"j9","status":"IN_QUEUE"}`),
	))
	c, clk := e.client()
	job, err := c.Run(context.Background(), &Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	job.Release()
	if job.ID != "j9" || len(e.requests("run")) != 2 {
		t.Errorf("job %s after %d requests", job.ID, len(e.requests("run")))
	}
	if s := clk.Sleeps(); len(s) != 1 || s[0] != 2*time.Second {
		t.Errorf("sleeps %v, want [2s]", s)
	}
	// The body was sent whole both times (rewound).
	reqs := e.requests("run")
	if !bytes.Equal(reqs[0].Body, reqs[1].Body) || len(reqs[1].Body) == 0 {
		t.Errorf("bodies differ: %q vs %q", reqs[0].Body, reqs[1].Body)
	}
}

func TestSubmissionRetriedWhenConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	clk := newFakeClock()
	c, err := New("ep1", WithAPIKey(testKey), WithBaseURL("http://"+addr+"/v2"), WithClock(clk),
		WithRetryPolicy(&Backoff{Retries: 2, Base: time.Second, Max: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(context.Background(), &Request{Input: 1})
	if err == nil || errors.Is(err, ErrMaybeSubmitted) {
		t.Fatalf("err = %v, want a plain connection error", err)
	}
	if n := len(clk.Sleeps()); n != 2 {
		t.Errorf("%d retries, want 2", n)
	}
}

func TestReadStatusFromWebhookBody(t *testing.T) {
	t.Parallel()
	c, err := New("ep1", WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.ReadStatus(strings.NewReader(`{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"a.png","type":"base64","data":"` + pngB64 + `"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	files, err := st.Outputs()
	if err != nil || len(files) != 1 || files[0].Name != "a.png" {
		t.Fatalf("files %v, %v", files, err)
	}
	if _, err := c.ReadStatus(strings.NewReader(`{"id":"j"`)); err == nil {
		t.Error("truncated status accepted")
	}
}
