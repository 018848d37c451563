package engine

import (
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
	"github.com/comfypod/comfypod/internal/testenv"
)

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
		v, err := pyjson.Parse([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if n, exc := pyInt(v); exc != nil && exc.Msg != c.i || exc == nil && pyStr(n) != c.i {
			t.Errorf("int(%s) = %v %v, want %s", c.in, n, exc, c.i)
		}
		if f, exc := pyFloat(v); exc != nil && exc.Msg != c.f || exc == nil && pyjson.FormatFloat(f) != c.f {
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

func TestFromGoKeepsFloats(t *testing.T) {
	t.Parallel()
	ui := map[string]any{
		"gifs":   []map[string]any{{"filename": "x_00001.mp4", "frame_rate": 16.0, "format": "video/h264-mp4"}},
		"images": []node.FileRef{{Filename: "a.png", Subfolder: "", Type: "output"}},
		"count":  3,
	}
	want := `{"count": 3, "gifs": [{"filename": "x_00001.mp4", "format": "video/h264-mp4", "frame_rate": 16.0}], "images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}`
	if got := string(pyjson.Marshal(pyjson.FromGo(ui))); got != want {
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
	h := mustParse(t, mustRead(t, filepath.Join(testenv.Conformance(t), "cases", "runtime_blend_bad_mode", "expected", "history.json"))).(*pyjson.Object)
	entry, _ := h.Get("PROMPT_ID")
	st, _ := entry.(*pyjson.Object).Get("status")
	msgs, _ := st.(*pyjson.Object).Get("messages")
	last := msgs.([]any)[len(msgs.([]any))-1].([]any)[1].(*pyjson.Object)
	ci, _ := last.Get("current_inputs")
	img1, _ := ci.(*pyjson.Object).Get("image1")
	want := img1.([]any)[0].(string)

	im := node.NewImage(1, 8, 8, 3)
	for i := range im.Pix {
		im.Pix[i] = float32(0x80) / 255 // EmptyImage color 8421504
	}
	if got := formatImage(im); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
