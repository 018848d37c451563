package runpodtest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestControlRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Endpoints = []string{"local", "b"} })

	r := h.do("POST", "/_emulator/jobs", `{"endpoint":"b","input":{"x":1},"sync":true,"policy":{"ttl":20000}}`)
	id, _ := r.json(t)["id"].(string)
	if r.code != 200 || !syncID.MatchString(id) {
		t.Fatalf("enqueue: %d %s", r.code, r.body)
	}
	for _, bad := range []string{`{"endpoint":"zzz","input":1}`, `{"input":1,"sync":"y"}`, `{}`, `[]`} {
		if r := h.do("POST", "/_emulator/jobs", bad); r.code != 400 {
			t.Errorf("enqueue %s: %d", bad, r.code)
		}
	}
	var j Job
	if err := json.Unmarshal(h.do("GET", "/_emulator/jobs/"+id, nil).body, &j); err != nil {
		t.Fatal(err)
	}
	if j.Endpoint != "b" || !j.Sync || j.Policy.TTL != 20*time.Second || string(j.Input) != `{"x":1}` {
		t.Fatalf("job over JSON: %+v", j)
	}
	if !strings.Contains(string(h.do("GET", "/_emulator/jobs/"+id, nil).body), `"policy":{"executionTimeout":600000,"lowPriority":false,"ttl":20000}`) {
		t.Fatal("policy is not in RunPod's wire form")
	}

	steps := []struct {
		action, body string
		want         Status
	}{
		{"start", ``, StatusInProgress},
		{"progress", `{"output":{"pct":50}}`, StatusInProgress},
		{"stream", `{"output":"chunk"}`, StatusInProgress},
		{"complete", `{"output":"fin"}`, StatusCompleted},
	}
	for _, s := range steps {
		r := h.do("POST", "/_emulator/jobs/"+id+"/"+s.action, s.body)
		if err := json.Unmarshal(r.body, &j); err != nil || r.code != 200 || j.Status != s.want {
			t.Fatalf("%s: %d %s", s.action, r.code, r.body)
		}
	}
	if string(j.Output) != `"fin"` || len(j.Stream) != 1 || j.ProgressUpdates != 1 {
		t.Fatalf("driven job: %+v", j)
	}
	if r := h.do("POST", "/_emulator/jobs/"+id+"/fail", `{"error":"x"}`); r.code != 409 {
		t.Fatalf("fail a finished job: %d %s", r.code, r.body)
	}
	if r := h.do("POST", "/_emulator/jobs/nope/complete", `{}`); r.code != 404 {
		t.Fatalf("unknown job: %d", r.code)
	}
	other := h.run(1)
	if r := h.do("POST", "/_emulator/jobs/"+other+"/fail", `{}`); r.code != 400 {
		t.Fatalf("fail without a message: %d", r.code)
	}
	if r := h.do("POST", "/_emulator/jobs/"+other+"/explode", ``); r.code != 404 {
		t.Fatalf("unknown action: %d", r.code)
	}
	if r := h.do("POST", "/_emulator/jobs/"+other+"/expire", ``); r.code != 200 || !strings.Contains(string(r.body), `"deleted":"expired directly"`) {
		t.Fatalf("expire: %d %s", r.code, r.body)
	}

	h.do("GET", "/v2/local/ping/w1?runpod_version=9", nil, "Authorization", testKey)
	var ws []Worker
	if err := json.Unmarshal(h.do("GET", "/_emulator/workers", nil).body, &ws); err != nil || len(ws) != 1 || ws[0].RunpodVersion != "9" {
		t.Fatalf("workers: %+v %v", ws, err)
	}
	var counts map[Op]int
	if err := json.Unmarshal(h.do("GET", "/_emulator/requests", nil).body, &counts); err != nil || counts[OpRun] != 1 || counts[OpPing] != 1 {
		t.Fatalf("requests: %v %v", counts, err)
	}
	if r := h.do("GET", "/_emulator/webhooks", nil); string(r.body) != `[]` && string(r.body) != `null` {
		t.Fatalf("webhooks: %s", r.body)
	}
	if r := h.do("GET", "/_emulator/nothing", nil); r.code != 404 {
		t.Fatalf("unknown control route: %d", r.code)
	}
	if h.srv.Requests(OpStatus) != 0 {
		t.Fatal("control routes were counted as client requests")
	}
}

func TestGoControlAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	if _, err := h.srv.Enqueue(JobRequest{}); err == nil {
		t.Fatal("Enqueue without input")
	}
	if _, err := h.srv.Enqueue(JobRequest{Endpoint: "zzz", Input: 1}); err == nil {
		t.Fatal("Enqueue on an unknown endpoint")
	}
	if _, err := h.srv.Enqueue(JobRequest{Input: 1, Policy: &Policy{TTL: time.Second}}); err == nil {
		t.Fatal("Enqueue with a ttl under RunPod's minimum")
	}
	if _, err := h.srv.Enqueue(JobRequest{Input: make(chan int)}); err == nil {
		t.Fatal("Enqueue of an unencodable input")
	}
	id, err := h.srv.Enqueue(JobRequest{Input: json.RawMessage(`{"a": 1}`), Policy: &Policy{ExecutionTimeout: time.Minute}, S3Config: map[string]string{"bucketName": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	j := h.job(id)
	if j.Policy.ExecutionTimeout != time.Minute || j.Policy.TTL != TTLDefault || string(j.S3Config) != `{"bucketName":"b"}` || string(j.Input) != `{"a":1}` {
		t.Fatalf("enqueued: %+v", j)
	}
	if err := h.srv.FailJob(id, ""); err == nil {
		t.Fatal("FailJob without a message")
	}
	if err := h.srv.CompleteJob("nope", 1); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("CompleteJob(unknown) = %v", err)
	}
	if err := h.srv.CompleteJob(id, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.ProgressJob(id, 1); !errors.Is(err, ErrJobFinished) {
		t.Fatalf("ProgressJob(finished) = %v", err)
	}
	if err := h.srv.ExpireJob("nope"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("ExpireJob(unknown) = %v", err)
	}
	if _, err := h.srv.WaitStatus(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.ExpireJob(id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.WaitStatus(t.Context(), id, StatusInQueue); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("WaitStatus on a deleted job = %v", err)
	}
	if _, err := h.srv.Health("zzz"); err == nil {
		t.Fatal("Health of an unknown endpoint")
	}
	if ops := h.srv.RequestCounts(); len(ops) != 0 {
		t.Fatalf("RequestCounts with no requests: %v", ops)
	}
	if h.srv.EndpointID() != "local" || h.srv.Endpoints()[0] != "local" || h.srv.BaseURL() != h.srv.URL+"/v2" || h.srv.Clock() != h.clock {
		t.Fatal("accessors")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{Endpoints: []string{"a b"}},
		{Endpoints: []string{"a", "a"}},
		{TTL: -1},
		{ColdStart: -1},
		{MaxRunBytes: -1},
		{MaxBatchSize: -1},
		{WebhookAttempts: -1},
		{Addr: "256.0.0.1:99999"},
	} {
		srv, err := NewServer(&c)
		if err == nil {
			srv.Close()
			t.Errorf("NewServer(%+v) accepted", c)
		}
	}
	for _, u := range []string{"", "127.0.0.1:80", "ftp://h", "http://"} {
		if srv, err := New(&Config{URL: u}); err == nil {
			srv.Close()
			t.Errorf("New with URL %q accepted", u)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
	// A generated key is RunPod-shaped; an unseeded server still works.
	srv, err := NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if k := srv.APIKey(); !strings.HasPrefix(k, "rpa_") || len(k) != 44 {
		t.Fatalf("generated key %q", k)
	}
	srv.Close() // twice is fine
}
