package serverless

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/internal/jsonscan"
	"github.com/comfypod/comfypod/internal/redact"
)

// outcome is a job's final result, ready to post to job-done.
type outcome struct {
	body    []byte // the JSON body
	failed  bool   // the body carries an error
	stopPod bool   // the body carries stopPod
	errMsg  string // the error text, for logs and local results
	output  json.RawMessage
}

// resultMeta is what error reports and bodies need besides the handler's
// return.
type resultMeta struct {
	workerID      string
	hostname      string
	runpodVersion string
	maxBytes      int64
	refreshAll    bool // Config.RefreshWorker: stopPod on every result
	scrub         redact.Secrets
}

// maxErrorText caps an error message posted to job-done.
const maxErrorText = 64 << 10

// fromReturn turns a handler's return into the job-done body. An output is
// encoded straight into the body, after {"output":, so it is written once.
func (m resultMeta) fromReturn(v any, err error, panicked *panicError) outcome {
	if panicked != nil {
		return m.failure(m.exceptionJSON(panicked.typ, panicked.msg, panicked.stack), nil, false)
	}
	if err != nil {
		return m.fromError(err)
	}
	switch r := v.(type) {
	case Result:
		return m.fromResult(r)
	case *Result:
		if r == nil {
			return m.finish([]byte(outputPrefix+"null"), "", false)
		}
		return m.fromResult(*r)
	}
	body, err := appendJSON(make([]byte, 0, len(outputPrefix)+bodySlack), v, outputPrefix)
	if err != nil {
		return m.encodeFailure(err)
	}
	output := json.RawMessage(body[len(outputPrefix):])
	if needsLift(output) {
		rest, errText, stopPod, err := liftKeys(output)
		if err != nil {
			return m.encodeFailure(err)
		}
		if string(rest) == "{}" {
			rest = nil
		}
		if errText != "" {
			return m.failure(errText, rest, stopPod)
		}
		return m.encode(rest, "", stopPod)
	}
	if string(output) == "{}" {
		return m.encode(nil, "", false)
	}
	return m.finish(body, "", false)
}

// fromResult turns a Result into the job-done body.
func (m resultMeta) fromResult(r Result) outcome {
	if r.Output == nil && r.Error != "" {
		return m.failure(r.Error, nil, r.RefreshWorker)
	}
	body, err := appendJSON(make([]byte, 0, len(outputPrefix)+bodySlack), r.Output, outputPrefix)
	if err != nil {
		return m.encodeFailure(err)
	}
	return m.finish(body, truncateMiddle(r.Error, maxErrorText), r.RefreshWorker)
}

// encodeFailure is the FAILED body of an output that cannot be encoded.
func (m resultMeta) encodeFailure(err error) outcome {
	return m.failure(m.scrub.String(fmt.Sprintf("the handler's result cannot be encoded as JSON: %v", err)), nil, false)
}

// fromError turns a handler error into the job-done body.
func (m resultMeta) fromError(err error) outcome {
	var je *JobError
	if errors.As(err, &je) {
		var output json.RawMessage
		if je.Output != nil {
			out, encErr := encodeJSON(je.Output)
			if encErr == nil {
				output = out
			}
		}
		return m.failure(m.scrub.String(err.Error()), output, false)
	}
	return m.failure(m.exceptionJSON(fmt.Sprintf("%T", err), err.Error(), errorChain(err)), nil, false)
}

// failure builds a FAILED body with the given message.
func (m resultMeta) failure(msg string, output json.RawMessage, stopPod bool) outcome {
	msg = truncateMiddle(msg, maxErrorText)
	return m.encode(output, msg, stopPod)
}

// encode writes {"output":…,"error":…,"stopPod":true} and enforces the size
// limit: a body over it is replaced by a failure that says why, so the
// client never sees COMPLETED with no output.
func (m resultMeta) encode(output json.RawMessage, errText string, stopPod bool) outcome {
	stopPod = stopPod || m.refreshAll
	body := writeBody(output, errText, stopPod, "")
	return m.limit(body, output, errText, stopPod)
}

// finish completes a body that holds {"output":<output> so far, with the
// error and stopPod, and enforces the size limit as encode does.
func (m resultMeta) finish(body []byte, errText string, stopPod bool) outcome {
	stopPod = stopPod || m.refreshAll
	output := json.RawMessage(body[len(outputPrefix):len(body):len(body)])
	if errText != "" {
		body = append(body, `,"error":`...)
		body = appendJSONString(body, errText)
	}
	if stopPod {
		body = append(body, `,"stopPod":true`...)
	}
	body = append(body, '}')
	return m.limit(body, output, errText, stopPod)
}

// limit returns the outcome of body, or a failure when body is over the
// size limit.
func (m resultMeta) limit(body []byte, output json.RawMessage, errText string, stopPod bool) outcome {
	if int64(len(body)) > m.maxBytes {
		msg := tooLargeMessage(int64(len(body)), m.maxBytes)
		body = writeBody(nil, msg, stopPod, "")
		return outcome{body: body, failed: true, stopPod: stopPod, errMsg: msg}
	}
	return outcome{body: body, failed: errText != "", stopPod: stopPod, errMsg: errText, output: output}
}

// outputPrefix opens a job-done body that carries an output.
const outputPrefix = `{"output":`

// bodySlack is room left after an output for the keys that close a body.
const bodySlack = 64

// writeBody writes a job-done body by hand, so a large output is copied
// once and not re-encoded.
func writeBody(output json.RawMessage, errText string, stopPod bool, status string) []byte {
	var b bytes.Buffer
	b.Grow(len(output) + len(errText) + 64)
	b.WriteByte('{')
	sep := func() {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
	}
	if status != "" {
		sep()
		b.WriteString(`"status":`)
		writeJSONString(&b, status)
	}
	if output != nil {
		sep()
		b.WriteString(`"output":`)
		b.Write(output)
	}
	if errText != "" {
		sep()
		b.WriteString(`"error":`)
		writeJSONString(&b, errText)
	}
	if stopPod {
		sep()
		b.WriteString(`"stopPod":true`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// tooLargeMessage explains a result over RunPod's job-done limit and what to
// do about it.
func tooLargeMessage(size, limit int64) string {
	return fmt.Sprintf("job output is %s as JSON, over the %s RunPod accepts in a job result (job-done answers 400 Bad Request and the client would see no output); "+
		"upload large outputs to S3 and return their URLs instead: set BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY on the endpoint, or send s3Config with the job",
		formatBytes(size), formatBytes(limit))
}

// formatBytes writes n in decimal megabytes (or bytes when small).
func formatBytes(n int64) string {
	if n < 1_000_000 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// exceptionInfo is runpod-python's report of a handler exception, in its key
// order.
type exceptionInfo struct {
	ErrorType      string `json:"error_type"`
	ErrorMessage   string `json:"error_message"`
	ErrorTraceback string `json:"error_traceback"`
	Hostname       string `json:"hostname"`
	WorkerID       string `json:"worker_id"`
	RunpodVersion  string `json:"runpod_version"`
}

// exceptionJSON returns the JSON text runpod-python posts as "error" when a
// handler raises.
func (m resultMeta) exceptionJSON(typ, msg, trace string) string {
	info := exceptionInfo{
		ErrorType:      typ,
		ErrorMessage:   truncateMiddle(m.scrub.String(msg), maxErrorText/2),
		ErrorTraceback: truncateMiddle(m.scrub.String(trace), maxErrorText/4),
		Hostname:       orUnknown(m.hostname),
		WorkerID:       orUnknown(m.workerID),
		RunpodVersion:  m.runpodVersion,
	}
	b, err := encodeJSON(info)
	if err != nil { // cannot happen: every field is a string
		return msg
	}
	return string(b)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// errorChain lists the types and texts of err's chain, outermost first; it
// stands in for a traceback when a handler returns an error.
func errorChain(err error) string {
	var b strings.Builder
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || depth > 32 {
			return
		}
		fmt.Fprintf(&b, "%s%T: %s\n", strings.Repeat("  ", depth), e, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c, depth+1)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap(), depth+1)
		}
	}
	walk(err, 0)
	return strings.TrimSuffix(b.String(), "\n")
}

// panicError is a recovered handler panic.
type panicError struct {
	typ   string
	msg   string
	stack string
}

func (p *panicError) Error() string { return "handler panicked: " + p.msg }

func newPanicError(v any, stack []byte) *panicError {
	typ := "panic"
	if v != nil {
		typ = "panic: " + reflect.TypeOf(v).String()
	}
	return &panicError{typ: typ, msg: fmt.Sprint(v), stack: string(stack)}
}

// encodeJSON encodes v without HTML escaping (runpod-python's
// ensure_ascii=False), without the trailing newline.
func encodeJSON(v any) (json.RawMessage, error) {
	return appendJSON(nil, v, "")
}

// appendJSON appends prefix and v's JSON to b: a json.RawMessage as it is
// (checked), a JSONAppender by its AppendJSON (checked), anything else with
// encoding/json without HTML escaping. It leaves bodySlack bytes of room
// after a large value, for the keys that close a body.
func appendJSON(b []byte, v any, prefix string) ([]byte, error) {
	b = append(b, prefix...)
	start := len(b)
	switch x := v.(type) {
	case json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
		x = bytes.TrimSpace(x)
		if !jsonscan.Valid(x) {
			return nil, errors.New("json.RawMessage output is not valid JSON")
		}
		b = slices.Grow(b, len(x)+bodySlack)
		return append(b, x...), nil
	case JSONAppender:
		out, err := x.AppendJSON(b)
		if err != nil {
			return nil, err
		}
		if len(out) < start || !jsonscan.Valid(out[start:]) {
			return nil, fmt.Errorf("%T.AppendJSON did not append one valid JSON value", v)
		}
		return out, nil
	}
	w := appendWriter{b: b}
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return w.b[:len(w.b)-1], nil
}

// appendWriter appends what is written to a slice, growing it with
// bodySlack to spare.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	if cap(w.b)-len(w.b) < len(p) {
		w.b = slices.Grow(w.b, len(p)+bodySlack)
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	b.Write(appendJSONString(b.AvailableBuffer(), s))
}

// appendJSONString appends s as a JSON string without HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	w := appendWriter{b: b}
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return w.b[:len(w.b)-1]
}

// needsLift reports whether an output is an object that may hold "error" or
// "refresh_worker", which liftKeys takes out.
func needsLift(out json.RawMessage) bool {
	return len(out) > 0 && out[0] == '{' &&
		(bytes.Contains(out, []byte(`"error"`)) || bytes.Contains(out, []byte(`"refresh_worker"`)))
}

// liftKeys applies runpod-python's rule to an output that is a JSON object:
// "error" and "refresh_worker" are removed from it; a truthy error becomes
// the job's error text and a truthy refresh_worker sets stopPod. Other
// outputs come back unchanged.
func liftKeys(out json.RawMessage) (rest json.RawMessage, errText string, stopPod bool, err error) {
	if !needsLift(out) {
		return out, "", false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{'
		return nil, "", false, err
	}
	var b bytes.Buffer
	b.Grow(len(out))
	b.WriteByte('{')
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", false, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, "", false, err
		}
		switch key {
		case "error":
			if truthy(val) {
				errText = errorText(val)
			}
			continue
		case "refresh_worker":
			stopPod = truthy(val)
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		writeJSONString(&b, key)
		b.WriteByte(':')
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), errText, stopPod, nil
}

// truthy is Python truthiness of a JSON value.
func truthy(v json.RawMessage) bool {
	s := bytes.TrimSpace(v)
	switch string(s) {
	case "null", "false", `""`, "[]", "{}":
		return false
	}
	if len(s) > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		var f float64
		if json.Unmarshal(s, &f) == nil {
			return f != 0
		}
	}
	if len(s) > 0 && (s[0] == '[' || s[0] == '{') {
		var x any
		if json.Unmarshal(s, &x) == nil {
			switch t := x.(type) {
			case []any:
				return len(t) > 0
			case map[string]any:
				return len(t) > 0
			}
		}
	}
	return true
}

// errorText is the message of an "error" value: a string as is, anything
// else as its JSON text.
func errorText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var c bytes.Buffer
	if json.Compact(&c, v) == nil {
		return c.String()
	}
	return string(v)
}
