package comfy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/testenv"
)

// conformanceWorkflows returns case name → workflow.json bytes.
func conformanceWorkflows(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.Conformance(t), "cases", "*", "workflow.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance workflows: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(f))] = data
	}
	return out
}

// conformanceInfo merges the captured /object_info files with the model
// classes of testdata/object_info_models.json.
func conformanceInfo(t testing.TB) comfy.ObjectInfo {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.Conformance(t), "object_info", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no object_info files: %v", err)
	}
	files = append(files, filepath.Join("testdata", "object_info_models.json"))
	info := comfy.ObjectInfo{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		part, err := comfy.ParseObjectInfo(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		info.Merge(part)
	}
	return info
}

func compact(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseWorkflowRoundTripsConformanceCases(t *testing.T) {
	t.Parallel()
	for name, data := range conformanceWorkflows(t) {
		if name == "fail_empty_prompt" || name == "fail_bad_values" {
			continue // no nodes / a malformed link: refused, see TestParseWorkflowErrors
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wf, err := comfy.ParseWorkflow(data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := json.Marshal(wf)
			if err != nil {
				t.Fatal(err)
			}
			if want := compact(t, data); !bytes.Equal(got, want) {
				t.Errorf("re-encoded workflow differs\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestParseWorkflowKeepsNumberFormsAndUnknownFields(t *testing.T) {
	t.Parallel()
	in := `{"689": {"inputs": {"seed": 18446744073709551615, "cfg": 1.0, "denoise": 1e0, "text": "a <b> & c"},
	  "class_type": "KSampler", "_meta": {"title": "KSampler"}, "is_changed": ["x"]},
	  "12:5": {"class_type": "SaveImage", "inputs": {"images": ["689", 0], "filename_prefix": "x"}}}`
	wf, err := comfy.ParseWorkflow([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	// MarshalJSON is byte-faithful; json.Marshal HTML-escapes every
	// Marshaler's output, which changes bytes but not meaning.
	got, _ := wf.MarshalJSON()
	if want := compact(t, []byte(in)); !bytes.Equal(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	viaMarshal, _ := json.Marshal(wf)
	if !bytes.Contains(viaMarshal, []byte(`a \u003cb\u003e \u0026 c`)) {
		t.Errorf("json.Marshal: %s", viaMarshal)
	}
	n, _ := wf.Node("689")
	seed, _ := n.Input("seed")
	if num, ok := seed.Number(); !ok || num.String() != "18446744073709551615" {
		t.Errorf("seed = %q, %v", num, ok)
	}
	if n.Title() != "KSampler" {
		t.Errorf("title = %q", n.Title())
	}
	sub, ok := wf.Node("12:5")
	if !ok || sub.ClassType != "SaveImage" {
		t.Fatalf("subgraph-style id not kept: %v", ok)
	}
	if l := sub.Links(); len(l) != 1 || l[0].Link != (comfy.Link{Node: "689", Output: 0}) {
		t.Errorf("links = %+v", l)
	}
}

func TestParseWorkflowAcceptsStringAndPromptBody(t *testing.T) {
	t.Parallel()
	obj := `{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
	         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`
	str, _ := json.Marshal(obj) // what JSON.stringify(workflow) sends
	body := `{"prompt": ` + obj + `, "client_id": "abc"}`
	want := compact(t, []byte(obj))
	for name, in := range map[string]string{"object": obj, "string": string(str), "prompt body": body, "bom": "\xef\xbb\xbf" + obj} {
		wf, err := comfy.ParseWorkflow([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := json.Marshal(wf); !bytes.Equal(got, want) {
			t.Errorf("%s: got %s", name, got)
		}
	}
}

func TestParseWorkflowErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		is       error
		want     []string
	}{
		{"empty", ``, comfy.ErrInvalidWorkflow, []string{"empty"}},
		{"array", `[1,2]`, comfy.ErrInvalidWorkflow, []string{"JSON object of nodes", "an array"}},
		{"no nodes", `{}`, comfy.ErrInvalidWorkflow, []string{"no nodes"}},
		{"syntax", "{\"1\": {\"class_type\": \"X\",\n \"inputs\": {,}}}", comfy.ErrInvalidWorkflow, []string{"line 2"}},
		{"truncated", `{"1": {"class_type": "X", "inputs": {`, comfy.ErrInvalidWorkflow, []string{"ends too early"}},
		{"missing class", `{"1": {"inputs": {}}}`, comfy.ErrInvalidWorkflow, []string{"node 1: class_type is missing"}},
		{"class not string", `{"1": {"class_type": 5, "inputs": {}}}`, comfy.ErrInvalidWorkflow, []string{"class_type must be a string, got a number"}},
		{"missing inputs", `{"1": {"class_type": "X"}}`, comfy.ErrInvalidWorkflow, []string{`inputs is missing`}},
		{"node not object", `{"1": "LoadImage"}`, comfy.ErrInvalidWorkflow, []string{"node 1: want an object"}},
		{"duplicate id", `{"1": {"class_type": "X", "inputs": {}}, "1": {"class_type": "Y", "inputs": {}}}`, comfy.ErrInvalidWorkflow, []string{"node 1: this node id appears more than once"}},
		{"link to missing node", `{"1": {"class_type": "X", "inputs": {"image": ["7", 0]}}}`, comfy.ErrInvalidWorkflow, []string{`node 1 (X) input "image": links to node 7, which is not in the workflow`}},
		{"link numeric id", `{"1": {"class_type": "X", "inputs": {"image": [1, 0]}}}`, comfy.ErrInvalidWorkflow, []string{`must be a string (write "1")`}},
		{"link three items", `{"1": {"class_type": "X", "inputs": {"v": [1, 2, 3]}}}`, comfy.ErrInvalidWorkflow, []string{`got 3 elements`, `__value__`}},
		{"negative index", `{"1": {"class_type": "X", "inputs": {"v": ["1", -1]}}}`, comfy.ErrInvalidWorkflow, []string{"non-negative integer"}},
		{"cycle", `{"1": {"class_type": "X", "inputs": {"a": ["2", 0]}}, "2": {"class_type": "Y", "inputs": {"b": ["1", 0]}}}`, comfy.ErrInvalidWorkflow, []string{"cycle", "1 → 2 → 1"}},
		{"ui format", `{"nodes": [], "links": [], "version": 0.4}`, comfy.ErrUIFormat, []string{"Export (API)"}},
		{"two problems", `{"1": {"inputs": {}}, "2": {"class_type": ""}}`, comfy.ErrInvalidWorkflow, []string{"2 problems", "node 1: class_type is missing", "node 2: class_type is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := comfy.ParseWorkflow([]byte(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not match %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateWithObjectInfo(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	wfs := conformanceWorkflows(t)
	// What Validate reports for each refused case, as the real server refused
	// it (see expected/prompt_response.json) or failed it at run time.
	want := map[string][]string{
		"fail_unknown_class":      {`node 2 (NoSuchNode): class "NoSuchNode" is not installed`},
		"fail_missing_input":      {`node 2 (ImageScale) input "upscale_method": required input is missing`},
		"fail_wrong_output_index": {`node 2 (SaveImage) input "images": links to output 3 of node 1 (EmptyImage), which has only outputs 0..0 (IMAGE)`},
		"fail_value_above_max":    {`node 2 (ImageScale) input "width": value 16385 is above the maximum 16384`, `node 4 (ImageBlur) input "blur_radius": value 32 is above the maximum 31`},
		"fail_bad_values":         {`node 1 (EmptyImage) input "width": want a number (INT), got "abc"`, `node 3 (SolidMask) input "value": value -0.5 is below the minimum 0.0`, `node 7 (ImageInvert) input "image": a link must be`},
		"fail_no_output_node":     {"no output node"},
		"runtime_blend_bad_mode":  {`node 2 (ImageBlend) input "blend_mode": value "bogus" is not one of the options`},
		"partial_valid_outputs":   {`node 5 (SaveImage) input "images": required input is missing`},
	}
	for name, data := range wfs {
		if name == "fail_empty_prompt" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			wf, err := comfy.DecodeWorkflow(data)
			if err != nil {
				t.Fatal(err)
			}
			err = wf.Validate(info)
			msgs, bad := want[name]
			if !bad {
				if err != nil {
					t.Fatalf("a workflow the real server ran is reported invalid: %v", err)
				}
				return
			}
			var we *comfy.WorkflowError
			if !errors.As(err, &we) {
				t.Fatalf("want a *WorkflowError, got %v", err)
			}
			if len(we.Problems) != len(msgs) {
				t.Errorf("got %d problems, want %d: %v", len(we.Problems), len(msgs), err)
			}
			for _, m := range msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q:\n%v", m, err)
				}
			}
		})
	}
}

func TestValidateLinkTypes(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	wf, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	err = wf.Validate(info)
	if err == nil || !strings.Contains(err.Error(), `node 2 (SaveImage) input "images": takes IMAGE but is linked to output 0 of node 1 (SolidMask), which is MASK`) {
		t.Errorf("got %v", err)
	}
}

func TestModelWorkflowValidates(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/image-brush/workflow_api.json")
	if err != nil {
		t.Fatal(err)
	}
	wf, err := comfy.ParseWorkflow(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := wf.Validate(conformanceInfo(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSetAndSetInput(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/image-brush/workflow_api.json")
	wf, err := comfy.ParseWorkflow(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := wf.Set("689", "seed", 42); err != nil {
		t.Fatal(err)
	}
	if err := wf.Set("689", "seed", json.Number("18446744073709551615")); err != nil {
		t.Fatal(err)
	}
	n, _ := wf.Node("689")
	if v, _ := n.Input("seed"); string(v) != "18446744073709551615" {
		t.Errorf("seed = %s", v)
	}
	err = wf.Set("1", "seed", 1)
	if err == nil || err.Error() != "node 1 is not in the workflow" {
		t.Errorf("missing node: %v", err)
	}
	err = wf.Set("689", "sed", 1)
	if err == nil || !strings.Contains(err.Error(), `node 689 (KSampler) has no input "sed"; it has "seed", "steps"`) {
		t.Errorf("missing input: %v", err)
	}
	// A Go list is a literal, wrapped so ComfyUI does not read it as a link;
	// a Link stays a link.
	if err := n.SetInput("sigmas", []float64{1, 0.5}); err != nil {
		t.Fatal(err)
	}
	if v, _ := n.Input("sigmas"); string(v) != `{"__value__":[1,0.5]}` {
		t.Errorf("list literal = %s", v)
	}
	if err := n.SetInput("model", comfy.Link{Node: "3", Output: 0}); err != nil {
		t.Fatal(err)
	}
	if v, _ := n.Input("model"); string(v) != `["3",0]` {
		t.Errorf("link = %s", v)
	}
	if err := n.SetInput("text", "a <b> & c"); err != nil {
		t.Fatal(err)
	}
	if v, _ := n.Input("text"); string(v) != `"a <b> & c"` {
		t.Errorf("HTML-escaped: %s", v)
	}
	if !n.DeleteInput("text") || n.HasInput("text") {
		t.Error("DeleteInput did not remove the input")
	}
}

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/image-brush/workflow_api.json")
	wf, _ := comfy.ParseWorkflow(data)
	before, _ := json.Marshal(wf)
	c := wf.Clone()
	if err := c.Set("689", "seed", 1); err != nil {
		t.Fatal(err)
	}
	n, _ := c.Node("9")
	n.SetTitle("changed")
	if after, _ := json.Marshal(wf); !bytes.Equal(before, after) {
		t.Error("editing the clone changed the original")
	}
	if got, _ := json.Marshal(c); bytes.Equal(before, got) {
		t.Error("the clone was not edited")
	}
}

func TestAddNodeBuildsAWorkflow(t *testing.T) {
	t.Parallel()
	wf := comfy.NewWorkflow()
	n, err := wf.AddNode("1", "EmptyImage")
	if err != nil {
		t.Fatal(err)
	}
	_ = n.SetInput("width", 8)
	s, _ := wf.AddNode("2", "SaveImage")
	_ = s.SetInput("images", comfy.Link{Node: "1"})
	s.SetTitle("Save")
	if _, err := wf.AddNode("2", "X"); err == nil {
		t.Error("duplicate id accepted")
	}
	got, _ := json.Marshal(wf)
	want := `{"1":{"inputs":{"width":8},"class_type":"EmptyImage"},"2":{"inputs":{"images":["1",0]},"class_type":"SaveImage","_meta":{"title":"Save"}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back comfy.Workflow
	if err := json.Unmarshal(got, &back); err != nil || back.Len() != 2 {
		t.Errorf("unmarshal: %v", err)
	}
}

// conformanceFile returns a path inside the conformance corpus.
func conformanceFile(t testing.TB, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{testenv.Conformance(t)}, parts...)...)
}
