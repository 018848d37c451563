package web_test

// The end-to-end test: `comfypod serve` runs in this process exactly as on
// the command line (with no RunPod key it starts its embedded local stack:
// the RunPod control plane, a Go worker and the ComfyUI-compatible engine
// running the package's model-free preview workflow), and headless Chromium
// uses the page as a person would: it picks the images, paints the mask with
// the mouse (or the keyboard on a phone-sized screen), submits, and waits for
// the result. The test then checks the output the service stored.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/comfypod/comfypod/internal/cli"
	"github.com/comfypod/comfypod/internal/testenv"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "rewrite the reference screenshots in testdata/screenshots")

// serveLog collects what comfypod serve writes to standard error and tells
// when its address is known.
type serveLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	url   string
	ready chan struct{}
}

var listeningLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)`)

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if l.url == "" {
		if m := listeningLine.FindSubmatch(l.buf.Bytes()); m != nil {
			l.url = string(m[1])
			close(l.ready)
		}
	}
	return len(p), nil
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startServe runs `comfypod serve --addr 127.0.0.1:0` in this process with an
// empty environment (so the local stack, open on loopback) and a fresh data
// folder, and returns its URL. The command stops when the test ends. extra
// are more flags.
func startServe(t *testing.T, dataDir string, extra ...string) (string, *serveLog) {
	t.Helper()
	logs := &serveLog{ready: make(chan struct{})}
	f := &cli.Factory{
		IO:         &cli.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: logs},
		Getenv:     func(string) string { return "" },
		HTTPClient: &http.Client{},
		Now:        time.Now,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--workers", "1", "--log-level", "info", "--log-format", "text"}
	args = append(args, extra...)
	go func() { done <- cli.Run(ctx, f, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("comfypod serve exited with %d:\n%s", code, logs)
			}
		case <-time.After(waitLong):
			t.Errorf("comfypod serve did not stop:\n%s", logs)
		}
	})
	select {
	case <-logs.ready:
		return logs.url, logs
	case code := <-done:
		t.Fatalf("comfypod serve exited with %d before listening:\n%s", code, logs)
	case <-time.After(waitLong):
		t.Fatalf("comfypod serve did not start listening:\n%s", logs)
	}
	return "", nil
}

// createKey runs `comfypod keys create` on the data folder and returns the key.
func createKey(t *testing.T, dataDir string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &cli.Factory{
		IO:         &cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:     func(string) string { return "" },
		HTTPClient: &http.Client{},
		Now:        time.Now,
	}
	args := []string{"keys", "create", "--name", "browser-test", "--data-dir", dataDir, "--log-level", "warn", "--log-format", "text"}
	if code := cli.Run(context.Background(), f, args); code != 0 {
		t.Fatalf("comfypod keys create: exit %d\n%s", code, errOut.String())
	}
	key := strings.TrimSpace(out.String())
	if key == "" || strings.ContainsAny(key, " \n") {
		t.Fatalf("comfypod keys create printed %q", out.String())
	}
	return key
}

// serviceJob is the part of GET /v1/jobs/{id} the test reads.
type serviceJob struct {
	ID      string                     `json:"id"`
	Status  string                     `json:"status"`
	Params  map[string]json.RawMessage `json:"params"`
	Outputs []struct {
		ContentType string `json:"content_type"`
		URL         string `json:"url"`
	} `json:"outputs"`
}

// get fetches url, with the Bearer key when one is given.
func get(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func getJSON(t *testing.T, url, key string, v any) {
	t.Helper()
	res := get(t, url, key)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// paintedMask reads the mask canvas's alpha at the target's natural size:
// what the page exports, 0 where nothing is painted.
func paintedMask(p *browserPage) *image.Alpha {
	p.t.Helper()
	r := eval[struct {
		W, H int
		A    []byte
	}](p, `(() => {
		const c = document.getElementById("mask-canvas");
		const d = c.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, c.width, c.height).data;
		const a = new Array(c.width * c.height);
		for (let i = 0; i < a.length; i++) a[i] = d[i * 4 + 3];
		return {W: c.width, H: c.height, A: btoa(String.fromCharCode(...a))};
	})()`)
	return &image.Alpha{Pix: r.A, Stride: r.W, Rect: image.Rect(0, 0, r.W, r.H)}
}

// near reports, for every pixel, whether a painted pixel lies within margin
// pixels (in the square around it, which holds the disc).
func near(mask *image.Alpha, margin int) func(x, y int) bool {
	w, h := mask.Rect.Dx(), mask.Rect.Dy()
	sum := make([]int, (w+1)*(h+1)) // summed-area table of painted pixels
	for y := range h {
		for x := range w {
			v := 0
			if mask.Pix[y*mask.Stride+x] > 0 {
				v = 1
			}
			sum[(y+1)*(w+1)+x+1] = v + sum[y*(w+1)+x+1] + sum[(y+1)*(w+1)+x] - sum[y*(w+1)+x]
		}
	}
	return func(x, y int) bool {
		x0, y0 := max(0, x-margin), max(0, y-margin)
		x1, y1 := min(w, x+margin+1), min(h, y+margin+1)
		return sum[y1*(w+1)+x1]-sum[y0*(w+1)+x1]-sum[y1*(w+1)+x0]+sum[y0*(w+1)+x0] > 0
	}
}

// checkOutput downloads the job's output from the service and compares it
// with the target: same size; the target's own pixels away from the painted
// area (the preview grows the mask by 8 pixels and feathers it by 4); and
// most of the painted area's core repainted.
func checkOutput(t *testing.T, base, key, id, targetPath string, mask *image.Alpha) serviceJob {
	t.Helper()
	var job serviceJob
	getJSON(t, base+"/v1/jobs/"+id, key, &job)
	if job.Status != "succeeded" || len(job.Outputs) != 1 || job.Outputs[0].ContentType != "image/png" {
		t.Fatalf("job %+v", job)
	}
	u := job.Outputs[0].URL
	if strings.HasPrefix(u, "/") {
		u = base + u
	}
	res := get(t, u, key)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	out, err := png.Decode(res.Body)
	if err != nil {
		t.Fatalf("output: %v", err)
	}
	tf, err := os.Open(targetPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	target, err := png.Decode(tf)
	if err != nil {
		t.Fatal(err)
	}
	if out.Bounds() != target.Bounds() || mask.Rect != target.Bounds() {
		t.Fatalf("output %v, mask %v, target %v: want one size", out.Bounds(), mask.Rect, target.Bounds())
	}
	const margin = 16
	isNear := near(mask, margin)
	// Fully painted pixels are inside the grown, feathered mask: repainted.
	inCore := func(x, y int) bool { return mask.AlphaAt(x, y).A == 255 }
	b := target.Bounds()
	kept, core, repainted := 0, 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			got := color.NRGBAModel.Convert(out.At(x, y)).(color.NRGBA)
			want := color.NRGBAModel.Convert(target.At(x, y)).(color.NRGBA)
			switch {
			case !isNear(x, y):
				if got != want {
					t.Fatalf("pixel (%d,%d), more than %d px from the painted area, is %v; the target's is %v", x, y, margin, got, want)
				}
				kept++
			case inCore(x, y):
				core++
				if got != want {
					repainted++
				}
			}
		}
	}
	if kept == 0 || core == 0 || repainted < core/2 {
		t.Fatalf("%d pixels kept, %d of %d painted pixels repainted: want the painted area repainted and the rest kept", kept, repainted, core)
	}
	return job
}

// saveScreenshot writes a full-page screenshot under the git-ignored
// testdata/screenshots/out and logs its path. With -update-screenshots, a
// reference one also replaces the committed copy of that name (a picture for
// people reviewing the page; tests do not compare pixels, which differ with
// the fonts of each machine).
func saveScreenshot(t *testing.T, p *browserPage, name string, reference bool) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "testdata", "screenshots")
	path := p.screenshot(filepath.Join(dir, "out"), name)
	t.Logf("screenshot: %s", path)
	if *updateScreenshots && reference {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("reference screenshot updated: %s", filepath.Join(dir, name))
	}
}

// currentJob is the id of the job the page shows, once its history lists it.
func currentJob(p *browserPage) string {
	p.t.Helper()
	p.waitFor(`document.querySelector('#history button[aria-current="true"] img.thumb') !== null`)
	return eval[string](p, `document.querySelector('#history button[aria-current="true"]').dataset.id`)
}

func TestImageBrushEndToEnd(t *testing.T) {
	testenv.Chromium(t)
	data := t.TempDir()
	base, _ := startServe(t, data)
	dir := t.TempDir()

	t.Run("desktop with the mouse", func(t *testing.T) {
		target, reference := testImages(t, dir, 256, 192)
		p := newBrowserPage(t, desktop)
		p.navigate(base + "/")
		p.waitFor(`document.documentElement.dataset.ready === "true" && !document.getElementById("workflow-note").hidden`)
		loadImages(p, target, reference)

		// Two strokes with real mouse events, the second one undone and
		// redone.
		paintAcross(p)
		x, y, w, h := p.box("#mask-canvas")
		p.drag([2]float64{x + w*0.3, y + h*0.2}, [2]float64{x + w*0.35, y + h*0.35}, [2]float64{x + w*0.4, y + h*0.5})
		p.do(chromedp.Click(chromedp.ID("undo")), chromedp.Click(chromedp.ID("redo")))
		mask := paintedMask(p)

		p.do(chromedp.SendKeys(chromedp.ID("prompt"), "thick impasto oil paint"))
		p.do(chromedp.Click(chromedp.ID("submit")))
		p.waitFor(`["queued", "cold_start", "running", "succeeded"].includes(document.getElementById("status").dataset.state)`)
		p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden`)
		if got := eval[string](p, `document.getElementById("status-text").textContent`); got != "Done. The result is below." {
			t.Errorf("status text %q", got)
		}
		size := eval[[2]int](p, `[document.getElementById("result-img").naturalWidth, document.getElementById("result-img").naturalHeight]`)
		if size != [2]int{256, 192} {
			t.Errorf("result shown at natural size %v, want the target's 256×192", size)
		}
		if !eval[bool](p, `!document.getElementById("compare-frame").classList.contains("single") &&
			document.getElementById("before-img").naturalWidth === 256 && document.getElementById("download").href.startsWith("blob:")`) {
			t.Error("no before/after comparison or download link")
		}

		id := currentJob(p)
		job := checkOutput(t, base, "", id, target, mask)
		if len(job.Params["seed"]) == 0 || string(job.Params["seed"]) == `"random"` {
			t.Errorf("job params %s: want the seed drawn for random", job.Params)
		}
		p.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		saveScreenshot(t, p, "image-brush-desktop.png", true)

		// After a reload the tab shows its job again, and the comparison
		// with the target the service kept with it.
		p.navigate(base + "/")
		p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden &&
			!document.getElementById("compare-frame").classList.contains("single") &&
			document.getElementById("before-img").complete && document.getElementById("before-img").naturalWidth === 256`)
		if src := eval[string](p, `document.getElementById("before-img").src`); !strings.HasPrefix(src, "blob:") {
			t.Errorf("the kept target is shown from %q", src)
		}
		// The history's thumbnail is the service's small copy.
		p.waitFor(`document.querySelector('#history button[data-id="` + id + `"] img.thumb') !== null`)
		// The service makes a thumbnail only when the thumbnail route is
		// asked, and keeps it in the output store. (The browser may answer
		// the reloaded page's request from its cache, which leaves no
		// resource-timing entry, so the server side is what is checked.)
		if _, err := os.Stat(filepath.Join(data, "outputs", "jobs", id, "thumbs", "0")); err != nil {
			t.Errorf("the history thumbnail was not fetched from the thumbnail route: %v", err)
		}
	})

	t.Run("phone with the keyboard only", func(t *testing.T) {
		target, reference := testImages(t, dir, 200, 240)
		p := newBrowserPage(t, phone)
		p.navigate(base + "/")
		p.waitFor(`document.documentElement.dataset.ready === "true"`)
		// The history already lists the first job.
		p.waitFor(`document.querySelectorAll("#history button[data-id]").length >= 1`)
		loadImages(p, target, reference)
		if !eval[bool](p, `document.documentElement.scrollWidth <= window.innerWidth &&
			document.querySelector(".settings-card").getBoundingClientRect().top >= document.querySelector(".target-card").getBoundingClientRect().bottom`) {
			t.Error("the page is not one column that fits a 390 px screen")
		}

		p.do(chromedp.Focus(chromedp.ID("target-file")))
		paintWithKeyboard(p)
		mask := paintedMask(p)
		p.tabTo("prompt", 20)
		p.press("watercolour wash")
		p.tabTo("seed-random", 6)
		p.press(kb.ArrowRight)
		p.tabTo("seed-value", 2)
		p.press(kb.Backspace + kb.Backspace + "7")
		p.tabTo("submit", 4)
		p.press(kb.Enter)
		p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden`)
		size := eval[[2]int](p, `[document.getElementById("result-img").naturalWidth, document.getElementById("result-img").naturalHeight]`)
		if size != [2]int{200, 240} {
			t.Errorf("result shown at natural size %v, want the target's 200×240", size)
		}
		// The focus stayed on the button the user pressed.
		if active := eval[string](p, `document.activeElement.id`); active != "submit" {
			t.Errorf("focus moved to %q after submitting", active)
		}
		id := currentJob(p)
		job := checkOutput(t, base, "", id, target, mask)
		if got := string(job.Params["seed"]); got != "7" && got != `"7"` {
			t.Errorf("seed param %s, want 7", got)
		}
		p.tabTo("compare-range", 8)
		p.tabTo("download", 2)
		saveScreenshot(t, p, "image-brush-phone.png", false)

		// The first job, opened from the history, compares its result with
		// the target the service kept: the desktop's 256×192.
		first := eval[string](p, `[...document.querySelectorAll("#history button[data-id]")].map((b) => b.dataset.id).find((x) => x !== "`+id+`")`)
		p.do(chromedp.Click(chromedp.CSS(`#history button[data-id="` + first + `"]`)))
		p.waitFor(`document.querySelector('#history button[data-id="` + first + `"]').getAttribute("aria-current") === "true" &&
			!document.getElementById("result-card").hidden && document.getElementById("result-img").naturalWidth === 256 &&
			!document.getElementById("compare-frame").classList.contains("single") &&
			document.getElementById("before-img").complete && document.getElementById("before-img").naturalWidth === 256`)
	})

	// Both jobs are in the history, newest first.
	var list struct {
		Jobs []serviceJob `json:"jobs"`
	}
	getJSON(t, base+"/v1/jobs", "", &list)
	if len(list.Jobs) != 2 || list.Jobs[0].Status != "succeeded" || list.Jobs[1].Status != "succeeded" {
		t.Errorf("GET /v1/jobs: %+v", list.Jobs)
	}
}

// TestImageBrushWithAPIKey runs the page against a service that has an API
// key: the page asks for it, sends it with every request (the event stream
// and the output downloads too), remembers it when told, and the service's
// logs never show it.
func TestImageBrushWithAPIKey(t *testing.T) {
	testenv.Chromium(t)
	data := t.TempDir()
	key := createKey(t, data)
	base, logs := startServe(t, data)
	dir := t.TempDir()
	target, reference := testImages(t, dir, 160, 128)

	p := newBrowserPage(t, desktop)
	// The browser reports the service's 401 answers before the key is given.
	p.allowConsole("401 (Unauthorized)")
	p.navigate(base + "/")
	p.waitFor(`/API key/.test(document.getElementById("history-error").textContent)`)
	loadImages(p, target, reference)
	paintAcross(p)
	mask := paintedMask(p)
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("connection").open && document.activeElement.id === "api-key"`)
	p.press(key)
	p.do(chromedp.Click(chromedp.ID("remember-key")), chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && document.getElementById("result-img").naturalWidth === 160`)
	id := currentJob(p)
	checkOutput(t, base, key, id, target, mask)
	if res := get(t, base+"/v1/jobs/"+id, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET the job without the key: %d, want 401", res.StatusCode)
	} else {
		res.Body.Close()
	}

	// A new page in the same browser profile finds the remembered key.
	p.navigate(base + "/")
	p.waitFor(`document.querySelector('#history button[data-id="` + id + `"] img.thumb') !== null`)
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), key[4:]) {
		t.Error("the service's log shows the API key")
	}
}

// TestImageBrushColdStart runs the page against a service whose local stack
// is a cold endpoint (its worker starts on the first job and loads for a few
// seconds), with the cold-start check after 300 ms: the page shows that the
// model is loading before it shows the result.
func TestImageBrushColdStart(t *testing.T) {
	testenv.Chromium(t)
	base, logs := startServe(t, t.TempDir(), "--cold-start", "5s", "--cold-start-after", "300ms")
	target, reference := testImages(t, t.TempDir(), 96, 64)
	p := newBrowserPage(t, desktop)
	p.navigate(base + "/")
	p.waitFor(`document.documentElement.dataset.ready === "true"`)
	loadImages(p, target, reference)
	paintAcross(p)
	mask := paintedMask(p)
	// Every state the status box shows, in order, and the text shown with
	// the cold start.
	p.do(chromedp.Evaluate[chromedp.Void](`(() => {
		window.seenStates = [];
		const box = document.getElementById("status");
		new MutationObserver(() => {
			const s = box.dataset.state;
			if (window.seenStates[window.seenStates.length - 1] !== s) window.seenStates.push(s);
			if (s === "cold_start") {
				window.coldText = document.getElementById("status-text").textContent;
				window.coldBadge = document.getElementById("status-badge").textContent;
			}
		}).observe(box, { attributes: true, attributeFilter: ["data-state"] });
	})()`))
	p.do(chromedp.Click(chromedp.ID("submit")))
	p.waitFor(`document.getElementById("status").dataset.state === "cold_start"`)
	p.waitFor(`document.getElementById("status").dataset.state === "succeeded" && !document.getElementById("result-card").hidden`)
	states := eval[[]string](p, `window.seenStates`)
	cold, done := slices.Index(states, "cold_start"), slices.Index(states, "succeeded")
	if cold < 0 || done < cold {
		t.Fatalf("states shown %v: want cold_start before succeeded", states)
	}
	if got := eval[string](p, `window.coldText`); got != "The model is loading (cold start), this can take a minute." {
		t.Errorf("cold start text %q", got)
	}
	if got := eval[string](p, `window.coldBadge`); got != "Loading model" {
		t.Errorf("cold start badge %q", got)
	}
	checkOutput(t, base, "", currentJob(p), target, mask)
	if !strings.Contains(logs.String(), "no worker is up, the model is loading") {
		t.Errorf("the service's log does not mention the cold start:\n%s", logs)
	}
}
