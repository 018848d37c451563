package runpodtest

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	runID  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-u1$`)
	syncID = regexp.MustCompile(`^sync-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-u1$`)
)

func TestRunStatusLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	r := h.do("POST", "/v2/local/run", map[string]any{"input": map[string]any{"prompt": "cat"}})
	if r.code != http.StatusOK {
		t.Fatalf("/run: %d %s", r.code, r.body)
	}
	got := r.json(t)
	id, _ := got["id"].(string)
	if !runID.MatchString(id) || got["status"] != "IN_QUEUE" || len(got) != 2 {
		t.Fatalf("/run answered %s, want {id: <uuid>-u1, status: IN_QUEUE}", r.body)
	}
	for _, method := range []string{"GET", "POST"} {
		st := h.do(method, "/v2/local/status/"+id, nil)
		if st.code != http.StatusOK || string(st.body) != `{"id":"`+id+`","status":"IN_QUEUE"}` {
			t.Fatalf("%s /status: %d %s", method, st.code, st.body)
		}
	}

	h.clock.Advance(2 * time.Second)
	if err := h.srv.ProgressJob(id, map[string]any{"percent": 40}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	st := h.do("GET", "/v2/local/status/"+id, nil).json(t)
	if st["status"] != "IN_PROGRESS" || st["delayTime"] != 2000.0 || st["executionTime"] != 1000.0 {
		t.Fatalf("IN_PROGRESS status = %v", st)
	}
	if p, _ := st["output"].(map[string]any); p["percent"] != 40.0 {
		t.Fatalf("IN_PROGRESS status carries output %v, want the progress update", st["output"])
	}

	h.clock.Advance(2 * time.Second)
	if err := h.srv.CompleteJob(id, map[string]any{"images": []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute) // finished jobs keep their times
	fin := h.do("GET", "/v2/local/status/"+id, nil)
	want := `{"delayTime":2000,"executionTime":3000,"id":"` + id + `","output":{"images":["x"]},"status":"COMPLETED"}`
	if string(fin.body) != want {
		t.Fatalf("COMPLETED status\n got %s\nwant %s", fin.body, want)
	}
	j := h.job(id)
	if !slices.Equal(statuses(j), []Status{StatusInQueue, StatusInProgress, StatusCompleted}) {
		t.Fatalf("history %v", statuses(j))
	}
	if err := h.srv.CompleteJob(id, nil); err == nil {
		t.Fatal("completing a finished job succeeded")
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"bearer", "/v2/local/health", "Bearer " + testKey, 200},
		{"lower-case bearer", "/v2/local/health", "bearer " + testKey, 200},
		{"bare key (docs' curl form)", "/v2/local/health", testKey, 200},
		{"missing", "/v2/local/health", "", 401},
		{"wrong", "/v2/local/health", "Bearer rpa_WRONG", 401},
		{"key prefix only", "/v2/local/health", "Bearer " + testKey[:5], 401},
		{"worker raw key", "/v2/local/ping/w1", testKey, 200},
		{"worker bearer", "/v2/local/ping/w1", "Bearer " + testKey, 200},
		{"worker wrong key", "/v2/local/ping/w1", "nope", 401},
		{"control route", "/_emulator/jobs", "", 401},
	} {
		r := h.do("GET", tc.path, nil, "Authorization", tc.auth)
		if r.code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.code, r.body, tc.want)
			continue
		}
		if tc.want == 401 && !strings.Contains(r.errMsg(t), "API key") {
			t.Errorf("%s: 401 message %q does not say what to fix", tc.name, r.errMsg(t))
		}
	}
	if n := h.srv.Requests(OpHealth); n != 6 {
		t.Errorf("health requests counted %d, want 6 (refused ones included)", n)
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Endpoints = []string{"local", "other"} })
	r := h.do("POST", "/v2/nope/run", map[string]any{"input": 1})
	if r.code != 404 || !strings.Contains(r.errMsg(t), "RUNPOD_ENDPOINT_ID") {
		t.Fatalf("unknown endpoint: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v2/other/health", nil); r.code != 200 {
		t.Fatalf("second endpoint: %d %s", r.code, r.body)
	}
	id := h.run(1)
	if r := h.do("GET", "/v2/other/status/"+id, nil); r.code != 404 {
		t.Fatalf("a job of another endpoint: %d %s", r.code, r.body)
	}
	for _, p := range []string{"/v2/local/nothing", "/v2/local/status", "/v2/local/status/a/b", "/v1/local/run", "/v2//run", "/"} {
		if r := h.do("GET", p, nil); r.code != 404 || r.errMsg(t) == "" {
			t.Errorf("GET %s: %d %s, want a JSON 404", p, r.code, r.body)
		}
	}
	r = h.do("GET", "/v2/local/run", nil)
	if r.code != 405 || r.header.Get("Allow") != "POST" || !strings.Contains(r.errMsg(t), "POST") {
		t.Fatalf("GET /run: %d %v %s", r.code, r.header, r.body)
	}
	if r := h.do("GET", "/v2/local/job-take/bad%20id", nil, "Authorization", testKey); r.code != 400 {
		t.Fatalf("bad worker id: %d %s", r.code, r.body)
	}
}

func TestRunValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		body, want string
	}{
		{``, "empty"},
		{`not json`, "JSON object"},
		{`[1,2]`, "JSON object"},
		{`{"input":`, "not valid JSON"},
		{`{}`, `no "input"`},
		{`{"input":null}`, `no "input"`},
		{`{"INPUT":{}}`, `no "input"`},
		{`{"input":{},"webhook":42}`, `"webhook" must be a string`},
		{`{"input":{},"webhook":"ftp://x/y"}`, "http"},
		{`{"input":{},"webhook":"/relative"}`, "absolute"},
		{`{"input":{},"policy":[]}`, `"policy" must be a JSON object`},
		{`{"input":{},"policy":{"executionTimeout":1000}}`, "between 5000 and 604800000"},
		{`{"input":{},"policy":{"executionTimeout":1.5e4}}`, ""},
		{`{"input":{},"policy":{"executionTimeout":5000.5}}`, "whole number"},
		{`{"input":{},"policy":{"ttl":"long"}}`, "whole number"},
		{`{"input":{},"policy":{"ttl":604800001}}`, "between 10000 and 604800000"},
		{`{"input":{},"policy":{"lowPriority":"yes"}}`, "true or false"},
		{`{"input":{},"s3Config":"bucket"}`, `"s3Config" must be an object`},
		{`{"input":"a string input is fine"}`, ""},
		{`{"input":[1,2],"webhookV2":"ignored"}`, ""},
	} {
		r := h.do("POST", "/v2/local/run", tc.body)
		if tc.want == "" {
			if r.code != 200 {
				t.Errorf("%s: %d %s, want 200", tc.body, r.code, r.body)
			}
			continue
		}
		if r.code != 400 || !strings.Contains(r.errMsg(t), tc.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", tc.body, r.code, r.body, tc.want)
		}
	}
	if n := len(h.srv.Jobs()); n != 3 {
		t.Fatalf("%d jobs created, want 3 (refused requests create none)", n)
	}

	// Every field reaches the worker as sent, and the job records the policy.
	full := `{"input":{"a":1},"webhook":"http://127.0.0.1:9/hook?token=s3cret","policy":{"executionTimeout":60000,"ttl":3600000,"lowPriority":true},"s3Config":{"accessId":"AK","accessSecret":"SK","bucketName":"b","endpointUrl":"http://s3"}}`
	h.srv.ClearFaults()
	for _, j := range h.srv.Jobs() {
		if err := h.srv.ExpireJob(j.ID); err != nil {
			t.Fatal(err)
		}
	}
	r := h.do("POST", "/v2/local/run", full)
	id, _ := r.json(t)["id"].(string)
	j := h.job(id)
	if j.Policy != (Policy{ExecutionTimeout: time.Minute, TTL: time.Hour, LowPriority: true}) {
		t.Fatalf("policy %+v", j.Policy)
	}
	taken := h.take("w1")
	enc, _ := json.Marshal(taken)
	want := `{"id":"` + id + `","input":{"a":1},"policy":{"executionTimeout":60000,"lowPriority":true,"ttl":3600000},"s3Config":{"accessId":"AK","accessSecret":"SK","bucketName":"b","endpointUrl":"http://s3"},"webhook":"http://127.0.0.1:9/hook?token=s3cret"}`
	if string(enc) != want {
		t.Fatalf("taken job\n got %s\nwant %s", enc, want)
	}
}

func TestPayloadLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) {
		c.MaxRunBytes = 1 << 10
		c.MaxRunsyncBytes = 2 << 10
	})
	pad := func(n int) string { return `{"input":"` + strings.Repeat("x", n-12) + `"}` }
	if r := h.do("POST", "/v2/local/run", pad(1<<10)); r.code != 200 {
		t.Fatalf("/run at the limit: %d %s", r.code, r.body)
	}
	r := h.do("POST", "/v2/local/run", pad(1<<10+1))
	if r.code != 400 || !strings.Contains(r.errMsg(t), "1 KB limit") {
		t.Fatalf("/run over the limit: %d %s", r.code, r.body)
	}
	r = h.do("POST", "/v2/local/runsync", pad(2<<10+1))
	if r.code != 400 || !strings.Contains(r.errMsg(t), "2 KB limit") || !strings.Contains(r.errMsg(t), "/runsync") {
		t.Fatalf("/runsync over the limit: %d %s", r.code, r.body)
	}
	if n := len(h.srv.Jobs()); n != 1 {
		t.Fatalf("%d jobs, want 1", n)
	}
}

func TestDefaultPayloadLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	body := `{"input":"` + strings.Repeat("x", MaxRunBytesDefault) + `"}`
	r := h.do("POST", "/v2/local/run", body)
	if r.code != 400 || !strings.Contains(r.errMsg(t), "10 MB limit") {
		t.Fatalf("/run of 10 MB+: %d %.200s", r.code, r.body)
	}
}

func TestRunsync(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, q := range []string{"999", "300001", "abc", "-5", "1.5"} {
		r := h.do("POST", "/v2/local/runsync?wait="+q, map[string]any{"input": 1})
		if r.code != 400 || string(r.body) != `{"error":"wait is invalid; must be between 1000 and 300000"}` {
			t.Errorf("wait=%s: %d %s", q, r.code, r.body)
		}
	}
	if n := len(h.srv.Jobs()); n != 0 {
		t.Fatalf("refused runsync requests made %d jobs", n)
	}

	// The job finishes within the wait: the full status comes back.
	ch := h.async("POST", "/v2/local/runsync?wait=5000", map[string]any{"input": map[string]any{"n": 1}})
	h.held(OpRunsync, 1)
	id := h.srv.Jobs()[0].ID
	if !syncID.MatchString(id) {
		t.Fatalf("runsync id %q, want sync-<uuid>-u1", id)
	}
	h.clock.Advance(time.Second)
	if err := h.srv.CompleteJob(id, "done"); err != nil {
		t.Fatal(err)
	}
	r := h.wait(ch)
	if want := `{"delayTime":1000,"executionTime":0,"id":"` + id + `","output":"done","status":"COMPLETED"}`; string(r.body) != want {
		t.Fatalf("runsync\n got %s\nwant %s", r.body, want)
	}

	// The wait ends first: the id comes back IN_QUEUE, then IN_PROGRESS.
	ch = h.async("POST", "/v2/local/runsync", map[string]any{"input": 2})
	h.held(OpRunsync, 1)
	h.clock.Advance(RunsyncWaitDefault)
	r = h.wait(ch)
	got := r.json(t)
	id2, _ := got["id"].(string)
	if got["status"] != "IN_QUEUE" || !syncID.MatchString(id2) {
		t.Fatalf("runsync past its wait: %s", r.body)
	}
	if err := h.srv.StartJob(id2); err != nil {
		t.Fatal(err)
	}
	ch = h.async("POST", "/v2/local/runsync?wait=1000", map[string]any{"input": 3})
	h.held(OpRunsync, 1)
	h.clock.Advance(time.Second)
	h.wait(ch)
	if st := h.do("GET", "/v2/local/status/"+id2, nil).json(t); st["status"] != "IN_PROGRESS" {
		t.Fatalf("status of the running sync job: %v", st)
	}
}

func TestStatusSync(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.run(1)
	if r := h.do("GET", "/v2/local/status-sync/"+id+"?wait=300001", nil); r.code != 400 {
		t.Fatalf("bad wait: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v2/local/status-sync/nope?wait=1000", nil); r.code != 404 {
		t.Fatalf("unknown job: %d %s", r.code, r.body)
	}
	// wait=0 answers at once.
	if st := h.do("POST", "/v2/local/status-sync/"+id+"?wait=0", nil).json(t); st["status"] != "IN_QUEUE" {
		t.Fatalf("wait=0: %v", st)
	}
	// Answers as soon as the job is terminal.
	ch := h.async("GET", "/v2/local/status-sync/"+id+"?wait=60000", nil)
	h.held(OpStatusSync, 1)
	if err := h.srv.FailJob(id, "boom"); err != nil {
		t.Fatal(err)
	}
	st := h.wait(ch).json(t)
	if st["status"] != "FAILED" || st["error"] != "boom" {
		t.Fatalf("status-sync: %v", st)
	}
	// Or when the wait ends.
	id2 := h.run(2)
	if err := h.srv.StartJob(id2); err != nil {
		t.Fatal(err)
	}
	ch = h.async("POST", "/v2/local/status-sync/"+id2+"?wait=2000", nil)
	h.held(OpStatusSync, 1)
	h.clock.Advance(2 * time.Second)
	if st := h.wait(ch).json(t); st["status"] != "IN_PROGRESS" {
		t.Fatalf("status-sync past its wait: %v", st)
	}
}

func TestStreamDeltas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.run(1)
	stream := func(q string) string {
		t.Helper()
		r := h.do("GET", "/v2/local/stream/"+id+q, nil)
		if r.code != 200 {
			t.Fatalf("/stream: %d %s", r.code, r.body)
		}
		return string(r.body)
	}
	if got := stream(""); got != `{"status":"IN_QUEUE","stream":[]}` {
		t.Fatalf("empty stream: %s", got)
	}
	for _, c := range []int{1, 2} {
		if err := h.srv.StreamJob(id, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := stream(""); got != `{"status":"IN_PROGRESS","stream":[{"output":1},{"output":2}]}` {
		t.Fatalf("first call: %s", got)
	}
	if got := stream(""); got != `{"status":"IN_PROGRESS","stream":[]}` {
		t.Fatalf("second call repeats chunks: %s", got)
	}
	// With wait, the call is held until the next chunk.
	ch := h.async("POST", "/v2/local/stream/"+id+"?wait=60000", nil)
	h.held(OpStream, 1)
	if err := h.srv.StreamJob(id, 3); err != nil {
		t.Fatal(err)
	}
	if r := h.wait(ch); string(r.body) != `{"status":"IN_PROGRESS","stream":[{"output":3}]}` {
		t.Fatalf("held call: %s", r.body)
	}
	if err := h.srv.StreamJob(id, 4); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.CompleteJob(id, []int{}); err != nil {
		t.Fatal(err)
	}
	if got := stream(""); got != `{"status":"COMPLETED","stream":[{"output":4}]}` {
		t.Fatalf("after completion: %s", got)
	}
	if got := stream("?wait=1000"); got != `{"status":"COMPLETED","stream":[]}` {
		t.Fatalf("terminal job with wait: %s", got)
	}
	failed := h.run(2)
	if err := h.srv.FailJob(failed, "x"); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", "/v2/local/stream/"+failed, nil); string(r.body) != `{"status":"FAILED","stream":[]}` {
		t.Fatalf("failed job: %s", r.body)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	queued := h.run(1)
	if r := h.do("POST", "/v2/local/cancel/"+queued, nil); string(r.body) != `{"id":"`+queued+`","status":"CANCELLED"}` {
		t.Fatalf("cancel queued: %d %s", r.code, r.body)
	}
	// A cancelled job is never handed to a worker.
	ch := h.async("GET", takePath("w1"), nil, "Authorization", testKey)
	h.held(OpTake, 1)
	h.clock.Advance(WorkerPollWaitDefault)
	if r := h.wait(ch); r.code != 204 {
		t.Fatalf("take after cancel: %d %s", r.code, r.body)
	}

	running := h.run(2)
	h.take("w1")
	if r := h.do("POST", "/v2/local/cancel/"+running, nil); r.json(t)["status"] != "CANCELLED" {
		t.Fatalf("cancel running: %s", r.body)
	}
	if r := h.do("GET", "/v2/local/job-stop/w1", nil, "Authorization", testKey); string(r.body) != `{"jobsToStop":["`+running+`"]}` {
		t.Fatalf("job-stop after cancel: %d %s", r.code, r.body)
	}
	if r := h.done("w1", running, `{"output":"late"}`); r.code != 404 || !strings.Contains(r.errMsg(t), "CANCELLED") {
		t.Fatalf("done after cancel: %d %s", r.code, r.body)
	}
	if j := h.job(running); j.Output != nil || j.Status != StatusCancelled {
		t.Fatalf("late result changed the job: %+v", j)
	}

	finished := h.run(3)
	if err := h.srv.CompleteJob(finished, 1); err != nil {
		t.Fatal(err)
	}
	if r := h.do("POST", "/v2/local/cancel/"+finished, nil); r.json(t)["status"] != "COMPLETED" {
		t.Fatalf("cancel finished: %s", r.body)
	}
	if r := h.do("POST", "/v2/local/cancel/nope", nil); r.code != 404 {
		t.Fatalf("cancel unknown: %d", r.code)
	}
}

// alwaysAlive keeps silent test workers from being declared lost.
func alwaysAlive(c *Config) { c.PingTimeout = 7 * 24 * time.Hour }

func TestRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, alwaysAlive)
	id := h.run(1)
	if r := h.do("POST", "/v2/local/retry/"+id, nil); r.code != 400 || !strings.Contains(r.errMsg(t), "only FAILED or TIMED_OUT") {
		t.Fatalf("retry queued: %d %s", r.code, r.body)
	}
	h.take("w1")
	if r := h.done("w1", id, `{"error":"bad seed"}`); r.code != 200 {
		t.Fatalf("done: %d %s", r.code, r.body)
	}
	r := h.do("POST", "/v2/local/retry/"+id, nil)
	if string(r.body) != `{"id":"`+id+`","status":"IN_QUEUE"}` {
		t.Fatalf("retry failed job: %d %s", r.code, r.body)
	}
	st := h.do("GET", "/v2/local/status/"+id, nil).json(t)
	if st["retries"] != 1.0 || st["error"] != nil || st["status"] != "IN_QUEUE" {
		t.Fatalf("status after retry: %v", st)
	}
	// Timed out jobs can be retried too; completed ones cannot.
	if got := h.take("w1"); got["id"] != id {
		t.Fatalf("the retried job was not served again: %v", got)
	}
	h.clock.Advance(ExecutionTimeoutDefault)
	if r := h.do("POST", "/v2/local/retry/"+id, nil); r.code != 200 {
		t.Fatalf("retry timed out job: %d %s", r.code, r.body)
	}
	if err := h.srv.CompleteJob(id, 1); err != nil {
		t.Fatal(err)
	}
	if r := h.do("POST", "/v2/local/retry/"+id, nil); r.code != 400 {
		t.Fatalf("retry completed job: %d %s", r.code, r.body)
	}
	if h.job(id).Retries != 2 {
		t.Fatalf("retries = %d, want 2", h.job(id).Retries)
	}
	h.clock.Advance(RunRetentionDefault)
	if r := h.do("POST", "/v2/local/retry/"+id, nil); r.code != 404 {
		t.Fatalf("retry after retention: %d %s", r.code, r.body)
	}
}

func TestPurgeQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	running := h.run(0)
	h.take("w1")
	var queued []string
	for i := range 3 {
		queued = append(queued, h.run(i+1))
	}
	r := h.do("POST", "/v2/local/purge-queue", nil)
	if string(r.body) != `{"removed":3,"status":"completed"}` {
		t.Fatalf("purge: %s", r.body)
	}
	for _, id := range queued {
		if r := h.do("GET", "/v2/local/status/"+id, nil); r.code != 404 {
			t.Fatalf("purged job %s: %d", id, r.code)
		}
		if j := h.job(id); !strings.Contains(j.Deleted, "purged") {
			t.Fatalf("purged job inspection: %+v", j)
		}
	}
	if st := h.do("GET", "/v2/local/status/"+running, nil).json(t); st["status"] != "IN_PROGRESS" {
		t.Fatalf("purge touched a running job: %v", st)
	}
	if r := h.do("POST", "/v2/local/purge-queue", nil); string(r.body) != `{"removed":0,"status":"completed"}` {
		t.Fatalf("second purge: %s", r.body)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if r := h.do("GET", "/v2/local/health", nil); string(r.body) != `{"jobs":{"completed":0,"failed":0,"inProgress":0,"inQueue":0,"retried":0},"workers":{"idle":0,"initializing":0,"ready":0,"running":0,"throttled":0,"unhealthy":0}}` {
		t.Fatalf("empty health: %s", r.body)
	}
	a, b, c, d := h.run(1), h.run(2), h.run(3), h.run(4)
	_ = d
	h.take("w1")
	h.do("GET", "/v2/local/ping/w2", nil, "Authorization", testKey)
	if err := h.srv.CompleteJob(b, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.FailJob(c, "x"); err != nil {
		t.Fatal(err)
	}
	if r := h.do("POST", "/v2/local/retry/"+c, nil); r.code != 200 {
		t.Fatal(r.code)
	}
	hl := h.do("GET", "/v2/local/health", nil)
	want := `{"jobs":{"completed":1,"failed":1,"inProgress":1,"inQueue":2,"retried":1},"workers":{"idle":1,"initializing":0,"ready":2,"running":1,"throttled":0,"unhealthy":0}}`
	if string(hl.body) != want {
		t.Fatalf("health\n got %s\nwant %s", hl.body, want)
	}
	got, err := h.srv.Health("local")
	if err != nil || got.Jobs.InProgress != 1 || got.Workers.Running != 1 {
		t.Fatalf("Health(): %+v %v", got, err)
	}
	if h.job(a).WorkerID != "w1" {
		t.Fatalf("job a held by %q", h.job(a).WorkerID)
	}
}

func TestRetentionAndTTL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	async := h.run(1)
	if err := h.srv.CompleteJob(async, 1); err != nil {
		t.Fatal(err)
	}
	sync, err := h.srv.Enqueue(JobRequest{Input: 2, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.CompleteJob(sync, 2); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(RunsyncRetentionDefault - time.Millisecond)
	if r := h.do("GET", "/v2/local/status/"+sync, nil); r.code != 200 {
		t.Fatalf("sync job before its retention: %d", r.code)
	}
	h.clock.Advance(time.Millisecond)
	if r := h.do("GET", "/v2/local/status/"+sync, nil); r.code != 404 || !strings.Contains(r.errMsg(t), "not found") {
		t.Fatalf("sync job after its retention: %d %s", r.code, r.body)
	}
	h.clock.Advance(RunRetentionDefault - RunsyncRetentionDefault - time.Millisecond)
	if r := h.do("GET", "/v2/local/status/"+async, nil); r.code != 200 {
		t.Fatalf("run job before its retention: %d", r.code)
	}
	h.clock.Advance(time.Millisecond)
	if r := h.do("GET", "/v2/local/status/"+async, nil); r.code != 404 {
		t.Fatalf("run job after its retention: %d", r.code)
	}
	if j := h.job(async); !strings.Contains(j.Deleted, "retention") {
		t.Fatalf("deleted job: %q", j.Deleted)
	}

	// A ttl deletes a job whatever its state; its worker is told to stop and
	// its late result is refused.
	r := h.do("POST", "/v2/local/run", `{"input":1,"policy":{"ttl":10000}}`)
	id, _ := r.json(t)["id"].(string)
	h.take("w1")
	stop := h.async("GET", "/v2/local/job-stop/w1", nil, "Authorization", testKey)
	h.held(OpStop, 1)
	h.clock.Advance(10 * time.Second)
	if r := h.wait(stop); string(r.body) != `{"jobsToStop":["`+id+`"]}` {
		t.Fatalf("job-stop after ttl: %d %s", r.code, r.body)
	}
	if r := h.do("GET", "/v2/local/status/"+id, nil); r.code != 404 {
		t.Fatalf("status after ttl: %d", r.code)
	}
	if r := h.done("w1", id, `{"output":1}`); r.code != 404 {
		t.Fatalf("done after ttl: %d %s", r.code, r.body)
	}
	if j := h.job(id); !strings.Contains(j.Deleted, "ttl of 10000 ms") || j.Status != StatusInProgress {
		t.Fatalf("ttl-deleted job: %+v", j)
	}
	// A queued job also goes when its ttl runs out.
	r = h.do("POST", "/v2/local/run", `{"input":1,"policy":{"ttl":10000}}`)
	id, _ = r.json(t)["id"].(string)
	h.clock.Advance(10 * time.Second)
	if _, ok := h.srv.Job(id); !ok || len(h.srv.Jobs()) != 0 {
		t.Fatalf("queued job outlived its ttl: %v", h.srv.Jobs())
	}
}

func TestExecutionTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, alwaysAlive)
	r := h.do("POST", "/v2/local/run", `{"input":1,"policy":{"executionTimeout":5000}}`)
	id, _ := r.json(t)["id"].(string)
	h.clock.Advance(time.Hour) // queue time does not count
	h.take("w1")
	ch := h.async("GET", "/v2/local/status-sync/"+id+"?wait=300000", nil)
	h.held(OpStatusSync, 1)
	h.clock.Advance(5 * time.Second)
	st := h.wait(ch).json(t)
	if st["status"] != "TIMED_OUT" || !strings.Contains(st["error"].(string), "policy.executionTimeout (5000 ms)") || st["executionTime"] != 5000.0 {
		t.Fatalf("status after the execution timeout: %v", st)
	}
	if r := h.do("GET", "/v2/local/job-stop/w1", nil, "Authorization", testKey); string(r.body) != `{"jobsToStop":["`+id+`"]}` {
		t.Fatalf("job-stop: %s", r.body)
	}
	if r := h.done("w1", id, `{"output":1}`); r.code != 404 || !strings.Contains(r.errMsg(t), "TIMED_OUT") {
		t.Fatalf("done after timeout: %d %s", r.code, r.body)
	}
	// The default timeout is 600 s.
	id2 := h.run(2)
	h.take("w1")
	h.clock.Advance(ExecutionTimeoutDefault - time.Millisecond)
	if h.job(id2).Status != StatusInProgress {
		t.Fatal("timed out early")
	}
	h.clock.Advance(time.Millisecond)
	if h.job(id2).Status != StatusTimedOut {
		t.Fatal("did not time out at 600 s")
	}
}
