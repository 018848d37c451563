package runpodtest

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTakeLongPoll(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// Nothing queued: the take is held, then answers 204 when the wait ends.
	ch := h.async("GET", takePath("w1")+"?gpu=X&job_in_progress=0", nil, "Authorization", testKey)
	h.held(OpTake, 1)
	h.clock.Advance(WorkerPollWaitDefault)
	if r := h.wait(ch); r.code != 204 || len(r.body) != 0 {
		t.Fatalf("empty take: %d %q", r.code, r.body)
	}
	// A job queued while the take is held is handed out at once.
	ch = h.async("GET", takePath("w1")+"?gpu=X&job_in_progress=0", nil, "Authorization", testKey)
	h.held(OpTake, 1)
	id := h.run(map[string]any{"prompt": "p"})
	r := h.wait(ch)
	if r.code != 200 || string(r.body) != `{"id":"`+id+`","input":{"prompt":"p"}}` || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("take: %d %v %s", r.code, r.header, r.body)
	}
	j := h.job(id)
	if j.Status != StatusInProgress || j.WorkerID != "w1" {
		t.Fatalf("taken job: %+v", j)
	}
	w := h.srv.Workers()[0]
	if w.ID != "w1" || !slices.Equal(w.Jobs, []string{id}) || w.State != WorkerRunning {
		t.Fatalf("worker: %+v", w)
	}
	// job_in_progress is recorded and checked.
	ch = h.async("GET", takePath("w2")+"?job_in_progress=1", nil, "Authorization", testKey)
	h.held(OpTake, 1)
	if w := h.srv.Workers()[1]; !w.JobInProgress || w.State != WorkerRunning {
		t.Fatalf("job_in_progress=1 not honoured: %+v", w)
	}
	h.clock.Advance(WorkerPollWaitDefault)
	h.wait(ch)
	if r := h.do("GET", takePath("w1")+"?job_in_progress=maybe", nil, "Authorization", testKey); r.code != 400 || !strings.Contains(r.errMsg(t), "job_in_progress") {
		t.Fatalf("bad job_in_progress: %d %s", r.code, r.body)
	}
}

func TestTakeBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ids := []string{h.run(1), h.run(2), h.run(3)}
	path := "/v2/local/job-take-batch/w1?gpu=X&batch_size="
	r := h.do("GET", path+"2&job_in_progress=0", nil, "Authorization", testKey)
	var got []takenJob
	if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("batch of 2: %d %s", r.code, r.body)
	}
	r = h.do("GET", path+"5&job_in_progress=1", nil, "Authorization", testKey)
	if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 1 || got[0].ID != ids[2] || string(got[0].Input) != "3" {
		t.Fatalf("batch of the rest: %d %s", r.code, r.body)
	}
	for _, bad := range []string{"0", "-1", "x", "101"} {
		if r := h.do("GET", path+bad, nil, "Authorization", testKey); r.code != 400 || !strings.Contains(r.errMsg(t), "batch_size") {
			t.Errorf("batch_size=%s: %d %s", bad, r.code, r.body)
		}
	}
	ch := h.async("GET", path+"3", nil, "Authorization", testKey)
	h.held(OpTake, 1)
	h.clock.Advance(WorkerPollWaitDefault)
	if r := h.wait(ch); r.code != 204 {
		t.Fatalf("empty batch: %d %s", r.code, r.body)
	}
	if n := len(h.srv.Workers()[0].Jobs); n != 3 {
		t.Fatalf("worker holds %d jobs, want 3", n)
	}
}

func TestDoneBodies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name, body string
		status     Status
		output     string
		errMsg     string
	}{
		{"output", `{"output":{"images":[{"data":"x"}]}}`, StatusCompleted, `{"images":[{"data":"x"}]}`, ""},
		{"bare string output", `{"output":"text"}`, StatusCompleted, `"text"`, ""},
		{"no output", `{}`, StatusCompleted, ``, ""},
		{"null output", `{"output":null}`, StatusCompleted, ``, ""},
		{"error", `{"error":"bad seed"}`, StatusFailed, ``, "bad seed"},
		{"output and error", `{"output":{"partial":1},"error":"late failure"}`, StatusFailed, `{"partial":1}`, "late failure"},
		{"empty error is no error", `{"output":1,"error":""}`, StatusCompleted, `1`, ""},
		{"error object kept as JSON text", `{"error":{"error_type":"ValueError"}}`, StatusFailed, ``, `{"error_type":"ValueError"}`},
		{"python exception shape", `{"error":"{\"error_type\": \"<class 'ValueError'>\", \"error_message\": \"x\"}"}`, StatusFailed, ``, `{"error_type": "<class 'ValueError'>", "error_message": "x"}`},
		{"unknown keys ignored", `{"output":2,"extra":true}`, StatusCompleted, `2`, ""},
		{"non-ASCII kept", `{"output":"ünïcödé ✓"}`, StatusCompleted, `"ünïcödé ✓"`, ""},
	} {
		id := h.run(tc.name)
		h.take("w1")
		if r := h.done("w1", id, tc.body); r.code != 200 {
			t.Errorf("%s: done %d %s", tc.name, r.code, r.body)
			continue
		}
		j := h.job(id)
		if j.Status != tc.status || string(j.Output) != tc.output || j.Error != tc.errMsg {
			t.Errorf("%s: job %s output %s error %q; want %s %s %q", tc.name, j.Status, j.Output, j.Error, tc.status, tc.output, tc.errMsg)
		}
	}
	// Bad bodies are refused and leave the job running.
	id := h.run("bad bodies")
	h.take("w1")
	for _, body := range []string{``, `output=1`, `[1]`, `{"output":`, `{"stopPod":"yes"}`, `{"status":5}`} {
		if r := h.done("w1", id, body); r.code != 400 || r.errMsg(t) == "" {
			t.Errorf("body %q: %d %s", body, r.code, r.body)
		}
	}
	if r := h.do("POST", "/v2/local/job-done/w1/"+id+"?isStream=sometimes", `{}`, "Authorization", testKey); r.code != 400 {
		t.Errorf("bad isStream: %d", r.code)
	}
	// Only the holder may post.
	if r := h.done("w2", id, `{"output":1}`); r.code != 404 || !strings.Contains(r.errMsg(t), `not held by worker "w2"`) {
		t.Errorf("another worker's post: %d %s", r.code, r.body)
	}
	if r := h.done("w1", "unknown-u1", `{"output":1}`); r.code != 404 {
		t.Errorf("unknown job: %d", r.code)
	}
	if h.job(id).Status != StatusInProgress {
		t.Fatalf("refused posts changed the job: %v", h.job(id).Status)
	}
	// A generator's final post carries isStream=true.
	r := h.do("POST", "/v2/local/job-done/w1/"+id+"?gpu=X&isStream=true", `{"output":[]}`, "Authorization", testKey, "Content-Type", "application/x-www-form-urlencoded")
	if r.code != 200 || h.job(id).Status != StatusCompleted {
		t.Fatalf("isStream=true: %d %s", r.code, r.body)
	}
}

func TestProgressThenResult(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.run(1)
	h.take("w1")
	for i := 1; i <= 2; i++ {
		body := `{"status":"IN_PROGRESS","output":{"step":` + string(rune('0'+i)) + `}}`
		if r := h.done("w1", id, body); r.code != 200 {
			t.Fatalf("progress: %d %s", r.code, r.body)
		}
	}
	st := h.do("GET", "/v2/local/status/"+id, nil).json(t)
	if st["status"] != "IN_PROGRESS" || st["output"].(map[string]any)["step"] != 2.0 {
		t.Fatalf("status after progress: %v", st)
	}
	if r := h.done("w1", id, `{"output":"final"}`); r.code != 200 {
		t.Fatal(r.code)
	}
	j := h.job(id)
	if j.Status != StatusCompleted || string(j.Output) != `"final"` || j.ProgressUpdates != 2 || j.History[len(j.History)-1].WorkerID != "w1" {
		t.Fatalf("job: %+v", j)
	}
	// A progress update after the result is refused, never reopening the job.
	if r := h.done("w1", id, `{"status":"IN_PROGRESS","output":"late"}`); r.code != 404 {
		t.Fatalf("late progress: %d", r.code)
	}
	if h.job(id).Status != StatusCompleted {
		t.Fatal("late progress reopened the job")
	}
}

func TestResultTooLarge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.MaxResultBytes = 4 << 10 })
	id := h.run(1)
	h.take("w1")
	big := `{"output":"` + strings.Repeat("A", 4<<10) + `"}`
	r := h.done("w1", id, big)
	if r.code != 400 || !strings.HasPrefix(r.errMsg(t), "Bad Request") || !strings.Contains(r.errMsg(t), "4 KB") {
		t.Fatalf("big result: %d %s", r.code, r.body)
	}
	if h.job(id).Status != StatusInProgress {
		t.Fatal("a refused result finished the job")
	}
	if r := h.do("POST", "/v2/local/job-stream/w1/"+id, big, "Authorization", testKey); r.code != 400 {
		t.Fatalf("big chunk: %d", r.code)
	}
	if r := h.done("w1", id, `{"output":"small"}`); r.code != 200 {
		t.Fatalf("retry with a small result: %d", r.code)
	}
}

func TestStopPodRefreshesWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ColdStart = 20 * time.Second })
	// First contact starts the cold start.
	ch := h.async("GET", takePath("w1"), nil, "Authorization", testKey)
	h.held(OpTake, 1)
	id := h.run(1)
	h.clock.Advance(20 * time.Second)
	if r := h.wait(ch); r.code != 200 {
		t.Fatalf("take after cold start: %d", r.code)
	}
	if r := h.done("w1", id, `{"output":1,"stopPod":true}`); r.code != 200 {
		t.Fatal(r.code)
	}
	w := h.srv.Workers()[0]
	if !w.Refreshing || w.Refreshes != 1 || w.State != WorkerInitializing {
		t.Fatalf("worker after stopPod: %+v", w)
	}
	if hl, _ := h.srv.Health("local"); hl.Workers.Initializing != 1 || hl.Workers.Idle != 0 {
		t.Fatalf("health while refreshing: %+v", hl.Workers)
	}
	// The refreshed worker is served again after another cold start.
	id2 := h.run(2)
	ch = h.async("GET", takePath("w1"), nil, "Authorization", testKey)
	h.held(OpTake, 1)
	if h.job(id2).Status != StatusInQueue {
		t.Fatal("a refreshing worker was served")
	}
	h.clock.Advance(20 * time.Second)
	if r := h.wait(ch); r.code != 200 || r.json(t)["id"] != id2 {
		t.Fatalf("take after refresh: %d %s", r.code, r.body)
	}
	if w := h.srv.Workers()[0]; w.Refreshing {
		t.Fatalf("still refreshing after serving a job: %+v", w)
	}
}

func TestStreamPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.run(1)
	h.take("w1")
	post := func(body string) reply {
		return h.do("POST", "/v2/local/job-stream/w1/"+id+"?gpu=X&isStream=false", body, "Authorization", testKey, "Content-Type", "application/x-www-form-urlencoded")
	}
	for _, b := range []string{`{"output":"a"}`, `{"output":{"text":"b"},"metrics":{"tokens":3}}`} {
		if r := post(b); r.code != 200 {
			t.Fatalf("stream post %s: %d %s", b, r.code, r.body)
		}
	}
	for _, b := range []string{`"x"`, `{}`, `{"output":`} {
		if r := post(b); r.code != 400 {
			t.Errorf("bad chunk %s: %d", b, r.code)
		}
	}
	if r := h.do("GET", "/v2/local/stream/"+id, nil); string(r.body) != `{"status":"IN_PROGRESS","stream":[{"output":"a"},{"output":{"text":"b"},"metrics":{"tokens":3}}]}` {
		t.Fatalf("stream: %s", r.body)
	}
	if r := h.do("POST", "/v2/local/job-stream/w2/"+id, `{"output":1}`, "Authorization", testKey); r.code != 404 {
		t.Fatalf("chunk from another worker: %d", r.code)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	id := h.run(1)
	h.take("w1")
	r := h.do("GET", "/v2/local/ping/w1?gpu=X&job_id="+id+",other-u1&runpod_version=1.12.0", nil, "Authorization", testKey)
	if r.code != 200 || string(r.body) != `{"status":"pong"}` {
		t.Fatalf("ping: %d %s", r.code, r.body)
	}
	w := h.srv.Workers()[0]
	if !slices.Equal(w.ReportedJobs, []string{id, "other-u1"}) || w.RunpodVersion != "1.12.0" || !w.LastPing.Equal(epoch) {
		t.Fatalf("worker after ping: %+v", w)
	}
	// A failed fitness check makes the worker unhealthy.
	q := url.Values{"status": {"unhealthy"}, "check": {"memory"}, "reason": {"2 GB < 4 GB"}, "runpod_version": {"1.12.0"}}
	h.do("GET", "/v2/local/ping/w2?"+q.Encode(), nil, "Authorization", testKey)
	w = h.srv.Workers()[1]
	if w.State != WorkerUnhealthy || w.Unhealthy != "memory: 2 GB < 4 GB" {
		t.Fatalf("worker after a fitness failure: %+v", w)
	}
	if hl, _ := h.srv.Health("local"); hl.Workers.Unhealthy != 1 || hl.Workers.Running != 1 {
		t.Fatalf("health: %+v", hl.Workers)
	}
}

func TestLostWorkerRequeuesOnceThenFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.PingInterval = 5 * time.Second })
	if h.srv.cfg.PingTimeout != 30*time.Second {
		t.Fatalf("PingTimeout default = %s, want 6 × PingInterval", h.srv.cfg.PingTimeout)
	}
	id := h.run(1)
	h.take("w1")
	// Pings keep the worker alive.
	for range 3 {
		h.clock.Advance(20 * time.Second)
		h.do("GET", "/v2/local/ping/w1?job_id="+id, nil, "Authorization", testKey)
	}
	if h.job(id).Status != StatusInProgress {
		t.Fatal("a pinging worker lost its job")
	}
	// Silence for the ping timeout: the job goes back to the queue once.
	h.clock.Advance(30 * time.Second)
	j := h.job(id)
	if j.Status != StatusInQueue || j.Retries != 1 || !strings.Contains(j.History[len(j.History)-1].Reason, "worker w1 sent no ping for 30s") {
		t.Fatalf("job after its worker went silent: %+v", j)
	}
	if w := h.srv.Workers()[0]; w.State != WorkerUnhealthy || len(w.Jobs) != 0 {
		t.Fatalf("silent worker: %+v", w)
	}
	if hl, _ := h.srv.Health("local"); hl.Workers.Unhealthy != 1 || hl.Jobs.Retried != 1 || hl.Jobs.InQueue != 1 {
		t.Fatalf("health: %+v", hl)
	}
	// The lost worker learns to drop the job and cannot post for it.
	if r := h.do("GET", "/v2/local/job-stop/w1", nil, "Authorization", testKey); string(r.body) != `{"jobsToStop":["`+id+`"]}` {
		t.Fatalf("job-stop for the lost worker: %s", r.body)
	}
	if r := h.done("w1", id, `{"output":1}`); r.code != 404 {
		t.Fatalf("done from the lost worker: %d", r.code)
	}
	if st := h.do("GET", "/v2/local/status/"+id, nil).json(t); st["retries"] != 1.0 || st["status"] != "IN_QUEUE" {
		t.Fatalf("status: %v", st)
	}
	// A second worker takes it and goes silent too: the job fails.
	if got := h.take("w2"); got["id"] != id {
		t.Fatalf("requeued job not served: %v", got)
	}
	h.clock.Advance(30 * time.Second)
	j = h.job(id)
	if j.Status != StatusFailed || !strings.Contains(j.Error, "already been requeued once") {
		t.Fatalf("job after a second lost worker: %+v", j)
	}
	// A silent worker holding nothing is just gone, not unhealthy.
	h.do("GET", "/v2/local/ping/w3", nil, "Authorization", testKey)
	h.clock.Advance(30 * time.Second)
	if w := h.srv.Workers()[2]; w.ID != "w3" || w.State != WorkerLost {
		t.Fatalf("idle silent worker: %+v", w)
	}
	// A held request keeps a worker alive however long it lasts.
	ch := h.async("GET", "/v2/local/job-stop/w4", nil, "Authorization", testKey)
	h.held(OpStop, 1)
	h.clock.Advance(WorkerPollWaitDefault - time.Second) // > PingTimeout
	if w := h.srv.Workers()[3]; w.State != WorkerIdle {
		t.Fatalf("worker with a held request: %+v", w)
	}
	h.clock.Advance(time.Second)
	if r := h.wait(ch); r.code != 204 {
		t.Fatalf("job-stop with nothing to stop: %d %s", r.code, r.body)
	}
}

func TestColdStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ColdStart = 45 * time.Second })
	id := h.run(1)
	ch := h.async("GET", takePath("w1"), nil, "Authorization", testKey)
	h.held(OpTake, 1)
	hl, _ := h.srv.Health("local")
	if hl.Workers != (HealthWorkers{Initializing: 1}) || hl.Jobs.InQueue != 1 {
		t.Fatalf("health during the cold start: %+v", hl)
	}
	h.clock.Advance(44 * time.Second)
	if h.job(id).Status != StatusInQueue {
		t.Fatal("served during the cold start")
	}
	h.clock.Advance(time.Second)
	if r := h.wait(ch); r.code != 200 || r.json(t)["id"] != id {
		t.Fatalf("take after the cold start: %d %s", r.code, r.body)
	}
	if hl, _ := h.srv.Health("local"); hl.Workers.Running != 1 || hl.Workers.Initializing != 0 {
		t.Fatalf("health after the cold start: %+v", hl.Workers)
	}
}

func TestWorkerEnv(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.GPUName = "NVIDIA H100 PCIe" })
	env := h.srv.WorkerEnv("pod1")
	base := h.srv.URL + "/v2/local"
	want := map[string]string{
		EnvGetJob:       base + "/job-take/$ID?gpu=NVIDIA+H100+PCIe",
		EnvPostOutput:   base + "/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100+PCIe",
		EnvPostStream:   base + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100+PCIe",
		EnvPing:         base + "/ping/$RUNPOD_POD_ID?gpu=NVIDIA+H100+PCIe",
		EnvWorkerAPIKey: testKey,
		EnvPodID:        "pod1",
		EnvPingInterval: "10000",
		EnvEndpointID:   "local",
		EnvBaseURL:      h.srv.URL + "/v2",
		EnvAPIKey:       testKey,
	}
	if len(env) != len(want) {
		t.Fatalf("env has %d keys, want %d: %v", len(env), len(want), env)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if h.srv.WorkerEnv("bad id") != nil {
		t.Error("WorkerEnv accepted a bad worker id")
	}
	if _, err := h.srv.WorkerEnvFor("nope", "w"); err == nil {
		t.Error("WorkerEnvFor accepted an unknown endpoint")
	}
	// The templates work when filled the way runpod-python fills them.
	id := h.run(7)
	take := strings.ReplaceAll(env[EnvGetJob], "$ID", "pod1") + "&job_in_progress=0"
	r := h.do("GET", strings.TrimPrefix(take, h.srv.URL), nil, "Authorization", env[EnvWorkerAPIKey])
	if r.code != 200 || r.json(t)["id"] != id {
		t.Fatalf("take through the template: %d %s", r.code, r.body)
	}
	done := strings.ReplaceAll(strings.ReplaceAll(env[EnvPostOutput], "$RUNPOD_POD_ID", "pod1"), "$ID", id) + "&isStream=false"
	r = h.do("POST", strings.TrimPrefix(done, h.srv.URL), `{"output":8}`, "Authorization", env[EnvWorkerAPIKey])
	if r.code != 200 || h.job(id).Status != StatusCompleted {
		t.Fatalf("done through the template: %d %s", r.code, r.body)
	}
}
