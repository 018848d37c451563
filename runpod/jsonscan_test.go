package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestScannerSkipMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+10`, `true`, `null`, ` {"a" : [1, 2, {"b": null}], "c": "\u00e9\n"} `,
		`{"a":1,}`, `[1,]`, `01`, `1.`, `-`, `.5`, `"\x"`, `"abc`, `{"a"}`, `{"a":}`, `[1 2]`, `tru`, `nul`,
		"\"a\x01b\"", `{} {}`, `"\ud83d\ude00"`, `1e`, `{1:2}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	} {
		sc := newScanner(strings.NewReader(in), 0)
		err := sc.skip()
		if err == nil {
			err = sc.end()
		}
		if got, want := err == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("%.40q: scanner ok=%v (%v), encoding/json ok=%v", in, got, err, want)
		}
	}
}

func TestScannerStrings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\u4e2d"`, `"\ud83d\ude00 pair"`, `"\ud83d lone"`, `"\ude00 low"`, `"\ud83d\u0041"`, `""`} {
		sc := newScanner(strings.NewReader(in), 0)
		r, err := sc.stringReader()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func TestScannerOffsets(t *testing.T) {
	t.Parallel()
	in := `{"a": 1, "long": "` + strings.Repeat("x", 100000) + `", "b": [true]}`
	sc := newScanner(strings.NewReader(in), 0)
	var offs []int64
	err := sc.object(func(key string) error {
		if _, err := sc.peek(); err != nil {
			return err
		}
		offs = append(offs, sc.offset())
		return sc.skip()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"1", `"xxx`, "[true]"} {
		if !strings.HasPrefix(in[offs[i]:], want) {
			t.Errorf("value %d at %d starts %.10q, want %q", i, offs[i], in[offs[i]:], want)
		}
	}
}

func TestScannerCaps(t *testing.T) {
	t.Parallel()
	sc := newScanner(strings.NewReader(`"`+strings.Repeat("y", 5000)+`" 1`), 0)
	if _, _, err := sc.stringCapped(100); !errors.Is(err, errStringTooLong) {
		t.Errorf("stringCapped: %v", err)
	}
	sc = newScanner(strings.NewReader(`"`+strings.Repeat("y", 5000)+`"`), 0)
	s, cut, err := sc.stringTrunc(10)
	if err != nil || s != "yyyyyyyyyy" || !cut {
		t.Errorf("stringTrunc: %q %v %v", s, cut, err)
	}
	if err := sc.end(); err != nil {
		t.Errorf("the rest was not consumed: %v", err)
	}
	sc = newScanner(strings.NewReader(`{"a":[1,2,3]}`), 0)
	if _, err := sc.raw(5); !errors.Is(err, errStringTooLong) {
		t.Errorf("raw over cap: %v", err)
	}
	sc = newScanner(strings.NewReader(`{"a" : [1, "\u0041"]}`), 0)
	raw, err := sc.raw(100)
	if err != nil || string(raw) != `{"a":[1,"A"]}` {
		t.Errorf("raw = %s, %v", raw, err)
	}
}

func TestSyntaxErrorsSayWhere(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	_, err := c.ReadStatus(strings.NewReader(`{"id":"j","status":"COMPLETED","output":{"a":}}`))
	var se *syntaxError
	if !errors.As(err, &se) || se.Offset != 45 {
		t.Errorf("err = %v", err)
	}
	for _, body := range []string{``, `[]`, `{"id":"j"}`, `{"status":1}`, `{"status":"IN_QUEUE"} x`} {
		if _, err := c.ReadStatus(strings.NewReader(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

func TestDecodeStatusFields(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	st, err := c.ReadStatus(strings.NewReader(`{"id": 12, "status":"FAILED", "delayTime": null, "executionTime": -5, "retries": 1e3,
		"error": {"error_message": "object form"}, "workerId": null, "unknown": {"deep": [1, {"x": "y"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "12" || st.DelayTime != 0 || st.ExecutionTime != 0 || st.Retries != 1000 || st.HasOutput() {
		t.Errorf("status %+v", st)
	}
	var je *JobError
	if err := st.Err(); !errors.As(err, &je) || je.Message != "object form" {
		t.Errorf("error %v", err)
	}
}

func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u00e9",true,null]}`, `"\ud83d\ude00"`, `[[[]]]`, `{"a":1,}`, `-01`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := newScanner(bytes.NewReader(in), 0)
		err := sc.skip()
		if err == nil {
			err = sc.end()
		}
		if got, want := err == nil, json.Valid(in); got != want {
			t.Fatalf("scanner ok=%v (%v), encoding/json ok=%v", got, err, want)
		}
		// A valid string decodes as encoding/json decodes it.
		var want string
		if utf8.Valid(in) && json.Unmarshal(in, &want) == nil {
			sc := newScanner(bytes.NewReader(in), 0)
			r, err := sc.stringReader()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatalf("string %q, encoding/json %q", got, want)
			}
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"a.png","type":"base64","data":"` + pngB64 + `"}]}}`))
	f.Add([]byte(`{"id":"j","status":"FAILED","error":"{\"error_type\":\"<class 'E'>\"}","delayTime":1}`))
	f.Add([]byte(`{"id":"j","status":"IN_PROGRESS","output":"progress"}`))
	f.Add([]byte(`{"status":"COMPLETED","output":[{"data":"data:image/png;base64,AAAA"}]}`))
	c, err := New("ep1", WithAPIKey("k"), WithMemoryLimit(256))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := c.ReadStatus(bytes.NewReader(in))
		if err != nil {
			return
		}
		defer st.Close()
		if st.Output != nil && !json.Valid(st.Output) {
			t.Fatalf("Output is not JSON: %q", st.Output)
		}
		if st.HasOutput() {
			var v any
			if err := json.NewDecoder(st.OutputJSON()).Decode(&v); err != nil {
				t.Fatalf("output located at a non-value: %v", err)
			}
		}
		_ = st.Err()
		checkOutputs(t, st)
	})
}

func FuzzOutputs(f *testing.F) {
	for _, s := range []string{
		`{"images":[{"filename":"ComfyUI_00001_.png","type":"base64","data":"` + pngB64 + `"}]}`,
		`{"images":["` + pngB64 + `"],"videos":[{"data":"` + mp4B64 + `"}]}`,
		`{"image":"data:image/png;base64,` + pngB64 + `"}`,
		`"` + pngB64 + `"`,
		`{"images":[{"type":"s3_url","data":"https://127.0.0.1:1/x.png?sig=1"}]}`,
		`{"message":"iVBORw0KGgo=","gifs":[{"name":"../x","b64":"R0lGODlh"}]}`,
	} {
		f.Add(s)
	}
	c, err := New("ep1", WithAPIKey("k"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, output string) {
		st, err := c.ReadStatus(strings.NewReader(`{"id":"j","status":"COMPLETED","output":` + output + `}`))
		if err != nil {
			return
		}
		defer st.Close()
		checkOutputs(t, st)
	})
}

// checkOutputs lists and reads every inline output file, checking names are
// safe. URLs are not fetched.
func checkOutputs(t *testing.T, st *Status) {
	t.Helper()
	files, err := st.Outputs()
	if err != nil {
		return
	}
	for _, f := range files {
		if f.Name == "" || f.Name != safeName(f.Name) || strings.ContainsAny(f.Name, `/\`) {
			t.Fatalf("unsafe name %q", f.Name)
		}
		if f.URL != "" {
			continue
		}
		rc, err := f.Open(t.Context())
		if err != nil {
			t.Fatalf("open %s: %v", f.Field, err)
		}
		_, _ = io.Copy(io.Discard, rc)
		_ = rc.Close()
	}
}

func FuzzParseJobError(f *testing.F) {
	f.Add(`{"error_type": "<class 'ValueError'>", "error_message": "bad", "error_traceback": "tb", "hostname": "h", "worker_id": "w", "runpod_version": "1.12.0"}`)
	f.Add("handler: boom \ntraceback: Traceback...")
	f.Add("plain message")
	f.Add(`{"error": {"nested": true}}`)
	f.Add(`{"error_message": 5}`)
	f.Fuzz(func(t *testing.T, raw string) {
		e := ParseJobError(raw)
		if e.Raw != raw {
			t.Fatalf("Raw not kept")
		}
		if e.Error() == "" {
			t.Fatal("empty message")
		}
		if strings.TrimSpace(raw) != "" && e.Message == "" && e.Type == "" {
			t.Fatalf("%q lost: %+v", raw, e)
		}
	})
}

func TestParseJobError(t *testing.T) {
	t.Parallel()
	e := ParseJobError(`{"error_type": "<class 'torch.cuda.OutOfMemoryError'>", "error_message": "CUDA out of memory", "hostname": "unknown", "worker_id": "unknown"}`)
	if e.Type != "torch.cuda.OutOfMemoryError" || e.Message != "CUDA out of memory" || e.Hostname != "" || e.WorkerID != "" {
		t.Errorf("%+v", e)
	}
	if got := (&JobError{JobID: "j", State: StateFailed, Type: "E", Message: "m", WorkerID: "w"}).Error(); got != "runpod: job j failed: E: m (worker w)" {
		t.Errorf("Error() = %q", got)
	}
	if e := ParseJobError(`{not json`); e.Message != "{not json" {
		t.Errorf("%+v", e)
	}
	if e := ParseJobError(`{"foo": "bar"}`); e.Message != `{"foo": "bar"}` {
		t.Errorf("unknown object lost: %+v", e)
	}
}
