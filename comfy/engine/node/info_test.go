package node

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestInfoRoundTrip decodes every /object_info capture of the real server and
// checks that encoding gives the same JSON, key order included.
func TestInfoRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../../../testdata/conformance/comfyui/object_info/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no object_info captures found: %v", err)
	}
	for _, f := range files {
		if filepath.Base(f) == "NoSuchNode.json" {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]*Info
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 {
				t.Fatalf("want one class, got %d", len(m))
			}
			for name, info := range m {
				if info.Name != name {
					t.Errorf("name %q under key %q", info.Name, name)
				}
				got, err := json.Marshal(info)
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				if err := json.Compact(&want, mustSub(t, data, name)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("round trip differs:\n got %s\nwant %s", got, want.Bytes())
				}
			}
		})
	}
}

func mustSub(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func TestInfoInputsAndOptions(t *testing.T) {
	data, err := os.ReadFile("../../../testdata/conformance/comfyui/object_info/ImageBlend.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]*Info
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	info := m["ImageBlend"]
	mode, ok := info.Input("blend_mode")
	if !ok || mode.Type != "COMBO" || mode.IsLegacyCombo() || len(mode.Options) != 6 {
		t.Fatalf("blend_mode = %+v", mode)
	}
	f, _ := info.Input("blend_factor")
	l := f.Limits()
	if l.Min == nil || *l.Min != 0 || l.Max == nil || *l.Max != 1 || l.Default != 0.5 {
		t.Errorf("blend_factor limits = %+v", l)
	}
	c, err := info.WithOptions(map[string][]string{"blend_mode": {"normal"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := c.Input("blend_mode")
	if len(got.Options) != 1 || !bytes.Contains(got.Spec, []byte(`"options":["normal"]`)) || !bytes.HasPrefix(got.Spec, []byte(`{"multiselect":false`)) {
		t.Errorf("WithOptions: %+v %s", got.Options, got.Spec)
	}
	if orig, _ := info.Input("blend_mode"); len(orig.Options) != 6 {
		t.Errorf("WithOptions changed the original")
	}
}

func TestDecodeInputErrors(t *testing.T) {
	for _, raw := range []string{`{}`, `[]`, `[1, {}]`, `["COMBO", {"options": 3}]`} {
		if _, err := decodeInput("x", json.RawMessage(raw)); err == nil {
			t.Errorf("decodeInput(%s) succeeded", raw)
		}
	}
}
