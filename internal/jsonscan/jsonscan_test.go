package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+3`, `true`, `false`, `null`, ` {"a" : [1, 2, {"b": null}] } `,
		`"\u00e9\n\"\\\/"`, `{"a":1,"a":2}`, "\"\xff\"", `[[[[[]]]]]`, `1E9`,
		``, ` `, `{`, `}`, `[1,]`, `{"a"}`, `{"a":}`, `{,}`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`,
		`"\x"`, `"\u12g4"`, "\"a\x01\"", `"abc`, `{} {}`, `[1 2]`, `{"a":1,}`, "\x00", `'a'`,
	} {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
	deep := strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2)
	if Valid([]byte(deep)) {
		t.Error("nesting past MaxDepth is accepted")
	}
}

func TestObjectAndArray(t *testing.T) {
	t.Parallel()
	data := []byte(` {"name": "a\u0062c", "list": [1, "two", {"x": null}], "blob": "` + strings.Repeat("QUJD", 1000) + `"} `)
	sc := New(data)
	var keys []string
	var blob []byte
	err := sc.Object(func(key string) error {
		keys = append(keys, key)
		switch key {
		case "name":
			v, err := sc.Text()
			if v != "abc" {
				t.Errorf("name %q", v)
			}
			return err
		case "list":
			var kinds []string
			err := sc.Array(func(i int) error {
				v, err := sc.Value()
				kinds = append(kinds, Kind(v))
				return err
			})
			if strings.Join(kinds, ",") != "a number,a string,an object" {
				t.Errorf("kinds %v", kinds)
			}
			return err
		default:
			b, err := sc.Bytes()
			blob = b
			return err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.End(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "name,list,blob" {
		t.Errorf("keys %v", keys)
	}
	// An unescaped string is a slice of the input, not a copy.
	if len(blob) != 4000 || &blob[0] != &data[bytes.Index(data, []byte("QUJD"))] {
		t.Error("Bytes copied an unescaped string")
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`{"a":1`, `{"a" 1}`, `[1,2`, `"x`, `{"a":1} x`} {
		sc := New([]byte(s))
		_, err := sc.Value()
		if err == nil {
			err = sc.End()
		}
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%q: %v", s, err)
		}
	}
	if err := New([]byte(`[1]`)).Object(func(string) error { return nil }); !errors.Is(err, ErrSyntax) {
		t.Errorf("Object on an array: %v", err)
	}
	if err := New([]byte(`{}`)).Array(func(int) error { return nil }); !errors.Is(err, ErrSyntax) {
		t.Errorf("Array on an object: %v", err)
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		`"s"`: "a string", ` {}`: "an object", `[]`: "an array", `true`: "a boolean", `false`: "a boolean",
		`null`: "null", `-1`: "a number", `  `: "nothing",
	} {
		if got := Kind([]byte(raw)); got != want {
			t.Errorf("Kind(%q) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzScan compares the scanner with encoding/json: the same documents are
// valid, a valid document's value is all of it, and strings and object keys
// unescape to what encoding/json gives.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","input":{"images":[{"name":"x.png","image":"QUJD"}]}}`,
		`[1,-2.5e3,true,false,null,"a\"b",{"k\u00e9":[]}]`,
		`"\ud83d\ude00"`, "\"\xff\xfe\"", `{"a":1,"a":2}`, `{"a":`, `[1,]`, `01`, ``, `  null  `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		valid := json.Valid(data)
		if got := Valid(data); got != valid {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, got, valid)
		}
		sc := New(data)
		raw, err := sc.Value()
		if err == nil {
			err = sc.End()
		}
		if (err == nil) != valid {
			t.Fatalf("Value+End(%q) error %v, encoding/json valid %v", data, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v is not ErrSyntax", err)
			}
			return
		}
		if !bytes.Equal(raw, bytes.TrimSpace(data)) {
			t.Fatalf("Value = %q, want the whole document %q", raw, data)
		}
		switch Kind(raw) {
		case "a string":
			var want string
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got, err := New(raw).Text()
			if err != nil || got != want {
				t.Fatalf("Text(%q) = %q, %v; encoding/json gives %q", raw, got, err, want)
			}
			b, err := New(raw).Bytes()
			if err != nil || string(b) != want {
				t.Fatalf("Bytes(%q) = %q, %v; encoding/json gives %q", raw, b, err, want)
			}
		case "an object":
			var want map[string]json.RawMessage
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got := map[string]json.RawMessage{}
			sc := New(raw)
			if err := sc.Object(func(key string) error {
				v, err := sc.Value()
				got[key] = v
				return err
			}); err != nil {
				t.Fatalf("Object(%q): %v", raw, err)
			}
			if len(got) != len(want) {
				t.Fatalf("Object(%q) keys %d, encoding/json %d", raw, len(got), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(got[k], v) {
					t.Fatalf("Object(%q)[%q] = %q, encoding/json %q", raw, k, got[k], v)
				}
			}
		case "an array":
			var want []json.RawMessage
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			n := 0
			sc := New(raw)
			if err := sc.Array(func(i int) error {
				v, err := sc.Value()
				if err == nil && !bytes.Equal(v, want[i]) {
					t.Fatalf("Array(%q)[%d] = %q, encoding/json %q", raw, i, v, want[i])
				}
				n++
				return err
			}); err != nil {
				t.Fatalf("Array(%q): %v", raw, err)
			}
			if n != len(want) {
				t.Fatalf("Array(%q) has %d elements, encoding/json %d", raw, n, len(want))
			}
		}
	})
}
