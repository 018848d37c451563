package comfy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/comfypod/comfypod/comfy"
)

// exampleServer is a stand-in for ComfyUI with just enough of its API for
// the examples: uploads, a prompt that "runs" at once, its history and /view.
func exampleServer() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload/image", func(w http.ResponseWriter, r *http.Request) {
		_, h, _ := r.FormFile("image")
		// input-1.png already exists with other contents: the server renames.
		_, _ = fmt.Fprintf(w, `{"name": %q, "subfolder": "", "type": "input"}`, strings.Replace(h.Filename, ".png", " (1).png", 1))
	})
	var promptID string
	mux.HandleFunc("POST /prompt", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Prompt   map[string]json.RawMessage `json:"prompt"`
			PromptID string                     `json:"prompt_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		promptID = body.PromptID
		if _, ok := body.Prompt["9"]; !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
			  "node_errors": {"2": {"errors": [{"type": "value_bigger_than_max", "message": "Value 16385 bigger than max of 16384", "details": "width", "extra_info": {"input_name": "width"}}],
			  "dependent_outputs": ["3"], "class_type": "ImageScale"}}}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"prompt_id": %q, "number": 0, "node_errors": {}}`, promptID)
	})
	mux.HandleFunc("GET /history/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, `{%q: {"prompt": [0, %q, {}, {}, ["9"]],
		  "outputs": {"9": {"images": [{"filename": "out_00001_.png", "subfolder": "brush", "type": "output"}]}},
		  "status": {"status_str": "success", "completed": true, "messages": []}, "meta": {}}}`, r.PathValue("id"), r.PathValue("id"))
	})
	mux.HandleFunc("GET /view", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "\x89PNG…")
	})
	return httptest.NewServer(mux)
}

// Run queues a workflow and waits for its outputs; View streams each file.
func ExampleClient_Run() {
	srv := exampleServer()
	defer srv.Close()
	ctx := context.Background()
	c, err := comfy.NewClient(srv.URL, comfy.WithPolling(10*time.Millisecond, time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	wf, _ := comfy.ParseWorkflow([]byte(`{
	  "422": {"class_type": "LoadImage", "inputs": {"image": "input-1.png"}},
	  "9": {"class_type": "SaveImage", "inputs": {"images": ["422", 0], "filename_prefix": "brush/out"}}}`))

	up, err := c.UploadImage(ctx, comfy.Upload{Name: "input-1.png", Data: strings.NewReader("png bytes")})
	if err != nil {
		fmt.Println(err)
		return
	}
	wf.RenameFile(nil, "input-1.png", up.Ref()) // the server renamed the upload

	res, err := c.Run(ctx, wf, comfy.RunOptions{PromptID: "job-1", OnEvent: func(e comfy.Event) {
		if e.Progress != nil {
			fmt.Printf("node %s: %.0f/%.0f\n", e.Progress.Node, e.Progress.Value, e.Progress.Max)
		}
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range res.Files() {
		d, err := c.View(ctx, f.FileRef)
		if err != nil {
			fmt.Println(err)
			return
		}
		n, _ := io.Copy(io.Discard, d)
		d.Close()
		fmt.Printf("%s: %s/%s (%s, %d bytes)\n", f.Node, f.Subfolder, f.Filename, f.Key, n)
	}
	n, _ := wf.Node("422")
	image, _ := n.Input("image")
	fmt.Println("LoadImage read", image)
	// Output:
	// 9: brush/out_00001_.png (images, 7 bytes)
	// LoadImage read "input-1 (1).png"
}

// A refused prompt is a *PromptError that names node, class and input.
func ExamplePromptError() {
	srv := exampleServer()
	defer srv.Close()
	c, _ := comfy.NewClient(srv.URL)
	wf, _ := comfy.ParseWorkflow([]byte(`{"2": {"class_type": "ImageScale", "inputs": {"width": 16385}}}`))
	_, err := c.QueuePrompt(context.Background(), comfy.PromptRequest{Workflow: wf})
	fmt.Println(err)
	// Output:
	// ComfyUI refused the prompt: Prompt outputs failed validation
	//   - node 2 (ImageScale) input "width": Value 16385 bigger than max of 16384
}

// DecodeHistory reads every output family: images, VHS videos ("gifs"),
// audio, and the non-file lists beside them.
func ExampleDecodeHistory() {
	entries, _ := comfy.DecodeHistory([]byte(`{"p1": {"prompt": [0, "p1", {}, {}, ["15"]],
	  "outputs": {"15": {"gifs": [{"filename": "dance_00001.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4", "frame_rate": 16.0}]},
	              "16": {"images": [{"filename": "a.webp", "subfolder": "", "type": "output"}], "animated": [true]}},
	  "status": {"status_str": "success", "completed": true, "messages": []}}}`))
	for _, f := range entries[0].Files() {
		fmt.Println(f.Node, f.Key, f.Filename, f.Format, f.FrameRate)
	}
	// Output:
	// 15 gifs dance_00001.mp4 video/h264-mp4 16
	// 16 images a.webp  0
}
