package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const chainPrompt = `{
  "1": {"class_type": "TestConst", "inputs": {"value": 7}},
  "2": {"class_type": "TestAdd", "inputs": {"a": ["1", 0], "b": 2}},
  "3": {"class_type": "TestOut", "inputs": {"value": ["2", 0], "label": "sum"}}
}`

func TestRunMessageSequence(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("client-a")
	first := ws.next()
	if first.Type != "status" || first.data()["sid"] != "client-a" {
		t.Fatalf("first message = %s %s", first.Type, first.Data)
	}

	status, resp := e.postPrompt(chainPrompt, "client-a")
	if status != 200 {
		t.Fatalf("POST /prompt = %d %v", status, resp)
	}
	id := resp["prompt_id"].(string)
	if resp["number"] != 0.0 || !reflect.DeepEqual(resp["node_errors"], map[string]any{}) {
		t.Errorf("answer = %v", resp)
	}
	msgs := ws.untilDone(id)
	want := []string{
		"status", "status", "execution_start", "execution_cached",
		"progress_state", "executing", "progress_state",
		"progress_state", "executing", "progress_state",
		"progress_state", "executing", "executed", "progress_state",
		"execution_success", "status", "executing",
	}
	if got := types(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("messages:\n got %v\nwant %v", got, want)
	}
	// executed carries the UI dict; progress_state carries every node so far,
	// with Python's float forms.
	if !strings.Contains(string(msgs[12].Raw), `"output": {"label": ["sum"], "values": [9]}`) {
		t.Errorf("executed = %s", msgs[12].Raw)
	}
	if !strings.Contains(string(msgs[13].Raw), `"3": {"value": 1.0, "max": 1.0, "state": "finished"`) {
		t.Errorf("last progress_state = %s", msgs[13].Raw)
	}

	var hist map[string]map[string]any
	e.getJSON("/history/"+id, &hist)
	h := hist[id]
	if h == nil {
		t.Fatalf("no history for %s", id)
	}
	st := h["status"].(map[string]any)
	if st["status_str"] != "success" || st["completed"] != true {
		t.Errorf("status = %v", st)
	}
	if got := h["outputs"].(map[string]any)["3"]; !reflect.DeepEqual(got, map[string]any{"label": []any{"sum"}, "values": []any{9.0}}) {
		t.Errorf("outputs[3] = %v", got)
	}
	p := h["prompt"].([]any)
	if p[1] != id || !reflect.DeepEqual(p[3], map[string]any{"client_id": "client-a"}) || !reflect.DeepEqual(p[4], []any{"3"}) {
		t.Errorf("prompt tuple = %v", p)
	}

	// The same prompt again is served from the cache: nothing runs, the output
	// node re-sends its UI.
	before := tc.count("TestConst") + tc.count("TestAdd") + tc.count("TestOut")
	_, resp = e.postPrompt(chainPrompt, "client-a")
	id2 := resp["prompt_id"].(string)
	msgs = ws.untilDone(id2)
	want = []string{"status", "status", "execution_start", "execution_cached", "executed", "progress_state", "execution_success", "status", "executing"}
	if got := types(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("cached run messages:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(string(msgs[3].Raw), `"nodes": ["1", "2", "3"]`) {
		t.Errorf("execution_cached = %s", msgs[3].Raw)
	}
	if !strings.Contains(string(msgs[5].Raw), `"value": 1, "max": 1,`) {
		t.Errorf("cached progress_state = %s", msgs[5].Raw)
	}
	if after := tc.count("TestConst") + tc.count("TestAdd") + tc.count("TestOut"); after != before {
		t.Errorf("cached run executed %d nodes", after-before)
	}
}

func TestStartStopLifecycle(t *testing.T) {
	t.Parallel()
	s, err := New(&Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []*Config{
		{},
		{Dir: t.TempDir(), MaxUploadSize: -1},
		{Dir: t.TempDir(), CORSOrigin: "not an origin"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	tc := newTestClasses(t)
	if _, err := New(&Config{Dir: t.TempDir(), Classes: append(tc.classes, tc.classes[0])}); err == nil {
		t.Error("New accepted a class listed twice")
	}
}

func decodeAnswer(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return m
}

func TestTypeUnionsWildcardsAndSecrets(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	// "*" accepts any type, "FLOAT,INT" accepts INT; "x" is typed "*", so a
	// constant goes through uncoerced.
	body := `{"prompt": {"1": {"class_type": "TestConst", "inputs": {"value": 3}},
		"2": {"class_type": "TestAny", "inputs": {"x": ["1", 0], "y": ["1", 0]}},
		"3": {"class_type": "TestAny", "inputs": {"x": "text"}}},
		"client_id": "c", "extra_data": {"api_key_comfy_org": "sk-secret", "extra_pnginfo": {"workflow": {}}}}`
	s, data := e.postJSON("/prompt", body)
	if s != 200 {
		t.Fatalf("POST = %d %s", s, data)
	}
	id := decodeAnswer(t, data)["prompt_id"].(string)
	ws.untilDone(id)
	_, _, hist := e.do("GET", "/history/"+id, nil, "")
	if strings.Contains(string(hist), "sk-secret") || !strings.Contains(string(hist), `"extra_pnginfo": {"workflow": {}}, "client_id": "c"`) {
		t.Errorf("history = %s", hist)
	}
	_, _, q := e.do("GET", "/queue", nil, "")
	if strings.Contains(string(q), "sk-secret") {
		t.Errorf("queue shows the secret: %s", q)
	}

	// A failing IsChanged makes the node run every time, like ComfyUI's NaN.
	for range 2 {
		_, resp := e.postPrompt(`{"1": {"class_type": "TestAny", "inputs": {"x": -1}}}`, "c")
		ws.untilDone(resp["prompt_id"].(string))
	}
	if n := tc.count("TestAny"); n != 4 {
		t.Errorf("TestAny ran %d times, want 4", n)
	}
	s, data = e.postJSON("/prompt", `{"prompt": {"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "x", "ratio": 0.5, "flag": true}}, "2": {"class_type": "TestAny", "inputs": {"x": 1, "y": ["1", 0]}}}}`)
	if s != 200 {
		t.Errorf("INT into FLOAT,INT = %d %s", s, data)
	}
}

// Nodes see the engine's clock and the prompt's JSON in the client's key
// order: SaveImage dates its folder with Config.Now and writes the prompt
// chunk with the keys where the client put them.
func TestNodesSeeClockAndPromptOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.Local)
	e := newTestEnv(t, &Config{Now: func() time.Time { return now }})
	ws := e.dial("c")
	ws.next()
	prompt := `{"9": {"inputs": {"images": ["10", 0], "filename_prefix": "%year%-%month%-%day%/shot_%hour%%minute%%second%"}, "class_type": "SaveImage"},
		"10": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 1, "batch_size": 1, "color": 0}}}`
	status, resp := e.postPrompt(prompt, "c")
	if status != 200 {
		t.Fatalf("POST /prompt = %d %v", status, resp)
	}
	ws.untilDone(resp["prompt_id"].(string))
	data, err := os.ReadFile(filepath.Join(e.s.OutputDir(), "2030-01-02", "shot_030405_00001_.png"))
	if err != nil {
		t.Fatalf("SaveImage did not use the engine's clock: %v", err)
	}
	want := `tEXtprompt` + "\x00" + `{"9": {"inputs": {"images": ["10", 0], "filename_prefix": "%year%-%month%-%day%/shot_%hour%%minute%%second%"}, "class_type": "SaveImage"}, ` +
		`"10": {"class_type": "EmptyImage", "inputs": {"width": 2, "height": 1, "batch_size": 1, "color": 0}}}`
	if !bytes.Contains(data, []byte(want)) {
		t.Errorf("no prompt chunk %q in %q", want, data)
	}
}
