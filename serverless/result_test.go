package serverless

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/redact"
)

func testMeta() resultMeta {
	return resultMeta{workerID: "w1", hostname: "host-1", runpodVersion: "1.12.0", maxBytes: 1 << 20, scrub: redact.NewSecrets("rpa_SECRETKEY")}
}

type structOut struct {
	Images  []string `json:"images"`
	Error   string   `json:"error,omitempty"`
	Refresh bool     `json:"refresh_worker,omitempty"`
}

func TestFromReturn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		v    any
		err  error
		all  bool // Config.RefreshWorker
		want string
	}{
		{"number", 42, nil, false, `{"output":42}`},
		{"bool", false, nil, false, `{"output":false}`},
		{"list", []string{"a"}, nil, false, `{"output":["a"]}`},
		{"no html escaping", "<b>&</b>", nil, false, `{"output":"<b>&</b>"}`},
		{"utf-8 kept", "café ☕", nil, false, `{"output":"café ☕"}`},
		{"struct with error field", structOut{Images: []string{"x"}, Error: "nope"}, nil, false, `{"output":{"images":["x"]},"error":"nope"}`},
		{"struct refresh", structOut{Images: []string{"x"}, Refresh: true}, nil, false, `{"output":{"images":["x"]},"stopPod":true}`},
		{"refresh false popped", map[string]any{"refresh_worker": false, "a": 1}, nil, false, `{"output":{"a":1}}`},
		{"non-string error", map[string]any{"error": map[string]int{"code": 3}}, nil, false, `{"error":"{\"code\":3}"}`},
		{"zero error is falsy", map[string]any{"error": 0, "a": 1}, nil, false, `{"output":{"a":1}}`},
		{"empty list error is falsy", map[string]any{"error": []int{}}, nil, false, `{}`},
		{"raw message", json.RawMessage(` {"error":"raw"} `), nil, false, `{"error":"raw"}`},
		{"invalid raw message", json.RawMessage(`{`), nil, false, `{"error":"the handler's result cannot be encoded as JSON: json.RawMessage output is not valid JSON"}`},
		{"unencodable", map[string]any{"f": func() {}}, nil, false, ``},
		{"Result exact", Result{Output: map[string]any{"error": "kept"}}, nil, false, `{"output":{"error":"kept"}}`},
		{"*Result", &Result{Error: "x", RefreshWorker: true}, nil, false, `{"error":"x","stopPod":true}`},
		{"nil *Result", (*Result)(nil), nil, false, `{"output":null}`},
		{"global refresh", "ok", nil, true, `{"output":"ok","stopPod":true}`},
		{"global refresh on error", nil, Fail("bad"), true, `{"error":"bad","stopPod":true}`},
		{"JobError without output", nil, &JobError{Message: "m"}, false, `{"error":"m"}`},
		{"JobError scrubbed", nil, Fail("key rpa_SECRETKEY leaked, see https://b.s3/x?X-Amz-Signature=abc&a=1"), false,
			`{"error":"key REDACTED leaked, see https://b.s3/x?X-Amz-Signature=REDACTED&a=1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := testMeta()
			m.refreshAll = c.all
			out := m.fromReturn(c.v, c.err, nil)
			if c.want == "" {
				if !out.failed || !strings.Contains(string(out.body), "cannot be encoded as JSON") {
					t.Errorf("body %s", out.body)
				}
				return
			}
			if string(out.body) != c.want {
				t.Errorf("body %s\nwant %s", out.body, c.want)
			}
			if !json.Valid(out.body) {
				t.Errorf("invalid JSON %s", out.body)
			}
		})
	}
}

func TestExceptionJSON(t *testing.T) {
	t.Parallel()
	m := testMeta()
	out := m.fromReturn(nil, errors.Join(errors.New("a rpa_SECRETKEY"), errors.New("b")), nil)
	var body struct{ Error string }
	if err := json.Unmarshal(out.body, &body); err != nil {
		t.Fatal(err)
	}
	// "error" is a string holding JSON, keys in runpod-python's order.
	if !strings.HasPrefix(body.Error, `{"error_type":"*errors.joinError","error_message":"a REDACTED\nb","error_traceback":`) ||
		!strings.HasSuffix(body.Error, `"hostname":"host-1","worker_id":"w1","runpod_version":"1.12.0"}`) {
		t.Errorf("error %s", body.Error)
	}
	var info exceptionInfo
	if err := json.Unmarshal([]byte(body.Error), &info); err != nil {
		t.Fatal(err)
	}
	if info.ErrorTraceback != "*errors.joinError: a REDACTED\nb\n  *errors.errorString: a REDACTED\n  *errors.errorString: b" {
		t.Errorf("traceback %q", info.ErrorTraceback)
	}

	p := newPanicError(errors.New("nil map"), []byte("goroutine 1 [running]:\nmain.f()"))
	out = m.fromReturn(nil, nil, p)
	_ = json.Unmarshal(out.body, &body)
	_ = json.Unmarshal([]byte(body.Error), &info)
	if info.ErrorType != "panic: *errors.errorString" || info.ErrorMessage != "nil map" || info.ErrorTraceback != "goroutine 1 [running]:\nmain.f()" || info.Hostname != "host-1" {
		t.Errorf("panic info %+v", info)
	}
	m.hostname, m.workerID = "", ""
	out = m.fromReturn(nil, errors.New("x"), nil)
	_ = json.Unmarshal(out.body, &body)
	_ = json.Unmarshal([]byte(body.Error), &info)
	if info.Hostname != "unknown" || info.WorkerID != "unknown" {
		t.Errorf("unknowns %+v", info)
	}
}

func TestResultSizeLimit(t *testing.T) {
	t.Parallel()
	m := testMeta()
	m.maxBytes = 100
	out := m.fromReturn(strings.Repeat("x", 200), nil, nil)
	if !out.failed || len(out.body) > 1000 || !strings.Contains(string(out.body), "job output is 213 bytes as JSON, over the 100 bytes RunPod accepts") {
		t.Errorf("body %s", out.body)
	}
	// Exactly at the limit passes.
	m.maxBytes = int64(len(`{"output":"` + strings.Repeat("y", 50) + `"}`))
	if out := m.fromReturn(strings.Repeat("y", 50), nil, nil); out.failed {
		t.Errorf("at the limit: %s", out.body)
	}
	if got := formatBytes(25_300_000); got != "25.3 MB" {
		t.Errorf("formatBytes %q", got)
	}
}

func TestTruthy(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{
		`null`: false, `false`: false, `""`: false, `[]`: false, `{}`: false, `0`: false, `-0.0`: false, `[ ]`: false, `{ }`: false,
		`true`: true, `"x"`: true, `[0]`: true, `{"a":1}`: true, `1`: true, `-2.5`: true, `1e-400`: false,
	} {
		if got := truthy(json.RawMessage(raw)); got != want {
			t.Errorf("truthy(%s) = %v", raw, got)
		}
	}
}
