package comfy_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func FuzzParseWorkflow(f *testing.F) {
	for _, data := range conformanceWorkflows(f) {
		f.Add(data)
	}
	model, _ := os.ReadFile("testdata/image-brush/workflow_api.json")
	f.Add(model)
	for _, s := range []string{
		`"{\"1\": {\"class_type\": \"X\", \"inputs\": {}}}"`,
		`{"prompt": {"1": {"class_type": "X", "inputs": {"a": ["1", 0]}}}}`,
		`{"1": {"class_type": "X", "inputs": {"v": {"__value__": [1, 2]}, "s": 1e400, "n": -0.0}}}`,
		`{"12:5": {"class_type": "X", "inputs": {"a": ["12:5", 99999999999]}}}`,
		`{"nodes": [], "links": []}`,
		"{\"\xff\": {\"class_type\": \"\\ud800\", \"inputs\": {}}}",
	} {
		f.Add([]byte(s))
	}
	info := conformanceInfo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := comfy.ParseWorkflow(data)
		if err != nil {
			if wf2, derr := comfy.DecodeWorkflow(data); derr == nil {
				_ = wf2.Validate(info)
			}
			return
		}
		out, err := wf.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := comfy.ParseWorkflow(out)
		if err != nil {
			t.Fatalf("re-parse of our own output failed: %v\n%s", err, out)
		}
		out2, _ := again.MarshalJSON()
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, out2)
		}
		_ = wf.Validate(info)
		c := wf.Clone()
		c.RandomizeSeeds(rand.New(rand.NewPCG(1, 2)), info)
		_, _ = c.UniquePrefixes("job")
		c.FileInputs(info)
		c.OutputNodes(info)
	})
}

func FuzzConvertUI(f *testing.F) {
	mixed, _ := os.ReadFile("testdata/ui/mixed.json")
	f.Add(mixed)
	for _, s := range []string{
		`{"nodes": [{"id": 1, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "widgets_values": ["x"]},
		  {"id": 2, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 2}], "outputs": [{"type": "IMAGE", "links": [1]}]},
		  {"id": 3, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 1}], "outputs": [{"type": "IMAGE", "links": [2]}]}],
		 "links": [[1, 2, 0, 1, 0, "IMAGE"], [2, 3, 0, 2, 0, "IMAGE"]]}`,
		`{"nodes": [{"id": "a", "type": "ImageScale", "widgets_values": {"width": 5}}], "links": [{"id": 1, "origin_id": 9, "origin_slot": -1}]}`,
		`{"nodes": [{"id": 1, "type": "PrimitiveNode", "outputs": [{"type": "INT", "links": [1]}], "widgets_values": []},
		  {"id": 2, "type": "EmptyImage", "inputs": [{"name": "width", "type": "INT", "link": 1, "widget": {"name": "width"}}], "widgets_values": [1, 2, 3, 4]}],
		 "links": [[1, 1, 0, 2, 0, "INT"]]}`,
	} {
		f.Add([]byte(s))
	}
	info := conformanceInfo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := comfy.ConvertUI(data, info)
		if err != nil {
			return
		}
		out, err := wf.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := comfy.DecodeWorkflow(out); err != nil {
			t.Fatalf("a converted workflow does not decode: %v\n%s", err, out)
		}
		_ = wf.Validate(info)
	})
}

func FuzzParseManifest(f *testing.F) {
	brush, _ := os.ReadFile("testdata/image-brush/comfypod.json")
	f.Add(brush)
	for _, s := range []string{
		`{"workflows": {"default": "w.json"}, "params": [{"name": "seed", "type": "int", "random": true, "default": "random", "min": 0, "max": 1e3, "bind": {"default": [{"node": 3, "input": "seed", "class_type": "K"}]}}]}`,
		`{"workflows": {"a": "a.json", "b": "b.json"}, "params": [{"name": "e", "type": "enum", "options": ["x", "x"], "bind": {"a": []}}]}`,
		`{"workflows": {}, "params": {}}`,
	} {
		f.Add([]byte(s))
	}
	wfs := brushWorkflows(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := comfy.ParseManifest(data)
		if err != nil {
			return
		}
		out, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := comfy.ParseManifest(out)
		if err != nil {
			t.Fatalf("re-parse of our own output failed: %v\n%s", err, out)
		}
		out2, _ := m2.MarshalJSON()
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, out2)
		}
		for _, name := range m.Workflows() {
			if wf, ok := wfs[name]; ok {
				_ = m.Check(wf, name, nil)
				_, _ = m.Apply(wf.Clone(), name, map[string]any{"seed": "random", "prompt": "x"}, comfy.ApplyOptions{Rand: rand.New(rand.NewPCG(1, 1))})
			}
		}
	})
}

func FuzzParseObjectInfo(f *testing.F) {
	for _, name := range []string{"LoadImage", "ImageBlend", "SaveImage", "ImageScale"} {
		data, err := os.ReadFile(conformanceFile(f, "object_info", name+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	models, _ := os.ReadFile("testdata/object_info_models.json")
	f.Add(models)
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := comfy.ParseObjectInfo(data)
		if err != nil {
			return
		}
		for _, name := range info.Classes() {
			c, _ := info.Class(name)
			for _, in := range c.Inputs() {
				_ = in.IsWidget()
			}
		}
	})
}
