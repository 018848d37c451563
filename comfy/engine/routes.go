package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// routes builds the handler: every route at /X and at /api/X, as ComfyUI
// registers them, behind the middlewares.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		mux.HandleFunc(method+" /api"+path, h)
	}
	handle("GET", "/ws", s.handleWS)
	handle("POST", "/prompt", s.handlePostPrompt)
	handle("GET", "/prompt", s.handleGetPrompt)
	handle("GET", "/queue", s.handleGetQueue)
	handle("POST", "/queue", s.handlePostQueue)
	handle("GET", "/history", s.handleGetHistory)
	handle("GET", "/history/{id}", s.handleGetHistoryItem)
	handle("POST", "/history", s.handlePostHistory)
	handle("GET", "/view", s.handleView)
	handle("POST", "/upload/image", s.handleUploadImage)
	handle("POST", "/upload/mask", s.handleUploadMask)
	handle("GET", "/object_info", s.handleObjectInfo)
	handle("GET", "/object_info/{class}", s.handleObjectInfoClass)
	handle("GET", "/system_stats", s.handleSystemStats)
	handle("POST", "/interrupt", s.handleInterrupt)
	handle("POST", "/free", s.handleFree)
	handle("GET", "/features", s.handleFeatures)
	handle("GET", "/models", s.handleModels)
	handle("GET", "/models/{folder}", s.handleModelFolder)
	handle("GET", "/embeddings", s.handleEmbeddings)
	handle("GET", "/extensions", s.handleExtensions)
	mux.HandleFunc("GET /{$}", s.handleIndex)
	return s.middleware(mux)
}

// middleware recovers panics, guards cross-origin requests, limits bodies
// and logs.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wrote {
					http.Error(rw, "500 Internal Server Error", http.StatusInternalServerError)
				}
			}
			switch {
			case rw.status >= 500:
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", rw.status)
			case rw.status >= 400:
				s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", rw.status)
			default:
				s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rw.status)
			}
		}()
		if s.cfg.CORSOrigin != "" {
			h := rw.Header()
			h.Set("Access-Control-Allow-Origin", s.cfg.CORSOrigin)
			h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE, PUT, OPTIONS, PATCH")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Allow-Credentials", "true")
		} else if crossOriginToLoopback(r) {
			s.log.Warn("request with non-matching host and origin refused", "host", r.Host, "origin", r.Header.Get("Origin"))
			writeEmpty(rw, http.StatusForbidden)
			return
		}
		if r.Method == http.MethodOptions {
			writeEmpty(rw, http.StatusOK)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rw, r.Body, s.cfg.MaxUploadSize)
		}
		next.ServeHTTP(rw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the websocket upgrade reach the
// underlying writer (http.Hijacker).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// crossOriginToLoopback is ComfyUI's origin-only guard: a browser request
// whose Origin names another host than the loopback Host it was sent to.
func crossOriginToLoopback(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || r.Host == "" {
		return false
	}
	ou, err := url.Parse(origin)
	if err != nil {
		return false
	}
	hostDomain := strings.ToLower(r.Host)
	hostName, hostPort := splitHostPortLoose(hostDomain)
	if !isLoopback(hostName) {
		return false
	}
	originDomain := strings.ToLower(ou.Host)
	if ou.Port() == "" {
		hostDomain = hostName
	}
	if hostPort == "" {
		originDomain = strings.ToLower(ou.Hostname())
	}
	if hostDomain == "" || originDomain == "" {
		return false
	}
	return hostDomain != originDomain
}

func splitHostPortLoose(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeJSONResponse answers with Python-style JSON, as aiohttp's json_response does.
func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	body := pyjson.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeEmpty answers with an empty body, as aiohttp's web.Response(status=…)
// does.
func writeEmpty(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// writeText answers with a plain-text message (for requests ComfyUI would
// fail on with an internal error; the engine says what is wrong instead).
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "%d: %s\n", status, msg)
}

// readJSONBody reads and decodes the request body. It answers the request
// itself (413 or 400) and returns ok=false on failure.
func readJSONBody(w http.ResponseWriter, r *http.Request) (any, bool) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", mbe.Limit))
			return nil, false
		}
		writeText(w, http.StatusBadRequest, "reading the request body failed")
		return nil, false
	}
	v, err := pyjson.Parse(data)
	if err != nil {
		writeText(w, http.StatusBadRequest, "the body is not valid JSON: "+err.Error())
		return nil, false
	}
	return v, true
}

func (s *Server) handleGetPrompt(w http.ResponseWriter, r *http.Request) {
	writeJSONResponse(w, http.StatusOK, pyjson.NewObject().Set("exec_info", pyjson.NewObject().Set("queue_remaining", int64(s.q.remaining()))))
}

// promptRequestError answers a malformed POST /prompt body with a
// ComfyUI-shaped error (ComfyUI itself fails with a 500 there).
func promptRequestError(w http.ResponseWriter, message string) {
	writeJSONResponse(w, http.StatusBadRequest, pyjson.NewObject().
		Set("error", errorObject("invalid_prompt", message, "", nil)).
		Set("node_errors", pyjson.NewObject()))
}

// sensitiveKeys are the extra_data members kept out of queue and history
// (SENSITIVE_EXTRA_DATA_KEYS).
var sensitiveKeys = []string{"auth_token_comfy_org", "api_key_comfy_org"}

func (s *Server) handlePostPrompt(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than the %d-byte limit", mbe.Limit))
			return
		}
		writeText(w, http.StatusBadRequest, "reading the request body failed")
		return
	}
	v, err := pyjson.Parse(data)
	if err != nil {
		promptRequestError(w, "The request body is not valid JSON: "+err.Error())
		return
	}
	body, ok := v.(*pyjson.Object)
	if !ok {
		promptRequestError(w, fmt.Sprintf("The request body must be a JSON object with a \"prompt\" member, not a %s.", pyTypeName(v)))
		return
	}

	var number any
	if n, ok := body.Get("number"); ok {
		f, exc := pyFloat(n)
		if exc != nil {
			promptRequestError(w, "\"number\" must be a number: "+exc.Msg)
			return
		}
		number = f
	} else {
		front, _ := body.Get("front")
		number = s.q.nextNumber(pyBool(front))
	}

	prompt, ok := body.Get("prompt")
	if !ok {
		writeJSONResponse(w, http.StatusBadRequest, pyjson.NewObject().
			Set("error", errorObject("no_prompt", "No prompt provided", "No prompt provided", nil)).
			Set("node_errors", pyjson.NewObject()))
		return
	}
	promptID := newUUID(true)
	if pid, ok := body.Get("prompt_id"); ok {
		promptID = pyStr(pid)
	}
	partial, _ := body.Get("partial_execution_targets")
	switch partial.(type) {
	case nil, []any, string:
	default:
		promptRequestError(w, "\"partial_execution_targets\" must be a list of node ids.")
		return
	}
	extra := pyjson.NewObject()
	if e, ok := body.Get("extra_data"); ok {
		eo, isObj := e.(*pyjson.Object)
		if !isObj {
			promptRequestError(w, fmt.Sprintf("\"extra_data\" must be a JSON object, not a %s.", pyTypeName(e)))
			return
		}
		extra = eo
	}

	env := s.validationEnv(promptID)
	res := validatePrompt(s.reg, env, func(msg string, args ...any) { s.log.Info(msg, append(args, "prompt_id", promptID)...) }, prompt, partial)

	if cid, ok := body.Get("client_id"); ok {
		extra.Set("client_id", cid)
	}
	if !res.ok {
		errType, _ := res.err.Get("type")
		s.log.Info("prompt rejected", "prompt_id", promptID, "error", errType)
		writeJSONResponse(w, http.StatusBadRequest, pyjson.NewObject().Set("error", res.err).Set("node_errors", res.nodeErrors))
		return
	}
	sensitive := pyjson.NewObject()
	for _, k := range sensitiveKeys {
		if v, ok := extra.Get(k); ok {
			sensitive.Set(k, v)
			extra.Delete(k)
		}
	}
	s.q.put(&queueItem{
		number:    number,
		id:        promptID,
		prompt:    prompt.(*pyjson.Object),
		extra:     extra,
		outputs:   res.outputs,
		sensitive: sensitive,
	})
	s.log.Info("prompt queued", "prompt_id", promptID, "outputs", len(res.outputs))
	writeJSONResponse(w, http.StatusOK, pyjson.NewObject().
		Set("prompt_id", promptID).
		Set("number", number).
		Set("node_errors", res.nodeErrors))
}

func (s *Server) handleGetQueue(w http.ResponseWriter, r *http.Request) {
	running, pending := s.q.snapshot()
	writeJSONResponse(w, http.StatusOK, pyjson.NewObject().Set("queue_running", running).Set("queue_pending", pending))
}

// readClearDelete reads the body of POST /queue and POST /history, a JSON
// object like {"clear": true} or {"delete": ["<prompt_id>"]}. It answers 400
// itself when the body is not one.
func readClearDelete(w http.ResponseWriter, r *http.Request) (*pyjson.Object, bool) {
	v, ok := readJSONBody(w, r)
	if !ok {
		return nil, false
	}
	body, isObj := v.(*pyjson.Object)
	if !isObj {
		writeText(w, http.StatusBadRequest, `the body must be a JSON object like {"clear": true} or {"delete": ["<prompt_id>"]}`)
		return nil, false
	}
	return body, true
}

// idList returns the ids of a "delete" member.
func idList(v any) ([]any, bool) {
	l, ok := v.([]any)
	return l, ok
}

func (s *Server) handlePostQueue(w http.ResponseWriter, r *http.Request) {
	body, ok := readClearDelete(w, r)
	if !ok {
		return
	}
	if c, ok := body.Get("clear"); ok && pyBool(c) {
		s.q.wipe()
	}
	if d, ok := body.Get("delete"); ok {
		ids, isList := idList(d)
		if !isList {
			writeText(w, http.StatusBadRequest, `"delete" must be a list of prompt ids`)
			return
		}
		for _, id := range ids {
			s.q.deleteItem(id)
		}
	}
	writeEmpty(w, http.StatusOK)
}

func (s *Server) handleGetHistory(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	var maxItems *int
	if v := q.Get("max_items"); q.Has("max_items") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("max_items %q is not an integer", v))
			return
		}
		maxItems = &n
	}
	offset := -1
	if v := q.Get("offset"); q.Has("offset") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("offset %q is not an integer", v))
			return
		}
		offset = n
	}
	// Entries never change once written, so they are encoded outside the
	// lock.
	s.q.mu.Lock()
	out := s.q.history.page(maxItems, offset)
	s.q.mu.Unlock()
	writeJSONResponse(w, http.StatusOK, out)
}

func (s *Server) handleGetHistoryItem(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.q.mu.Lock()
	e, ok := s.q.history.get(id)
	s.q.mu.Unlock()
	out := pyjson.NewObject()
	if ok {
		out.Set(id, e)
	}
	writeJSONResponse(w, http.StatusOK, out)
}

func (s *Server) handlePostHistory(w http.ResponseWriter, r *http.Request) {
	body, ok := readClearDelete(w, r)
	if !ok {
		return
	}
	d, hasDelete := body.Get("delete")
	ids, isList := idList(d)
	if hasDelete && !isList {
		writeText(w, http.StatusBadRequest, `"delete" must be a list of prompt ids`)
		return
	}
	s.q.mu.Lock()
	if c, ok := body.Get("clear"); ok && pyBool(c) {
		s.q.history.clear()
	}
	for _, id := range ids {
		if sid, ok := id.(string); ok {
			s.q.history.remove(sid)
		}
	}
	s.q.mu.Unlock()
	writeEmpty(w, http.StatusOK)
}

func (s *Server) handleInterrupt(w http.ResponseWriter, r *http.Request) {
	var promptID any
	if data, err := io.ReadAll(r.Body); err == nil {
		if v, err := pyjson.Parse(data); err == nil {
			if o, ok := v.(*pyjson.Object); ok {
				promptID, _ = o.Get("prompt_id")
			}
		}
	}
	if pyBool(promptID) {
		id := pyStr(promptID)
		if s.interrupt(id) {
			s.log.Info("interrupting prompt", "prompt_id", id)
		} else {
			s.log.Info("prompt is not running; nothing to interrupt", "prompt_id", id)
		}
	} else if s.interrupt("") {
		s.log.Info("interrupting the running prompt")
	}
	writeEmpty(w, http.StatusOK)
}

func (s *Server) handleFree(w http.ResponseWriter, r *http.Request) {
	v, ok := readJSONBody(w, r)
	if !ok {
		return
	}
	body, isObj := v.(*pyjson.Object)
	if !isObj {
		writeText(w, http.StatusBadRequest, `the body must be a JSON object like {"unload_models": true, "free_memory": true}`)
		return
	}
	unload, _ := body.Get("unload_models")
	free, _ := body.Get("free_memory")
	s.q.setFlags(pyBool(unload), pyBool(free))
	writeEmpty(w, http.StatusOK)
}

func (s *Server) handleFeatures(w http.ResponseWriter, r *http.Request) {
	writeJSONResponse(w, http.StatusOK, s.features())
}

// features are the server feature flags (/features and the websocket
// feature_flags answer).
func (s *Server) features() *pyjson.Object {
	return pyjson.NewObject().Set("supports_preview_metadata", true).Set("max_upload_size", s.cfg.MaxUploadSize)
}

func (s *Server) handleExtensions(w http.ResponseWriter, r *http.Request) {
	writeJSONResponse(w, http.StatusOK, []any{})
}

const indexHTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>comfypod engine</title></head>
<body>
<h1>comfypod engine</h1>
<p>A ComfyUI-compatible server (API of ComfyUI ` + ComfyUIVersion + `). It has no editor; use the HTTP and websocket API:
<a href="/object_info">/object_info</a>, <a href="/queue">/queue</a>, <a href="/history">/history</a>,
<a href="/system_stats">/system_stats</a>.</p>
</body>
</html>
`

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, indexHTML)
}

// query parses the URL query like aiohttp: pairs split on "&" only, so a
// value may hold ";" (preview=webp;90), which net/url refuses.
func query(r *http.Request) url.Values {
	v := url.Values{}
	for _, pair := range strings.Split(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		value, err := url.QueryUnescape(val)
		if err != nil {
			continue
		}
		v[key] = append(v[key], value)
	}
	return v
}
