package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/jsonscan"
)

func TestDecodeInput(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`{
	  "workflow": "{\"1\": {\"class_type\": \"LoadImage\", \"inputs\": {\"image\": \"a.png\"}}}",
	  "workflow_name": "preview",
	  "images": [{"name": "a.png", "image": "data:image\/png;base64,iVBORw0KGgo="}, {"name": "b.png", "image": "QUJD"}],
	  "params": {"seed": 18446744073709551615, "prompt": "a \"cat\""},
	  "output": {"format": "webp", "quality": 80, "upload": "s3", "include_temp": true},
	  "comfy_org_api_key": "key-123",
	  "imags": []
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(in.Workflow), `"{\"1\"`) {
		t.Errorf("workflow = %s", in.Workflow)
	}
	if in.WorkflowName != "preview" || in.ComfyOrgAPIKey != "key-123" {
		t.Errorf("workflow_name %q, key %q", in.WorkflowName, in.ComfyOrgAPIKey)
	}
	if len(in.Images) != 2 || in.Images[0].Name != "a.png" || string(in.Images[0].Image) != "data:image/png;base64,iVBORw0KGgo=" || string(in.Images[1].Image) != "QUJD" {
		t.Errorf("images = %q", in.Images)
	}
	if string(in.Params["seed"]) != "18446744073709551615" || string(in.Params["prompt"]) != `"a \"cat\""` {
		t.Errorf("params = %q", in.Params)
	}
	if in.Output != (OutputOptions{Format: "webp", Quality: 80, Upload: "s3", IncludeTemp: true}) {
		t.Errorf("output = %+v", in.Output)
	}
	if len(in.Unknown) != 1 || in.Unknown[0] != "imags" {
		t.Errorf("unknown = %q", in.Unknown)
	}
}

func TestDecodeInputSharesImageBytes(t *testing.T) {
	t.Parallel()
	data := []byte(`{"images": [{"name": "a.png", "image": "QUJDRA=="}]}`)
	in, err := DecodeInput(data)
	if err != nil {
		t.Fatal(err)
	}
	img := in.Images[0].Image
	if &img[0] != &data[bytes.Index(data, []byte("QUJD"))] {
		t.Error("an image string without escapes was copied")
	}
}

func TestDecodeInputStringInput(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`"{\"workflow\": {\"1\": {}}, \"images\": []}"`))
	if err != nil {
		t.Fatal(err)
	}
	if string(in.Workflow) != `{"1": {}}` {
		t.Errorf("workflow = %s", in.Workflow)
	}
}

func TestDecodeInputErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{``, []string{"the input is empty"}},
		{`[]`, []string{"the input is an array"}},
		{`42`, []string{"the input is a number"}},
		{`"just text"`, []string{"a string that does not hold a JSON object"}},
		{`{"workflow": }`, []string{"not valid JSON", "want a value"}},
		{`{"a": 1} x`, []string{"not valid JSON", "after the value"}},
		{`{"images": "a.png"}`, []string{"images: want a list"}},
		{`{"images": [1, {"name": 2, "image": 3}, {}]}`, []string{"5 problems", "images[0]: want an object", "images[1].name: want a string, got a number",
			"images[1].image: want a string", "images[2].name: missing", "images[2].image: missing"}},
		{`{"images": [{"name": "", "image": "x"}]}`, []string{"images[0].name: is empty"}},
		{`{"params": [1]}`, []string{"params: want an object"}},
		{`{"params": {"a": 1, "a": 2}}`, []string{"params.a: appears twice"}},
		{`{"workflow": {}, "workflow": {}}`, []string{"workflow: appears twice"}},
		{`{"workflow": true}`, []string{"workflow: want an API-format workflow object", "got a boolean"}},
		{`{"output": {"formt": "png", "quality": "high", "include_temp": 1}}`, []string{"output.formt: unknown option (did you mean \"format\"?)",
			"output.quality: want a whole number", "output.include_temp: want true or false"}},
		{`{"output": []}`, []string{"output: want an object"}},
		{`{"workflow_name": 3}`, []string{"workflow_name: want a string, got a number"}},
		{`{"images": [{"name": "a\u0000.png", "image": "x"}], "x": "\ud800"}`, nil},
		{`{"s": "a` + "\x01" + `"}`, []string{"control character"}},
		{`{"s": "\q"}`, []string{"bad escape"}},
		{`{"n": 01}`, []string{"want ',' or '}'"}},
		{`{"n": -}`, []string{"bad number"}},
		{`{"n": 1.}`, []string{"bad number"}},
		{`{"n": nul}`, []string{"bad literal"}},
		{strings.Repeat("[", 20000), []string{"the input is"}},
		{`{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, []string{"nested too deeply"}},
	} {
		_, err := DecodeInput([]byte(tc.in))
		if tc.want == nil {
			if err != nil {
				t.Errorf("%.60s: %v", tc.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%.60s: no error", tc.in)
			continue
		}
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%.60s: %v does not match ErrInvalidInput", tc.in, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%.60s: error %q does not say %q", tc.in, err, w)
			}
		}
	}
}

// reference decodes what DecodeInput should find with encoding/json, and
// says whether the input is well-formed: a JSON object (or a string holding
// one) whose known keys have the right types, with no repeated top-level or
// params keys.
func reference(data []byte) (ref map[string]json.RawMessage, wellFormed bool) {
	if err := json.Unmarshal(data, &ref); err != nil || ref == nil {
		var s string
		if json.Unmarshal(data, &s) != nil {
			return nil, false
		}
		if json.Unmarshal([]byte(s), &ref) != nil || ref == nil {
			return nil, false
		}
		data = []byte(s)
	}
	if hasRepeatedKeys(data) {
		return ref, false
	}
	if p, ok := ref["params"]; ok && jsonscan.Kind(p) == "an object" && hasRepeatedKeys(p) {
		return ref, false
	}
	ok := true
	for k, v := range ref {
		kind := jsonscan.Kind(v)
		switch k {
		case "workflow":
			ok = ok && (kind == "an object" || kind == "a string" || kind == "null")
		case "workflow_name", "comfy_org_api_key":
			ok = ok && (kind == "a string" || kind == "null")
		case "params":
			ok = ok && (kind == "an object" || kind == "null")
		case "images":
			if kind == "null" {
				continue
			}
			var imgs []map[string]json.RawMessage
			if json.Unmarshal(v, &imgs) != nil {
				return ref, false
			}
			for _, im := range imgs {
				var name, image string
				if im == nil || json.Unmarshal(im["name"], &name) != nil || name == "" || json.Unmarshal(im["image"], &image) != nil || jsonscan.Kind(im["image"]) != "a string" {
					return ref, false
				}
			}
		case "output":
			if kind == "null" {
				continue
			}
			var o map[string]json.RawMessage
			if json.Unmarshal(v, &o) != nil || o == nil {
				return ref, false
			}
			for ok2, ov := range o {
				var err error
				switch ok2 {
				case "format", "upload":
					if jsonscan.Kind(ov) != "null" {
						var s string
						err = json.Unmarshal(ov, &s)
					}
				case "quality":
					var q int
					err = json.Unmarshal(ov, &q)
				case "include_temp":
					var b bool
					err = json.Unmarshal(ov, &b)
				default:
					return ref, false
				}
				if err != nil {
					return ref, false
				}
			}
		}
	}
	return ref, ok
}

// hasRepeatedKeys reports whether the object data repeats a key at its top
// level.
func hasRepeatedKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := t.(string)
		if seen[k] {
			return true
		}
		seen[k] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "invalid:" + string(raw)
	}
	return b.String()
}

// FuzzDecodeInput checks DecodeInput against encoding/json: it never
// panics, refuses everything encoding/json refuses, accepts every
// well-formed input, and reads the same values.
func FuzzDecodeInput(f *testing.F) {
	for _, s := range []string{
		`{"workflow": {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}, "images": [{"name": "a.png", "image": "iVBORw0KGgo="}]}`,
		`{"workflow": "{\"1\": {}}", "params": {"seed": 42, "prompt": "a \u00e9 \"cat\""}, "output": {"format": "png", "quality": 90}}`,
		`"{\"images\": []}"`,
		`{"images": [{"name": "a.png", "image": "data:image\/png;base64,QUJD"}], "comfy_org_api_key": null}`,
		`{"output": {"upload": "s3", "include_temp": false}, "x": [1, 2.5e-3, true, null]}`,
		`{"params": {"a": 1, "a": 2}}`,
		`{}`, `[]`, `{"a":}`, `{"s":"\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeInput(data)
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("error %v does not match ErrInvalidInput", err)
		}
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", data)
			}
			return
		}
		ref, wellFormed := reference(data)
		if wellFormed && err != nil {
			t.Fatalf("refused a well-formed input %q: %v", data, err)
		}
		if err != nil {
			return
		}
		if ref == nil {
			t.Fatalf("accepted %q, which is not an object", data)
		}
		if w, ok := ref["workflow"]; ok && jsonscan.Kind(w) != "null" && compact(in.Workflow) != compact(w) {
			t.Fatalf("workflow %s, want %s", in.Workflow, w)
		}
		var s string
		if v, ok := ref["workflow_name"]; ok && json.Unmarshal(v, &s) == nil && s != in.WorkflowName {
			t.Fatalf("workflow_name %q, want %q", in.WorkflowName, s)
		}
		s = ""
		if v, ok := ref["comfy_org_api_key"]; ok && json.Unmarshal(v, &s) == nil && s != in.ComfyOrgAPIKey {
			t.Fatalf("comfy_org_api_key %q, want %q", in.ComfyOrgAPIKey, s)
		}
		var imgs []struct{ Name, Image string }
		if v, ok := ref["images"]; ok && json.Unmarshal(v, &imgs) == nil {
			if len(imgs) != len(in.Images) {
				t.Fatalf("%d images, want %d", len(in.Images), len(imgs))
			}
			for i, im := range imgs {
				if in.Images[i].Name != im.Name || string(in.Images[i].Image) != im.Image {
					t.Fatalf("images[%d] = %q %q, want %q %q", i, in.Images[i].Name, in.Images[i].Image, im.Name, im.Image)
				}
			}
		}
		var params map[string]json.RawMessage
		if v, ok := ref["params"]; ok && json.Unmarshal(v, &params) == nil {
			if len(params) != len(in.Params) {
				t.Fatalf("params %q, want %q", in.Params, params)
			}
			for k, v := range params {
				if compact(in.Params[k]) != compact(v) {
					t.Fatalf("params[%q] = %s, want %s", k, in.Params[k], v)
				}
			}
		}
	})
}

func TestDecodeInputFiles(t *testing.T) {
	t.Parallel()
	in, err := DecodeInput([]byte(`{"files": [{"name": "dance.mp4", "file": "https://example.com/dance.mp4", "size": 3}],
	  "images": [{"name": "a.png", "image": "QUJD"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Files) != 1 || in.Files[0].Name != "dance.mp4" || string(in.Files[0].File) != "https://example.com/dance.mp4" || len(in.Images) != 1 {
		t.Errorf("files %q, images %q", in.Files, in.Images)
	}
	if len(in.Unknown) != 1 || in.Unknown[0] != "files[0].size" {
		t.Errorf("unknown = %q", in.Unknown)
	}
	_, err = DecodeInput([]byte(`{"files": [{"name": "a.mp4"}, {"file": "QUJD"}, 3]}`))
	for _, w := range []string{"files[0].file: missing: give the file as base64", `files[1].name: missing: give the file name the workflow's loader node uses, e.g. "dance.mp4"`,
		`files[2]: want an object {"name": "dance.mp4", "file": "<base64>"}, got a number`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("%v\ndoes not say %q", err, w)
		}
	}
}
