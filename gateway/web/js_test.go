package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/comfypod/comfypod/gateway/web"
)

// The page's JavaScript modules, tested one by one inside Chromium. The
// modules are served by the real handler; the test page that imports them is
// an empty document with no application code.

// newModulePage opens an empty page on a server that also serves the page's
// modules, so a test can import them.
func newModulePage(t *testing.T) *browserPage {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/blank.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>modules</title><link rel="icon" href="data:,"></head><body></body></html>`))
	})
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p := newBrowserPage(t, desktop)
	p.navigate(srv.URL + "/blank.html")
	return p
}

type sseEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

func TestEventStreamParser(t *testing.T) {
	t.Parallel()
	p := newModulePage(t)
	cases := []struct {
		name   string
		chunks []string
		want   []sseEvent
	}{
		{"one event", []string{"data: {\"status\":\"queued\"}\n\n"}, []sseEvent{{"message", `{"status":"queued"}`, ""}}},
		{"named event with id", []string{"event: status\nid: 7\ndata: x\n\n"}, []sseEvent{{"status", "x", "7"}}},
		{"data lines joined", []string{"data: a\ndata: b\n\n"}, []sseEvent{{"message", "a\nb", ""}}},
		{"CRLF split across chunks", []string{"data: a\r", "\n\r", "\n"}, []sseEvent{{"message", "a", ""}}},
		{"CR only", []string{"data: a\r\rdata: b\r\r"}, []sseEvent{{"message", "a", ""}, {"message", "b", ""}}},
		{"comments and keep-alives", []string{": ping\n\n:\ndata: a\n\n"}, []sseEvent{{"message", "a", ""}}},
		{"no space after colon, colon in value", []string{"data:{\"a\":1}\n\n"}, []sseEvent{{"message", `{"a":1}`, ""}}},
		{"only the first space goes", []string{"data:  two\n\n"}, []sseEvent{{"message", " two", ""}}},
		{"field with no colon", []string{"data\n\n"}, []sseEvent{{"message", "", ""}}},
		{"event type resets", []string{"event: a\ndata: 1\n\ndata: 2\n\n"}, []sseEvent{{"a", "1", ""}, {"message", "2", ""}}},
		{"type without data is dropped", []string{"event: a\n\ndata: 2\n\n"}, []sseEvent{{"message", "2", ""}}},
		{"id persists, NUL id ignored", []string{"id: 1\ndata: a\n\nid: x\u0000y\ndata: b\n\n"}, []sseEvent{{"message", "a", "1"}, {"message", "b", "1"}}},
		{"BOM at the start", []string{"\ufeffdata: a\n\n"}, []sseEvent{{"message", "a", ""}}},
		{"unknown fields ignored", []string{"foo: bar\nretry: 10\ndata: a\n\n"}, []sseEvent{{"message", "a", ""}}},
		{"incomplete event discarded", []string{"data: a\n\ndata: b\n"}, []sseEvent{{"message", "a", ""}}},
		{"byte at a time", splitEvery("event: status\ndata: {\"progress\":0.5}\n\n", 1), []sseEvent{{"status", `{"progress":0.5}`, ""}}},
	}
	for _, tc := range cases {
		chunks, _ := json.Marshal(tc.chunks)
		got := eval[[]sseEvent](p, `(async () => {
			const { EventStreamParser } = await import("/sse.js");
			const parser = new EventStreamParser();
			const out = [];
			for (const c of `+string(chunks)+`) out.push(...parser.push(c));
			out.push(...parser.end());
			return out;
		})()`)
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// TestEventStreamReader feeds a response body in byte chunks that split
// lines and multi-byte characters, and checks every way of cutting the stream
// gives the same events.
func TestEventStreamReader(t *testing.T) {
	t.Parallel()
	p := newModulePage(t)
	got := eval[[]string](p, `(async () => {
		const { readEventStream } = await import("/sse.js");
		const text = "retry: 1000\r\nevent: status\r\ndata: {\"status\":\"cold_start\",\"note\":\"模型 загрузка ✓\"}\r\n\r\n: keep-alive\n\nevent: status\ndata: {\"status\":\"succeeded\"}\n\n";
		const bytes = new TextEncoder().encode(text);
		const results = [];
		for (let size = 1; size <= bytes.length; size += 3) {
			const body = new ReadableStream({
				start(c) {
					for (let i = 0; i < bytes.length; i += size) c.enqueue(bytes.slice(i, i + size));
					c.close();
				},
			});
			const events = [];
			for await (const ev of readEventStream(new Response(body))) events.push(ev.type + " " + ev.data);
			results.push(JSON.stringify(events));
		}
		return [...new Set(results)];
	})()`)
	want := []string{`["status {\"status\":\"cold_start\",\"note\":\"模型 загрузка ✓\"}","status {\"status\":\"succeeded\"}"]`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestPNGEncoder encodes pixels in the browser and decodes them with Go's
// image/png, for every colour type the encoder writes.
func TestPNGEncoder(t *testing.T) {
	t.Parallel()
	p := newModulePage(t)
	for _, tc := range []struct {
		colorType, channels, w, h int
	}{
		{6, 4, 1, 1}, {6, 4, 7, 5}, {6, 4, 130, 3}, {4, 2, 9, 4}, {2, 3, 5, 6}, {0, 1, 3, 11},
	} {
		n := tc.w * tc.h * tc.channels
		pix := make([]byte, n)
		for i := range pix {
			pix[i] = byte(i*37 + i/tc.channels*11)
		}
		b64 := eval[string](p, `(async () => {
			const { encodePNG } = await import("/png.js");
			const pix = Uint8Array.from(atob(`+jsString(base64.StdEncoding.EncodeToString(pix))+`), (c) => c.charCodeAt(0));
			const blob = await encodePNG(`+itoa(tc.w)+`, `+itoa(tc.h)+`, `+itoa(tc.colorType)+`, pix);
			if (blob.type !== "image/png") throw new Error("type " + blob.type);
			const b = new Uint8Array(await blob.arrayBuffer());
			return btoa(String.fromCharCode(...b));
		})()`)
		raw, _ := base64.StdEncoding.DecodeString(b64)
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("type %d %dx%d: %v", tc.colorType, tc.w, tc.h, err)
			continue
		}
		if img.Bounds() != image.Rect(0, 0, tc.w, tc.h) {
			t.Errorf("type %d: bounds %v", tc.colorType, img.Bounds())
			continue
		}
		for y := range tc.h {
			for x := range tc.w {
				i := (y*tc.w + x) * tc.channels
				want := expectPixel(tc.colorType, pix[i:i+tc.channels])
				if got := pixelBytes(img, x, y); got != want {
					t.Fatalf("type %d at %d,%d: got %v, want %v", tc.colorType, x, y, got, want)
				}
			}
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// expectPixel is the non-premultiplied RGBA a decoder should report for the
// encoded channel bytes.
func expectPixel(colorType int, c []byte) [4]byte {
	switch colorType {
	case 0:
		return [4]byte{c[0], c[0], c[0], 255}
	case 2:
		return [4]byte{c[0], c[1], c[2], 255}
	case 4:
		return [4]byte{c[0], c[0], c[0], c[1]}
	}
	return [4]byte{c[0], c[1], c[2], c[3]}
}

// pixelBytes reads a pixel as non-premultiplied 8-bit RGBA without losing the
// colour of transparent pixels.
func pixelBytes(img image.Image, x, y int) [4]byte {
	switch m := img.(type) {
	case *image.NRGBA:
		o := m.PixOffset(x, y)
		return [4]byte(m.Pix[o : o+4])
	case *image.Gray:
		v := m.GrayAt(x, y).Y
		return [4]byte{v, v, v, 255}
	case *image.RGBA:
		c := m.RGBAAt(x, y)
		return [4]byte{c.R, c.G, c.B, c.A}
	}
	r, g, b, a := img.At(x, y).RGBA()
	return [4]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8), byte(a >> 8)}
}

// TestMaskPainter paints through the editor's API (the real pointer path is
// covered by the end-to-end test) and checks the exported PNG, undo, redo,
// invert and clear.
func TestMaskPainter(t *testing.T) {
	t.Parallel()
	p := newModulePage(t)
	type result struct {
		Steps map[string]string `json:"steps"`
		Empty map[string]bool   `json:"empty"`
		Redo  bool              `json:"redo"`
		Cov   float64           `json:"cov"`
	}
	// The canvas is 200×100 natural pixels shown at 100×50 CSS pixels, so a
	// 10 px brush is 20 natural pixels wide.
	r := eval[result](p, `(async () => {
		const { MaskPainter } = await import("/mask.js");
		const canvas = document.createElement("canvas");
		canvas.style.width = "100px";
		canvas.style.height = "50px";
		document.body.append(canvas);
		const m = new MaskPainter(canvas, null);
		m.reset(200, 100);
		const b64 = async () => {
			const b = new Uint8Array(await (await m.toPNG()).arrayBuffer());
			return btoa(String.fromCharCode(...b));
		};
		const steps = {}, empty = {};
		empty.start = m.isEmpty();
		m.size = 10;
		m.beginStroke(40, 50); m.extendStroke(80, 50); m.extendStroke(120, 50); m.finishStroke();
		steps.stroke = await b64();
		empty.stroke = m.isEmpty();
		const cov = m.coverage();
		m.tool = "eraser";
		m.beginStroke(80, 50); m.finishStroke();
		steps.erased = await b64();
		m.undo();
		steps.undone = await b64();
		const redo = m.canRedo;
		m.redo(); m.undo();
		m.invert();
		steps.inverted = await b64();
		m.clear();
		empty.cleared = m.isEmpty();
		m.undo(); m.undo();
		steps.back = await b64();
		return { steps, empty, redo, cov };
	})()`)
	if !r.Empty["start"] || r.Empty["stroke"] || !r.Empty["cleared"] {
		t.Errorf("isEmpty: %v", r.Empty)
	}
	if !r.Redo {
		t.Error("canRedo is false after undo")
	}
	// The stroke covers about (80 + 20) × 20 of 200 × 100 pixels: 10%.
	if r.Cov < 0.07 || r.Cov > 0.13 {
		t.Errorf("coverage %.3f, want about 0.10", r.Cov)
	}
	decode := func(step string) *image.NRGBA {
		t.Helper()
		raw, _ := base64.StdEncoding.DecodeString(r.Steps[step])
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		m, ok := img.(*image.NRGBA)
		if !ok || m.Bounds() != image.Rect(0, 0, 200, 100) {
			t.Fatalf("%s: %T %v, want a 200×100 NRGBA", step, img, img.Bounds())
		}
		return m
	}
	painted := [4]byte{255, 255, 255, 0}
	kept := [4]byte{0, 0, 0, 255}
	check := func(step string, x, y int, want [4]byte) {
		t.Helper()
		if got := pixelBytes(decode(step), x, y); got != want {
			t.Errorf("%s at %d,%d: %v, want %v", step, x, y, got, want)
		}
	}
	for _, step := range []string{"stroke", "undone", "back"} {
		check(step, 40, 50, painted)
		check(step, 80, 50, painted)
		check(step, 120, 55, painted)
		check(step, 80, 20, kept)
		check(step, 0, 0, kept)
		check(step, 199, 99, kept)
		check(step, 135, 50, kept)
	}
	check("erased", 80, 50, kept)
	check("erased", 40, 50, painted)
	check("inverted", 80, 50, kept)
	check("inverted", 0, 0, painted)
	// Every pixel is either side or an anti-aliased edge with a consistent
	// colour: gray = 255 - alpha.
	m := decode("stroke")
	for i := 0; i < len(m.Pix); i += 4 {
		if m.Pix[i] != 255-m.Pix[i+3] || m.Pix[i] != m.Pix[i+1] || m.Pix[i] != m.Pix[i+2] {
			t.Fatalf("pixel %d: %v, want gray = 255 - alpha", i/4, m.Pix[i:i+4])
		}
	}
}

func TestJPEGOrientation(t *testing.T) {
	t.Parallel()
	p := newModulePage(t)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)), nil); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	cases := map[string]struct {
		file []byte
		want int
	}{
		"no EXIF":       {plain, 1},
		"orientation 6": {withOrientation(plain, 6), 6},
		"orientation 3": {withOrientation(plain, 3), 3},
		"out of range":  {withOrientation(plain, 9), 1},
		"PNG":           {[]byte("\x89PNG\r\n\x1a\n"), 1},
		"truncated":     {withOrientation(plain, 6)[:20], 1},
		"empty":         {nil, 1},
	}
	for name, tc := range cases {
		got := eval[int](p, `(async () => {
			const { jpegOrientation } = await import("/orientation.js");
			const b = Uint8Array.from(atob(`+jsString(base64.StdEncoding.EncodeToString(tc.file))+`), (c) => c.charCodeAt(0));
			return jpegOrientation(b.buffer);
		})()`)
		if got != tc.want {
			t.Errorf("%s: orientation %d, want %d", name, got, tc.want)
		}
	}
}
