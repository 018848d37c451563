package engine

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/pyjson"
	"github.com/comfypod/comfypod/internal/testenv"
)

// fuzzServer is an engine that is never started: prompts are validated and
// queued but not run (a fuzzer must not make it allocate 16384² images).
func fuzzServer(f *testing.F) *Server {
	f.Helper()
	tc := newTestClasses(f)
	s, err := New(&Config{Dir: f.TempDir(), Classes: tc.classes, MaxUploadSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func serve(s *Server, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// checkPromptAnswer checks that an answer of POST /prompt is ComfyUI-shaped.
func checkPromptAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case 200, 400:
	case 413:
		return
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q (status %d): %s", ct, rec.Code, rec.Body.Bytes())
	}
	v, err := pyjson.Parse(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, rec.Body.Bytes())
	}
	o, ok := v.(*pyjson.Object)
	if !ok {
		t.Fatalf("answer is not an object: %s", rec.Body.Bytes())
	}
	ne, ok := o.Get("node_errors")
	if _, isObj := ne.(*pyjson.Object); !ok || !isObj {
		t.Fatalf("answer without node_errors object: %s", rec.Body.Bytes())
	}
	if rec.Code == 200 {
		if id, _ := o.Get("prompt_id"); id == nil {
			t.Fatalf("200 without prompt_id: %s", rec.Body.Bytes())
		}
		return
	}
	ev, _ := o.Get("error")
	eo, ok := ev.(*pyjson.Object)
	if !ok {
		t.Fatalf("400 without error object: %s", rec.Body.Bytes())
	}
	for _, k := range []string{"type", "message", "details", "extra_info"} {
		if !eo.Has(k) {
			t.Fatalf("error without %q: %s", k, rec.Body.Bytes())
		}
	}
}

func FuzzPostPrompt(f *testing.F) {
	// Seeds: every corpus workflow as a request, and malformed bodies.
	if cases, err := filepath.Glob(filepath.Join(testenv.Conformance(f), "cases", "*", "workflow.json")); err == nil {
		for _, c := range cases {
			if wf, err := os.ReadFile(c); err == nil {
				f.Add([]byte(`{"prompt": ` + string(wf) + `, "client_id": "x"}`))
			}
		}
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"prompt": null}`, `{"prompt": []}`, `{"prompt": "x"}`,
		`{"prompt": {"1": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}}`,
		`{"prompt": {"1": {"class_type": "TestAdd", "inputs": {"a": ["2", 0], "b": "7"}}, "2": {"class_type": "TestAdd", "inputs": {"a": ["1", 1], "b": NaN}}, "3": {"class_type": "TestOut", "inputs": {"value": ["1", -1]}}}}`,
		`{"prompt": {"1": {"class_type": "TestCombo", "inputs": {"mode": {"__value__": ["a"]}, "v3": 1e999, "ratio": "inf", "flag": {}}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", true]}}}, "number": "3", "front": 1}`,
		`{"prompt": {"1": {"class_type": "TestChecked", "inputs": {"name": "bad", "count": 99999999999999999999999}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}, "partial_execution_targets": "2", "extra_data": {"api_key_comfy_org": "secret"}}`,
		`{"prompt": {"1": {"class_type": "TestOut", "inputs": "value"}}, "prompt_id": [1]}`,
		`{"prompt": {"1": {"class_type": "TestOut", "inputs": {"value": ["\ud800", 0]}}}}`,
	} {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	n := 0
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(s, "POST", "/prompt", "application/json", body)
		checkPromptAnswer(t, rec)
		if n++; n%64 == 0 {
			s.q.wipe()
		}
	})
}

func FuzzUpload(f *testing.F) {
	f.Add("a.png", "", "", "true", []byte("\x89PNG"))
	f.Add("a.png", "sub/dir", "temp", "", []byte("x"))
	f.Add("../a.png", "", "input", "1", []byte("x"))
	f.Add("a.png", "../..", "output", "", []byte("x"))
	f.Add("", "", "", "", []byte(nil))
	f.Add("x/../../y.png", "/abs", "models", "false", []byte("y"))
	f.Add(".hidden", ".", "input", "", []byte("z"))
	f.Add("name with \"quotes\".png", "a b", "input", "", []byte("q"))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, filename, subfolder, typ, overwrite string, content []byte) {
		fields := map[string]string{"subfolder": subfolder, "overwrite": overwrite}
		if typ != "" {
			fields["type"] = typ
		}
		body, ctype := multipartBody(t, filename, content, fields)
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(body)
		rec := serve(s, "POST", "/upload/image", ctype, buf.Bytes())
		switch rec.Code {
		case 400, 413:
			return
		case 200:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
		v, err := pyjson.Parse(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("answer: %v", err)
		}
		o := v.(*pyjson.Object)
		name, _ := o.Get("name")
		sub, _ := o.Get("subfolder")
		ty, _ := o.Get("type")
		dir := s.dirByType(ty.(string))
		path := joinPy(joinPy(dir, sub.(string)), name.(string))
		if !within(dir, path) {
			t.Fatalf("upload wrote outside %s: %s", dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("uploaded file %s: %v", path, err)
		}
		if !bytes.Equal(data, content) {
			t.Fatalf("file %s holds other bytes than were uploaded", path)
		}
	})
}

// FuzzUploadRaw feeds arbitrary bytes as a multipart body.
func FuzzUploadRaw(f *testing.F) {
	const boundary = "XbXbX"
	f.Add([]byte("--XbXbX\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nDATA\r\n--XbXbX--\r\n"))
	f.Add([]byte("--XbXbX\r\nContent-Disposition: form-data; name=\"image\"; filename*=UTF-8''%2e%2e%2fx\r\n\r\nDATA\r\n--XbXbX--\r\n"))
	f.Add([]byte("--XbXbX\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nno file\r\n--XbXbX--\r\n"))
	f.Add([]byte("garbage"))
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/upload/image", "/upload/mask"} {
			rec := serve(s, "POST", path, "multipart/form-data; boundary="+boundary, body)
			if rec.Code != 200 && rec.Code != 400 && rec.Code != 413 {
				t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}

// TestHostileRequests sends a handful of hostile requests to a started
// server.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	for _, body := range []string{
		strings.Repeat("[", 100000),
		`{"prompt": ` + strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat("}", 600) + `}`,
		`{"prompt": {"1": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}}`,
	} {
		s, data := e.postJSON("/prompt", body)
		if s != 400 {
			t.Errorf("POST /prompt %s = %d %s", truncate(body, 40), s, truncate(string(data), 200))
		}
	}
	// A long chain validates and runs without exhausting anything.
	var b strings.Builder
	b.WriteString(`{"0": {"class_type": "TestConst", "inputs": {"value": 1}}`)
	const depth = 3000
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, `, "%d": {"class_type": "TestAdd", "inputs": {"a": ["%d", 0], "b": 1}}`, i, i-1)
	}
	fmt.Fprintf(&b, `, "out": {"class_type": "TestOut", "inputs": {"value": ["%d", 0]}}}`, depth)
	s, data := e.postJSON("/prompt", `{"prompt": `+b.String()+`}`)
	if s != 400 || !strings.Contains(string(data), "maximum recursion depth exceeded") {
		t.Errorf("deep chain = %d %s", s, truncate(string(data), 300))
	}
	if rec := serve(e.s, http.MethodPost, "/prompt", "application/json", bytes.Repeat([]byte(" "), MaxUploadSizeDefault+1)); rec.Code != 413 {
		t.Errorf("oversized body = %d", rec.Code)
	}
}
