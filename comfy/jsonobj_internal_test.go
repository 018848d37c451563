package comfy

import (
	"bytes"
	"encoding/json"
	"testing"
)

// referenceObject splits an object with encoding/json's tokenizer: the
// slow, obviously right way decodeObject must agree with.
func referenceObject(data []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		var b bytes.Buffer
		_ = json.Compact(&b, raw)
		out = append(out, member{Key: t.(string), Value: b.Bytes()})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if dec.More() {
		return nil, false
	}
	return out, json.Valid(data)
}

func FuzzDecodeObjectMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 , "b":[1, "x", {"c": "d\"}"}] } `, `{"\u00e9\n": "\\", "k": -1.5e3, "n": null}`,
		`{"1": {"inputs": {"seed": 18446744073709551615, "t": "a , ] }"}, "class_type": "X"}}`, `[1]`, `{"a":1,}`, `{"a" 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeObject(data)
		want, ok := referenceObject(data)
		if (err == nil) != ok {
			t.Fatalf("decodeObject err=%v, reference ok=%v for %q", err, ok, data)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d members, reference %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
				t.Fatalf("member %d: %q=%s, reference %q=%s", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
			}
		}
	})
}

func FuzzFastLinkMatchesSlowPath(f *testing.F) {
	for _, s := range []string{`["1",0]`, `["12:5",3]`, `["a\"b",1]`, `["1",01]`, `["1",-1]`, `["",0]`, `["1",0,1]`, `["1", 0]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, ok := fastLink(raw)
		if !ok {
			return
		}
		// Whatever the fast path accepts, the full decoder must read the same.
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 2 {
			t.Fatalf("fast path accepted %q", raw)
		}
		var id string
		var n int
		if json.Unmarshal(parts[0], &id) != nil || json.Unmarshal(parts[1], &n) != nil || id != l.Node || n != l.Output {
			t.Fatalf("fast path read %q as %+v", raw, l)
		}
	})
}
