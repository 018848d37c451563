package comfy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitTimeout bounds every wait on a signal in these tests; it is generous
// because the machine is shared, and no assertion depends on it.
const waitTimeout = 20 * time.Second

// replay is an HTTP + websocket server that plays back one conformance case
// captured from a real ComfyUI 0.3.64: the POST /prompt answer, the
// websocket messages of the run and the /history entry, with the case's
// PROMPT_ID and CLIENT_ID placeholders replaced by the ids the client chose.
// Hooks let a test drop the socket, hold history back, and watch calls.
type replay struct {
	t       testing.TB
	dir     string
	srv     *httptest.Server
	ws      []string // ws.jsonl lines
	history []byte

	// Set before the first request.
	dropAfter int  // close the run's socket after sending this many run messages (0: never)
	noWS      bool // answer /ws with 404
	// raceHold makes the server answer {} to /history after execution_success
	// until the client has polled once, and only then write history and send
	// executing null.
	raceHold bool
	// historyAfterPolls keeps history {} (with the prompt shown running in
	// /queue) for this many polls after a drop.
	historyAfterPolls int
	// extraLines are sent before the run's messages (e.g. another prompt's).
	extraLines []string

	mu          sync.Mutex
	promptID    string
	clientID    string
	body        map[string]json.RawMessage
	queued      chan struct{}
	written     bool // history is written
	deleted     bool
	polls       int // /history polls of the prompt
	polledEmpty chan struct{}
	calls       []string
	wsConns     int
}

func newReplay(t testing.TB, caseName string) *replay {
	t.Helper()
	dir := conformanceFile(t, "cases", caseName)
	r := &replay{t: t, dir: dir, queued: make(chan struct{}), polledEmpty: make(chan struct{}, 1)}
	if f, err := os.Open(filepath.Join(dir, "expected", "ws.jsonl")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				r.ws = append(r.ws, line)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.history, _ = os.ReadFile(filepath.Join(dir, "expected", "history.json"))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /prompt", r.postPrompt)
	mux.HandleFunc("GET /ws", r.websocket)
	mux.HandleFunc("GET /history/{id}", r.getHistory)
	mux.HandleFunc("GET /queue", r.getQueue)
	mux.HandleFunc("POST /queue", r.record)
	mux.HandleFunc("POST /interrupt", r.record)
	mux.HandleFunc("GET /view", r.view)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replay) note(call string) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *replay) callList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *replay) subst(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.NewReplacer("PROMPT_ID", r.promptID, "CLIENT_ID", r.clientID).Replace(s)
}

func (r *replay) postPrompt(w http.ResponseWriter, req *http.Request) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var pr struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "expected", "prompt_response.json"))
	if err != nil || json.Unmarshal(data, &pr) != nil {
		r.t.Errorf("case %s has no prompt_response.json", r.dir)
		http.Error(w, "no capture", http.StatusInternalServerError)
		return
	}
	r.mu.Lock()
	r.body = body
	_ = json.Unmarshal(body["prompt_id"], &r.promptID)
	_ = json.Unmarshal(body["client_id"], &r.clientID)
	r.calls = append(r.calls, "POST /prompt")
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(pr.Status)
	_, _ = w.Write([]byte(r.subst(string(pr.Body))))
	if pr.Status == http.StatusOK {
		close(r.queued)
	}
}

func (r *replay) websocket(w http.ResponseWriter, req *http.Request) {
	if r.noWS {
		http.NotFound(w, req)
		return
	}
	conn, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	// The request context is not cancelled when a hijacked connection
	// closes: the reader below cancels ctx when the socket fails.
	ctx, cancel := context.WithCancel(req.Context())
	clientID := req.URL.Query().Get("clientId")
	r.mu.Lock()
	r.wsConns++
	first := r.wsConns == 1
	r.mu.Unlock()
	// Read (and ignore) what the client sends, as ComfyUI does.
	readDone := make(chan struct{})
	defer func() {
		cancel()
		conn.CloseNow()
		<-readDone
	}()
	go func() {
		defer close(readDone)
		defer cancel()
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	send := func(line string) bool {
		line = strings.NewReplacer("CLIENT_ID", clientID).Replace(line)
		return conn.Write(ctx, websocket.MessageText, []byte(r.subst(line))) == nil
	}
	if len(r.ws) == 0 || !send(r.ws[0]) {
		return
	}
	if !first {
		// A reconnect has a new client id: it gets queue broadcasts only.
		r.mu.Lock()
		written := r.written
		r.mu.Unlock()
		if written {
			send(`{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}`)
		}
		<-ctx.Done()
		return
	}
	select {
	case <-r.queued:
	case <-ctx.Done():
		return
	}
	for _, l := range r.extraLines {
		send(l)
	}
	for i, line := range r.ws[1:] {
		if r.dropAfter > 0 && i == r.dropAfter {
			conn.CloseNow()
			cancel()
			return
		}
		if strings.Contains(line, `"executing", "data": {"node": null`) {
			r.mu.Lock()
			r.written = true
			r.mu.Unlock()
		}
		if !send(line) {
			return
		}
		if r.raceHold && strings.Contains(line, `"type": "execution_success"`) {
			select {
			case <-r.polledEmpty:
			case <-time.After(waitTimeout):
				r.t.Errorf("the client did not poll /history after execution_success")
			case <-ctx.Done():
				return
			}
		}
	}
	<-ctx.Done()
}

func (r *replay) getHistory(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	r.mu.Lock()
	r.calls = append(r.calls, "GET /history")
	mine := id == r.promptID
	if mine {
		r.polls++
		if !r.written && r.dropAfter > 0 && r.polls > r.historyAfterPolls {
			r.written = true // the run finished while the client was away
		}
	}
	ready := mine && r.written && !r.deleted && r.history != nil
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if !ready {
		_, _ = w.Write([]byte(`{}`))
		if mine {
			select {
			case r.polledEmpty <- struct{}{}:
			default:
			}
		}
		return
	}
	_, _ = w.Write([]byte(r.subst(string(r.history))))
}

func (r *replay) getQueue(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	r.calls = append(r.calls, "GET /queue")
	running := `[]`
	select {
	case <-r.queued:
		if !r.written && !r.deleted {
			running = `[[0, "` + r.promptID + `", {}, {"client_id": "` + r.clientID + `"}, []]]`
		}
	default:
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write([]byte(`{"queue_running": ` + running + `, "queue_pending": []}`))
}

func (r *replay) record(w http.ResponseWriter, req *http.Request) {
	var b bytes.Buffer
	_, _ = b.ReadFrom(req.Body)
	r.note(req.Method + " " + req.URL.Path + " " + strings.TrimSpace(b.String()))
}

func (r *replay) view(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		typ = "output"
	}
	p := filepath.Join(r.dir, "expected", typ, filepath.FromSlash(q.Get("subfolder")), q.Get("filename"))
	if strings.Contains(q.Get("filename"), "..") || strings.Contains(q.Get("subfolder"), "..") {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	data, err := os.ReadFile(p)
	if err != nil {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Disposition", `filename="`+q.Get("filename")+`"`)
	_, _ = w.Write(data)
}

// waitFor waits on ch, failing the test after waitTimeout.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// testCtx returns a context that ends with the test, bounded by waitTimeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
