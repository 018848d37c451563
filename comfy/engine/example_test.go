package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/coder/websocket"

	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// runPrompt posts a prompt with a client id, waits on the websocket for
// `executing` with node null, and returns the history entry — what every
// ComfyUI client does.
func runPrompt(base, prompt string) (map[string]any, error) {
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws?clientId=example", nil)
	if err != nil {
		return nil, err
	}
	defer ws.CloseNow()

	resp, err := http.Post(base+"/prompt", "application/json",
		strings.NewReader(`{"prompt": `+prompt+`, "client_id": "example"}`))
	if err != nil {
		return nil, err
	}
	var queued struct {
		PromptID string `json:"prompt_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&queued)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m struct {
			Type string `json:"type"`
			Data struct {
				Node     *string `json:"node"`
				PromptID string  `json:"prompt_id"`
			} `json:"data"`
		}
		if json.Unmarshal(data, &m) == nil && m.Type == "executing" && m.Data.Node == nil && m.Data.PromptID == queued.PromptID {
			break
		}
	}
	resp, err = http.Get(base + "/history/" + queued.PromptID)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var hist map[string]map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil {
		return nil, err
	}
	return hist[queued.PromptID], nil
}

// A server on loopback runs an image workflow and saves the result in
// output/.
func Example() {
	dir, _ := os.MkdirTemp("", "engine-example")
	defer os.RemoveAll(dir)

	s, err := engine.New(&engine.Config{Dir: dir, DisableMetadata: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Stop(context.Background())

	h, err := runPrompt(ts.URL, `{
		"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 32, "batch_size": 1, "color": 16744448}},
		"2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
		"3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example/inverted"}}}`)
	if err != nil {
		log.Fatal(err)
	}
	status := h["status"].(map[string]any)
	images := h["outputs"].(map[string]any)["3"].(map[string]any)["images"].([]any)
	fmt.Println(status["status_str"], images[0])
	_, err = os.Stat(dir + "/output/example/inverted_00001_.png")
	fmt.Println("saved:", err == nil)
	// Output:
	// success map[filename:inverted_00001_.png subfolder:example type:output]
	// saved: true
}

// Workflows that need models fail validation the way ComfyUI refuses a class
// it does not have.
func Example_modelWorkflow() {
	dir, _ := os.MkdirTemp("", "engine-example")
	defer os.RemoveAll(dir)
	s, err := engine.New(&engine.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Stop(context.Background())

	resp, err := http.Post(ts.URL+"/prompt", "application/json", strings.NewReader(`{"prompt": {
		"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20}},
		"9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}}}`))
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	fmt.Println(string(body))
	// Output:
	// 400
	// {"error": {"type": "invalid_prompt", "message": "Cannot execute because node KSampler does not exist.", "details": "Node ID '#3'", "extra_info": {}}, "node_errors": {}}
}

// Config.Classes adds node classes: here a stand-in for a custom output node
// that reports a value in its UI dict.
func ExampleConfig_classes() {
	var info node.Info
	if err := json.Unmarshal([]byte(`{
		"input": {"required": {"text": ["STRING", {"default": ""}]}},
		"input_order": {"required": ["text"]},
		"output": [], "output_is_list": [], "output_name": [],
		"name": "ShowText", "display_name": "Show Text", "description": "",
		"python_module": "custom_nodes.example", "category": "utils", "output_node": true}`), &info); err != nil {
		log.Fatal(err)
	}
	showText := &node.Class{
		Info: &info,
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			return &node.Result{UI: map[string]any{"text": []string{strings.ToUpper(in.String("text"))}}}, nil
		},
	}

	dir, _ := os.MkdirTemp("", "engine-example")
	defer os.RemoveAll(dir)
	s, err := engine.New(&engine.Config{Dir: dir, Classes: []*node.Class{showText}})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	defer s.Stop(context.Background())

	h, err := runPrompt(ts.URL, `{"1": {"class_type": "ShowText", "inputs": {"text": "hello"}}}`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h["outputs"])
	// Output:
	// map[1:map[text:[HELLO]]]
}
