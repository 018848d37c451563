package comfy_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/comfypod/comfypod/comfy"
)

// A workflow sent as JSON.stringify(workflow) parses like the object itself;
// edits keep the exact text of every other value.
func ExampleParseWorkflow() {
	data := []byte(`"{\"689\": {\"inputs\": {\"seed\": 123456789012345678, \"cfg\": 1.0}, \"class_type\": \"KSampler\"}, \"9\": {\"inputs\": {\"images\": [\"689\", 0], \"filename_prefix\": \"brush/out\"}, \"class_type\": \"SaveImage\"}}"`)
	wf, err := comfy.ParseWorkflow(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := wf.Set("689", "seed", 42); err != nil {
		fmt.Println(err)
	}
	fmt.Println(wf.Set("689", "sed", 42))
	prefixes, _ := wf.UniquePrefixes("job-7")
	fmt.Println(prefixes["9"])
	out, _ := wf.MarshalJSON()
	fmt.Println(string(out))
	// Output:
	// node 689 (KSampler) has no input "sed"; it has "seed", "cfg"
	// brush/job-7_out
	// {"689":{"inputs":{"seed":42,"cfg":1.0},"class_type":"KSampler"},"9":{"inputs":{"images":["689",0],"filename_prefix":"brush/job-7_out"},"class_type":"SaveImage"}}
}

// Validate reports every problem at once; with /object_info it also checks
// classes, link types, ranges and options.
func ExampleWorkflow_Validate() {
	info, _ := comfy.ParseObjectInfo([]byte(`{
	  "EmptyImage": {"input": {"required": {"width": ["INT", {"default": 512, "min": 1, "max": 16384}]}},
	                 "output": ["IMAGE"], "name": "EmptyImage", "output_node": false},
	  "SaveImage": {"input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
	                "output": [], "name": "SaveImage", "output_node": true}}`))
	wf, _ := comfy.DecodeWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 20000}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 1]}}}`))
	fmt.Println(wf.Validate(info))
	// Output:
	// invalid workflow (3 problems):
	//   - node 1 (EmptyImage) input "width": value 20000 is above the maximum 16384
	//   - node 2 (SaveImage) input "filename_prefix": required input is missing
	//   - node 2 (SaveImage) input "images": links to output 1 of node 1 (EmptyImage), which has only outputs 0..0 (IMAGE)
}

// A manifest names the inputs callers may set; Apply checks bindings and
// values, collects every problem, and writes nothing unless all is well.
func ExampleManifest_Apply() {
	m, err := comfy.ParseManifest([]byte(`{
	  "workflows": {"default": "workflow_api.json"},
	  "params": [
	    {"name": "seed", "type": "int", "default": "random", "random": true, "min": 0, "max": 1000,
	     "bind": {"default": [{"node": "689", "input": "seed", "class_type": "KSampler"}]}},
	    {"name": "prompt", "type": "string", "max_length": 200,
	     "bind": {"default": [{"node": "658", "input": "text", "class_type": "CLIPTextEncode"}]}},
	    {"name": "strength", "type": "float", "min": 0, "max": 10, "default": 1.0,
	     "bind": {"default": [{"node": "667", "input": "strength", "class_type": "StyleModelApply"}]}}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	wf, _ := comfy.ParseWorkflow([]byte(`{
	  "689": {"class_type": "KSampler", "inputs": {"seed": 1}},
	  "658": {"class_type": "KSampler", "inputs": {"text": "a cat"}},
	  "667": {"class_type": "StyleModelApply", "inputs": {"strength": 1.0}}}`))
	rnd := rand.New(rand.NewPCG(1, 2))

	_, err = m.Apply(wf, "default", map[string]any{"prompt": "a dog", "strength": 12}, comfy.ApplyOptions{Rand: rnd})
	fmt.Println(err)

	n, _ := wf.Node("658")
	n.ClassType = "CLIPTextEncode" // the workflow fixed
	applied, err := m.Apply(wf, "default", map[string]any{"prompt": "a dog", "strength": 0.5}, comfy.ApplyOptions{Rand: rnd})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := wf.MarshalJSON()
	fmt.Println(string(out))
	fmt.Println("seed used:", applied.Values["seed"])
	// Output:
	// 2 problems with params:
	//   - param `prompt`: node 658 is KSampler, expected CLIPTextEncode
	//   - param `strength`: 12 is above the max 10
	// {"689":{"class_type":"KSampler","inputs":{"seed":770}},"658":{"class_type":"CLIPTextEncode","inputs":{"text":"a dog"}},"667":{"class_type":"StyleModelApply","inputs":{"strength":0.5}}}
	// seed used: 770
}

// ConvertUI turns a UI export into the API format using /object_info.
func ExampleConvertUI() {
	info, _ := comfy.ParseObjectInfo([]byte(`{
	  "LoadImage": {"input": {"required": {"image": [["cat.png"], {"image_upload": true}]}},
	                "output": ["IMAGE", "MASK"], "name": "LoadImage", "display_name": "Load Image"},
	  "SaveImage": {"input": {"required": {"images": ["IMAGE", {}], "filename_prefix": ["STRING", {}]}},
	                "output": [], "name": "SaveImage", "display_name": "Save Image", "output_node": true}}`))
	ui := []byte(`{"nodes": [
	    {"id": 1, "type": "LoadImage", "mode": 0, "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}], "widgets_values": ["cat.png", "image"]},
	    {"id": 2, "type": "Note", "mode": 0, "widgets_values": ["remember to export"]},
	    {"id": 3, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "widgets_values": ["cats"]}],
	  "links": [[1, 1, 0, 3, 0, "IMAGE"]]}`)
	wf, err := comfy.ConvertUI(ui, info)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := wf.MarshalJSON()
	fmt.Println(string(out))
	// Output:
	// {"1":{"inputs":{"image":"cat.png"},"class_type":"LoadImage","_meta":{"title":"Load Image"}},"3":{"inputs":{"images":["1",0],"filename_prefix":"cats"},"class_type":"SaveImage","_meta":{"title":"Save Image"}}}
}
