package worker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"os"

	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
)

// The handler runs a worker-comfyui job against a ComfyUI server (here the
// engine) and returns its outputs as base64.
func ExampleHandler_Handle() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	eng, _ := engine.New(&engine.Config{Dir: dir})
	_ = eng.Start(context.Background())
	defer eng.Stop(context.Background())
	comfyUI := httptest.NewServer(eng)
	defer comfyUI.Close()

	h, err := worker.New(&worker.Config{ComfyURL: comfyUI.URL, ComfyDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	if err := h.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	var in bytes.Buffer
	_ = png.Encode(&in, image.NewGray(image.Rect(0, 0, 8, 4)))
	input, _ := json.Marshal(map[string]any{
		"workflow": map[string]any{
			"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": "input.png"}},
			"2": map[string]any{"class_type": "ImageInvert", "inputs": map[string]any{"image": []any{"1", 0}}},
			"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "inverted"}},
		},
		"images": []any{map[string]any{"name": "input.png", "image": "data:image/png;base64," + base64.StdEncoding.EncodeToString(in.Bytes())}},
	})
	res, err := h.Handle(context.Background(), &serverless.Job{ID: "job-1", Input: input})
	if err != nil {
		fmt.Println(err)
		return
	}
	out := res.(serverless.Result).Output.(*worker.Output)
	img := out.Images[0]
	data, _ := base64.StdEncoding.DecodeString(img.Data)
	cfg, _ := png.DecodeConfig(bytes.NewReader(data))
	fmt.Println(img.Filename, img.Type, img.Format, cfg.Width, cfg.Height)
	// Output: inverted_00001_.png base64 image/png 8 4
}

// A job that cannot run fails with every problem, each located in the input.
func ExampleDecodeInput() {
	_, err := worker.DecodeInput([]byte(`{"images": [{"name": "a.png"}, {"image": "iVBORw0KGgo="}], "output": {"formt": "png"}}`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, worker.ErrInvalidInput))
	// Output:
	// invalid job input: 3 problems:
	//   - images[0].image: missing: give the image as base64, a data: URI or an https URL
	//   - images[1].name: missing: give the file name the workflow's LoadImage node uses, e.g. "input-1.png"
	//   - output.formt: unknown option (did you mean "format"?); output takes format, quality, upload and include_temp
	// true
}

// What a client reads when ComfyUI refuses a workflow: the node, its class,
// the input and ComfyUI's message, one line each.
func ExampleError() {
	err := &worker.Error{Kind: worker.ErrInvalidWorkflow, Message: "ComfyUI refused the workflow: Prompt outputs failed validation",
		Problems: []worker.Problem{
			{Node: "9", ClassType: "SaveImage", Input: "images", Message: "Required input is missing"},
			{Node: "3", ClassType: "KSampler", Input: "steps", Message: "Value 0 smaller than min of 1"},
		}}
	fmt.Println(err)
	// Output:
	// ComfyUI refused the workflow: Prompt outputs failed validation: 2 problems:
	//   - node 9 (SaveImage) input "images": Required input is missing
	//   - node 3 (KSampler) input "steps": Value 0 smaller than min of 1
}
