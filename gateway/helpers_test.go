package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/disk"
	"github.com/comfypod/comfypod/gateway/blob/s3"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/postgres"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait of a test: generous, since a wait on a
// condition costs only as long as the condition takes.
const waitTimeout = 60 * time.Second

// testPackage is the image-brush package the tests run.
func testPackage(t testing.TB) fs.FS {
	t.Helper()
	return packages.ImageBrushFS()
}

// syncBuffer is a log sink tests read while the service writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// options of a test harness.
type hopts struct {
	webhooks bool
	postgres bool
	s3       bool
	open     bool
	noWorker bool
	workers  int
	handler  runpodtest.WorkerHandler
	rp       *runpodtest.Server // shared control plane (otherwise one per harness)
	dsn      string             // shared database (Postgres schema or SQLite path)
	replica  string
	config   func(*Config)
	rpConfig func(*runpodtest.Config)
	rpOpts   []runpod.Option
}

// harness is a service on loopback against a runpodtest control plane with
// brush workers, a real store and a real output store.
type harness struct {
	t     testing.TB
	rp    *runpodtest.Server
	svc   *Service
	url   string
	st    store.Store
	blobs blob.Store
	logs  *syncBuffer
	hc    *http.Client
	cfg   *Config
}

func newHarness(t testing.TB, o hopts) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}}
	if o.rp != nil {
		h.rp = o.rp
	} else {
		rc := &runpodtest.Config{WorkerPollWait: 2 * time.Second}
		if o.rpConfig != nil {
			o.rpConfig(rc)
		}
		rp, err := runpodtest.NewServer(rc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rp.Close)
		h.rp = rp
	}
	if !o.noWorker && o.rp == nil {
		handler := o.handler
		if handler == nil {
			handler = brushWorker
		}
		for range max(o.workers, 1) {
			w, err := h.rp.StartWorker(context.Background(), handler, &runpodtest.WorkerOptions{Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Stop)
		}
	}
	h.st = openStore(t, o)
	if o.s3 {
		h.blobs = fakeS3(t)
	} else {
		b, err := disk.New(filepath.Join(t.TempDir(), "outputs"))
		if err != nil {
			t.Fatal(err)
		}
		h.blobs = b
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String()
	tr := &http.Transport{}
	h.hc = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	rtr := &http.Transport{}
	t.Cleanup(rtr.CloseIdleConnections)
	client, err := runpod.New(h.rp.EndpointID(), append([]runpod.Option{runpod.WithAPIKey(h.rp.APIKey()), runpod.WithBaseURL(h.rp.BaseURL()),
		runpod.WithHTTPClient(&http.Client{Transport: rtr}), runpod.WithLongPoll(0)}, o.rpOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Store:            h.st,
		Outputs:          h.blobs,
		RunPod:           client,
		Package:          testPackage(t),
		Open:             o.open,
		ReplicaID:        o.replica,
		Logger:           slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PollMin:          50 * time.Millisecond,
		PollMax:          200 * time.Millisecond,
		WebhookPollMax:   2 * time.Second,
		DispatchInterval: 100 * time.Millisecond,
		EventsInterval:   100 * time.Millisecond,
		LeaseTTL:         3 * time.Second,
	}
	if o.webhooks {
		cfg.PublicURL = h.url
	}
	if o.config != nil {
		o.config(cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.svc, h.cfg = svc, svc.cfg
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: svc}}
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		srv.Close()
	})
	return h
}

func openStore(t testing.TB, o hopts) store.Store {
	t.Helper()
	ctx := context.Background()
	if o.postgres {
		dsn := testenv.PostgresDSN(t)
		schema := o.dsn
		if schema == "" {
			schema = freshSchema(t, dsn)
		}
		st, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: schema, MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	path := o.dsn
	if path == "" {
		path = filepath.Join(t.TempDir(), "comfypod.db")
	}
	st, err := sqlite.Open(ctx, path, &sqlite.Options{SyncNormal: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// freshSchema names a new Postgres schema for one test, dropped at its end.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "gw_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := postgres.DropSchema(context.Background(), dsn, schema); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// fakeS3 is an S3-compatible server on loopback (gofakes3) with a bucket.
func fakeS3(t testing.TB) *s3.Store {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("outputs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	st, err := s3.New(s3.Config{Endpoint: srv.URL, Region: "us-east-1", Bucket: "outputs", Prefix: "comfypod",
		AccessKeyID: "AKIDTEST", SecretAccessKey: "test-s3-secret-value", PathStyle: true, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Test images: a target with a gradient, a reference in other colours, and a
// mask whose transparent rectangle marks where to paint.
func targetImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), 0x40, 0xff})
		}
	}
	return img
}

func referenceImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{0x20, uint8((x + y) % 256), 0xe0, 0xff})
		}
	}
	return img
}

// maskImage is opaque except for the rectangle r, which is transparent.
func maskImage(w, h int, r image.Rectangle) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(0xff)
			if image.Pt(x, y).In(r) {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{0, 0, 0, a})
		}
	}
	return img
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// brushWorker is the test endpoint's handler: it does what the image-brush
// workflow does, in the simplest way — paints the reference into the target
// where the mask says — and answers as worker-comfyui does.
func brushWorker(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
	var in struct {
		Workflow json.RawMessage `json:"workflow"`
		Images   []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"images"`
	}
	if err := json.Unmarshal(job.Input, &in); err != nil {
		return nil, err
	}
	if len(in.Workflow) == 0 {
		return nil, errors.New("no workflow")
	}
	imgs := map[string]image.Image{}
	for _, im := range in.Images {
		b, err := base64.StdEncoding.DecodeString(im.Image)
		if err != nil {
			return nil, err
		}
		dec, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", im.Name, err)
		}
		for _, role := range []string{"target", "reference", "mask"} {
			if strings.Contains(im.Name, "-"+role+".") {
				imgs[role] = dec
			}
		}
	}
	target, ref, mask := imgs["target"], imgs["reference"], imgs["mask"]
	if target == nil || ref == nil || mask == nil {
		return nil, fmt.Errorf("missing images: %v", in.Images)
	}
	if err := job.Progress(ctx, map[string]any{"percent": 50, "message": "painting"}); err != nil {
		return nil, err
	}
	b := target.Bounds()
	out := image.NewNRGBA(b)
	rb := ref.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			t := color.NRGBAModel.Convert(target.At(x, y)).(color.NRGBA)
			_, _, _, a := mask.At(x, y).RGBA()
			paint := 0xffff - a
			if paint > 0 {
				r := color.NRGBAModel.Convert(ref.At(rb.Min.X+(x-b.Min.X)*rb.Dx()/b.Dx(), rb.Min.Y+(y-b.Min.Y)*rb.Dy()/b.Dy())).(color.NRGBA)
				mix := func(p, q uint8) uint8 { return uint8((uint32(p)*(0xffff-paint) + uint32(q)*paint) / 0xffff) }
				t = color.NRGBA{mix(t.R, r.R), mix(t.G, r.G), mix(t.B, r.B), 0xff}
			}
			out.SetNRGBA(x, y, t)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		return nil, err
	}
	return map[string]any{"images": []map[string]string{{
		"filename": "brush_00001_.png", "type": "base64", "data": base64.StdEncoding.EncodeToString(buf.Bytes()),
	}}}, nil
}

// form is a multipart job body.
type form struct {
	files  map[string][]byte
	fields map[string]string
}

func brushForm(t testing.TB, w, h int, paint image.Rectangle) form {
	return form{
		files: map[string][]byte{
			"target":    pngBytes(t, targetImage(w, h)),
			"reference": pngBytes(t, referenceImage(w/2+7, h/2+3)),
			"mask":      pngBytes(t, maskImage(w, h, paint)),
		},
		fields: map[string]string{"prompt": "oil paint", "strength": "0.8", "seed": "42"},
	}
}

func (f form) body(t testing.TB) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, data := range f.files {
		fw, err := mw.CreateFormFile(name, name+".png")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	for k, v := range f.fields {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// do sends a request to the service with key (none when "") and returns the
// status and body.
func (h *harness) do(method, path, key, contentType string, body []byte) (int, []byte) {
	h.t.Helper()
	code, b, _ := h.doHeader(method, path, key, contentType, body, nil)
	return code, b
}

func (h *harness) doHeader(method, path, key, contentType string, body []byte, hdr http.Header) (int, []byte, http.Header) {
	h.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = h.url + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// submit posts a form and returns the new job's id.
func (h *harness) submit(key string, f form) string {
	h.t.Helper()
	ct, body := f.body(h.t)
	code, b := h.do("POST", "/v1/jobs", key, ct, body)
	if code != http.StatusAccepted {
		h.t.Fatalf("POST /v1/jobs: %d %s", code, b)
	}
	var a Accepted
	if err := json.Unmarshal(b, &a); err != nil {
		h.t.Fatal(err)
	}
	return a.ID
}

func (h *harness) get(key, id string) Job {
	h.t.Helper()
	code, b := h.do("GET", "/v1/jobs/"+id, key, "", nil)
	if code != http.StatusOK {
		h.t.Fatalf("GET job %s: %d %s", id, code, b)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		h.t.Fatal(err)
	}
	return j
}

// sseEvent is one event of a stream.
type sseEvent struct {
	id, event, data string
}

// events follows a job's event stream until it ends (or the wait times out)
// and returns every event.
func (h *harness) events(key, id string, lastEventID string) []sseEvent {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/v1/jobs/"+id+"/events", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("events: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" || cur.data != "" {
				out = append(out, cur)
				if cur.event == "end" {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	h.t.Fatalf("event stream of %s ended without an end event (%v): %v", id, sc.Err(), out)
	return nil
}

// wait follows a job's events until it ends and returns its final state.
func (h *harness) wait(key, id string) Job {
	h.t.Helper()
	evs := h.events(key, id, "")
	var j Job
	for _, e := range evs {
		if e.event == "job" {
			if err := json.Unmarshal([]byte(e.data), &j); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	if !j.Status.Final() {
		h.t.Fatalf("job %s: last event %+v is not final", id, j)
	}
	return j
}

// awaitCond waits until cond holds, re-checking whenever the control plane's
// state changes and at least every 50 ms (for changes only the service sees).
func awaitCond(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func fsReadFile(fsys fs.FS, name string) ([]byte, error) { return fs.ReadFile(fsys, name) }

func decodeJob(t testing.TB, data string) Job {
	t.Helper()
	var j Job
	if err := json.Unmarshal([]byte(data), &j); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return j
}
