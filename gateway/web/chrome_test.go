package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/comfypod/comfypod/internal/testenv"
)

// waitLong bounds every wait on the page. The machines that run the tests are
// small and shared, so it is generous; a passing wait returns at once.
const waitLong = 90 * time.Second

// browserPage is one headless Chromium tab for one test. It records what the
// page writes to the console so the test can fail on errors.
type browserPage struct {
	t   testing.TB
	ctx context.Context

	mu      sync.Mutex
	console []string
	allowed []string
}

// viewport is the size of the emulated screen, in CSS pixels.
type viewport struct {
	width, height int64
	mobile        bool
}

var (
	desktop = viewport{width: 1280, height: 900}
	phone   = viewport{width: 390, height: 844, mobile: true}
)

// newBrowserPage starts headless Chromium with a fresh profile and returns a
// tab of the given viewport. The browser stops when the test ends. At that
// point the test fails if the page logged an error or threw, except for
// messages containing one of the allowed substrings.
func newBrowserPage(t testing.TB, vp viewport) *browserPage {
	t.Helper()
	execPath := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(vp.width), int(vp.height)),
		// The machine's network is closed: keep Chromium from trying to reach
		// Google services, which only fills the logs with refused connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	p := &browserPage{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				msg = fmt.Sprintf("console.%s: %s", ev.Type, remoteText(ev.Args))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = "exception: " + d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				msg = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			p.mu.Lock()
			p.console = append(p.console, msg)
			p.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium (%s): %v", execPath, err)
	}
	t.Cleanup(p.checkConsole)
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: vp.width, Height: vp.height, DeviceScaleFactor: 1, Mobile: vp.mobile,
		})
		if err != nil {
			return err
		}
		// Without smooth scrolling, a click never lands on a page that is
		// still moving.
		_, err = cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
		})
		return err
	}))
	return p
}

func remoteText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		var s string
		if a.Type == runtime.RemoteObjectTypeString && json.Unmarshal(a.Value, &s) == nil {
			parts = append(parts, s)
		} else if a.Description != "" {
			parts = append(parts, a.Description)
		} else {
			parts = append(parts, string(a.Value))
		}
	}
	return strings.Join(parts, " ")
}

// allowConsole lets console messages containing s pass (expected errors, such
// as the browser's report of a 4xx answer the test provokes on purpose).
func (p *browserPage) allowConsole(s string) {
	p.mu.Lock()
	p.allowed = append(p.allowed, s)
	p.mu.Unlock()
}

func (p *browserPage) checkConsole() {
	p.mu.Lock()
	defer p.mu.Unlock()
outer:
	for _, m := range p.console {
		for _, a := range p.allowed {
			if strings.Contains(m, a) {
				continue outer
			}
		}
		p.t.Errorf("the page logged: %s", m)
	}
}

// navigate loads a URL and waits for its load event.
func (p *browserPage) navigate(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// do runs browser steps, failing the test on error.
func (p *browserPage) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLong)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes its
// value into T.
func eval[T any](p *browserPage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLong)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", abbreviate(expr), err)
	}
	return v
}

// waitFor waits until the JavaScript expression is truthy.
func (p *browserPage) waitFor(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLong+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLong)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\n%s", abbreviate(expr), err, p.describe())
	}
}

// describe is the state of the page, for failure messages.
func (p *browserPage) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		status: document.getElementById("status")?.dataset.state,
		text: document.getElementById("status-text")?.textContent,
		statusError: document.getElementById("status-error")?.textContent,
		formError: document.getElementById("form-error")?.textContent,
		active: document.activeElement?.id || document.activeElement?.tagName,
	})`))
	if err != nil {
		return "(page state unknown: " + err.Error() + ")"
	}
	return "page: " + s
}

func abbreviate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// box is an element's box in CSS pixels of the viewport, after scrolling it
// into view.
func (p *browserPage) box(selector string) (x, y, w, h float64) {
	p.t.Helper()
	r := eval[struct{ X, Y, W, H float64 }](p, `(() => {
		const el = document.querySelector(`+jsString(selector)+`);
		el.scrollIntoView({block: "center", inline: "center"});
		const r = el.getBoundingClientRect();
		return {X: r.left, Y: r.top, W: r.width, H: r.height};
	})()`)
	return r.X, r.Y, r.W, r.H
}

// drag presses the left mouse button at the first point, moves through the
// others and releases it at the last, as a person does with a mouse.
func (p *browserPage) drag(points ...[2]float64) {
	p.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MouseMoved, points[0][0], points[0][1])}
	steps = append(steps, chromedp.MouseEvent(chromedp.MousePressed, points[0][0], points[0][1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	for _, pt := range points[1:] {
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, pt[0], pt[1], chromedp.ButtonLeft, func(m *input.DispatchMouseEventParams) {
			m.Buttons = 1
		}))
	}
	last := points[len(points)-1]
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, last[0], last[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	p.do(steps...)
}

// press sends key presses (see the kb package for names of special keys).
func (p *browserPage) press(keys string, mods ...chromedp.Modifier) {
	p.t.Helper()
	p.do(chromedp.KeyEvent(keys, chromedp.KeyModifiers(mods...)))
}

// keyDown and keyUp hold and release one key, for keys held while others are pressed.
func (p *browserPage) keyDown(key, code string, keyCode int64, text string) {
	p.t.Helper()
	p.dispatchKey(input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code,
		WindowsVirtualKeyCode: keyCode, NativeVirtualKeyCode: keyCode, Text: text, UnmodifiedText: text})
}

func (p *browserPage) keyUp(key, code string, keyCode int64) {
	p.t.Helper()
	p.dispatchKey(input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: key, Code: code,
		WindowsVirtualKeyCode: keyCode, NativeVirtualKeyCode: keyCode})
}

func (p *browserPage) dispatchKey(params input.DispatchKeyEventParams) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, params)
		return err
	}))
}

// tabTo presses Tab until the element with the id has the focus, and fails if
// it does not get it within max presses. It proves the element is in the
// keyboard focus order.
func (p *browserPage) tabTo(id string, max int) {
	p.t.Helper()
	for range max {
		if eval[bool](p, `document.activeElement?.id === `+jsString(id)) {
			return
		}
		p.press("\t")
	}
	if !eval[bool](p, `document.activeElement?.id === `+jsString(id)) {
		p.t.Fatalf("#%s did not get the focus after %d Tab presses\n%s", id, max, p.describe())
	}
}

// screenshot saves a full-page PNG under dir and returns its path.
func (p *browserPage) screenshot(dir, name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLong)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// fetchBytes reads a URL from inside the page (same origin, same key), as
// base64, and decodes it.
func fetchBytes(p *browserPage, url string) []byte {
	p.t.Helper()
	s := eval[string](p, `(async () => {
		const r = await fetch(`+jsString(url)+`);
		if (!r.ok) throw new Error("status " + r.status);
		const b = new Uint8Array(await r.arrayBuffer());
		let s = "";
		for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
		return btoa(s);
	})()`)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}
