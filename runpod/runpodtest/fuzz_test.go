package runpodtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
)

func FuzzDecodeRunRequest(f *testing.F) {
	for _, s := range []string{
		`{"input":{"prompt":"a cat"}}`,
		`{"input":"x","webhook":"https://example.com/h?t=1","policy":{"executionTimeout":60000,"ttl":86400000,"lowPriority":true},"s3Config":{"accessId":"a","accessSecret":"s","bucketName":"b","endpointUrl":"https://s3"}}`,
		`{"input":null}`, `{}`, `[]`, `"input"`, ``, `{"input":1,"policy":{"ttl":1e400}}`,
		`{"input":1,"policy":{"executionTimeout":-5}}`, `{"input":1,"webhook":"http://"}`,
		`{"input":1,"input":2}`, "{\"input\":\"\xff\"}", `{"input":{"a":[1,2,{"b":null}]}}`,
	} {
		f.Add([]byte(s))
	}
	def := Policy{ExecutionTimeout: ExecutionTimeoutDefault, TTL: TTLDefault}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRunRequest(body, def)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !json.Valid(req.input) || isNull(req.input) {
			t.Fatalf("accepted input %q", req.input)
		}
		p := req.policy
		if p.ExecutionTimeout < MinExecutionTimeout && p.ExecutionTimeout != def.ExecutionTimeout ||
			p.ExecutionTimeout > MaxExecutionTimeout || p.TTL < MinTTL || p.TTL > MaxTTL {
			t.Fatalf("accepted policy %+v", p)
		}
		if req.webhook != "" {
			u, err := url.Parse(req.webhook)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted webhook %q", req.webhook)
			}
		}
		for _, raw := range []json.RawMessage{req.rawPolicy, req.s3Config} {
			if raw != nil && (!json.Valid(raw) || raw[0] != '{') {
				t.Fatalf("accepted object %q", raw)
			}
		}
		// What was accepted can be handed to a worker.
		if _, err := json.Marshal(takenJob{ID: "x", Input: req.input, Policy: req.rawPolicy, S3Config: req.s3Config}); err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	for _, s := range []string{
		`{"output":{"images":[{"filename":"a.png","type":"base64","data":"iVBOR"}]}}`,
		`{"error":"bad seed"}`, `{"output":1,"error":"x","stopPod":true}`,
		`{"status":"IN_PROGRESS","output":"50%"}`, `{"error":{"error_type":"E"}}`,
		`{}`, `[]`, ``, `output=1`, `{"stopPod":1}`, `{"status":null,"output":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeResult(body)
		if err != nil {
			return
		}
		if res.output != nil && !json.Valid(res.output) {
			t.Fatalf("accepted output %q", res.output)
		}
		if _, err := json.Marshal(statusBody{ID: "x", Status: StatusCompleted, Output: res.output, Error: res.errMsg}); err != nil {
			t.Fatalf("accepted result does not re-encode: %v", err)
		}
	})
}

func FuzzDecodeStreamChunk(f *testing.F) {
	for _, s := range []string{`{"output":"a"}`, `{"output":{"t":1},"metrics":{"n":2}}`, `{"error":"x"}`, `{}`, `1`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		chunk, err := decodeStreamChunk(body)
		if err != nil {
			return
		}
		if !json.Valid(chunk) || chunk[0] != '{' {
			t.Fatalf("accepted chunk %q", chunk)
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v2/local/run", "/v2/local/status/abc-u1", "/v2/ep/job-done/w1/j1", "/v2/ep/job-take-batch/w",
		"/v2//run", "/v2/local/status/", "/v2/local/job-done/w1", "/v1/x/run", "/v2/a/b/c/d/e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, spec, ok := parseRoute(path)
		if !ok {
			return
		}
		if !knownOp(rt.op) || rt.ep == "" || strings.Contains(rt.ep, "/") || len(spec.methods) == 0 {
			t.Fatalf("parseRoute(%q) = %+v", path, rt)
		}
		ids := 0
		for _, id := range []string{rt.jobID, rt.workerID} {
			if id != "" {
				ids++
				if strings.Contains(id, "/") {
					t.Fatalf("id %q holds a slash", id)
				}
			}
		}
		if ids != spec.ids {
			t.Fatalf("parseRoute(%q): %d ids, want %d", path, ids, spec.ids)
		}
	})
}

// FuzzJobDone posts arbitrary bodies to job-done through the whole handler:
// the answer is 200 or a 4xx with a message, never a 5xx or a panic, and a
// 200 leaves the job finished or still running with a progress update.
func FuzzJobDone(f *testing.F) {
	for _, s := range []string{`{"output":1}`, `{"error":"x"}`, `{"status":"IN_PROGRESS","output":2}`, `{"stopPod":true}`, `nope`, `{"output":`} {
		f.Add([]byte(s), "false")
	}
	f.Add([]byte(`{"output":[]}`), "true")
	f.Add([]byte(`{}`), "maybe")
	srv, err := New(&Config{APIKey: testKey, Clock: clockwork.NewFakeClockAt(epoch), MaxResultBytes: 1 << 16, URL: "http://emulator"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, body []byte, isStream string) {
		id, err := srv.Enqueue(JobRequest{Input: 1})
		if err != nil {
			t.Fatal(err)
		}
		take := httptest.NewRequest("GET", "/v2/local/job-take/fz", nil)
		take.Header.Set("Authorization", testKey)
		tw := httptest.NewRecorder()
		srv.ServeHTTP(tw, take)
		if tw.Code != http.StatusOK || !strings.Contains(tw.Body.String(), id) {
			// Another iteration's job may come first; finish it and move on.
			_ = srv.CompleteJob(id, nil)
			return
		}
		req := httptest.NewRequest("POST", "/v2/local/job-done/fz/"+id+"?isStream="+url.QueryEscape(isStream), bytes.NewReader(body))
		req.Header.Set("Authorization", testKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		j, _ := srv.Job(id)
		switch {
		case w.Code == http.StatusOK:
			if !j.Status.Terminal() && j.ProgressUpdates == 0 {
				t.Fatalf("200 but job %s without progress", j.Status)
			}
		case w.Code >= 400 && w.Code < 500:
			var e errBody
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%d without an error message: %q", w.Code, w.Body)
			}
			if j.Status != StatusInProgress {
				t.Fatalf("refused body changed the job to %s", j.Status)
			}
		default:
			t.Fatalf("answer %d: %s", w.Code, w.Body)
		}
		if !j.Status.Terminal() {
			_ = srv.CompleteJob(id, nil)
		}
	})
}
