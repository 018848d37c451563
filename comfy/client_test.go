package comfy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/comfy"
)

func TestNewClientRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "127.0.0.1:8188", "ftp://host", "http://", "http://user:pw@%zz"} {
		if _, err := comfy.NewClient(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("%q: the error leaks the password: %v", bad, err)
		}
	}
	c, err := comfy.NewClient("http://user:s3cret@127.0.0.1:8188/comfy/?token=x")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "http://127.0.0.1:8188/comfy" {
		t.Errorf("BaseURL = %q", got)
	}
}

func TestCredentialsGoInAHeaderAndNeverInErrors(t *testing.T) {
	t.Parallel()
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Proxy-Token"))
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	u := strings.Replace(srv.URL, "http://", "http://alice:s3cret@", 1)
	c := newTestClient(t, u, comfy.WithHeader("X-Proxy-Token", "tok-123"), comfy.WithRetries(1))
	_, err := c.SystemStats(testCtx(t))
	var ae *comfy.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || !errors.Is(err, comfy.ErrServer) {
		t.Fatalf("got %v", err)
	}
	if got := auth.Load().(string); got != "Basic YWxpY2U6czNjcmV0|tok-123" {
		t.Errorf("headers sent: %q", got)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tok-123") {
		t.Errorf("secret in error: %v", err)
	}
	// A dead server: the connection error names the path, not credentials.
	dead := newTestClient(t, "http://alice:s3cret@127.0.0.1:1", comfy.WithRetries(1))
	if _, err := dead.Queue(testCtx(t)); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "GET /queue") {
		t.Errorf("dead server: %v", err)
	}
}

func TestGetRetriesTransientFailuresButPostDoesNot(t *testing.T) {
	t.Parallel()
	var gets, posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		switch gets.Add(1) {
		case 1:
			w.WriteHeader(http.StatusBadGateway)
			return
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"queue_running": [], "queue_pending": []}`))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, comfy.WithRetries(3))
	if _, err := c.Queue(testCtx(t)); err != nil {
		t.Fatalf("GET after two 502s: %v", err)
	}
	if _, err := c.QueuePrompt(testCtx(t), comfy.PromptRequest{Workflow: caseWorkflow(t, "invert")}); err == nil {
		t.Fatal("503 on POST /prompt accepted")
	}
	if posts.Load() != 1 {
		t.Errorf("POST /prompt sent %d times", posts.Load())
	}
}

// uploadStep is one recorded call of upload/upload_image.json.
type uploadStep struct {
	Description string
	Request     struct {
		Path      string
		Multipart map[string]json.RawMessage
	}
	Response struct {
		Status int
		Body   json.RawMessage
	}
}

func TestUploadReplaysTheRecordedSequence(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(conformanceFile(t, "upload", "upload_image.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Steps []uploadStep }
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	var step atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := rec.Steps[step.Add(1)-1]
		// The request must carry what the real client sent in the capture.
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			t.Errorf("%s: not multipart: %v", s.Description, err)
		}
		for field, raw := range s.Request.Multipart {
			if field == "image" {
				var img struct{ Filename, Sha256 string }
				_ = json.Unmarshal(raw, &img)
				f, h, err := r.FormFile("image")
				if err != nil {
					t.Errorf("%s: no image part: %v", s.Description, err)
					continue
				}
				sum := sha256.New()
				_, _ = io.Copy(sum, f)
				f.Close()
				if h.Filename != img.Filename || hex.EncodeToString(sum.Sum(nil)) != img.Sha256 {
					t.Errorf("%s: image part %q sha %x", s.Description, h.Filename, sum.Sum(nil))
				}
				continue
			}
			var want string
			_ = json.Unmarshal(raw, &want)
			if got := r.FormValue(field); got != want {
				t.Errorf("%s: field %s = %q, want %q", s.Description, field, got, want)
			}
		}
		w.WriteHeader(s.Response.Status)
		if s.Response.Status == 200 {
			_, _ = w.Write(s.Response.Body)
		}
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	for i, s := range rec.Steps {
		var img struct {
			Filename  string
			BytesFile string `json:"bytes_file"`
		}
		_ = json.Unmarshal(s.Request.Multipart["image"], &img)
		if img.Filename == "" {
			// A call without an image part: the client refuses it before
			// sending; answer the server's step anyway to keep in sync.
			if _, err := c.UploadImage(testCtx(t), comfy.Upload{Name: "", Data: strings.NewReader("x")}); err == nil {
				t.Errorf("step %d: an upload without a name was sent", i)
			}
			step.Add(1)
			continue
		}
		f, err := os.Open(conformanceFile(t, "upload", img.BytesFile))
		if err != nil {
			t.Fatal(err)
		}
		up := comfy.Upload{Name: img.Filename, Data: f}
		for field, raw := range s.Request.Multipart {
			var v string
			_ = json.Unmarshal(raw, &v)
			switch field {
			case "overwrite":
				up.Overwrite = v == "true"
			case "subfolder":
				up.Subfolder = v
			case "type":
				up.Type = v
			}
		}
		if strings.Contains(up.Subfolder, "..") {
			// The client refuses an escaping subfolder itself.
			if _, err := c.UploadImage(testCtx(t), up); err == nil || !strings.Contains(err.Error(), "no ..") {
				t.Errorf("step %d: escaping subfolder: %v", i, err)
			}
			f.Close()
			step.Add(1)
			continue
		}
		got, err := c.UploadImage(testCtx(t), up)
		f.Close()
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.Description, err)
		}
		var want comfy.Uploaded
		_ = json.Unmarshal(s.Response.Body, &want)
		if *got != want {
			t.Errorf("step %d (%s): got %+v, want %+v", i, s.Description, got, want)
		}
	}
	// The renamed upload's Ref is what goes into LoadImage.
	renamed := comfy.Uploaded{Name: "upload_probe (1).png", Type: "input"}
	sub := comfy.Uploaded{Name: "upload_probe.png", Subfolder: "brush/sub", Type: "input"}
	temp := comfy.Uploaded{Name: "x.png", Type: "temp"}
	if renamed.Ref() != "upload_probe (1).png" || sub.Ref() != "brush/sub/upload_probe.png" || temp.Ref() != "x.png [temp]" {
		t.Errorf("refs: %q %q %q", renamed.Ref(), sub.Ref(), temp.Ref())
	}
}

func TestUploadMaskSendsTheOriginalRef(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/upload/mask" {
			http.NotFound(w, r)
			return
		}
		if got := r.FormValue("original_ref"); got != `{"filename":"target.png","subfolder":"","type":"input"}` {
			t.Errorf("original_ref = %q", got)
		}
		_, _ = w.Write([]byte(`{"name": "mask.png", "subfolder": "", "type": "input"}`))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	got, err := c.UploadMask(testCtx(t), comfy.Upload{Name: "mask.png", Data: bytes.NewReader([]byte("png")), Overwrite: true}, comfy.FileRef{Filename: "target.png"})
	if err != nil || got.Ref() != "mask.png" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := c.UploadMask(testCtx(t), comfy.Upload{Name: "m.png", Data: strings.NewReader("x")}, comfy.FileRef{}); err == nil {
		t.Error("mask without an original accepted")
	}
}

func TestUploadEmpty400BodyGetsAMessage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	_, err := newTestClient(t, srv.URL).UploadImage(testCtx(t), comfy.Upload{Name: "a.png", Data: strings.NewReader("x")})
	if !errors.Is(err, comfy.ErrBadRequest) || !strings.Contains(err.Error(), `refused the upload of "a.png"`) {
		t.Errorf("got %v", err)
	}
}

func TestViewStreams(t *testing.T) {
	t.Parallel()
	const chunk = 1 << 20
	firstRead := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("filename") != "dance_00001.mp4" || r.URL.Query().Get("subfolder") != "vids" || r.URL.Query().Get("type") != "output" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Disposition", `filename="dance_00001.mp4"`)
		_, _ = w.Write(bytes.Repeat([]byte{'a'}, chunk))
		w.(http.Flusher).Flush()
		// The rest is written only after the client has read the start:
		// a client that buffered the whole body would never get here.
		select {
		case <-firstRead:
		case <-time.After(waitTimeout):
			t.Error("the client did not read before the body was complete")
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte{'b'}, chunk))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	d, err := c.View(testCtx(t), comfy.FileRef{Filename: "dance_00001.mp4", Subfolder: "vids", Type: "output"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.ContentType != "video/mp4" || d.Filename != "dance_00001.mp4" {
		t.Errorf("download = %+v", d)
	}
	buf := make([]byte, chunk)
	if _, err := io.ReadFull(d, buf); err != nil || buf[0] != 'a' {
		t.Fatalf("first chunk: %v", err)
	}
	close(firstRead)
	n, err := io.Copy(io.Discard, d)
	if err != nil || n != chunk {
		t.Errorf("rest: %d bytes, %v", n, err)
	}
}

func TestViewConformanceFilesAndErrors(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "preview_image")
	c := newTestClient(t, r.srv.URL)
	data, _ := os.ReadFile(conformanceFile(t, "cases", "preview_image", "expected", "view.json"))
	var entries []struct{ Filename, Subfolder, Type, Sha256 string }
	_ = json.Unmarshal(data, &entries)
	for _, e := range entries {
		d, err := c.View(testCtx(t), comfy.FileRef{Filename: e.Filename, Subfolder: e.Subfolder, Type: e.Type})
		if err != nil {
			t.Fatalf("%s: %v", e.Filename, err)
		}
		sum := sha256.New()
		_, _ = io.Copy(sum, d)
		d.Close()
		if hex.EncodeToString(sum.Sum(nil)) != e.Sha256 {
			t.Errorf("%s: content differs", e.Filename)
		}
	}
	_, err := c.View(testCtx(t), comfy.FileRef{Filename: "no_such_file_7f3a.png", Type: "output"})
	if !errors.Is(err, comfy.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := c.View(testCtx(t), comfy.FileRef{}); err == nil {
		t.Error("empty file name accepted")
	}
}

// miscServer answers the requests of api/misc.json with the recorded bodies.
func miscServer(t testing.TB) *httptest.Server {
	t.Helper()
	data, err := os.ReadFile(conformanceFile(t, "api", "misc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Request  struct{ Method, Path string }
		Response struct {
			Status      int
			ContentType string          `json:"content_type"`
			Body        json.RawMessage `json:"body"`
		}
	}
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rec := range recs {
			if rec.Request.Method == r.Method && rec.Request.Path == r.URL.RequestURI() {
				w.Header().Set("Content-Type", rec.Response.ContentType)
				w.WriteHeader(rec.Response.Status)
				_, _ = w.Write(rec.Response.Body)
				return
			}
		}
		t.Errorf("unexpected request %s %s", r.Method, r.URL.RequestURI())
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMiscAnswers(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, miscServer(t).URL)
	ctx := testCtx(t)
	q, err := c.Queue(ctx)
	if err != nil || len(q.Running) != 0 || len(q.Pending) != 0 {
		t.Errorf("idle queue: %+v, %v", q, err)
	}
	h, found, err := c.History(ctx, "00000000-0000-4000-8000-000000000000")
	if err != nil || found || h != nil {
		t.Errorf("unknown history: %v %v %v", h, found, err)
	}
	ci, found, err := c.ClassInfo(ctx, "NoSuchNode")
	if err != nil || found || ci != nil {
		t.Errorf("unknown class: %v %v %v", ci, found, err)
	}
	f, err := c.Features(ctx)
	if err != nil || !f.SupportsPreviewMetadata || f.MaxUploadSize != 104857600 {
		t.Errorf("features: %+v %v", f, err)
	}
	// The /api/ alias: a client whose base URL ends in /api calls /api/prompt.
	n, err := newTestClient(t, c.BaseURL()+"/api").QueueRemaining(ctx)
	if err != nil || n != 0 {
		t.Errorf("queue remaining via /api: %d, %v", n, err)
	}
}

func TestObjectInfoAndSystemStats(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(conformanceFile(t, "object_info", "*.json"))
	all := map[string]json.RawMessage{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var part map[string]json.RawMessage
		_ = json.Unmarshal(data, &part)
		for k, v := range part {
			all[k] = v
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/object_info":
			_ = json.NewEncoder(w).Encode(all)
		case strings.HasPrefix(r.URL.Path, "/object_info/"):
			name := strings.TrimPrefix(r.URL.Path, "/object_info/")
			if v, ok := all[name]; ok {
				_ = json.NewEncoder(w).Encode(map[string]json.RawMessage{name: v})
				return
			}
			_, _ = w.Write([]byte(`{}`))
		case r.URL.Path == "/system_stats":
			_, _ = w.Write([]byte(`{"system": {"os": "posix", "ram_total": 25769803776, "ram_free": 1, "comfyui_version": "0.3.64", "python_version": "3.11.2", "pytorch_version": "1.13.1", "embedded_python": false, "argv": ["main.py", "--cpu"]},
			  "devices": [{"name": "cpu", "type": "cpu", "index": null, "vram_total": 0, "vram_free": 0, "torch_vram_total": 0, "torch_vram_free": 0}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	info, err := c.ObjectInfo(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	blend, _ := info.Class("ImageBlend")
	mode, _ := blend.Input("blend_mode")
	scale, _ := info.Class("ImageScale")
	method, _ := scale.Input("upscale_method")
	if mode.Type != "COMBO" || mode.LegacyCombo || len(mode.Options) != 6 || method.Type != "COMBO" || !method.LegacyCombo || len(method.Options) != 5 {
		t.Errorf("combos: %+v / %+v", mode, method)
	}
	load, found, err := c.ClassInfo(testCtx(t), "LoadImage")
	if err != nil || !found {
		t.Fatal(found, err)
	}
	if img, _ := load.Input("image"); img.Upload != "image" || load.Output[1] != "MASK" {
		t.Errorf("LoadImage = %+v", load)
	}
	s, err := c.SystemStats(testCtx(t))
	if err != nil || s.System.ComfyUIVersion != "0.3.64" || len(s.Devices) != 1 || s.Devices[0].Index != nil {
		t.Errorf("stats: %+v %v", s, err)
	}
}

func TestWaitReady(t *testing.T) {
	t.Parallel()
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	if err := c.WaitReady(testCtx(t), comfy.ReadyOptions{Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if polls.Load() != 3 {
		t.Errorf("polled %d times", polls.Load())
	}

	// A dead process fails at once, whatever the deadline.
	down := newTestClient(t, "http://127.0.0.1:1")
	err := down.WaitReady(testCtx(t), comfy.ReadyOptions{Interval: time.Hour, Alive: func() error { return errors.New("exit status 1") }})
	if !errors.Is(err, comfy.ErrNotReady) || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("dead process: %v", err)
	}

	// A live process that never answers waits for the clock, then ctx.
	clock := clockwork.NewFakeClock()
	slow := newTestClient(t, "http://127.0.0.1:1", comfy.WithClock(clock))
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		done <- slow.WaitReady(ctx, comfy.ReadyOptions{Interval: time.Minute, Alive: func() error { return nil }})
	}()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // second poll
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "did not become ready") {
			t.Errorf("got %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("WaitReady did not return after cancel")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gets.Add(1) == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"queue_running": [], "queue_pending": []}`))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, comfy.WithClock(clock), comfy.WithRetries(2))
	done := make(chan error, 1)
	go func() {
		_, err := c.Queue(testCtx(t))
		done <- err
	}()
	ctx := testCtx(t)
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Second)
	// The retry timer must still be waiting.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal("the retry timer fired before Retry-After passed")
	}
	select {
	case err := <-done:
		t.Fatalf("retried before Retry-After passed: %v", err)
	default:
	}
	clock.Advance(time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no retry after Retry-After passed")
	}
	if gets.Load() != 2 {
		t.Errorf("%d GETs", gets.Load())
	}
}
