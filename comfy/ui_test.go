package comfy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func TestConvertUIMatchesGolden(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	data, err := os.ReadFile("testdata/ui/mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comfy.ParseWorkflow(data); !errors.Is(err, comfy.ErrUIFormat) {
		t.Fatalf("ParseWorkflow of a UI export: %v, want ErrUIFormat", err)
	}
	wf, converted, err := comfy.ParseOrConvert(data, info)
	if err != nil || !converted {
		t.Fatalf("convert: %v (converted=%v)", err, converted)
	}
	if err := wf.Validate(info); err != nil {
		t.Errorf("converted workflow does not validate: %v", err)
	}
	got, _ := wf.MarshalJSON()
	want, err := os.ReadFile("testdata/ui/mixed.api.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, compact(t, want)) {
		t.Errorf("converted workflow differs from testdata/ui/mixed.api.json:\n%s", got)
	}
	// The pieces the golden file pins down, spelled out.
	for _, c := range []struct{ node, input, want string }{
		{"3", "image", `["1",0]`},       // through the Reroute
		{"3", "width", `640`},           // from the PrimitiveNode, not the stale 512
		{"6", "images", `["3",0]`},      // the bypassed blur is skipped
		{"11", "seed", `42`},            // "randomize" after the seed is skipped
		{"11", "steps", `20`},           // … so the next widget lines up
		{"1", "image", `"input-1.png"`}, // the upload widget value is skipped
		{"17", "crf", `19`},             // dict widgets_values read by name
	} {
		if got := inputText(t, wf, c.node, c.input); got != c.want {
			t.Errorf("%s.%s = %s, want %s", c.node, c.input, got, c.want)
		}
	}
	for _, dropped := range []string{"2", "4", "5", "7", "8"} {
		if _, ok := wf.Node(dropped); ok {
			t.Errorf("node %s (Reroute/Primitive/bypassed/Note/muted) was kept", dropped)
		}
	}
	// A UI export sent as a JSON string converts too.
	str, _ := json.Marshal(string(data))
	if _, converted, err := comfy.ParseOrConvert(str, info); err != nil || !converted {
		t.Errorf("string-wrapped UI export: %v", err)
	}
}

func TestConvertUIObjectLinksAndBypassByType(t *testing.T) {
	t.Parallel()
	// Version-1 exports write links as objects. The bypassed ImageBlend has
	// two IMAGE inputs; its output passes through the input at the same slot.
	ui := `{"version": 1, "nodes": [
	  {"id": 1, "type": "EmptyImage", "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": [8, 8, 1, 0]},
	  {"id": 2, "type": "EmptyImage", "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}], "widgets_values": [8, 8, 1, 16777215]},
	  {"id": 3, "type": "ImageBlend", "mode": 4, "inputs": [{"name": "image1", "type": "IMAGE", "link": 1}, {"name": "image2", "type": "IMAGE", "link": 2}],
	   "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [3]}], "widgets_values": [0.5, "normal"]},
	  {"id": 4, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 3}], "outputs": [], "widgets_values": ["x"]},
	  {"id": 5, "type": "ImageInvert", "mode": 2, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [4]}]},
	  {"id": 6, "type": "PreviewImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 4}], "outputs": []}
	 ],
	 "links": [
	  {"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
	  {"id": 2, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 1, "type": "IMAGE"},
	  {"id": 3, "origin_id": 3, "origin_slot": 0, "target_id": 4, "target_slot": 0, "type": "IMAGE"},
	  {"id": 4, "origin_id": 5, "origin_slot": 0, "target_id": 6, "target_slot": 0, "type": "IMAGE"}]}`
	wf, err := comfy.ConvertUI([]byte(ui), conformanceInfo(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := inputText(t, wf, "4", "images"); got != `["1",0]` {
		t.Errorf("4.images = %s, want the first image through the bypassed blend", got)
	}
	if got := inputText(t, wf, "2", "color"); got != `16777215` {
		t.Errorf("2.color = %s", got)
	}
	// The muted source leaves PreviewImage unconnected, as the frontend does;
	// Validate then reports it.
	n, _ := wf.Node("6")
	if n.HasInput("images") {
		t.Error("input fed by a muted node was kept")
	}
	if err := wf.Validate(conformanceInfo(t)); err == nil || !strings.Contains(err.Error(), `node 6 (PreviewImage) input "images": required input is missing`) {
		t.Errorf("Validate: %v", err)
	}
}

func TestConvertUIErrors(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	node := func(extra string) string {
		return `{"nodes": [` + extra + `], "links": []}`
	}
	for _, tc := range []struct {
		name string
		in   string
		info comfy.ObjectInfo
		want []string
	}{
		{"no object_info", node(`{"id": 1, "type": "SaveImage", "widgets_values": ["x"]}`), nil, []string{"object_info is needed", "Export (API)"}},
		{"unknown class", node(`{"id": 1, "type": "FancyUpscaler", "widgets_values": []}`), info, []string{`node 1 (FancyUpscaler): class "FancyUpscaler" is not in the server's object_info`, "Export (API)"}},
		{"subgraph", `{"nodes": [{"id": 3, "type": "0c1f2e3d-aaaa-bbbb-cccc-123456789abc"}], "links": [],
		  "definitions": {"subgraphs": [{"id": "0c1f2e3d-aaaa-bbbb-cccc-123456789abc", "name": "Upscale group"}]}}`, info, []string{"node 3 (Upscale group): it is a subgraph", "Export (API)"}},
		{"group node", `{"nodes": [{"id": 3, "type": "workflow>Sampler"}], "links": [], "extra": {"groupNodes": {"Sampler": {}}}}`, info, []string{"group nodes"}},
		{"too few widgets", node(`{"id": 1, "type": "ImageScale", "widgets_values": ["bilinear"]}`), info, []string{`no value for "width"`, "another version of the node"}},
		{"dangling link", node(`{"id": 1, "type": "SaveImage", "inputs": [{"name": "images", "type": "IMAGE", "link": 9}], "widgets_values": ["x"]}`), info, []string{"link 9 is used by a node but missing"}},
		{"only notes", node(`{"id": 1, "type": "Note", "widgets_values": ["hi"]}`), info, []string{"no node is left"}},
		{"bad link", `{"nodes": [], "links": [[1, 2]]}`, info, []string{"links[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := comfy.ConvertUI([]byte(tc.in), tc.info)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *comfy.ConversionError
			if !errors.As(err, &ce) || !errors.Is(err, comfy.ErrUIFormat) {
				t.Errorf("want a *ConversionError matching ErrUIFormat, got %T %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
