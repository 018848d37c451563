package pyjson

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
)

func TestFormatFloat(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {-0.5, "-0.5"}, {0.1, "0.1"}, {1e-05, "1e-05"}, {0.0001, "0.0001"},
		{1e16, "1e+16"}, {1234567890123456.0, "1234567890123456.0"}, {1.5e300, "1.5e+300"},
		{16384, "16384.0"}, {0.30000000000000004, "0.30000000000000004"}, {math.Inf(1), "inf"}, {math.NaN(), "nan"},
	} {
		if got := FormatFloat(c.f); got != c.want {
			t.Errorf("repr(%v) = %q, want %q", c.f, got, c.want)
		}
	}
}

func TestParseMarshal(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`{"b": 1, "a": [1.0, 2.5e-7, true, null]}`, `{"b": 1, "a": [1.0, 2.5e-07, true, null]}`},
		{`{"k": 1, "k": 2, "j": 3}`, `{"k": 2, "j": 3}`},
		{`"caf\u00e9 \ud83d\ude00 <&>"`, `"caf\u00e9 \ud83d\ude00 <&>"`},
		{`[NaN, Infinity, -Infinity, 1e999]`, `[NaN, Infinity, -Infinity, Infinity]`},
		{`"tab\tnew\nline\u0001"`, `"tab\tnew\nline\u0001"`},
	} {
		v, err := Parse([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := string(Marshal(v)); got != c.want {
			t.Errorf("%s → %s, want %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{``, `{`, `[1,]`, `{"a" 1}`, `01`, `1.`, `"x`, `tru`, `{"a": 1} x`, "\"\x01\""} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// TestMarshalGoValues encodes plain Go values as node code returns them.
func TestMarshalGoValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"b": 1.0, "a": []any{true, nil, "é\n"}}, `{"a": [true, null, "\u00e9\n"], "b": 1.0}`},
		{1e-05, "1e-05"}, {1e16, "1e+16"}, {123456789012345.0, "123456789012345.0"}, {0.1, "0.1"}, {math.Copysign(0, -1), "-0.0"},
		{json.Number("7"), "7"}, {int64(3), "3"}, {"\U0001F600\x7f", `"\ud83d\ude00\u007f"`},
		// A raw object keeps its key order, as json.loads then json.dumps does.
		{json.RawMessage(`{"z":1,"y":[2.5]}`), `{"z": 1, "y": [2.5]}`},
		{[]string{"a", "b"}, `["a", "b"]`}, {int32(-4), "-4"}, {uint64(math.MaxUint64), "18446744073709551615"},
		{struct {
			B int     `json:"b"`
			A float64 `json:"a"`
		}{1, 2}, `{"b": 1, "a": 2}`},
	} {
		if got := string(Marshal(c.in)); got != c.want {
			t.Errorf("Marshal(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":              `"plain"`,
		"q\"b\\":             `"q\"b\\"`,
		"\n\r\t\b\f\x00\x1f": `"\n\r\t\b\f\u0000\u001f"`,
		"\x7f é €":           `"\u007f \u00e9 \u20ac"`,
		"😀":                  `"\ud83d\ude00"`,
		"bad \xff utf-8":     `"bad \ufffd utf-8"`,
		"real \ufffd":        `"real \ufffd"`,
	} {
		if got := string(AppendString([]byte("x"), in)); got != "x"+want {
			t.Errorf("AppendString(%q) = %s, want x%s", in, got, want)
		}
	}
}

func TestObject(t *testing.T) {
	t.Parallel()
	o := NewObject().Set("b", 1).Set("a", 2).Set("c", 3).Set("b", 4)
	if !slices.Equal(o.Keys(), []string{"b", "a", "c"}) || o.Value("b") != 4 || o.Len() != 3 {
		t.Fatalf("after Set: %s", Marshal(o))
	}
	o.Delete("a")
	o.Delete("missing")
	if v, ok := o.Get("a"); ok || v != nil || o.Has("a") || o.Value("a") != nil {
		t.Errorf("a after Delete: %v %v", v, ok)
	}
	var pairs []string
	for k, v := range o.All() {
		pairs = append(pairs, fmt.Sprint(k, "=", v))
	}
	if !slices.Equal(pairs, []string{"b=4", "c=3"}) {
		t.Errorf("All = %v", pairs)
	}
}

func TestToGo(t *testing.T) {
	t.Parallel()
	v, err := Parse([]byte(`{"a": [1, {"b": 2.0}], "n": 123456789012345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	m := ToGo(v).(map[string]any)
	inner := m["a"].([]any)[1].(map[string]any)
	if m["a"].([]any)[0] != int64(1) || inner["b"] != 2.0 {
		t.Errorf("ToGo = %#v", m)
	}
	if n, ok := m["n"].(*big.Int); !ok || n.String() != "123456789012345678901234567890" {
		t.Errorf("big integer = %#v", m["n"])
	}
}

// FuzzParse checks the codec: whatever Parse accepts encodes to ASCII JSON
// that parses to an equal value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x", null, true]}`, `NaN`, `[-Infinity, 1e999, 0.1]`, `"\ud83d\ude00 \u00e9"`, `{"a": 1, "a": 2}`, `123456789012345678901234567890`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		enc := Marshal(v)
		w, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		if !sameValue(v, w) {
			t.Fatalf("round trip changed %q into %q", data, enc)
		}
		if strings.ContainsFunc(string(enc), func(r rune) bool { return r > 0x7f }) {
			t.Fatalf("encoded JSON is not ASCII: %q", enc)
		}
	})
}

// FuzzAppendString checks that every string encodes to ASCII JSON that
// encoding/json decodes back to the string (invalid UTF-8 bytes replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"hello", "café 😀 \x00\x7f\"\\\n", "\xff\xfe bad utf-8", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := AppendString(nil, s)
		for _, c := range enc {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("non-ASCII or control byte in %q", enc)
			}
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%q does not decode: %v", enc, err)
		}
		if want := string([]rune(s)); back != want { // each invalid byte becomes U+FFFD
			t.Fatalf("%q decodes to %q, want %q", enc, back, want)
		}
	})
}

// sameValue compares parsed values exactly: kinds, key order, NaN equal to
// NaN.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case *Object:
		y, ok := b.(*Object)
		if !ok || !slices.Equal(x.Keys(), y.Keys()) {
			return false
		}
		for k, v := range x.All() {
			if !sameValue(v, y.Value(k)) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (x != x && y != y))
	}
	return a == b
}
