package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/comfypod/comfypod/internal/pyjson"
)

func TestRuntimeError(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	for _, c := range []struct{ message, excType, excMessage string }{
		{"boom", "ValueError", "boom\n"},
		{"panic", "RuntimeError", "panic: test panic\n"},
	} {
		_, resp := e.postPrompt(`{"1": {"class_type": "TestConst", "inputs": {"value": 4}},
			"2": {"class_type": "TestFail", "inputs": {"value": ["1", 0], "message": "`+c.message+`"}},
			"3": {"class_type": "TestOut", "inputs": {"value": ["2", 0]}}}`, "c")
		id := resp["prompt_id"].(string)
		msgs := ws.untilDone(id)
		got := types(msgs)
		want := []string{"status", "status", "execution_start", "execution_cached",
			"progress_state", "executing", "progress_state", "progress_state", "executing",
			"execution_error", "status", "executing"}
		if c.message == "panic" {
			// Node 1 is cached from the first prompt.
			want = []string{"status", "status", "execution_start", "execution_cached",
				"progress_state", "executing", "execution_error", "status", "executing"}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: messages\n got %v\nwant %v", c.message, got, want)
		}
		errMsg := msgs[len(msgs)-3]
		var d struct {
			PromptID       string         `json:"prompt_id"`
			NodeID         string         `json:"node_id"`
			NodeType       string         `json:"node_type"`
			Executed       []string       `json:"executed"`
			Message        string         `json:"exception_message"`
			Type           string         `json:"exception_type"`
			Traceback      []string       `json:"traceback"`
			CurrentInputs  map[string]any `json:"current_inputs"`
			CurrentOutputs []string       `json:"current_outputs"`
			Timestamp      int64          `json:"timestamp"`
		}
		if err := json.Unmarshal(errMsg.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.PromptID != id || d.NodeID != "2" || d.NodeType != "TestFail" || d.Type != c.excType || d.Message != c.excMessage || len(d.Traceback) == 0 || d.Timestamp == 0 {
			t.Errorf("%s: execution_error = %s", c.message, errMsg.Data)
		}
		if !reflect.DeepEqual(d.CurrentInputs, map[string]any{"value": []any{4.0}, "message": []any{c.message}}) {
			t.Errorf("current_inputs = %v", d.CurrentInputs)
		}
		if !reflect.DeepEqual(d.CurrentOutputs, []string{"1", "2", "3"}) {
			t.Errorf("current_outputs = %v", d.CurrentOutputs)
		}
		var hist map[string]struct {
			Outputs map[string]any `json:"outputs"`
			Status  struct {
				StatusStr string  `json:"status_str"`
				Completed bool    `json:"completed"`
				Messages  [][]any `json:"messages"`
			} `json:"status"`
		}
		e.getJSON("/history/"+id, &hist)
		h := hist[id]
		if h.Status.StatusStr != "error" || h.Status.Completed || len(h.Outputs) != 0 || h.Status.Messages[len(h.Status.Messages)-1][0] != "execution_error" {
			t.Errorf("history = %+v", h)
		}
	}
}

func TestInterrupt(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	other := e.dial("other")
	ws.next()
	other.next()

	// An interrupt while idle is dropped, as in ComfyUI.
	if s, _ := e.postJSON("/interrupt", ""); s != 200 {
		t.Fatalf("POST /interrupt = %d", s)
	}
	block := `{"1": {"class_type": "TestConst", "inputs": {"value": %d}}, "2": {"class_type": "TestBlock", "inputs": {"value": ["1", 0]}}, "3": {"class_type": "TestOut", "inputs": {"value": ["2", 0]}}}`
	_, resp := e.postPrompt(fmt.Sprintf(block, 1), "c")
	id := resp["prompt_id"].(string)
	<-tc.started
	if e.s.interrupt("not-running") {
		t.Error("interrupt of another prompt id stopped the running one")
	}
	if s, _ := e.postJSON("/interrupt", `{"prompt_id": "`+id+`"}`); s != 200 {
		t.Fatalf("POST /interrupt = %d", s)
	}
	msgs := ws.untilDone(id)
	tail := types(msgs[len(msgs)-4:])
	if !reflect.DeepEqual(tail, []string{"executing", "execution_interrupted", "status", "executing"}) {
		t.Fatalf("messages end with %v", tail)
	}
	if d := msgs[len(msgs)-3].data(); d["node_id"] != "2" || d["node_type"] != "TestBlock" || !reflect.DeepEqual(d["executed"], []any{"1"}) {
		t.Errorf("execution_interrupted = %s", msgs[len(msgs)-3].Data)
	}
	var hist map[string]map[string]any
	e.getJSON("/history/"+id, &hist)
	if st := hist[id]["status"].(map[string]any); st["status_str"] != "error" || st["completed"] != false {
		t.Errorf("history status = %v", st)
	}

	// Without a client id, execution_interrupted goes to every socket, and a
	// global interrupt (no body) stops whatever runs.
	status, data := e.postJSON("/prompt", `{"prompt": `+fmt.Sprintf(block, 2)+`}`)
	if status != 200 {
		t.Fatalf("POST /prompt = %d %s", status, data)
	}
	id2 := decodeAnswer(t, data)["prompt_id"].(string)
	<-tc.started
	if s, _ := e.postJSON("/interrupt", ""); s != 200 {
		t.Fatal("POST /interrupt failed")
	}
	got := other.until(func(m wsMsg) bool { return m.Type == "execution_interrupted" })
	for _, m := range got {
		switch m.Type {
		case "executing", "execution_start", "execution_cached", "executed":
			t.Errorf("a client that did not queue the prompt got %s", m.Raw)
		}
	}
	if got[len(got)-1].data()["prompt_id"] != id2 {
		t.Errorf("execution_interrupted = %s", got[len(got)-1].Raw)
	}
	// The queue moves on.
	_, resp = e.postPrompt(`{"1": {"class_type": "TestOut", "inputs": {"value": 1}}}`, "c")
	ws.untilDone(resp["prompt_id"].(string))
}

func TestQueueOrderAndDelete(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	out := func(v int) string {
		return fmt.Sprintf(`{"1": {"class_type": "TestOut", "inputs": {"value": %d}}}`, v)
	}
	_, resp := e.postPrompt(`{"1": {"class_type": "TestBlock", "inputs": {"value": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, "c")
	blocker := resp["prompt_id"].(string)
	<-tc.started

	post := func(extra string) map[string]any {
		s, data := e.postJSON("/prompt", `{"prompt": `+out(len(extra))+`, "client_id": "c"`+extra+`}`)
		if s != 200 {
			t.Fatalf("POST /prompt = %d %s", s, data)
		}
		return decodeAnswer(t, data)
	}
	b := post(`, "prompt_id": "b"`)
	c := post(`, "prompt_id": "c", "front": true`)
	d := post(`, "prompt_id": "d", "number": 0.5`)
	x := post(`, "prompt_id": "x"`)
	if b["number"] != 1.0 || c["number"] != -2.0 || d["number"] != 0.5 || x["number"] != 3.0 {
		t.Errorf("numbers = %v %v %v %v", b["number"], c["number"], d["number"], x["number"])
	}
	_, _, raw := e.do("GET", "/queue", nil, "")
	if !strings.Contains(string(raw), `"number": 0.5`) && !strings.Contains(string(raw), `[0.5, "d"`) {
		t.Errorf("GET /queue does not show the float number: %s", raw)
	}
	var q struct {
		Running [][]json.RawMessage `json:"queue_running"`
		Pending [][]json.RawMessage `json:"queue_pending"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Running) != 1 || string(q.Running[0][1]) != `"`+blocker+`"` || len(q.Pending) != 4 || len(q.Running[0]) != 5 {
		t.Fatalf("queue = %s", raw)
	}
	if s, _ := e.postJSON("/queue", `{"delete": ["b"]}`); s != 200 {
		t.Fatal("delete failed")
	}
	var p struct {
		ExecInfo struct {
			QueueRemaining int `json:"queue_remaining"`
		} `json:"exec_info"`
	}
	e.getJSON("/prompt", &p)
	if p.ExecInfo.QueueRemaining != 4 {
		t.Errorf("queue_remaining = %d, want 4", p.ExecInfo.QueueRemaining)
	}
	e.s.interrupt(blocker)
	var order []string
	ws.until(func(m wsMsg) bool {
		if m.Type == "execution_start" {
			order = append(order, m.data()["prompt_id"].(string))
		}
		return m.Type == "executing" && m.data()["node"] == nil && m.data()["prompt_id"] == "x"
	})
	if !reflect.DeepEqual(order, []string{blocker, "c", "d", "x"}) {
		t.Errorf("run order = %v, want blocker, c, d, x", order)
	}
	var h map[string]any
	e.getJSON("/history/b", &h)
	if len(h) != 0 {
		t.Errorf("a deleted prompt has history: %v", h)
	}
}

func TestHistoryRoutes(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes, HistorySize: 2})
	ws := e.dial("c")
	ws.next()
	for i := 1; i <= 4; i++ {
		s, data := e.postJSON("/prompt", fmt.Sprintf(`{"prompt": {"1": {"class_type": "TestOut", "inputs": {"value": %d}}}, "client_id": "c", "prompt_id": "p%d"}`, i, i))
		if s != 200 {
			t.Fatalf("POST = %d %s", s, data)
		}
		ws.untilDone(fmt.Sprintf("p%d", i))
	}
	keys := func(path string) []string {
		_, _, raw := e.do("GET", path, nil, "")
		v := mustParse(t, raw).(*pyjson.Object)
		return v.Keys()
	}
	// Capacity 2 keeps up to 3 entries, oldest dropped first.
	if got := keys("/history"); !reflect.DeepEqual(got, []string{"p2", "p3", "p4"}) {
		t.Errorf("/history = %v", got)
	}
	if got := keys("/history?max_items=2"); !reflect.DeepEqual(got, []string{"p3", "p4"}) {
		t.Errorf("max_items=2: %v", got)
	}
	if got := keys("/history?max_items=1&offset=1"); !reflect.DeepEqual(got, []string{"p3"}) {
		t.Errorf("max_items=1&offset=1: %v", got)
	}
	if got := keys("/api/history?offset=2"); !reflect.DeepEqual(got, []string{"p4"}) {
		t.Errorf("offset=2: %v", got)
	}
	if s, _, _ := e.do("GET", "/history?max_items=x", nil, ""); s != 400 {
		t.Errorf("bad max_items = %d", s)
	}
	if s, _ := e.postJSON("/history", `{"delete": ["p3"]}`); s != 200 {
		t.Fatal("delete failed")
	}
	if got := keys("/history"); !reflect.DeepEqual(got, []string{"p2", "p4"}) {
		t.Errorf("after delete: %v", got)
	}
	if s, _ := e.postJSON("/history", `{"clear": true}`); s != 200 {
		t.Fatal("clear failed")
	}
	if got := keys("/history"); len(got) != 0 {
		t.Errorf("after clear: %v", got)
	}
}

func TestReconnectGetsCurrentNode(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	old := e.dial("same")
	old.next()
	_, resp := e.postPrompt(`{"1": {"class_type": "TestBlock", "inputs": {"value": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, "same")
	id := resp["prompt_id"].(string)
	<-tc.started
	old.until(func(m wsMsg) bool { return m.Type == "executing" })

	fresh := e.dial("same")
	if m := fresh.next(); m.Type != "status" || m.data()["sid"] != "same" {
		t.Fatalf("first message = %s", m.Raw)
	}
	if m := fresh.next(); string(m.Raw) != `{"type": "executing", "data": {"node": "1"}}` {
		t.Fatalf("second message = %s", m.Raw)
	}
	e.s.interrupt(id)
	got := fresh.untilDone(id)
	if got[0].Type != "execution_interrupted" {
		t.Errorf("reconnected socket got %v", types(got))
	}
	// The replaced socket gets nothing more (ComfyUI drops it from its map).
	select {
	case m, ok := <-old.msgs:
		if ok {
			t.Errorf("replaced socket got %s", m.Raw)
		}
	default:
	}
}

func TestFeatureFlags(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	ws := e.dial("")
	first := ws.next()
	sid, _ := first.data()["sid"].(string)
	if len(sid) != 32 {
		t.Errorf("generated sid = %q, want 32 hex digits", sid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ws.conn.Write(ctx, websocket.MessageText, []byte(`{"type": "feature_flags", "data": {"supports_preview_metadata": true}}`)); err != nil {
		t.Fatal(err)
	}
	m := ws.next()
	if string(m.Raw) != `{"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}}` {
		t.Errorf("feature_flags answer = %s", m.Raw)
	}
	// Only the first frame negotiates.
	if err := ws.conn.Write(ctx, websocket.MessageText, []byte(`{"type": "feature_flags", "data": {}}`)); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.postJSON("/queue", `{"clear": true}`); s != 200 {
		t.Fatal("POST /queue failed")
	}
	if m := ws.next(); m.Type != "status" {
		t.Errorf("second feature_flags frame was answered: %s", m.Raw)
	}
}

func TestNoClientIDGetsBroadcastsOnly(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	watcher := e.dial("w")
	watcher.next()
	s, data := e.postJSON("/prompt", `{"prompt": {"1": {"class_type": "TestProgress", "inputs": {"steps": 2}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}}`)
	if s != 200 {
		t.Fatalf("POST = %d %s", s, data)
	}
	got := watcher.until(func(m wsMsg) bool {
		return m.Type == "status" && m.data()["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"] == 0.0
	})
	// ComfyUI sends progress_state, progress and progress text to everybody
	// when the prompt has no client; the rest goes to nobody.
	allowed := map[string]bool{"status": true, "progress_state": true, "progress": true, "binary": true}
	for _, ty := range types(got) {
		if !allowed[ty] {
			t.Errorf("watcher got %s", ty)
		}
	}
}

func TestProgressAndText(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	_, resp := e.postPrompt(`{"1": {"class_type": "TestProgress", "inputs": {"steps": 2}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, "c")
	id := resp["prompt_id"].(string)
	msgs := ws.untilDone(id)
	var seq []string
	for _, m := range msgs {
		switch {
		case m.Binary:
			if binary.BigEndian.Uint32(m.Raw[:4]) != 3 || binary.BigEndian.Uint32(m.Raw[4:8]) != 1 || string(m.Raw[8:]) != "1done" {
				t.Errorf("text frame = %q", m.Raw)
			}
			seq = append(seq, "text")
		case m.Type == "progress":
			if string(m.Data) != fmt.Sprintf(`{"value": %d, "max": 2, "prompt_id": "%s", "node": "1"}`, len(seq)/2+1, id) {
				t.Errorf("progress = %s", m.Data)
			}
			seq = append(seq, "progress")
		case m.Type == "progress_state" && strings.Contains(string(m.Data), `"max": 2,`):
			seq = append(seq, "state")
		}
	}
	if len(seq) < 5 || !reflect.DeepEqual(seq[:5], []string{"state", "progress", "state", "progress", "text"}) {
		t.Errorf("progress messages = %v", seq)
	}
}

func TestFreeResetsCache(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	run := func() {
		_, resp := e.postPrompt(chainPrompt, "c")
		ws.untilDone(resp["prompt_id"].(string))
	}
	run()
	run()
	if n := tc.count("TestConst"); n != 1 {
		t.Fatalf("TestConst ran %d times, want 1 (second run cached)", n)
	}
	if s, _ := e.postJSON("/free", `{"unload_models": true, "free_memory": true}`); s != 200 {
		t.Fatal("POST /free failed")
	}
	run()
	if n := tc.count("TestConst"); n != 2 {
		t.Errorf("TestConst ran %d times after /free, want 2", n)
	}
	// Only the latest prompt's nodes stay cached.
	_, resp := e.postPrompt(`{"1": {"class_type": "TestOut", "inputs": {"value": 1}}}`, "c")
	ws.untilDone(resp["prompt_id"].(string))
	run()
	if n := tc.count("TestConst"); n != 3 {
		t.Errorf("TestConst ran %d times after another prompt, want 3", n)
	}
}

func TestIsChangedInvalidates(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	run := func(name string) {
		_, resp := e.postPrompt(`{"1": {"class_type": "TestChecked", "inputs": {"name": "`+name+`", "count": 2}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, "c")
		ws.untilDone(resp["prompt_id"].(string))
	}
	run("a")
	run("a")
	run("b")
	if n := tc.count("TestChecked"); n != 2 {
		t.Errorf("TestChecked ran %d times, want 2", n)
	}
}

func TestOriginGuardAndCORS(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	req := func(origin string) int {
		r, _ := http.NewRequest("GET", e.ts.URL+"/prompt", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		resp, err := e.ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := req("http://evil.example"); s != 403 {
		t.Errorf("cross-origin request = %d, want 403", s)
	}
	if s := req(e.ts.URL); s != 200 {
		t.Errorf("same-origin request = %d", s)
	}
	if s := req(""); s != 200 {
		t.Errorf("request without Origin = %d", s)
	}

	c := newTestEnv(t, &Config{CORSOrigin: "*"})
	r, _ := http.NewRequest("OPTIONS", c.ts.URL+"/prompt", nil)
	r.Header.Set("Origin", "http://elsewhere.example")
	resp, err := c.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("CORS preflight = %d %v", resp.StatusCode, resp.Header)
	}
}

func writePNGFile(t *testing.T, path string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestViewRoute(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(40 * (i % 6))
	}
	orig := writePNGFile(t, filepath.Join(e.s.OutputDir(), "sub", "x.png"), img)
	writePNGFile(t, filepath.Join(e.s.InputDir(), "in.png"), img)

	for _, c := range []struct {
		query  string
		status int
		ctype  string
	}{
		{"filename=x.png&subfolder=sub", 200, "image/png"},
		{"filename=x.png&subfolder=sub&type=output", 200, "image/png"},
		{"filename=in.png%20%5Binput%5D&type=output", 200, "image/png"},
		{"filename=sub/x.png&subfolder=sub", 200, "image/png"}, // the name's folder is dropped
		{"filename=x.png", 404, "application/octet-stream"},
		{"filename=", 400, "application/octet-stream"},
		{"filename=/etc/passwd", 400, "application/octet-stream"},
		{"filename=x.png&type=models", 400, "application/octet-stream"},
		{"filename=x.png&subfolder=../input", 403, "application/octet-stream"},
		{"filename=x.png&subfolder=/etc", 403, "application/octet-stream"},
		{"subfolder=sub", 404, "application/octet-stream"},
		{"filename=x.png&subfolder=sub&preview=jpeg;50", 200, "image/jpeg"},
		{"filename=x.png&subfolder=sub&preview=webp;90", 200, "image/webp"},
		{"filename=x.png&subfolder=sub&preview=png", 200, "image/webp"},
	} {
		s, ct, body := e.do("GET", "/view?"+c.query, nil, "")
		if s != c.status || ct != c.ctype {
			t.Errorf("/view?%s = %d %s, want %d %s", c.query, s, ct, c.status, c.ctype)
		}
		if c.query == "filename=x.png&subfolder=sub" && !bytes.Equal(body, orig) {
			t.Errorf("/view changed the file bytes")
		}
	}

	_, _, rgb := e.do("GET", "/view?filename=x.png&subfolder=sub&channel=rgb", nil, "")
	if pngMode(rgb) != "RGB" {
		t.Errorf("channel=rgb mode = %s", pngMode(rgb))
	}
	got, err := png.Decode(bytes.NewReader(rgb))
	if err != nil {
		t.Fatal(err)
	}
	if c := color.NRGBAModel.Convert(got.At(1, 0)).(color.NRGBA); c.R != img.Pix[4] || c.G != img.Pix[5] || c.A != 255 {
		t.Errorf("channel=rgb pixel = %v", c)
	}
	_, _, a := e.do("GET", "/view?filename=x.png&subfolder=sub&channel=a", nil, "")
	if pngMode(a) != "RGBA" {
		t.Errorf("channel=a mode = %s", pngMode(a))
	}
	ai, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	an := toNRGBA(ai)
	for i := 0; i < len(an.Pix); i += 4 {
		if an.Pix[i] != 0 || an.Pix[i+3] != img.Pix[i+3] {
			t.Fatalf("channel=a pixel %d = %v, want alpha %d on black", i/4, an.Pix[i:i+4], img.Pix[i+3])
		}
	}
	r, _ := http.NewRequest("GET", e.ts.URL+"/view?filename=x.png&subfolder=sub", nil)
	r.Header.Set("Range", "bytes=0-3")
	resp, err := e.ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 206 || resp.Header.Get("Content-Disposition") != `filename="x.png"` {
		t.Errorf("range request = %d %v", resp.StatusCode, resp.Header)
	}
}

// preview=jpeg drops alpha as Pillow's convert("RGB") does: a transparent
// pixel keeps its colour instead of turning black.
func TestViewJPEGPreviewKeepsColourUnderAlpha(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(img.Pix); i += 4 {
		alpha := uint8(0)
		if i/4%2 == 1 {
			alpha = 128
		}
		copy(img.Pix[i:], []uint8{200, 30, 60, alpha})
	}
	writePNGFile(t, filepath.Join(e.s.OutputDir(), "clear.png"), img)
	s, ct, body := e.do("GET", "/view?filename=clear.png&preview=jpeg;95", nil, "")
	if s != 200 || ct != "image/jpeg" {
		t.Fatalf("preview=jpeg = %d %s", s, ct)
	}
	got, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	near := func(a, b uint8) bool { return a-b < 12 || b-a < 12 }
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			c := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
			if !near(c.R, 200) || !near(c.G, 30) || !near(c.B, 60) || c.A != 255 {
				t.Fatalf("pixel %d,%d = %v, want about {200 30 60 255}", x, y, c)
			}
		}
	}
}

// /view conversions open files as Pillow does: a GIF's transparent palette
// entry keeps its colour under channel=rgb, and a file declaring more pixels
// than Pillow's decompression-bomb limit is refused before it is decoded.
func TestViewDecodesLikePillow(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	// 1×1 GIF, palette red and blue, index 0 (red) transparent, pixel 0.
	gifData := []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\xff" +
		"\x21\xf9\x04\x01\x00\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b")
	if err := os.WriteFile(filepath.Join(e.s.OutputDir(), "t.gif"), gifData, 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, rgb := e.do("GET", "/view?filename=t.gif&channel=rgb", nil, "")
	if s != 200 || pngMode(rgb) != "RGB" {
		t.Fatalf("channel=rgb = %d %s", s, pngMode(rgb))
	}
	got, err := png.Decode(bytes.NewReader(rgb))
	if err != nil {
		t.Fatal(err)
	}
	if c := color.NRGBAModel.Convert(got.At(0, 0)).(color.NRGBA); c != (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("transparent GIF pixel under channel=rgb = %v, want the palette's red", c)
	}

	var bomb bytes.Buffer
	bomb.Write(pngSignature)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:4], 20000)
	binary.BigEndian.PutUint32(ihdr[4:8], 20000)
	ihdr[8], ihdr[9] = 8, 2
	if err := writeChunk(&bomb, "IHDR", ihdr[:]); err != nil {
		t.Fatal(err)
	}
	if err := writeChunk(&bomb, "IEND", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.s.OutputDir(), "bomb.png"), bomb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, body := e.do("GET", "/view?filename=bomb.png&channel=rgb", nil, "")
	if s != 400 || !strings.Contains(string(body), "could be decompression bomb DOS attack") {
		t.Errorf("bomb = %d %s", s, body)
	}
}

func TestUploadMask(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	orig := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range orig.Pix {
		orig.Pix[i] = 200
	}
	writePNGFile(t, filepath.Join(e.s.InputDir(), "photo.png"), orig)
	mask := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := 3; i < len(mask.Pix); i += 4 {
		mask.Pix[i] = uint8(i * 10)
	}
	var mbuf bytes.Buffer
	if err := png.Encode(&mbuf, mask); err != nil {
		t.Fatal(err)
	}
	status, body := e.upload("/upload/mask", "clipspace-mask.png", mbuf.Bytes(), map[string]string{
		"original_ref": `{"filename": "photo.png", "subfolder": "", "type": "input"}`,
		"type":         "input",
	})
	if status != 200 || string(body) != `{"name": "clipspace-mask.png", "subfolder": "", "type": "input"}` {
		t.Fatalf("upload/mask = %d %s", status, body)
	}
	data, err := os.ReadFile(filepath.Join(e.s.InputDir(), "clipspace-mask.png"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := toNRGBA(got)
	for i := 0; i < len(n.Pix); i += 4 {
		if n.Pix[i] != 200 || n.Pix[i+3] != mask.Pix[i+3] {
			t.Fatalf("merged pixel %d = %v", i/4, n.Pix[i:i+4])
		}
	}
	if s, _ := e.upload("/upload/mask", "m.png", mbuf.Bytes(), nil); s != 400 {
		t.Errorf("upload/mask without original_ref = %d, want 400", s)
	}
}

func TestUploadRejects(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Config{MaxUploadSize: 1 << 10})
	for _, c := range []struct {
		name   string
		file   string
		fields map[string]string
		status int
	}{
		{"escaping name", "../../evil.png", nil, 400},
		{"absolute name", "/tmp/evil.png", nil, 400},
		{"unknown type", "a.png", map[string]string{"type": "models"}, 400},
		{"absolute subfolder", "a.png", map[string]string{"subfolder": "/etc"}, 400},
		{"nested name", "deep/a.png", nil, 200},
	} {
		if s, body := e.upload("/upload/image", c.file, []byte("data"), c.fields); s != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, s, body, c.status)
		}
	}
	if s, _ := e.upload("/upload/image", "big.png", bytes.Repeat([]byte("x"), 4<<10), nil); s != 413 {
		t.Errorf("oversized upload = %d, want 413", s)
	}
	if s, _, _ := e.do("POST", "/upload/image", strings.NewReader("not a form"), "text/plain"); s != 400 {
		t.Errorf("non-multipart upload = %d, want 400", s)
	}
}

func TestStopInterruptsWhenDeadlinePasses(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	s, err := New(&Config{Dir: t.TempDir(), Classes: tc.classes})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, s: s}
	e.ts = newHTTPTestServer(t, s)
	ws := e.dial("c")
	ws.next()
	_, resp := e.postPrompt(`{"1": {"class_type": "TestBlock", "inputs": {"value": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, "c")
	id := resp["prompt_id"].(string)
	<-tc.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(ctx); err == nil {
		t.Error("Stop with an expired context and a running prompt returned nil")
	}
	q := s.q
	q.mu.Lock()
	h, ok := q.history.get(id)
	q.mu.Unlock()
	if !ok || !strings.Contains(string(pyjson.Marshal(h)), "execution_interrupted") {
		t.Errorf("history after a hard stop: %v", ok)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestSmallRoutes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	for _, p := range []string{"checkpoints/sd.safetensors", "checkpoints/sub/b.ckpt", "checkpoints/readme.txt", "embeddings/neg.pt", "clip/t5.safetensors"} {
		full := filepath.Join(e.dir, "models", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ path, want string }{
		{"/models/checkpoints", `["sd.safetensors", "sub/b.ckpt"]`},
		{"/api/models/text_encoders", `["t5.safetensors"]`},
		{"/embeddings", `["neg"]`},
		{"/extensions", `[]`},
	} {
		if _, _, body := e.do("GET", c.path, nil, ""); string(body) != c.want {
			t.Errorf("GET %s = %s, want %s", c.path, body, c.want)
		}
	}
	if s, _, _ := e.do("GET", "/models/nope", nil, ""); s != 404 {
		t.Errorf("unknown model folder = %d", s)
	}
	var models []string
	e.getJSON("/models", &models)
	if len(models) < 10 || models[0] != "checkpoints" {
		t.Errorf("/models = %v", models)
	}
	var stats struct {
		System struct {
			OS             string `json:"os"`
			ComfyUIVersion string `json:"comfyui_version"`
			RAMTotal       int64  `json:"ram_total"`
		} `json:"system"`
		Devices []struct {
			Type  string `json:"type"`
			Index *int   `json:"index"`
		} `json:"devices"`
	}
	e.getJSON("/system_stats", &stats)
	if stats.System.ComfyUIVersion != ComfyUIVersion || stats.System.RAMTotal <= 0 || len(stats.Devices) != 1 || stats.Devices[0].Type != "cpu" || stats.Devices[0].Index != nil {
		t.Errorf("/system_stats = %+v", stats)
	}
	if s, ct, body := e.do("GET", "/", nil, ""); s != 200 || !strings.HasPrefix(ct, "text/html") || !bytes.Contains(body, []byte("<html")) {
		t.Errorf("GET / = %d %s", s, ct)
	}
	if s, _, _ := e.do("GET", "/no/such/route", nil, ""); s != 404 {
		t.Errorf("unknown route = %d", s)
	}
	if s, _, _ := e.do("DELETE", "/prompt", nil, ""); s != 405 {
		t.Errorf("wrong method = %d", s)
	}
	for _, body := range []string{`[1]`, `not json`, `{"prompt": {}, "extra_data": 3}`, `{"prompt": {}, "number": "x"}`} {
		s, data := e.postJSON("/prompt", body)
		if s != 400 || !strings.Contains(string(data), `"node_errors": {}`) {
			t.Errorf("POST /prompt %s = %d %s", body, s, data)
		}
	}
	s, data := e.postJSON("/prompt", `{"client_id": "x"}`)
	if s != 400 || string(data) != `{"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}` {
		t.Errorf("no prompt = %d %s", s, data)
	}
	var keys []string
	var all map[string]json.RawMessage
	e.getJSON("/object_info", &all)
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := append([]string(nil), e.s.Classes()...)
	sort.Strings(want)
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("/object_info classes = %v", keys)
	}
}
