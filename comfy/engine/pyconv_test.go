package engine

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/testenv"
)

func TestPyFloatRepr(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {-0.5, "-0.5"}, {0.1, "0.1"}, {1e-05, "1e-05"}, {0.0001, "0.0001"},
		{1e16, "1e+16"}, {1234567890123456.0, "1234567890123456.0"}, {1.5e300, "1.5e+300"},
		{16384, "16384.0"}, {0.30000000000000004, "0.30000000000000004"}, {math.Inf(1), "inf"}, {math.NaN(), "nan"},
	} {
		if got := pyFloatRepr(c.f); got != c.want {
			t.Errorf("repr(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestPyConversions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string // JSON
		i    string // str(int(x)) or the exception message
		f    string // repr(float(x)) or the exception message
		str  string
		bool bool
	}{
		{`"12"`, "12", "12.0", "12", true},
		{`" -1_000 "`, "-1000", "-1000.0", " -1_000 ", true},
		{`"1.5"`, "invalid literal for int() with base 10: '1.5'", "1.5", "1.5", true},
		{`"abc"`, "invalid literal for int() with base 10: 'abc'", "could not convert string to float: 'abc'", "abc", true},
		{`"false"`, "invalid literal for int() with base 10: 'false'", "could not convert string to float: 'false'", "false", true},
		{`""`, "invalid literal for int() with base 10: ''", "could not convert string to float: ''", "", false},
		{`"inf"`, "invalid literal for int() with base 10: 'inf'", "inf", "inf", true},
		{`3.99`, "3", "3.99", "3.99", true},
		{`-3.99`, "-3", "-3.99", "-3.99", true},
		{`true`, "1", "1.0", "True", true},
		{`null`, "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'", "float() argument must be a string or a real number, not 'NoneType'", "None", false},
		{`{"a": [1, "b"]}`, "int() argument must be a string, a bytes-like object or a real number, not 'dict'", "float() argument must be a string or a real number, not 'dict'", "{'a': [1, 'b']}", true},
		{`123456789012345678901234567890`, "123456789012345678901234567890", "1.2345678901234568e+29", "123456789012345678901234567890", true},
		{`0`, "0", "0.0", "0", false},
		{`"it's"`, "invalid literal for int() with base 10: \"it's\"", "could not convert string to float: \"it's\"", "it's", true},
	} {
		v, err := parseJSON([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if n, exc := pyInt(v); exc != nil && exc.Msg != c.i || exc == nil && pyStr(n) != c.i {
			t.Errorf("int(%s) = %v %v, want %s", c.in, n, exc, c.i)
		}
		if f, exc := pyFloat(v); exc != nil && exc.Msg != c.f || exc == nil && pyFloatRepr(f) != c.f {
			t.Errorf("float(%s) = %v %v, want %s", c.in, f, exc, c.f)
		}
		if s := pyStr(v); s != c.str {
			t.Errorf("str(%s) = %q, want %q", c.in, s, c.str)
		}
		if b := pyBool(v); b != c.bool {
			t.Errorf("bool(%s) = %v", c.in, b)
		}
	}
}

func TestJSONCodec(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`{"b": 1, "a": [1.0, 2.5e-7, true, null]}`, `{"b": 1, "a": [1.0, 2.5e-07, true, null]}`},
		{`{"k": 1, "k": 2, "j": 3}`, `{"k": 2, "j": 3}`},
		{`"caf\u00e9 \ud83d\ude00 <&>"`, `"caf\u00e9 \ud83d\ude00 <&>"`},
		{`[NaN, Infinity, -Infinity, 1e999]`, `[NaN, Infinity, -Infinity, Infinity]`},
		{`"tab\tnew\nline\u0001"`, `"tab\tnew\nline\u0001"`},
	} {
		v, err := parseJSON([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := string(encodeJSON(v)); got != c.want {
			t.Errorf("%s → %s, want %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{``, `{`, `[1,]`, `{"a" 1}`, `01`, `1.`, `"x`, `tru`, `{"a": 1} x`, "\"\x01\""} {
		if _, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("parseJSON(%q) succeeded", bad)
		}
	}
}

func TestFromGoKeepsFloats(t *testing.T) {
	t.Parallel()
	ui := map[string]any{
		"gifs":   []map[string]any{{"filename": "x_00001.mp4", "frame_rate": 16.0, "format": "video/h264-mp4"}},
		"images": []node.FileRef{{Filename: "a.png", Subfolder: "", Type: "output"}},
		"count":  3,
	}
	want := `{"count": 3, "gifs": [{"filename": "x_00001.mp4", "format": "video/h264-mp4", "frame_rate": 16.0}], "images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}`
	if got := string(encodeJSON(fromGo(ui))); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestTensorFormat(t *testing.T) {
	t.Parallel()
	im := node.NewImage(1, 2, 2, 3)
	for i := range im.Pix {
		im.Pix[i] = float32(i%2) * 0.5
	}
	want := "tensor([[[[0.0000, 0.5000, 0.0000],\n          [0.5000, 0.0000, 0.5000]],\n\n         [[0.0000, 0.5000, 0.0000],\n          [0.5000, 0.0000, 0.5000]]]])"
	if got := formatImage(im); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	zero := node.NewImage(1, 1, 2, 3)
	if got := formatImage(zero); got != "tensor([[[[0., 0., 0.],\n          [0., 0., 0.]]]])" {
		t.Errorf("zeros: %s", got)
	}
	big := node.NewMask(1, 100, 100)
	got := formatMask(big)
	if want := "tensor([[[0., 0., 0.,  ..., 0., 0., 0.],"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("summarised: %.80s", got)
	}
}

// TestTensorFormatMatchesCapture compares the engine's tensor printing with
// the current_inputs torch printed in the corpus.
func TestTensorFormatMatchesCapture(t *testing.T) {
	t.Parallel()
	h := mustParse(t, mustRead(t, filepath.Join(testenv.Conformance(t), "cases", "runtime_blend_bad_mode", "expected", "history.json"))).(*object)
	entry, _ := h.get("PROMPT_ID")
	st, _ := entry.(*object).get("status")
	msgs, _ := st.(*object).get("messages")
	last := msgs.([]any)[len(msgs.([]any))-1].([]any)[1].(*object)
	ci, _ := last.get("current_inputs")
	img1, _ := ci.(*object).get("image1")
	want := img1.([]any)[0].(string)

	im := node.NewImage(1, 8, 8, 3)
	for i := range im.Pix {
		im.Pix[i] = float32(0x80) / 255 // EmptyImage color 8421504
	}
	if got := formatImage(im); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
