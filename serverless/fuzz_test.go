package serverless

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/truncate"
)

// FuzzDecodeTake feeds job-take answers to the decoder: it never panics,
// every job it returns can run, and every entry is either a job or an error.
func FuzzDecodeTake(f *testing.F) {
	for _, s := range []string{
		`{"id":"a-u1","input":{"prompt":"x"}}`,
		`[{"id":"a","input":1},{"id":"b"},{"input":2}]`,
		`{"id":"a","input":[],"webhook":"http://h","s3Config":{"accessId":"k"},"policy":{"ttl":1000},"delayTime":3}`,
		`{"id":7,"input":null}`,
		`[null,"x",[],{}]`,
		`{"id":"a","input":"x","batchId":"b","s3Config":"bad","policy":[1]}`,
		``, `[`, `{"id":`, `<html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, errs := decodeTake(body)
		for _, j := range jobs {
			if j.ID == "" || len(j.Input) == 0 || isNull(j.Input) || !json.Valid(j.Input) {
				t.Fatalf("unrunnable job %+v from %q", j, body)
			}
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' && json.Valid(trimmed) {
			var raws []json.RawMessage
			if json.Unmarshal(trimmed, &raws) == nil && len(jobs)+len(errs) != len(raws) {
				t.Fatalf("%d entries gave %d jobs and %d errors", len(raws), len(jobs), len(errs))
			}
		}
		for _, e := range errs {
			if e.Error() == "" {
				t.Fatal("empty error")
			}
		}
	})
}

// FuzzDecodeTakeMatchesEncodingJSON compares the scanning decoder with one
// that decodes the body with encoding/json: on well-formed bodies they give
// the same jobs (inputs byte for byte) and the same errors; on malformed
// ones both run nothing and report one error.
func FuzzDecodeTakeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"a-u1","input":{"images":[{"name":"x.png","image":"QUJD"}]},"delayTime":3}`,
		`[{"id":"a","input":1},{"id":"b"},{"input":2},null,"x",{"id":7,"input":[]}]`,
		`{"id":"a","input":1,"input":null}`, `{"\u0069d":"a","input":"\u00e9"}`,
		`{"id":"a","input":{},"webhook":3,"batchId":"b","s3Config":{"accessId":"k"},"policy":{"ttl":"x"}}`,
		"{\"id\":\"a\",\"input\":\"\xff\",\"\xfe\":1}", `{"id":"a","input":1} x`, `[{"id":"a","input":1},]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, errs := decodeTake(body)
		wantJobs, wantErrs := decodeTakeStd(body)
		if !json.Valid(bytes.TrimSpace(body)) {
			if len(jobs) != len(wantJobs) || len(errs) != len(wantErrs) {
				t.Fatalf("%q: %d jobs %d errors, encoding/json %d jobs %d errors", body, len(jobs), len(errs), len(wantJobs), len(wantErrs))
			}
			return
		}
		if len(jobs) != len(wantJobs) || len(errs) != len(wantErrs) {
			t.Fatalf("%q: %d jobs %v, encoding/json %d jobs %v", body, len(jobs), errs, len(wantJobs), wantErrs)
		}
		for i, e := range errs {
			if e.Error() != wantErrs[i].Error() {
				t.Fatalf("%q: error %q, encoding/json %q", body, e, wantErrs[i])
			}
		}
		for i, j := range jobs {
			w := wantJobs[i]
			if j.ID != w.ID || !bytes.Equal(j.Input, w.Input) || j.Webhook != w.Webhook || j.BatchID != w.BatchID ||
				!reflect.DeepEqual(j.S3Config, w.S3Config) || !reflect.DeepEqual(j.Policy, w.Policy) || len(j.Extra) != len(w.Extra) {
				t.Fatalf("%q: job %+v, encoding/json %+v", body, j, w)
			}
			for k, v := range w.Extra {
				if !bytes.Equal(j.Extra[k], v) {
					t.Fatalf("%q: Extra[%q] = %q, encoding/json %q", body, k, j.Extra[k], v)
				}
			}
		}
	})
}

// decodeTakeStd is decodeTake done with encoding/json, for comparison.
func decodeTakeStd(body []byte) ([]*Job, []error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	var raws []json.RawMessage
	switch body[0] {
	case '{':
		raws = []json.RawMessage{body}
	case '[':
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, []error{fmt.Errorf("job-take answer is not a JSON array of jobs: %v", err)}
		}
	default:
		return nil, []error{fmt.Errorf("job-take answer is not a JSON job object or array (starts with %q)", truncate.Bytes(string(body), 40))}
	}
	return decodeEntries(raws, func(raw json.RawMessage) (*Job, error) {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, &takeError{msg: fmt.Sprintf("job is not a JSON object: %v", err)}
		}
		if fields == nil {
			return nil, &takeError{msg: "job is null"}
		}
		return jobFromFields(fields)
	})
}

// FuzzConfigFromEnv reads arbitrary environments: no panic, and a config that
// validates yields URLs that parse, with the worker id unable to add path
// segments or query parameters.
func FuzzConfigFromEnv(f *testing.F) {
	f.Add("https://api.runpod.ai/v2/ep/job-take/$ID?gpu=H100", "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?", "https://api.runpod.ai/v2/ep/ping/$RUNPOD_POD_ID", "pod-1", "10000", "INFO", "4")
	f.Add("http://h/job-take/$RUNPOD_POD_ID", "http://h/d/$ID", "", "a/b?c=d&e", "1", "trace", "")
	f.Add("", "", "", "", "abc", "LOUD", "-1")
	f.Add("http://[::1]:8/job-take/$ID#frag", "http://h/$ID$ID", "ftp://x", "../..", "9223372036854775807", "0", "1024")
	f.Fuzz(func(t *testing.T, take, done, ping, pod, interval, level, conc string) {
		env := map[string]string{
			"RUNPOD_WEBHOOK_GET_JOB":     take,
			"RUNPOD_WEBHOOK_POST_OUTPUT": done,
			"RUNPOD_WEBHOOK_PING":        ping,
			"RUNPOD_POD_ID":              pod,
			"RUNPOD_PING_INTERVAL":       interval,
			"RUNPOD_LOG_LEVEL":           level,
			"RUNPOD_MAX_CONCURRENCY":     conc,
		}
		cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg.PingInterval < 0 || cfg.Concurrency < 0 || cfg.Concurrency > ConcurrencyLimit {
			t.Fatalf("out of range: %+v", cfg)
		}
		if cfg.Local() {
			return
		}
		cfg.Handler = func(contextT, *Job) (any, error) { return nil, nil }
		c := cfg.WithDefaults()
		if c.validate() != nil {
			return
		}
		e, err := newEndpoints(c)
		if err != nil {
			t.Fatalf("validated config, newEndpoints: %v", err)
		}
		for _, u := range []string{e.take, e.batch, e.stop, e.ping, jobURL(e.done, "job-1")} {
			if u == "" {
				continue
			}
			if _, err := url.Parse(appendQuery(u, "job_in_progress", "1")); err != nil {
				t.Fatalf("URL %q does not parse: %v", u, err)
			}
		}
	})
}

// FuzzURLTemplate substitutes arbitrary ids into templates: an id never
// changes the path's segment count or the query's keys.
func FuzzURLTemplate(f *testing.F) {
	f.Add("http://h/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=A", "pod", "job-1")
	f.Add("http://h/x/$ID?job=$ID&k=v", "w", "a&b=c/d?e#f")
	f.Add("http://h/$ID", "w", "..")
	f.Fuzz(func(t *testing.T, tmpl, worker, job string) {
		if strings.ContainsAny(tmpl, "#") {
			return
		}
		got := jobURL(substituteWorker(tmpl, worker, false), job)
		before, _, _ := strings.Cut(strings.ReplaceAll(strings.ReplaceAll(tmpl, placeholderPodID, "w"), placeholderID, "j"), "?")
		after, query, hasQuery := strings.Cut(got, "?")
		if strings.Count(before, "/") != strings.Count(after, "/") {
			t.Fatalf("segments changed: %q → %q", tmpl, got)
		}
		if !hasQuery {
			return
		}
		_, tq, _ := strings.Cut(tmpl, "?")
		if strings.Count(tq, "&") != strings.Count(query, "&") || strings.Count(tq, "=") != strings.Count(query, "=") {
			t.Fatalf("query changed shape: %q → %q", tmpl, got)
		}
		out := appendQuery(got, "k", job)
		if u, err := url.Parse(out); err == nil && utf8.ValidString(job) {
			if v := u.Query()["k"]; len(v) == 0 || v[len(v)-1] != job {
				t.Fatalf("appendQuery(%q, k, %q) = %q reads back %v", got, job, out, v)
			}
		}
	})
}

// FuzzResultBody shapes arbitrary handler outputs: the body is valid JSON
// within the limit, and a body that is not a failure keeps the output.
func FuzzResultBody(f *testing.F) {
	for _, s := range []string{`{"error":"x","refresh_worker":true,"a":1}`, `[1,2]`, `"s"`, `{}`, `{"error":{"e":1}}`, `null`, `{"error":0}`, `{"a":"` + strings.Repeat("x", 300) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := testMeta()
		m.maxBytes = 256
		out := m.fromReturn(json.RawMessage(raw), nil, nil)
		if !json.Valid(out.body) {
			t.Fatalf("invalid body %q from %q", out.body, raw)
		}
		if int64(len(out.body)) > m.maxBytes && !strings.Contains(string(out.body), "RunPod accepts") {
			t.Fatalf("body over the limit: %d bytes", len(out.body))
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(out.body, &body); err != nil {
			t.Fatal(err)
		}
		if e, ok := body["error"]; ok {
			var s string
			if json.Unmarshal(e, &s) != nil || s == "" {
				t.Fatalf("error is not a non-empty string: %s", e)
			}
		}
	})
}

// FuzzLogLine logs arbitrary messages: the JSON line always decodes back to
// the (truncated) message and is one line.
func FuzzLogLine(f *testing.F) {
	f.Add("hello", "job-1")
	f.Add("café 😀 \x00\x7f\"\\\n", "")
	f.Add(strings.Repeat("é", 5000), "j")
	f.Add("\xff\xfe bad utf-8", "id\n")
	f.Fuzz(func(t *testing.T, msg, id string) {
		var b bytes.Buffer
		h := NewLogHandler(&b, &LogOptions{JSON: true})
		r := newRecord(msg, id)
		if err := h.Handle(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		line := b.String()
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("not one line: %q", line)
		}
		for _, c := range line[:len(line)-1] {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("non-ASCII or control byte in %q", line)
			}
		}
		var v struct {
			RequestID *string `json:"requestId"`
			Message   string  `json:"message"`
			Level     string  `json:"level"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q does not decode: %v", line, err)
		}
		want := truncateMiddle(redact.Signatures(msg), MaxLogMessage)
		if utf8.ValidString(msg) && v.Message != want {
			t.Fatalf("message %q, want %q", v.Message, want)
		}
		if utf8.RuneCountInString(v.Message) > MaxLogMessage+64 {
			t.Fatalf("message not truncated: %d runes", utf8.RuneCountInString(v.Message))
		}
		if (id == "") != (v.RequestID == nil) {
			t.Fatalf("requestId %v for id %q", v.RequestID, id)
		}
	})
}

func newRecord(msg, id string) slog.Record {
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
	if id != "" {
		r.AddAttrs(slog.String(JobIDKey, id))
	}
	return r
}

// FuzzParseTestInput reads arbitrary test input: either a runnable job or a
// bad-test-input error.
func FuzzParseTestInput(f *testing.F) {
	for _, s := range []string{`{"input":{}}`, `{"id":"x","input":1}`, `{"input":null}`, `[]`, ``, `{"id":{},"input":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := parseTestInput(data)
		if err != nil {
			return
		}
		if j.ID == "" || len(j.Input) == 0 || isNull(j.Input) {
			t.Fatalf("job %+v from %q", j, data)
		}
	})
}

// FuzzDecodeStop reads arbitrary job-stop answers.
func FuzzDecodeStop(f *testing.F) {
	for _, s := range []string{`{"jobsToStop":["a"]}`, `{"jobsToStop":[1,"b",null]}`, `{}`, `[]`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := decodeStop(body)
		if err != nil && ids != nil {
			t.Fatal("ids with an error")
		}
		for _, id := range ids {
			if id == "" {
				t.Fatal("empty id")
			}
		}
	})
}
