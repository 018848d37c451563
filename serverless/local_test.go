package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func echoHandler(ctx context.Context, job *Job) (any, error) {
	var in map[string]any
	if err := json.Unmarshal(job.Input, &in); err != nil {
		return nil, Fail("input must be an object")
	}
	if in["fail"] == true {
		return map[string]any{"error": "asked to fail"}, nil
	}
	_ = job.Progress(ctx, "half way")
	return map[string]any{"echo": in, "id": job.ID}, nil
}

func TestRunLocal(t *testing.T) {
	t.Parallel()
	log, sink := newLogSink(t)
	cfg := &Config{Handler: echoHandler, Logger: log}
	res, err := RunLocal(context.Background(), cfg, []byte(`{"input": {"a": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() || res.ID != "local_test" || string(res.Output) != `{"echo":{"a":1},"id":"local_test"}` {
		t.Errorf("result %+v output %s", res, res.Output)
	}
	if !sink.has(`INFO   | local_test | Progress update: {"status":"IN_PROGRESS","output":"half way"}`) {
		t.Errorf("progress not logged:\n%s", sink.text())
	}
	res, err = RunLocal(context.Background(), cfg, []byte(`{"id": "t2", "input": {"fail": true}}`))
	if err != nil || !res.Failed() || res.Error != "asked to fail" || res.ID != "t2" {
		t.Errorf("failing job: %+v %v", res, err)
	}
	if _, err := RunLocal(context.Background(), cfg, []byte(`{"inputs": {}}`)); err == nil || !strings.Contains(err.Error(), `no "input"`) {
		t.Errorf("bad test input: %v", err)
	}
	if _, err := RunLocal(context.Background(), &Config{}, []byte(`{"input": 1}`)); err == nil || !strings.Contains(err.Error(), "no handler") {
		t.Errorf("no handler: %v", err)
	}
}

func TestRunLocalStream(t *testing.T) {
	t.Parallel()
	cfg := &Config{StreamHandler: func(ctx context.Context, job *Job, emit func(any) error) error {
		for _, w := range []string{"a", "b"} {
			if err := emit(w); err != nil {
				return err
			}
		}
		return nil
	}}
	res, err := RunLocal(context.Background(), cfg, []byte(`{"input": "x"}`))
	if err != nil || res.Failed() || string(res.Output) != `["a","b"]` || len(res.Chunks) != 2 {
		t.Errorf("result %+v %s err %v", res, res.Output, err)
	}
}

func TestStartLocalMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "test_input.json")
	cfg := &Config{TestInputFile: file, Logger: testLogger(t)}

	err := Start(context.Background(), echoHandler, cfg)
	if err == nil || !strings.Contains(err.Error(), "test_input.json was not found") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(file, []byte(`{"input": {"n": 2}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Start(context.Background(), echoHandler, cfg); err != nil {
		t.Errorf("from the file: %v", err)
	}
	// Test input given directly beats the file, and a failed job is an error.
	cfg.TestInput = []byte(`{"input": {"fail": true}}`)
	err = Start(context.Background(), echoHandler, cfg)
	if !errors.Is(err, ErrJobFailed) || !strings.Contains(err.Error(), "asked to fail") {
		t.Errorf("failed job: %v", err)
	}
	if err := Start(context.Background(), nil, cfg); err == nil {
		t.Error("nil handler accepted")
	}
}

// api serves a LocalAPI on loopback.
func newTestAPI(t *testing.T, cfg *Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	a, err := NewLocalAPI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a)
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return ts
}

func call(t *testing.T, method, url, body string) (int, map[string]json.RawMessage) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d %s is not a JSON object", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func TestLocalAPI(t *testing.T) {
	t.Parallel()
	ts := newTestAPI(t, &Config{Handler: echoHandler, EndpointID: "ep1"})

	code, m := call(t, "POST", ts.URL+"/runsync", `{"input": {"q": "x"}}`)
	id := jsonString(t, m["id"])
	if code != 200 || !strings.HasPrefix(id, "test-") || len(id) != 41 || string(m["status"]) != `"COMPLETED"` ||
		string(m["output"]) != `{"echo":{"q":"x"},"id":"`+id+`"}` {
		t.Errorf("runsync %d %v", code, m)
	}
	_, m = call(t, "POST", ts.URL+"/runsync", `{"input": {"fail": true}}`)
	if string(m["status"]) != `"FAILED"` || string(m["error"]) != `"asked to fail"` {
		t.Errorf("failing runsync %v", m)
	}

	// /run stores the job; /status runs it once and forgets it.
	_, m = call(t, "POST", ts.URL+"/run", `{"input": {"r": 1}}`)
	id = jsonString(t, m["id"])
	if string(m["status"]) != `"IN_PROGRESS"` {
		t.Errorf("run %v", m)
	}
	_, m = call(t, "GET", ts.URL+"/status/"+id, ``)
	if string(m["status"]) != `"COMPLETED"` || !strings.Contains(string(m["output"]), `"r":1`) {
		t.Errorf("status %v", m)
	}
	_, m = call(t, "POST", ts.URL+"/status/"+id, ``)
	if string(m["status"]) != `"FAILED"` || string(m["error"]) != `"Job ID not found"` || jsonString(t, m["id"]) != id {
		t.Errorf("second status %v", m)
	}
	_, m = call(t, "POST", ts.URL+"/stream/"+id, ``)
	if string(m["status"]) != `"FAILED"` || !strings.Contains(string(m["error"]), "Stream not supported") {
		t.Errorf("stream on a plain handler %v", m)
	}
	code, m = call(t, "POST", ts.URL+"/ep1/realtime", `{"id": "rt-1", "input": {"z": 0}}`)
	if code != 200 || string(m["output"]) != `{"echo":{"z":0},"id":"rt-1"}` {
		t.Errorf("realtime %d %v", code, m)
	}

	for _, c := range []struct{ body, want string }{
		{`{"inpt": 1}`, `no \"input\"`},
		{`not json`, "must be a JSON object"},
		{`{"input": null}`, `no \"input\"`},
	} {
		code, m := call(t, "POST", ts.URL+"/runsync", c.body)
		if code != http.StatusBadRequest || !strings.Contains(string(m["error"]), c.want) {
			t.Errorf("%s: %d %v", c.body, code, m)
		}
	}
	code, m = call(t, "POST", ts.URL+"/run", `{"input": "`+strings.Repeat("x", maxRunBody)+`"}`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(m["error"]), "over 10 MB") {
		t.Errorf("large /run: %d %v", code, m)
	}
	code, m = call(t, "GET", ts.URL+"/", ``)
	if code != 200 || !strings.Contains(string(m["routes"]), "/ep1/realtime") {
		t.Errorf("index %d %v", code, m)
	}
}

func TestLocalAPIStream(t *testing.T) {
	t.Parallel()
	ts := newTestAPI(t, &Config{StreamHandler: func(ctx context.Context, job *Job, emit func(any) error) error {
		for i := range 3 {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}})
	_, m := call(t, "POST", ts.URL+"/run", `{"input": 1}`)
	id := jsonString(t, m["id"])
	_, m = call(t, "GET", ts.URL+"/stream/"+id, ``)
	if string(m["status"]) != `"COMPLETED"` || string(m["stream"]) != `[{"output":0},{"output":1},{"output":2}]` {
		t.Errorf("stream %v", m)
	}
	_, m = call(t, "POST", ts.URL+"/runsync", `{"input": 1}`)
	if string(m["output"]) != `[0,1,2]` {
		t.Errorf("runsync of a stream handler %v", m)
	}
	_, m = call(t, "POST", ts.URL+"/stream/nope", ``)
	if string(m["error"]) != `"Job ID not found"` {
		t.Errorf("unknown id %v", m)
	}
}

// runpod-python's local API dies with concurrency above 1
// (runpod-python#335); this one runs Concurrency jobs at once.
func TestLocalAPIConcurrency(t *testing.T) {
	t.Parallel()
	const n = 4
	all := newMeeting(n)
	ts := newTestAPI(t, &Config{Concurrency: n, Handler: func(ctx context.Context, job *Job) (any, error) {
		if err := all.wait(ctx); err != nil {
			return nil, err
		}
		return "ok", nil
	}})
	var wg sync.WaitGroup
	results := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(ts.URL+"/runsync", "application/json", strings.NewReader(`{"input": 1}`))
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			results <- string(b)
		}()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if !strings.Contains(r, `"status":"COMPLETED"`) {
			t.Errorf("answer %s", r)
		}
	}
}

func TestLocalAPIWebhookAndServe(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer hook.Close()
	a, err := NewLocalAPI(&Config{Handler: func(ctx context.Context, job *Job) (any, error) { return "hi", nil }, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/runsync", "application/json", bytes.NewReader([]byte(`{"input": 1, "webhook": "`+hook.URL+`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if b := waitChan(t, got, "the webhook"); string(b) != `{"output":"hi"}` {
		t.Errorf("webhook body %s", b)
	}
	cancel()
	if err := waitChan(t, served, "Serve to return"); err != nil {
		t.Errorf("Serve: %v", err)
	}
}
