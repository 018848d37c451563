package web_test

// Contract tests: the page against a small in-memory implementation of the
// jobs API contract (the routes, bodies and statuses of docs/service.md), in
// which the test decides when a job moves on. They cover what the real
// service cannot be made to do on cue: a cold start that lasts, progress, a
// failure, a cancellation, a missing API key, a field error, a service
// without an events route. The required end-to-end test runs the page
// against the real service instead (browser_test.go).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/comfypod/comfypod/gateway/web"
)

// contractJob is a job of the contract server, as the API shows it.
type contractJob struct {
	ID         string            `json:"id"`
	Status     string            `json:"status"`
	CreatedAt  time.Time         `json:"created_at"`
	StartedAt  *time.Time        `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
	Progress   *contractProgress `json:"progress"`
	Error      *contractError    `json:"error"`
	Outputs    []contractOutput  `json:"outputs"`
	Params     map[string]any    `json:"params"`

	output []byte
	target image.Rectangle
	mask   image.Image
	form   map[string]string
}

type contractProgress struct {
	Fraction *float64 `json:"fraction,omitempty"`
	Message  string   `json:"message,omitempty"`
}

type contractError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type contractOutput struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	URL         string `json:"url"`
}

// contractAPI is the jobs API in memory. Jobs stay queued until the test
// moves them with set.
type contractAPI struct {
	t      testing.TB
	apiKey string // required Bearer key; "" runs open
	events bool   // whether /v1/jobs/{id}/events exists
	// publicURL prefixes output URLs, as a service that knows its public
	// address writes them; "" gives root-relative URLs.
	publicURL string

	mu       sync.Mutex
	jobs     []*contractJob // oldest first
	changed  chan struct{}  // closed and replaced on every change
	created  chan string    // ids of new jobs
	auth     []string       // Authorization headers seen, by path
	cancels  []string
	rejectAs map[string]string // field → message: the next POST fails naming it
}

func newContractAPI(t testing.TB) *contractAPI {
	return &contractAPI{t: t, events: true, changed: make(chan struct{}), created: make(chan string, 16), rejectAs: map[string]string{}}
}

func (a *contractAPI) notify() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, field, msg string) {
	code := map[int]string{400: "invalid_request", 401: "unauthorized", 404: "not_found", 422: "invalid_param"}[status]
	body := map[string]any{"code": code, "message": msg, "request_id": "req-1"}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func (a *contractAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.auth = append(a.auth, r.URL.Path+" "+r.Header.Get("Authorization"))
	a.mu.Unlock()
	if a.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+a.apiKey {
		apiError(w, http.StatusUnauthorized, "", "missing or invalid API key")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "package" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, contractPackage)
	case len(parts) == 2 && r.Method == http.MethodPost:
		a.create(w, r)
	case len(parts) == 2 && r.Method == http.MethodGet:
		a.list(w, r)
	case len(parts) == 3 && r.Method == http.MethodGet:
		a.withJob(w, parts[2], func(j *contractJob) { writeJSON(w, http.StatusOK, j) })
	case len(parts) == 3 && r.Method == http.MethodDelete:
		a.cancel(w, parts[2])
	case len(parts) == 4 && parts[3] == "events" && a.events:
		a.stream(w, r, parts[2])
	case len(parts) == 5 && parts[3] == "outputs" && parts[4] == "0",
		// This server's outputs are small: each is its own thumbnail. It
		// keeps no inputs (jobs list none).
		len(parts) == 6 && parts[3] == "outputs" && parts[4] == "0" && parts[5] == "thumbnail":
		a.withJob(w, parts[2], func(j *contractJob) {
			if j.output == nil {
				apiError(w, http.StatusNotFound, "", "no such output")
				return
			}
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(j.output)
		})
	default:
		apiError(w, http.StatusNotFound, "", "not found")
	}
}

func (a *contractAPI) withJob(w http.ResponseWriter, id string, f func(*contractJob)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, j := range a.jobs {
		if j.ID == id {
			f(j)
			return
		}
	}
	apiError(w, http.StatusNotFound, "", "no such job")
}

func (a *contractAPI) create(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		apiError(w, http.StatusBadRequest, "", "want multipart/form-data: "+err.Error())
		return
	}
	a.mu.Lock()
	for field, msg := range a.rejectAs {
		delete(a.rejectAs, field)
		a.mu.Unlock()
		apiError(w, http.StatusBadRequest, field, msg)
		return
	}
	a.mu.Unlock()
	imgs := map[string]image.Image{}
	for _, f := range []string{"target", "reference", "mask"} {
		file, _, err := r.FormFile(f)
		if err != nil {
			apiError(w, http.StatusBadRequest, f, f+": missing file")
			return
		}
		img, _, err := image.Decode(file)
		file.Close()
		if err != nil {
			apiError(w, http.StatusBadRequest, f, f+": not an image")
			return
		}
		imgs[f] = img
	}
	if imgs["mask"].Bounds() != imgs["target"].Bounds() {
		apiError(w, http.StatusBadRequest, "mask", "mask: must be the size of the target")
		return
	}
	form := map[string]string{}
	for _, f := range []string{"prompt", "strength", "seed"} {
		form[f] = r.FormValue(f)
	}
	if _, err := strconv.ParseFloat(form["strength"], 64); err != nil {
		apiError(w, http.StatusBadRequest, "strength", "strength: want a number")
		return
	}
	a.mu.Lock()
	j := &contractJob{
		ID:        fmt.Sprintf("job-%d", len(a.jobs)+1),
		Status:    "queued",
		CreatedAt: time.Now().UTC(),
		Outputs:   []contractOutput{},
		Params:    map[string]any{"seed": 1234567, "prompt": form["prompt"]},
		output:    composite(imgs["target"], imgs["reference"], imgs["mask"]),
		target:    imgs["target"].Bounds(),
		mask:      imgs["mask"],
		form:      form,
	}
	a.jobs = append(a.jobs, j)
	a.notify()
	answer := map[string]string{"id": j.ID, "status": j.Status}
	a.mu.Unlock()
	a.created <- j.ID
	writeJSON(w, http.StatusAccepted, answer)
}

func (a *contractAPI) list(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 {
		limit = 20
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// The cursor is the index of the newest job of the page.
	start := len(a.jobs) - 1
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
		if err != nil || n < 0 || n >= len(a.jobs) {
			apiError(w, http.StatusBadRequest, "cursor", "cursor: not one this service returned")
			return
		}
		start = n
	}
	out := []*contractJob{}
	i := start
	for ; i >= 0 && len(out) < limit; i-- {
		out = append(out, a.jobs[i])
	}
	next := ""
	if i >= 0 {
		next = "c" + strconv.Itoa(i)
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out, "next_cursor": next})
}

// add stores a finished job, as if it had run earlier.
func (a *contractAPI) add(status, errMsg string, output []byte) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	created := time.Now().UTC().Add(-time.Duration(100-len(a.jobs)) * time.Minute)
	j := &contractJob{
		ID: fmt.Sprintf("job-%d", len(a.jobs)+1), Status: status, CreatedAt: created, FinishedAt: &created,
		Outputs: []contractOutput{}, Params: map[string]any{"seed": 42}, output: output,
	}
	if errMsg != "" {
		j.Error = &contractError{Code: "worker_error", Message: errMsg}
	}
	if status == "succeeded" {
		j.Outputs = []contractOutput{{Filename: j.ID + ".png", ContentType: "image/png", URL: "/v1/jobs/" + j.ID + "/outputs/0"}}
	}
	a.jobs = append(a.jobs, j)
	return j.ID
}

func (a *contractAPI) cancel(w http.ResponseWriter, id string) {
	a.withJob(w, id, func(j *contractJob) {
		a.cancels = append(a.cancels, id)
		if !terminal(j.Status) {
			now := time.Now().UTC()
			j.Status, j.FinishedAt = "cancelled", &now
			a.notify()
		}
		writeJSON(w, http.StatusOK, j)
	})
}

func terminal(s string) bool {
	return s == "succeeded" || s == "failed" || s == "cancelled" || s == "timed_out"
}

func (a *contractAPI) stream(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	last := ""
	for {
		a.mu.Lock()
		var job *contractJob
		for _, j := range a.jobs {
			if j.ID == id {
				job = j
			}
		}
		if job == nil {
			a.mu.Unlock()
			apiError(w, http.StatusNotFound, "", "no such job")
			return
		}
		b, _ := json.Marshal(job)
		done := terminal(job.Status)
		changed := a.changed
		a.mu.Unlock()
		if string(b) != last {
			last = string(b)
			// Split across writes, with a comment, to exercise the parser.
			fmt.Fprintf(w, ": state\nevent: status\r\n")
			flusher.Flush()
			fmt.Fprintf(w, "data: %s\r\n\r\n", b)
			flusher.Flush()
		}
		if done {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		}
	}
}

// contractPackage is what GET /v1/package says of the image-brush package
// running its preview workflow.
var contractPackage = map[string]any{
	"name": "image-brush", "workflow": "preview", "max_image_bytes": 2 << 20, "timeout_seconds": 600,
	"params": []map[string]any{
		{"name": "target", "type": "image", "required": true, "used": true, "max_side": 2048},
		{"name": "reference", "type": "image", "required": true, "used": true, "max_side": 2048},
		{"name": "mask", "type": "mask", "required": true, "used": true, "max_side": 2048},
		{"name": "prompt", "type": "string", "required": false, "used": false, "default": "a hand-painted texture, soft brush strokes", "max_length": 2000},
		{"name": "seed", "type": "int", "required": false, "used": false, "default": "random", "random": true, "min": 0, "max": uint64(18446744073709551615)},
		{"name": "strength", "type": "float", "required": false, "used": false, "default": 0.75, "min": 0, "max": 10},
	},
}

// set changes a job and wakes its watchers.
func (a *contractAPI) set(id string, f func(j *contractJob)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, j := range a.jobs {
		if j.ID == id {
			f(j)
			now := time.Now().UTC()
			if j.Status == "running" && j.StartedAt == nil {
				j.StartedAt = &now
			}
			if terminal(j.Status) && j.FinishedAt == nil {
				j.FinishedAt = &now
			}
			if j.Status == "succeeded" {
				j.Outputs = []contractOutput{{Filename: "image-brush_00001_.png", ContentType: "image/png", URL: a.publicURL + "/v1/jobs/" + id + "/outputs/0"}}
			}
			a.notify()
			return
		}
	}
	a.t.Fatalf("no job %s", id)
}

// waitCreated returns the id of the next job the page creates.
func (a *contractAPI) waitCreated(p *browserPage) string {
	p.t.Helper()
	select {
	case id := <-a.created:
		return id
	case <-time.After(waitLong):
		p.t.Fatalf("the page created no job\n%s", p.describe())
		return ""
	}
}

// composite paints the reference into the target where the mask's alpha is
// below half, the way the preview workflow does (without its feathering).
func composite(target, reference, mask image.Image) []byte {
	b := target.Bounds()
	out := image.NewNRGBA(b)
	rb := reference.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := target.At(x, y)
			if _, _, _, a := mask.At(x, y).RGBA(); a < 0x8000 {
				c = reference.At(rb.Min.X+x%rb.Dx(), rb.Min.Y+y%rb.Dy())
			}
			out.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, out)
	return buf.Bytes()
}

// testImages writes a target (a colour gradient) and a reference (a checker
// board) under dir and returns their paths.
func testImages(t testing.TB, dir string, w, h int) (target, reference string) {
	t.Helper()
	tg := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			tg.SetNRGBA(x, y, color.NRGBA{uint8(40 + 180*x/w), uint8(60 + 150*y/h), 170, 255})
		}
	}
	ref := image.NewNRGBA(image.Rect(0, 0, 96, 96))
	for y := range 96 {
		for x := range 96 {
			c := color.NRGBA{250, 200, 30, 255}
			if (x/12+y/12)%2 == 0 {
				c = color.NRGBA{200, 30, 60, 255}
			}
			ref.SetNRGBA(x, y, c)
		}
	}
	target = filepath.Join(dir, "target.png")
	reference = filepath.Join(dir, "reference.png")
	for path, img := range map[string]image.Image{target: tg, reference: ref} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return target, reference
}

// startContract serves the page and the contract API on one origin and opens
// the page.
func startContract(t *testing.T, api *contractAPI, vp viewport) (*browserPage, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p := newBrowserPage(t, vp)
	p.navigate(srv.URL + "/")
	p.waitFor(`document.documentElement.dataset.ready === "true"`)
	return p, srv.URL
}

// loadImages picks the target and the reference with the file inputs and
// waits until the page shows them.
func loadImages(p *browserPage, target, reference string) {
	p.t.Helper()
	p.do(
		chromedp.SetUploadFiles(chromedp.ID("target-file"), []string{target}),
		chromedp.SetUploadFiles(chromedp.ID("reference-file"), []string{reference}),
	)
	p.waitFor(`!document.getElementById("stage-wrap").hidden && document.getElementById("mask-canvas").width > 0 &&
		!document.getElementById("reference-img").hidden`)
}

// paintAcross drags the mouse across the middle of the canvas, from 25% to 75%
// of its width, and returns the stroke's ends in the target's natural pixels.
func paintAcross(p *browserPage) (from, to image.Point) {
	p.t.Helper()
	x, y, w, h := p.box("#mask-canvas")
	natural := eval[[2]int](p, `[document.getElementById("mask-canvas").width, document.getElementById("mask-canvas").height]`)
	cy := y + h/2
	var pts [][2]float64
	for i := 0; i <= 10; i++ {
		pts = append(pts, [2]float64{x + w/4 + float64(i)*w/20, cy})
	}
	p.drag(pts...)
	p.waitFor(`document.getElementById("undo").getAttribute("aria-disabled") !== "true"`)
	s := float64(natural[0]) / w
	return image.Pt(int(w/4*s), int(h/2*s)), image.Pt(int(3*w/4*s), int(h/2*s))
}

func TestContractColdStartProgressAndResult(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, desktop)
	// The package's description shapes the form.
	p.waitFor(`!document.getElementById("workflow-note").hidden && !document.getElementById("prompt-note").hidden &&
		document.getElementById("strength").value === "0.75" && document.getElementById("strength-out").textContent === "0.75" &&
		document.getElementById("prompt").placeholder === "a hand-painted texture, soft brush strokes"`)
	target, reference := testImages(t, t.TempDir(), 320, 240)
	loadImages(p, target, reference)
	from, to := paintAcross(p)
	p.do(chromedp.SendKeys(chromedp.ID("prompt"), "thick oil paint"))
	p.do(chromedp.Click(chromedp.ID("submit")))
	id := api.waitCreated(p)

	p.waitFor(`document.getElementById("status").dataset.state === "queued" && !document.getElementById("cancel").hidden`)
	api.set(id, func(j *contractJob) { j.Status = "cold_start" })
	p.waitFor(`document.getElementById("status").dataset.state === "cold_start"`)
	if got := eval[string](p, `document.title`); got != "Loading model · Image Brush · comfypod" {
		t.Errorf("title during a cold start %q", got)
	}
	if got := eval[string](p, `document.getElementById("status-text").textContent`); got != "The model is loading (cold start), this can take a minute." {
		t.Errorf("cold start status text %q", got)
	}
	if got := eval[string](p, `document.getElementById("status-badge").textContent`); got != "Loading model" {
		t.Errorf("cold start badge %q", got)
	}
	api.set(id, func(j *contractJob) {
		j.Status = "running"
		v := 0.4
		j.Progress = &contractProgress{Fraction: &v, Message: "step 8 of 20"}
	})
	p.waitFor(`document.getElementById("progress").value === 0.4 && /40% done · step 8 of 20/.test(document.getElementById("elapsed").textContent)`)
	api.set(id, func(j *contractJob) { j.Status = "succeeded" })
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden`)

	// The form fields arrived as the page shows them.
	api.mu.Lock()
	form, mask := api.jobs[0].form, api.jobs[0].mask
	api.mu.Unlock()
	if form["prompt"] != "thick oil paint" || form["strength"] != "0.75" || form["seed"] != "random" {
		t.Errorf("form fields %v", form)
	}
	// The mask is painted along the stroke, at the target's natural size.
	if mask.Bounds() != image.Rect(0, 0, 320, 240) {
		t.Fatalf("mask bounds %v", mask.Bounds())
	}
	for _, pt := range []image.Point{from, to, from.Add(to).Div(2)} {
		if _, _, _, a := mask.At(pt.X, pt.Y).RGBA(); a != 0 {
			t.Errorf("mask alpha at %v is %d, want 0 (painted)", pt, a>>8)
		}
	}
	if _, _, _, a := mask.At(5, 5).RGBA(); a != 0xffff {
		t.Errorf("mask alpha at the corner is %d, want 255 (kept)", a>>8)
	}

	res := eval[struct {
		W, H       int
		Before     bool
		Download   string
		HRef       string
		Meta       string
		HistoryLen int
	}](p, `(() => {
		const img = document.getElementById("result-img");
		const a = document.getElementById("download");
		return {W: img.naturalWidth, H: img.naturalHeight, Before: !document.getElementById("compare-frame").classList.contains("single"),
			Download: a.download, HRef: a.href, Meta: document.getElementById("result-meta").textContent,
			HistoryLen: document.querySelectorAll("#history button[data-id]").length};
	})()`)
	if res.W != 320 || res.H != 240 || !res.Before || res.Download != "image-brush_00001_.png" || !strings.HasPrefix(res.HRef, "blob:") ||
		res.Meta != "320 × 240 PNG · seed 1234567" {
		t.Errorf("result %+v", res)
	}
	// The seed drawn for "random" can be kept for the next job.
	p.do(chromedp.Click(chromedp.ID("reuse-seed")))
	if got := eval[string](p, `document.getElementById("seed-fixed").checked && document.getElementById("seed-value").value`); got != "1234567" {
		t.Errorf("seed after Use seed again: %q", got)
	}
	// The comparison divider moves with the keyboard.
	p.do(chromedp.Focus(chromedp.ID("compare-range")))
	p.press(kb.ArrowLeft + kb.ArrowLeft + kb.ArrowLeft)
	if pos := eval[string](p, `document.getElementById("compare-frame").style.getPropertyValue("--pos")`); pos != "47%" {
		t.Errorf("divider at %q after three left arrows, want 47%%", pos)
	}
	p.waitFor(`document.querySelector('#history button[data-id="` + id + `"] img.thumb') !== null`)
}

func TestContractFailureAndCancel(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, desktop)
	target, reference := testImages(t, t.TempDir(), 200, 150)
	loadImages(p, target, reference)
	paintAcross(p)

	p.do(chromedp.Click(chromedp.ID("submit")))
	id := api.waitCreated(p)
	api.set(id, func(j *contractJob) {
		j.Status = "failed"
		j.Error = &contractError{Code: "worker_error", Message: "worker: reference: image is 1×1, want at least 64 pixels a side"}
	})
	p.waitFor(`document.getElementById("status").dataset.state === "failed"`)
	if got := eval[string](p, `document.getElementById("status-error").textContent`); !strings.Contains(got, "want at least 64 pixels") {
		t.Errorf("failure message %q", got)
	}
	if !eval[bool](p, `document.getElementById("cancel").hidden && document.getElementById("result-card").hidden`) {
		t.Error("a failed job shows a cancel button or a result")
	}

	p.do(chromedp.Click(chromedp.ID("submit")))
	id = api.waitCreated(p)
	api.set(id, func(j *contractJob) { j.Status = "running" })
	p.waitFor(`document.getElementById("status").dataset.state === "running" && !document.getElementById("cancel").hidden`)
	p.do(chromedp.Click(chromedp.ID("cancel")))
	p.waitFor(`document.getElementById("status").dataset.state === "cancelled" && document.getElementById("cancel").hidden`)
	api.mu.Lock()
	cancels := api.cancels
	api.mu.Unlock()
	if len(cancels) != 1 || cancels[0] != id {
		t.Errorf("DELETE calls %v, want [%s]", cancels, id)
	}
	// Both jobs are in the history, newest first.
	p.waitFor(`[...document.querySelectorAll("#history button[data-id]")].map((b) => b.dataset.id).join() === "job-2,job-1"`)
}

func TestContractAPIKey(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	api.apiKey = "sk-contract-1234"
	// Output URLs carry an address this browser cannot reach (and may not
	// fetch from): the page reads them from its own service.
	api.publicURL = "https://brush.invalid"
	p, url := startContract(t, api, desktop)
	// The browser reports the 401 answers the test provokes.
	p.allowConsole("401 (Unauthorized)")
	p.waitFor(`/API key/.test(document.getElementById("history-error").textContent)`)

	target, reference := testImages(t, t.TempDir(), 160, 120)
	loadImages(p, target, reference)
	paintAcross(p)
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("connection").open && document.activeElement.id === "api-key" && !document.getElementById("form-error").hidden`)

	p.do(chromedp.SendKeys(chromedp.ID("api-key"), api.apiKey), chromedp.Click(chromedp.ID("remember-key")))
	// Leaving the key field reloads the history with the key, which moves
	// the page: click once it has settled.
	p.waitFor(`document.getElementById("history-error").hidden`)
	p.do(chromedp.Click(chromedp.ID("submit")))
	id := api.waitCreated(p)
	api.set(id, func(j *contractJob) { j.Status = "succeeded" })
	p.waitFor(`!document.getElementById("result-card").hidden && document.getElementById("result-img").naturalWidth === 160`)
	if got := eval[string](p, `localStorage.getItem("comfypod.image-brush.api-key")`); got != api.apiKey {
		t.Errorf("remembered key %q", got)
	}
	api.mu.Lock()
	seen := strings.Join(api.auth, "\n")
	api.mu.Unlock()
	for _, path := range []string{"/v1/jobs", "/v1/jobs/" + id + "/events", "/v1/jobs/" + id + "/outputs/0"} {
		if !strings.Contains(seen, path+" Bearer "+api.apiKey) {
			t.Errorf("%s was not sent with the key; requests:\n%s", path, seen)
		}
	}
	// The key is not written into the page.
	if eval[bool](p, `document.body.innerText.includes("sk-contract")`) {
		t.Error("the API key shows in the page text")
	}

	// A reload keeps the remembered key; unticking Remember forgets it.
	p.navigate(url + "/")
	p.waitFor(`document.getElementById("api-key").value === "sk-contract-1234" && document.getElementById("remember-key").checked`)
	p.waitFor(`document.querySelector('#history button[data-id="` + id + `"]') !== null`)
	// The reloaded tab shows its job again; its target is gone with the old
	// page and this server keeps no inputs (no inputs list), so the result
	// is shown alone.
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden &&
		document.getElementById("compare-frame").classList.contains("single")`)
	p.do(chromedp.Click(chromedp.CSS("#connection summary")), chromedp.Click(chromedp.ID("remember-key")))
	p.waitFor(`localStorage.getItem("comfypod.image-brush.api-key") === null`)
}

func TestContractFieldError(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	api.rejectAs["prompt"] = "prompt: must be at most 2000 characters"
	p, _ := startContract(t, api, desktop)
	p.allowConsole("400 (Bad Request)")
	target, reference := testImages(t, t.TempDir(), 160, 120)

	// Nothing chosen: the page says what is missing without calling the API.
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("target-file").getAttribute("aria-invalid") === "true" &&
		document.getElementById("reference-file").getAttribute("aria-invalid") === "true" &&
		document.activeElement.id === "target-file"`)
	loadImages(p, target, reference)
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("mask-canvas").getAttribute("aria-invalid") === "true" && document.activeElement.id === "mask-canvas"`)

	paintAcross(p)
	// A reference over the service's size limit is caught before sending.
	big := filepath.Join(t.TempDir(), "big.png")
	if err := os.WriteFile(big, noisyPNG(t, 1000, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.SetUploadFiles(chromedp.ID("reference-file"), []string{big}))
	p.waitFor(`document.getElementById("reference-img").naturalWidth === 1000 && document.getElementById("reference-img").dataset.file === "big.png"`)
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("reference-file").getAttribute("aria-invalid") === "true" &&
		/up to 2.0 MB/.test(document.getElementById("reference-error").textContent)`)
	p.do(chromedp.SetUploadFiles(chromedp.ID("reference-file"), []string{reference}))
	p.waitFor(`document.getElementById("reference-img").naturalWidth === 96 && document.getElementById("reference-img").dataset.file === ` +
		jsString(filepath.Base(reference)))

	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("prompt").getAttribute("aria-invalid") === "true" && document.activeElement.id === "prompt"`)
	if got := eval[string](p, `document.getElementById("prompt-error").textContent`); got != "prompt: must be at most 2000 characters" {
		t.Errorf("prompt error %q", got)
	}
	select {
	case id := <-api.created:
		t.Errorf("job %s created despite the error", id)
	default:
	}
}

// TestContractPollingWithoutEvents checks the page still follows a job when
// the service has no events route.
func TestContractPollingWithoutEvents(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	api.events = false
	p, _ := startContract(t, api, desktop)
	p.allowConsole("404 (Not Found)")
	target, reference := testImages(t, t.TempDir(), 160, 120)
	loadImages(p, target, reference)
	paintAcross(p)
	p.do(chromedp.Click(chromedp.ID("submit")))
	id := api.waitCreated(p)
	api.set(id, func(j *contractJob) { j.Status = "cold_start" })
	p.waitFor(`document.getElementById("status").dataset.state === "cold_start"`)
	api.set(id, func(j *contractJob) { j.Status = "succeeded" })
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && document.getElementById("result-img").naturalWidth === 160`)
}

// paintWithKeyboard tabs to the mask canvas and paints a horizontal line with
// the keyboard alone: ] grows the brush, Space held while pressing the right
// arrow paints. It returns the number of arrow presses.
func paintWithKeyboard(p *browserPage) int {
	p.t.Helper()
	p.tabTo("mask-canvas", 12)
	p.press("]]")
	p.press(kb.ArrowLeft + kb.ArrowLeft + kb.ArrowLeft + kb.ArrowLeft)
	p.keyDown(" ", "Space", 32, " ")
	const moves = 8
	for range moves {
		p.press(kb.ArrowRight)
	}
	p.keyUp(" ", "Space", 32)
	p.waitFor(`document.getElementById("undo").getAttribute("aria-disabled") !== "true" && /painted/.test(document.getElementById("mask-summary").textContent) &&
		!/Nothing/.test(document.getElementById("mask-summary").textContent)`)
	return moves
}

// TestContractKeyboardOnlyPhone runs the whole flow on a phone-sized screen
// with the keyboard only (the files are set on the inputs, as a file dialog
// would): the layout is one column, and the mask, prompt, seed and submit are
// all reached with Tab.
func TestContractKeyboardOnlyPhone(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, phone)
	target, reference := testImages(t, t.TempDir(), 300, 300)
	loadImages(p, target, reference)

	// One column: the settings card sits below the editor card, and nothing
	// is wider than the screen.
	layout := eval[struct {
		EditorBottom, SettingsTop, ScrollWidth, Width float64
	}](p, `(() => {
		const e = document.querySelector(".target-card").getBoundingClientRect();
		const s = document.querySelector(".settings-card").getBoundingClientRect();
		return {EditorBottom: e.bottom, SettingsTop: s.top, ScrollWidth: document.documentElement.scrollWidth, Width: window.innerWidth};
	})()`)
	if layout.SettingsTop < layout.EditorBottom || layout.ScrollWidth > layout.Width {
		t.Errorf("not a single column that fits the screen: %+v", layout)
	}

	p.do(chromedp.Focus(chromedp.ID("target-file")))
	paintWithKeyboard(p)
	p.tabTo("prompt", 20)
	p.press("watercolour")
	p.tabTo("seed-random", 6)
	p.press(kb.ArrowRight) // arrows move within a radio group: Fixed
	p.tabTo("seed-value", 2)
	p.press(kb.Backspace + kb.Backspace + "7")
	p.tabTo("submit", 4)
	p.press(kb.Enter)
	id := api.waitCreated(p)
	api.set(id, func(j *contractJob) { j.Status = "succeeded" })
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && document.getElementById("result-img").naturalWidth === 300`)
	api.mu.Lock()
	form := api.jobs[0].form
	api.mu.Unlock()
	if form["prompt"] != "watercolour" || form["seed"] != "7" {
		t.Errorf("form fields %v", form)
	}
	// The download link and the history entry are reachable with Tab.
	p.tabTo("compare-range", 6)
	p.tabTo("download", 2)
}

// withOrientation inserts an EXIF block with the orientation tag after the
// JPEG's start marker, as cameras write it.
func withOrientation(jpg []byte, orientation uint16) []byte {
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, // big-endian header, first IFD at 8
		0, 1, // one entry
		0x01, 0x12, 0, 3, 0, 0, 0, 1, byte(orientation >> 8), byte(orientation), 0, 0, // Orientation, SHORT, 1
		0, 0, 0, 0} // no next IFD
	body := append([]byte("Exif\x00\x00"), tiff...)
	n := len(body) + 2
	app1 := append([]byte{0xff, 0xe1, byte(n >> 8), byte(n)}, body...)
	return append(append(append([]byte{}, jpg[:2]...), app1...), jpg[2:]...)
}

// TestContractSidewaysPhoto sends a JPEG stored sideways with an EXIF
// orientation: the page shows it upright, and sends an upright copy, so the
// mask painted over it fits.
func TestContractSidewaysPhoto(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	p, _ := startContract(t, api, desktop)
	dir := t.TempDir()
	_, reference := testImages(t, dir, 8, 8)
	raw := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := range 200 {
		for x := range 320 {
			raw.Set(x, y, color.RGBA{uint8(x * 255 / 320), 90, uint8(y * 255 / 200), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, raw, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(dir, "photo.jpg")
	if err := os.WriteFile(photo, withOrientation(buf.Bytes(), 6), 0o644); err != nil {
		t.Fatal(err)
	}
	loadImages(p, photo, reference)
	if got := eval[[2]int](p, `[document.getElementById("mask-canvas").width, document.getElementById("mask-canvas").height]`); got != [2]int{200, 320} {
		t.Fatalf("mask canvas %v, want the upright 200×320", got)
	}
	p.waitFor(`!document.getElementById("target-note").hidden`)
	paintAcross(p)
	p.do(chromedp.Click(chromedp.ID("submit")))
	api.waitCreated(p)
	api.mu.Lock()
	target, mask := api.jobs[0].target, api.jobs[0].mask.Bounds()
	api.mu.Unlock()
	if target != image.Rect(0, 0, 200, 320) || mask != target {
		t.Errorf("sent a %v target with a %v mask, want both upright 200×320", target, mask)
	}
}

// noisyPNG is a PNG that does not compress: about 4 bytes a pixel.
func noisyPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(2463534242)
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = byte(x)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestContractHistoryPages browses a long history: pages, thumbnails, and
// opening old jobs with the keyboard.
func TestContractHistoryPages(t *testing.T) {
	t.Parallel()
	api := newContractAPI(t)
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		switch i % 3 {
		case 0:
			api.add("failed", fmt.Sprintf("worker: job %d ran out of memory", i+1), nil)
		default:
			api.add("succeeded", "", buf.Bytes())
		}
	}
	p, _ := startContract(t, api, desktop)
	ids := `[...document.querySelectorAll("#history button[data-id]")].map((b) => b.dataset.id).join()`
	p.waitFor(ids + ` === "job-15,job-14,job-13,job-12,job-11,job-10,job-9,job-8,job-7,job-6,job-5,job-4" && !document.getElementById("history-more").hidden`)
	// Succeeded jobs get their output as a thumbnail.
	p.waitFor(`document.querySelectorAll("#history img.thumb").length === 8`)
	p.do(chromedp.Click(chromedp.ID("history-more")))
	p.waitFor(ids + `.endsWith("job-4,job-3,job-2,job-1") && document.getElementById("history-more").hidden`)

	// Open a succeeded job and a failed one from the keyboard.
	p.do(chromedp.Focus(chromedp.CSS(`#history button[data-id="job-14"]`)))
	p.press(kb.Enter)
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden &&
		document.getElementById("result-img").naturalWidth === 40 && document.getElementById("compare-frame").classList.contains("single") &&
		document.querySelector('#history button[data-id="job-14"]').getAttribute("aria-current") === "true"`)
	p.do(chromedp.Focus(chromedp.CSS(`#history button[data-id="job-13"]`)))
	p.press(" ")
	p.waitFor(`document.getElementById("status").dataset.state === "failed" && document.getElementById("result-card").hidden &&
		document.getElementById("status-error").textContent === "worker: job 13 ran out of memory"`)
}
