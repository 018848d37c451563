package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// These tests replay, step for step, what ComfyUI's own clients do, to show
// they work unchanged against the engine: script_examples/websockets_api_example.py
// and runpod-workers/worker-comfyui's handler.py.

func tinyPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func requireClasses(t testing.TB, e *testEnv, names ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, n := range e.s.Classes() {
		have[n] = true
	}
	for _, n := range names {
		if !have[n] {
			t.Skipf("core class %s not implemented yet", n)
		}
	}
}

// TestWebsocketsAPIExample follows websockets_api_example.py: a uuid4
// client id, a caller-chosen prompt_id, a urllib POST (form content type, as
// urllib sends it), waiting for executing with node None, then history and
// /view for every image.
func TestWebsocketsAPIExample(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	requireClasses(t, e, "LoadImage", "ImageInvert", "SaveImage", "PreviewImage")
	if s, body := e.upload("/upload/image", "example.png", tinyPNG(t, 5, 4), map[string]string{"overwrite": "true"}); s != 200 {
		t.Fatalf("upload = %d %s", s, body)
	}
	clientID := newUUID(true)
	ws := e.dial(clientID)

	promptID := newUUID(true)
	prompt := `{"1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
		"2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
		"3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "example"}},
		"4": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}`
	body := fmt.Sprintf(`{"prompt": %s, "client_id": %q, "prompt_id": %q}`, prompt, clientID, promptID)
	if s, _, data := e.do("POST", "/prompt", strings.NewReader(body), "application/x-www-form-urlencoded"); s != 200 {
		t.Fatalf("queue_prompt = %d %s", s, data)
	}
	for {
		m := ws.next()
		if m.Binary {
			continue // previews are binary data
		}
		if m.Type == "executing" {
			d := m.data()
			if d["node"] == nil && d["prompt_id"] == promptID {
				break // execution is done
			}
		}
	}
	var history map[string]struct {
		Outputs map[string]map[string][]struct {
			Filename, Subfolder, Type string
		} `json:"outputs"`
	}
	e.getJSON("/history/"+promptID, &history)
	images := 0
	for nodeID, out := range history[promptID].Outputs {
		for _, img := range out["images"] {
			q := url.Values{"filename": {img.Filename}, "subfolder": {img.Subfolder}, "type": {img.Type}}
			s, _, data := e.do("GET", "/view?"+q.Encode(), nil, "")
			if s != 200 {
				t.Fatalf("get_image(%s) = %d", img.Filename, s)
			}
			if _, err := png.Decode(bytes.NewReader(data)); err != nil {
				t.Errorf("node %s image %s: %v", nodeID, img.Filename, err)
			}
			images++
		}
	}
	if images != 2 {
		t.Errorf("got %d images, want 2 (saved and preview)", images)
	}
}

// workerComfyUI is a Go transcription of worker-comfyui's handler: check
// the server, upload the images, queue with a client id, watch the socket,
// read history, fetch non-temp images as base64.
type workerComfyUI struct {
	e *testEnv
}

type workerResult struct {
	Images []struct {
		Filename string `json:"filename"`
		Type     string `json:"type"`
		Data     string `json:"data"`
	} `json:"images"`
	Error string `json:"error"`
}

func (wk *workerComfyUI) handle(t *testing.T, workflow string, images map[string][]byte) workerResult {
	t.Helper()
	e := wk.e
	// check_server: GET / until it answers 200.
	if s, _, _ := e.do("GET", "/", nil, ""); s != http.StatusOK {
		t.Fatalf("check_server: %d", s)
	}
	for name, blob := range images {
		if s, body := e.upload("/upload/image", name, blob, map[string]string{"overwrite": "true"}); s != 200 {
			return workerResult{Error: fmt.Sprintf("Error uploading %s: %s", name, body)}
		}
	}
	clientID := newUUID(true)
	ws := e.dial(clientID)
	s, data := e.postJSON("/prompt", fmt.Sprintf(`{"prompt": %s, "client_id": %q}`, workflow, clientID))
	if s == 400 {
		var r struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
			NodeErrors map[string]any `json:"node_errors"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("400 body: %v", err)
		}
		return workerResult{Error: fmt.Sprintf("Workflow validation failed:\n• %s: %s", r.Error.Type, r.Error.Message)}
	}
	var queued struct {
		PromptID string `json:"prompt_id"`
	}
	if err := json.Unmarshal(data, &queued); err != nil || queued.PromptID == "" {
		t.Fatalf("queue_workflow: %s", data)
	}
	var execErr map[string]any
	for {
		m := ws.next()
		if m.Binary {
			continue
		}
		d := m.data()
		if m.Type == "executing" && d["node"] == nil && d["prompt_id"] == queued.PromptID {
			break
		}
		if m.Type == "execution_error" && d["prompt_id"] == queued.PromptID {
			execErr = d
			break
		}
	}
	var history map[string]struct {
		Outputs map[string]map[string]json.RawMessage `json:"outputs"`
	}
	e.getJSON("/history/"+queued.PromptID, &history)
	if _, ok := history[queued.PromptID]; !ok {
		return workerResult{Error: fmt.Sprintf("Prompt ID %s not found in history after execution.", queued.PromptID)}
	}
	if execErr != nil {
		return workerResult{Error: fmt.Sprintf("Workflow execution error: Node Type: %v, Node ID: %v, Message: %v", execErr["node_type"], execErr["node_id"], execErr["exception_message"])}
	}
	var res workerResult
	for _, out := range history[queued.PromptID].Outputs {
		raw, ok := out["images"]
		if !ok {
			continue
		}
		var imgs []struct{ Filename, Subfolder, Type string }
		if err := json.Unmarshal(raw, &imgs); err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs {
			if img.Type == "temp" {
				continue
			}
			q := url.Values{"filename": {img.Filename}, "subfolder": {img.Subfolder}, "type": {img.Type}}
			s, _, blob := e.do("GET", "/view?"+q.Encode(), nil, "")
			if s != 200 {
				t.Fatalf("/view %s = %d", img.Filename, s)
			}
			res.Images = append(res.Images, struct {
				Filename string `json:"filename"`
				Type     string `json:"type"`
				Data     string `json:"data"`
			}{img.Filename, "base64", base64.StdEncoding.EncodeToString(blob)})
		}
	}
	return res
}

func TestWorkerComfyUIHandler(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Config{DisableMetadata: true})
	requireClasses(t, e, "LoadImage", "ImageInvert", "SaveImage", "PreviewImage", "EmptyImage", "ImageBlend")
	wk := &workerComfyUI{e: e}

	res := wk.handle(t, `{"1": {"class_type": "LoadImage", "inputs": {"image": "input-1.png"}},
		"2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
		"3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "job"}},
		"4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}`,
		map[string][]byte{"input-1.png": tinyPNG(t, 6, 6)})
	if res.Error != "" || len(res.Images) != 1 || res.Images[0].Filename != "job_00001_.png" {
		t.Fatalf("success job = %+v", res)
	}
	blob, err := base64.StdEncoding.DecodeString(res.Images[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(blob)); err != nil {
		t.Errorf("returned image: %v", err)
	}

	res = wk.handle(t, `{"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
		"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}`, nil)
	if !strings.Contains(res.Error, "invalid_prompt: Cannot execute because node CheckpointLoaderSimple does not exist.") {
		t.Errorf("model workflow = %+v", res)
	}

	res = wk.handle(t, `{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"2": {"class_type": "ImageBlend", "inputs": {"image1": ["1", 0], "image2": ["1", 0], "blend_factor": 0.5, "blend_mode": "bogus"}},
		"3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "never"}}}`, nil)
	if !strings.HasPrefix(res.Error, "Workflow execution error: Node Type: ImageBlend, Node ID: 2, Message: ") {
		t.Errorf("failing workflow = %+v", res)
	}
}
