package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on the server in tests; it is generous
// because a wait only ends early when something is broken.
const waitTimeout = 30 * time.Second

// testEnv is an engine on a loopback HTTP server, started, stopped at the
// end of the test.
type testEnv struct {
	t   testing.TB
	s   *Server
	ts  *httptest.Server
	dir string
}

func newTestEnv(t testing.TB, cfg *Config) *testEnv {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		ts.Close()
	})
	return &testEnv{t: t, s: s, ts: ts, dir: cfg.Dir}
}

// do sends a request and returns status, content type and body.
func (e *testEnv) do(method, path string, body io.Reader, contentType string) (int, string, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

func (e *testEnv) getJSON(path string, v any) int {
	e.t.Helper()
	status, _, data := e.do("GET", path, nil, "")
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			e.t.Fatalf("GET %s: %v: %s", path, err, data)
		}
	}
	return status
}

func (e *testEnv) postJSON(path string, body any) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	status, _, data := e.do("POST", path, r, "application/json")
	return status, data
}

// upload posts a file to path (/upload/image) with the given form fields.
func (e *testEnv) upload(path, filename string, content []byte, fields map[string]string) (int, []byte) {
	e.t.Helper()
	body, ctype := multipartBody(e.t, filename, content, fields)
	status, _, data := e.do("POST", path, body, ctype)
	return status, data
}

// multipartBody builds a form with an "image" file part (left out when
// filename is empty and content nil) and fields.
func multipartBody(t testing.TB, filename string, content []byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if filename != "" || content != nil {
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="image"; filename="%s"`, filename)}
		h["Content-Type"] = []string{"image/png"}
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write(content)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		_ = mw.WriteField(k, fields[k])
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// wsMsg is one websocket message.
type wsMsg struct {
	Type   string          `json:"type"`
	Data   json.RawMessage `json:"data"`
	Raw    []byte          `json:"-"`
	Binary bool            `json:"-"`
}

func (m wsMsg) data() map[string]any {
	var d map[string]any
	_ = json.Unmarshal(m.Data, &d)
	return d
}

// wsClientConn is a test websocket client.
type wsClientConn struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan wsMsg
	done chan struct{}
}

func (e *testEnv) dial(clientID string) *wsClientConn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	if clientID != "" {
		url += "?clientId=" + clientID
	}
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	conn.SetReadLimit(64 << 20)
	c := &wsClientConn{t: e.t, conn: conn, msgs: make(chan wsMsg, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.msgs)
		for {
			typ, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			m := wsMsg{Raw: data, Binary: typ == websocket.MessageBinary}
			if !m.Binary {
				if err := json.Unmarshal(data, &m); err != nil {
					continue
				}
			}
			c.msgs <- m
		}
	}()
	e.t.Cleanup(c.close)
	return c
}

func (c *wsClientConn) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// next returns the next message, failing the test after waitTimeout.
func (c *wsClientConn) next() wsMsg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("websocket closed")
		}
		return m
	case <-time.After(waitTimeout):
		c.t.Fatal("timed out waiting for a websocket message")
	}
	return wsMsg{}
}

// until reads messages up to and including the first for which stop is
// true, and returns them all.
func (c *wsClientConn) until(stop func(wsMsg) bool) []wsMsg {
	c.t.Helper()
	var out []wsMsg
	for {
		m := c.next()
		out = append(out, m)
		if stop(m) {
			return out
		}
	}
}

// untilDone reads up to `executing` with node null for promptID.
func (c *wsClientConn) untilDone(promptID string) []wsMsg {
	c.t.Helper()
	return c.until(func(m wsMsg) bool {
		if m.Type != "executing" {
			return false
		}
		d := m.data()
		return d["node"] == nil && d["prompt_id"] == promptID
	})
}

// classFromJSON builds a test class from an /object_info entry.
func classFromJSON(t testing.TB, info string, exec func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error)) *node.Class {
	t.Helper()
	var i node.Info
	if err := json.Unmarshal([]byte(info), &i); err != nil {
		t.Fatalf("class info: %v", err)
	}
	return &node.Class{Info: &i, Execute: exec}
}

// testClasses are small classes used to test the engine independently of the
// core set. Their names start with "Test" so they clash with nothing.
type testClasses struct {
	mu      sync.Mutex
	calls   map[string]int
	started chan string // TestBlock sends its node id when it starts
	classes []*node.Class
}

func (tc *testClasses) count(name string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.calls[name]
}

func (tc *testClasses) inc(name string) {
	tc.mu.Lock()
	tc.calls[name]++
	tc.mu.Unlock()
}

func newTestClasses(t testing.TB) *testClasses {
	tc := &testClasses{calls: map[string]int{}, started: make(chan string, 16)}
	tc.classes = []*node.Class{
		classFromJSON(t, `{"input":{"required":{"value":["INT",{"default":0,"min":0,"max":100}]}},"input_order":{"required":["value"]},
			"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestConst","display_name":"Const","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestConst")
				return &node.Result{Outputs: []any{in.Int("value")}}, nil
			}),
		classFromJSON(t, `{"input":{"required":{"a":["INT",{}],"b":["INT",{"default":1,"min":-5,"max":5}]}},"input_order":{"required":["a","b"]},
			"output":["INT","INT"],"output_is_list":[false,false],"output_name":["SUM","DIFF"],"name":"TestAdd","display_name":"Add","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestAdd")
				a, _ := in["a"].(int64)
				return &node.Result{Outputs: []any{a + in.Int("b"), a - in.Int("b")}}, nil
			}),
		classFromJSON(t, `{"input":{"required":{"value":["INT",{}]},"optional":{"label":["STRING",{"default":""}]}},"input_order":{"required":["value"],"optional":["label"]},
			"output":[],"output_is_list":[],"output_name":[],"name":"TestOut","display_name":"Out","description":"","python_module":"test","category":"test","output_node":true}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestOut")
				v, _ := in["value"].(int64)
				return &node.Result{UI: map[string]any{"values": []any{v}, "label": []string{in.String("label")}}}, nil
			}),
		classFromJSON(t, `{"input":{"required":{"value":["INT",{}],"message":["STRING",{"default":"boom"}]}},"input_order":{"required":["value","message"]},
			"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestFail","display_name":"Fail","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestFail")
				if in.String("message") == "panic" {
					panic("test panic")
				}
				return nil, node.Errorf("ValueError", "%s", in.String("message"))
			}),
		classFromJSON(t, `{"input":{"required":{"value":["INT",{}]}},"input_order":{"required":["value"]},
			"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestBlock","display_name":"Block","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestBlock")
				tc.started <- env.NodeID
				<-ctx.Done()
				return nil, ctx.Err()
			}),
		classFromJSON(t, `{"input":{"required":{"steps":["INT",{"default":3,"min":1,"max":100}]}},"input_order":{"required":["steps"]},
			"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestProgress","display_name":"Progress","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestProgress")
				n := in.Int("steps")
				for i := int64(1); i <= n; i++ {
					env.ReportProgress(float64(i), float64(n))
				}
				if env.Text != nil {
					env.Text("done")
				}
				return &node.Result{Outputs: []any{n}}, nil
			}),
		classFromJSON(t, `{"input":{"required":{"mode":[["a","b","c"],{}],"v3":["COMBO",{"multiselect":false,"options":["x","y"]}],"ratio":["FLOAT",{"default":0.5,"min":0.0,"max":1.0,"step":0.01}],"flag":["BOOLEAN",{"default":false}]}},"input_order":{"required":["mode","v3","ratio","flag"]},
			"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestCombo","display_name":"Combo","description":"","python_module":"test","category":"test","output_node":false}`,
			func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
				tc.inc("TestCombo")
				v := int64(len(in.String("mode")) + len(in.String("v3")))
				if in.Bool("flag") {
					v += 100
				}
				return &node.Result{Outputs: []any{v}}, nil
			}),
	}
	// TestAny takes anything on x and an INT or FLOAT on y; its IsChanged
	// fails for x == -1, which makes the node uncachable.
	anyClass := classFromJSON(t, `{"input":{"required":{"x":["*",{}]},"optional":{"y":["FLOAT,INT",{}]}},"input_order":{"required":["x"],"optional":["y"]},
		"output":[],"output_is_list":[],"output_name":[],"name":"TestAny","display_name":"Any","description":"","python_module":"test","category":"test","output_node":true}`,
		func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			tc.inc("TestAny")
			return &node.Result{UI: map[string]any{"x": []any{in["x"]}}}, nil
		})
	anyClass.IsChanged = func(env *node.Env, in node.Inputs) (string, error) {
		if in["x"] == int64(-1) {
			return "", fmt.Errorf("cannot fingerprint x")
		}
		return "", nil
	}
	tc.classes = append(tc.classes, anyClass)
	// TestChecked validates its "name" input itself (like LoadImage).
	checked := classFromJSON(t, `{"input":{"required":{"name":[["known"],{}],"count":["INT",{"default":1,"min":1,"max":3}]}},"input_order":{"required":["name","count"]},
		"output":["INT"],"output_is_list":[false],"output_name":["INT"],"name":"TestChecked","display_name":"Checked","description":"","python_module":"test","category":"test","output_node":false}`,
		func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			tc.inc("TestChecked")
			return &node.Result{Outputs: []any{in.Int("count")}}, nil
		})
	checked.ValidateSkips = []string{"name"}
	checked.ValidateInputs = func(env *node.Env, in node.Inputs) error {
		if strings.HasPrefix(in.String("name"), "bad") {
			return fmt.Errorf("Invalid name: %s", in.String("name"))
		}
		return nil
	}
	checked.IsChanged = func(env *node.Env, in node.Inputs) (string, error) { return in.String("name"), nil }
	tc.classes = append(tc.classes, checked)
	return tc
}

// postPrompt posts {"prompt": prompt, "client_id": clientID} and returns the
// status and decoded answer.
func (e *testEnv) postPrompt(prompt string, clientID string) (int, map[string]any) {
	e.t.Helper()
	body := `{"prompt": ` + prompt
	if clientID != "" {
		body += `, "client_id": "` + clientID + `"`
	}
	body += "}"
	status, data := e.postJSON("/prompt", body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		e.t.Fatalf("POST /prompt answer: %v: %s", err, data)
	}
	return status, out
}

func types(msgs []wsMsg) []string {
	var out []string
	for _, m := range msgs {
		if m.Binary {
			out = append(out, "binary")
			continue
		}
		out = append(out, m.Type)
	}
	return out
}

// newHTTPTestServer serves s on loopback; the test stops s itself.
func newHTTPTestServer(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}
