package worker

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stdJSON is what encoding/json writes for v with HTML escaping off, as the
// serverless runtime encodes values without AppendJSON.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func checkAppendJSON(t testing.TB, o *Output) {
	t.Helper()
	got, err := o.AppendJSON([]byte("prefix:"))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("prefix:"), stdJSON(t, o)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON\n%s\nencoding/json\n%s", got, want)
	}
}

func TestOutputAppendJSON(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA+/==", 10000)
	for _, o := range []*Output{
		nil,
		{},
		{Images: []File{}},
		{Images: []File{{Filename: "ComfyUI_00001_.png", Type: FileBase64, Data: big, Format: "image/png", Node: "9"}}},
		{
			Images: []File{{Filename: "a\"b\\c<d>&e.png", Type: FileS3URL, Data: "https://h/x?a=1&b=<2>", Animated: true}},
			Videos: []File{{Filename: "v\u2028\u00e9.mp4", Type: FileBase64, Data: "AAAA"}},
			Audio:  []File{{Filename: "tab\there\x01.wav", Type: FileBase64, Data: "\x7f\xff"}},
			Files:  []File{{Filename: "m.glb"}},
			Text:   []string{"", "line\nbreak", "ünïcode"},
			Params: map[string]json.RawMessage{"seed": json.RawMessage(" 42 "), "b": json.RawMessage(`{"x" : [1, "<a>"]}`), "a": json.RawMessage(`"s"`)},
			Status: "success_no_images",
			Errors: []string{"warning <1>"},
		},
	} {
		checkAppendJSON(t, o)
	}
}

// FuzzOutputAppendJSON checks AppendJSON against encoding/json on outputs
// built from arbitrary strings.
func FuzzOutputAppendJSON(f *testing.F) {
	f.Add("x.png", "QUJD", "note", "s", []byte(`1`), true)
	f.Add("a\"\\<>&\u2028.png", "\x00\x7f\xff", "\xe2\x80", "", []byte(` {"a" : [1,2]} `), false)
	f.Fuzz(func(t *testing.T, name, data, text, status string, param []byte, animated bool) {
		o := &Output{
			Images: []File{{Filename: name, Type: FileBase64, Data: data, Format: status, Node: text, Animated: animated}},
			Files:  []File{{Filename: data, Type: name, Data: text}},
			Text:   []string{text, name},
			Status: status,
			Errors: []string{data},
		}
		if json.Valid(param) {
			o.Params = map[string]json.RawMessage{name: param, "k": param}
		}
		checkAppendJSON(t, o)
	})
}

func BenchmarkOutputAppendJSON(b *testing.B) {
	o := &Output{Images: []File{{Filename: "ComfyUI_00001_.png", Type: FileBase64, Data: strings.Repeat("QUJD", 600000), Format: "image/png", Node: "3"}}}
	b.SetBytes(int64(len(o.Images[0].Data)))
	for b.Loop() {
		if _, err := o.AppendJSON(nil); err != nil {
			b.Fatal(err)
		}
	}
}
