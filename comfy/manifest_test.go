package comfy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func brushManifest(t testing.TB) *comfy.Manifest {
	t.Helper()
	data, err := os.ReadFile("testdata/image-brush/comfypod.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func brushWorkflows(t testing.TB) map[string]*comfy.Workflow {
	t.Helper()
	wfs, err := brushManifest(t).LoadWorkflows(os.DirFS("testdata"), "image-brush")
	if err != nil {
		t.Fatal(err)
	}
	return wfs
}

func TestManifestParsesTheImageBrushPackage(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	if got := m.Workflows(); !reflect.DeepEqual(got, []string{"default", "preview"}) {
		t.Errorf("workflows = %v", got)
	}
	if m.DefaultWorkflow() != "default" {
		t.Errorf("default = %q", m.DefaultWorkflow())
	}
	seed, ok := m.Param("seed")
	if !ok || seed.Type != comfy.ParamInt || !seed.Random || seed.Max != "18446744073709551615" {
		t.Fatalf("seed = %+v", seed)
	}
	if got := seed.Bindings["default"]; !reflect.DeepEqual(got, []comfy.Binding{{Node: "689", Input: "seed", ClassType: "KSampler"}}) {
		t.Errorf("seed bindings = %v", got)
	}
	if len(seed.Bindings["preview"]) != 0 {
		t.Errorf("seed is bound in the preview workflow: %v", seed.Bindings["preview"])
	}
	// The manifest re-encodes to an equivalent manifest.
	out, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := comfy.ParseManifest(out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	out2, _ := m2.MarshalJSON()
	if !bytes.Equal(out, out2) {
		t.Errorf("not stable:\n%s\n%s", out, out2)
	}
}

func TestManifestCheckPassesOnBothWorkflows(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	info := conformanceInfo(t)
	for name, wf := range brushWorkflows(t) {
		if err := m.Check(wf, name, info); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := m.Check(wf, name, nil); err != nil {
			t.Errorf("%s without info: %v", name, err)
		}
	}
}

func TestManifestCheckReportsEveryMismatch(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	wf := brushWorkflows(t)["default"]
	// Someone re-exported the workflow: 658 is now a KSampler, 689 lost its
	// seed, 422 is gone, 667.strength is linked.
	data, _ := wf.MarshalJSON()
	broken, _ := comfy.DecodeWorkflow(data)
	n658, _ := broken.Node("658")
	n658.ClassType = "KSampler"
	n689, _ := broken.Node("689")
	n689.DeleteInput("seed")
	_ = broken.Set("667", "strength", comfy.Link{Node: "5", Output: 0})
	wfJSON, _ := broken.MarshalJSON()
	wfJSON = bytes.Replace(wfJSON, []byte(`"422":`), []byte(`"423":`), 1)
	broken, err := comfy.DecodeWorkflow(wfJSON)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Check(broken, "default", nil)
	var pe *comfy.ParamsError
	if !errors.As(err, &pe) || !errors.Is(err, comfy.ErrInvalidParams) {
		t.Fatalf("want *ParamsError, got %v", err)
	}
	want := []string{
		"param `target`: node 422 is not in the workflow (expected a LoadImage there)",
		"param `prompt`: node 658 is KSampler, expected CLIPTextEncode",
		"param `seed`: node 689 has no input `seed`",
		"param `strength`: node 667 input `strength` is linked to node 5",
	}
	if len(pe.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(pe.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if err := m.Check(wf, "nope", nil); err == nil || !strings.Contains(err.Error(), `no workflow "nope"; it has default, preview`) {
		t.Errorf("unknown workflow: %v", err)
	}
}

func TestManifestCheckWithObjectInfo(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	wf := brushWorkflows(t)["default"]
	m, err := comfy.ParseManifest([]byte(`{"workflows": {"default": "w.json"}, "params": [
	  {"name": "strength", "type": "float", "min": 0, "max": 20, "bind": {"default": [{"node": "667", "input": "strength", "class_type": "StyleModelApply"}]}},
	  {"name": "mode", "type": "enum", "options": ["multiply", "add"], "bind": {"default": [{"node": "667", "input": "strength_type", "class_type": "StyleModelApply"}]}},
	  {"name": "steps", "type": "bool", "bind": {"default": [{"node": "689", "input": "steps", "class_type": "KSampler"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Check(wf, "default", info)
	for _, w := range []string{
		"param `strength`: the server's max for StyleModelApply.strength is 10.0",
		"param `mode`: options [\"add\"] are not accepted by StyleModelApply.strength_type",
		"param `steps`: node 689 input `steps` is INT on the server, which a bool param cannot fill",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	// Without info these limits cannot be known, so they pass.
	if err := m.Check(wf, "default", nil); err != nil {
		t.Errorf("without info: %v", err)
	}
}

func TestManifestApply(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	wf := brushWorkflows(t)["default"]
	applied, err := m.Apply(wf, "default", map[string]any{
		"target":    "input-1 (1).png",
		"reference": "input-2.png",
		"mask":      "mask.png",
		"prompt":    "oil paint",
		"seed":      json.RawMessage(`18446744073709551615`),
		"strength":  json.Number("0.80"),
	}, comfy.ApplyOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ node, input, want string }{
		{"422", "image", `"input-1 (1).png"`},
		{"658", "text", `"oil paint"`},
		{"689", "seed", `18446744073709551615`}, // exact: no float64 on the way
		{"667", "strength", `0.80`},             // the caller's number text
		{"689", "steps", `20`},                  // default
		{"667", "strength_type", `"multiply"`},  // default
	} {
		if got := inputText(t, wf, c.node, c.input); got != c.want {
			t.Errorf("%s.%s = %s, want %s", c.node, c.input, got, c.want)
		}
	}
	if string(applied.Values["seed"]) != "18446744073709551615" || len(applied.Inputs) != 8 {
		t.Errorf("applied = %+v", applied)
	}
	if applied.Inputs[0].Param != "target" || string(applied.Inputs[0].Current) != `"input-1.png"` {
		t.Errorf("first input = %+v", applied.Inputs[0])
	}
}

func TestManifestApplyRandomSeed(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	params := map[string]any{"target": "a.png", "reference": "b.png", "mask": "c.png"}
	seedOf := func(r *rand.Rand) string {
		wf := brushWorkflows(t)["default"]
		applied, err := m.Apply(wf, "default", params, comfy.ApplyOptions{Rand: r})
		if err != nil {
			t.Fatal(err)
		}
		got := inputText(t, wf, "689", "seed")
		if got != string(applied.Values["seed"]) {
			t.Errorf("reported seed %s, wrote %s", applied.Values["seed"], got)
		}
		return got
	}
	a, b := seedOf(rand.New(rand.NewPCG(7, 7))), seedOf(rand.New(rand.NewPCG(7, 7)))
	if a != b {
		t.Errorf("same source, different seeds: %s %s", a, b)
	}
	if a == "123456789012345678" {
		t.Error("the default \"random\" did not replace the workflow's seed")
	}
	if c := seedOf(rand.New(rand.NewPCG(8, 8))); c == a {
		t.Errorf("different sources drew the same seed %s", c)
	}
	// "random" needs a source.
	wf := brushWorkflows(t)["default"]
	if _, err := m.Apply(wf, "default", params, comfy.ApplyOptions{}); err == nil || !strings.Contains(err.Error(), "Rand is nil") {
		t.Errorf("no Rand: %v", err)
	}
}

func TestManifestApplyCollectsAllProblemsAndLeavesWorkflowAlone(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	wf := brushWorkflows(t)["default"]
	before, _ := wf.MarshalJSON()
	_, err := m.Apply(wf, "default", map[string]any{
		"reference":     "../etc/passwd",
		"mask":          42,
		"prompt":        strings.Repeat("x", 2001),
		"seed":          "lucky",
		"strength":      12,
		"steps":         2.5,
		"strength_type": "multipy",
		"sed":           1,
	}, comfy.ApplyOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	var pe *comfy.ParamsError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ParamsError, got %v", err)
	}
	want := []string{
		"unknown param `sed` (did you mean `seed`?); known params: target, reference, mask, prompt, seed, strength, steps, strength_type",
		"param `target`: is required (image: The image to paint on (the texture).)",
		"param `reference`: file name \"../etc/passwd\" must not contain ..",
		"param `mask`: want the name of an uploaded file, got a number",
		"param `prompt`: 2001 characters is longer than the max length 2000",
		"param `seed`: want an integer, got \"lucky\"",
		"param `strength`: 12 is above the max 10",
		"param `steps`: want an integer, got 2.5",
		"param `strength_type`: \"multipy\" is not one of [\"multiply\", \"attn_bias\"] (did you mean \"multiply\"?)",
	}
	if len(pe.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(pe.Problems), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if after, _ := wf.MarshalJSON(); !bytes.Equal(before, after) {
		t.Error("a refused Apply changed the workflow")
	}
	if err := m.CheckParams(map[string]any{"target": "a.png", "reference": "b.png", "mask": "c.png", "steps": "12", "strength": "0.5"}); err != nil {
		t.Errorf("numeric strings: %v", err)
	}
}

func TestManifestPreviewWorkflowSharesParamNames(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	wf := brushWorkflows(t)["preview"]
	applied, err := m.Apply(wf, "preview", map[string]any{"target": "t.png", "reference": "r.png", "mask": "m.png", "prompt": "ignored here", "seed": 5},
		comfy.ApplyOptions{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	if got := inputText(t, wf, "590", "image"); got != `"r.png"` {
		t.Errorf("590.image = %s", got)
	}
	if len(applied.Inputs) != 3 {
		t.Errorf("the preview workflow binds only the three images, wrote %+v", applied.Inputs)
	}
}

func TestParseManifestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"empty"}},
		{"syntax", `{"workflows": {`, []string{"invalid JSON"}},
		{"no workflows", `{"params": []}`, []string{`"workflows" is missing`}},
		{"typo field", `{"workflows": {"default": "w.json"}, "params": [{"name": "seed", "type": "int", "bind": {"default": []}, "dafault": 1}]}`,
			[]string{`params[0] (seed): unknown field "dafault" (did you mean "default"?)`}},
		{"bad type", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "integer", "bind": {"default": []}}]}`,
			[]string{`params[0] (x).type: unknown type "integer"; one of int, float, string, bool, enum, image, mask`}},
		{"missing binding for a workflow", `{"workflows": {"default": "w.json", "preview": "p.json"}, "params": [{"name": "x", "type": "int", "bind": {"default": []}}]}`,
			[]string{`no binding for workflow "preview"; write "preview": [] if the param is not used there`}},
		{"unknown workflow in bind", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "bind": {"default": [], "previw": []}}]}`,
			[]string{`params[0] (x).bind.previw: no workflow is called "previw"`}},
		{"binding without class", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "bind": {"default": [{"node": "689", "input": "seed"}]}}]}`,
			[]string{`"class_type" is missing: name the class node 689 must have`}},
		{"float node id", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "bind": {"default": [{"node": 689.5, "input": "seed", "class_type": "KSampler"}]}}]}`,
			[]string{`a node id is a string such as "689"`}},
		{"default out of range", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "float", "min": 0, "max": 1, "default": 2, "bind": {"default": []}}]}`,
			[]string{`params[0] (x).default: 2 is above the max 1`}},
		{"min above max", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "min": 5, "max": 1, "bind": {"default": []}}]}`,
			[]string{`min 5 is above max 1`}},
		{"random on a string", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "string", "random": true, "bind": {"default": []}}]}`,
			[]string{`only int params may be random`}},
		{"random value without random", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "default": "random", "bind": {"default": []}}]}`,
			[]string{`"random" is accepted only by random params`}},
		{"enum without options", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "enum", "bind": {"default": []}}]}`,
			[]string{`an enum param needs "options"`}},
		{"required with default", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "required": true, "default": 1, "bind": {"default": []}}]}`,
			[]string{`a required param cannot have a default`}},
		{"duplicate names", `{"workflows": {"default": "w.json"}, "params": [{"name": "x", "type": "int", "bind": {"default": []}}, {"name": "x", "type": "int", "bind": {"default": []}}]}`,
			[]string{`params[1] (x): another param has the same name`}},
		{"two params one input", `{"workflows": {"default": "w.json"}, "params": [
		  {"name": "a", "type": "int", "bind": {"default": [{"node": "1", "input": "seed", "class_type": "K"}]}},
		  {"name": "b", "type": "int", "bind": {"default": [{"node": "1", "input": "seed", "class_type": "K"}]}}]}`,
			[]string{`params "a" and "b" both write node 1 input "seed"`}},
		{"escaping path", `{"workflows": {"default": "../w.json"}, "params": []}`, []string{`want a relative file path inside the package`}},
		{"bad name", `{"workflows": {"default": "w.json"}, "params": [{"name": "2x", "type": "int", "bind": {"default": []}}]}`, []string{`must start with a letter`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := comfy.ParseManifest([]byte(tc.in))
			if !errors.Is(err, comfy.ErrInvalidManifest) {
				t.Fatalf("want ErrInvalidManifest, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestManifestAcceptsIntegerNodeIDs(t *testing.T) {
	t.Parallel()
	m, err := comfy.ParseManifest([]byte(`{"workflows": {"default": "w.json"}, "params": [
	  {"name": "seed", "type": "int", "bind": {"default": [{"node": 689, "input": "seed", "class_type": "KSampler"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.Param("seed")
	if p.Bindings["default"][0].Node != "689" {
		t.Errorf("node = %q", p.Bindings["default"][0].Node)
	}
}

func TestCheckImageSize(t *testing.T) {
	t.Parallel()
	p, _ := brushManifest(t).Param("target")
	if err := p.CheckImageSize(2048, 1024); err != nil {
		t.Error(err)
	}
	if err := p.CheckImageSize(4096, 100); err == nil || !strings.Contains(err.Error(), "param `target`: the image is 4096x100, above the max side 2048 px") {
		t.Errorf("got %v", err)
	}
	if err := p.CheckImageSize(0, 10); err == nil {
		t.Error("empty image accepted")
	}
}

func TestBindingsListsCurrentValues(t *testing.T) {
	t.Parallel()
	m := brushManifest(t)
	bs := m.Bindings(brushWorkflows(t)["default"], "default")
	if len(bs) != 8 || bs[4].Param != "seed" || string(bs[4].Current) != "123456789012345678" {
		t.Fatalf("bindings = %+v", bs)
	}
	out, err := json.Marshal(bs[4])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"param":"seed","workflow":"default","node":"689","input":"seed","class_type":"KSampler","current":123456789012345678}`; string(out) != want {
		t.Errorf("got %s", out)
	}
}
