package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// errorOf decodes an error answer.
func errorOf(t testing.TB, b []byte) ErrorDetail {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body: %s (%v)", b, err)
	}
	return e.Error
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true, config: func(c *Config) {
		c.MaxImageBytes = 200 << 10
		c.MaxRequestBytes = 1 << 20
		c.MaxPixels = 1 << 20
	}})
	good := func() form { return brushForm(t, 64, 48, image.Rect(10, 10, 30, 30)) }
	with := func(edit func(f *form)) form {
		f := good()
		edit(&f)
		return f
	}
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	truncated := pngBytes(t, targetImage(64, 48))
	truncated = truncated[:len(truncated)/2]
	noisy := image.NewNRGBA(image.Rect(0, 0, 400, 400))
	_, _ = rand.Read(noisy.Pix)
	huge := image.NewGray(image.Rect(0, 0, 1500, 1000))

	for _, tc := range []struct {
		name  string
		form  form
		code  int
		ecode string
		field string
		text  string
	}{
		{"missing target", with(func(f *form) { delete(f.files, "target") }), 422, "invalid_param", "target", "required"},
		{"missing everything", form{fields: map[string]string{"prompt": "x"}}, 422, "invalid_param", "", "problems"},
		{"unknown field", with(func(f *form) { f.fields["strenght"] = "1" }), 422, "invalid_param", "strenght", "did you mean strength?"},
		{"strength too high", with(func(f *form) { f.fields["strength"] = "12" }), 422, "invalid_param", "strength", "12"},
		{"seed not a number", with(func(f *form) { f.fields["seed"] = "abc" }), 422, "invalid_param", "seed", ""},
		{"prompt too long", with(func(f *form) { f.fields["prompt"] = strings.Repeat("a", 2001) }), 422, "invalid_param", "prompt", "2000"},
		{"unknown file", with(func(f *form) { f.files["style"] = pngBytes(t, targetImage(4, 4)) }), 422, "invalid_param", "style", "target, reference, mask"},
		{"gif target", with(func(f *form) { f.files["target"] = gif }), 415, "unsupported_media_type", "target", "GIF"},
		{"not an image", with(func(f *form) { f.files["reference"] = []byte("%PDF-1.7 hello") }), 415, "unsupported_media_type", "reference", "PNG, JPEG or WEBP"},
		{"empty file", with(func(f *form) { f.files["mask"] = nil }), 422, "invalid_param", "mask", "empty"},
		{"truncated png", with(func(f *form) { f.files["target"] = truncated }), 422, "invalid_param", "target", "damaged"},
		{"mask of another size", with(func(f *form) { f.files["mask"] = pngBytes(t, maskImage(60, 48, image.Rect(1, 1, 5, 5))) }), 422, "invalid_param", "mask", "64×48"},
		{"nothing painted", with(func(f *form) { f.files["mask"] = pngBytes(t, maskImage(64, 48, image.Rectangle{})) }), 422, "invalid_param", "mask", "nothing is painted"},
		{"image over the byte limit", with(func(f *form) { f.files["reference"] = pngBytes(t, noisy) }), 413, "too_large", "reference", "200 KB"},
		{"too many pixels", with(func(f *form) { f.files["target"] = pngBytes(t, huge) }), 413, "too_large", "target", "1500×1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := tc.form.body(t)
			code, b := h.do("POST", "/v1/jobs", "", ct, body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, b)
			}
			e := errorOf(t, b)
			if e.Code != tc.ecode || e.Field != tc.field {
				t.Fatalf("error %+v, want code %s field %q", e, tc.ecode, tc.field)
			}
			all, _ := json.Marshal(e)
			if !strings.Contains(string(all), tc.text) {
				t.Fatalf("error %s does not say %q", all, tc.text)
			}
			if e.RequestID == "" {
				t.Fatal("no request id")
			}
		})
	}

	// Bodies that are not forms at all.
	for _, tc := range []struct {
		name, ct string
		body     []byte
		code     int
	}{
		{"no content type", "", []byte("x"), 415},
		{"text", "text/plain", []byte("hello"), 415},
		{"multipart without boundary", "multipart/form-data", []byte("x"), 400},
		{"broken multipart", "multipart/form-data; boundary=XX", []byte("--XX\r\nnonsense"), 400},
		{"json array", "application/json", []byte(`[1,2]`), 400},
		{"json syntax", "application/json", []byte(`{"target": `), 400},
		{"json two values", "application/json", []byte(`{} {}`), 400},
		{"json nested params", "application/json", []byte(`{"params": {"seed": 1}}`), 400},
		{"json image not a string", "application/json", []byte(`{"target": 12}`), 400},
		{"json bad base64", "application/json", []byte(`{"target": "@@@@"}`), 400},
		{"json data uri of text", "application/json", []byte(`{"target": "data:text/plain;base64,aGVsbG8="}`), 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := h.do("POST", "/v1/jobs", "", tc.ct, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, b)
			}
			errorOf(t, b)
		})
	}
	t.Run("over the request limit", func(t *testing.T) {
		f := form{files: map[string][]byte{}}
		for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
			b := make([]byte, 190<<10)
			f.files[name] = b
		}
		ct, body := f.body(t)
		code, b := h.do("POST", "/v1/jobs", "", ct, body)
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %s", code, b)
		}
		if e := errorOf(t, b); !strings.Contains(e.Message, "1 MB") {
			t.Fatalf("error %+v", e)
		}
	})
	if n := h.rp.Requests(runpodtest.OpRun); n != 0 {
		t.Fatalf("%d jobs reached RunPod", n)
	}
	if jobs, _ := h.st.CountActive(t.Context()); len(jobs) != 0 {
		t.Fatalf("refused requests left jobs: %v", jobs)
	}
}

// workerInputOf returns the images the control plane received for the only
// job sent, by role.
func workerInputOf(t testing.TB, h *harness) (map[string]image.Image, map[string][]byte) {
	t.Helper()
	jobs := h.rp.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d jobs at RunPod", len(jobs))
	}
	var in struct {
		Workflow map[string]json.RawMessage `json:"workflow"`
		Images   []workerImage              `json:"images"`
	}
	if err := json.Unmarshal(jobs[0].Input, &in); err != nil {
		t.Fatal(err)
	}
	imgs, raw := map[string]image.Image{}, map[string][]byte{}
	for _, im := range in.Images {
		b, err := base64.StdEncoding.DecodeString(im.Image)
		if err != nil {
			t.Fatal(err)
		}
		dec, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", im.Name, err)
		}
		for _, role := range []string{"target", "reference", "mask"} {
			if strings.Contains(im.Name, "-"+role+".") {
				imgs[role], raw[role] = dec, b
				// The workflow loads the file by the name it was sent with.
				if !bytes.Contains(mustJSON(t, in.Workflow), []byte(`"`+im.Name+`"`)) {
					t.Fatalf("the workflow does not load %s", im.Name)
				}
			}
		}
	}
	return imgs, raw
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImagesNormalised checks what the worker gets: large images downscaled
// with their mask aligned, a grayscale mask turned into the alpha form, JPEG
// and PNG passed byte for byte when small enough, WEBP re-encoded as PNG, and
// JSON bodies with data: URIs.
func TestImagesNormalised(t *testing.T) {
	t.Parallel()
	t.Run("downscale keeps the mask aligned", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, hopts{open: true, noWorker: true, config: func(c *Config) { c.MaxSide = 300 }})
		f := brushForm(t, 900, 600, image.Rect(300, 0, 600, 600))
		f.files["target"] = jpegBytes(t, targetImage(900, 600))
		h.submit("", f)
		awaitCond(t, "the job at RunPod", func() bool { return len(h.rp.Jobs()) == 1 })
		imgs, raw := workerInputOf(t, h)
		for _, role := range []string{"target", "mask"} {
			if got := imgs[role].Bounds().Size(); got != image.Pt(300, 200) {
				t.Fatalf("%s sent as %v, want 300x200", role, got)
			}
		}
		if !bytes.HasPrefix(raw["target"], []byte{0xff, 0xd8}) {
			t.Fatal("a downscaled JPEG target is not sent as JPEG")
		}
		// The painted band (the middle third) is where it was.
		m := imgs["mask"]
		for _, x := range []int{10, 150, 290} {
			_, _, _, a := m.At(x, 100).RGBA()
			painted := a < 0x8000
			if painted != (x > 100 && x < 200) {
				t.Fatalf("mask at x=%d: alpha %d", x, a>>8)
			}
		}
	})
	t.Run("grayscale mask, small images byte for byte", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, hopts{open: true, noWorker: true})
		gray := image.NewGray(image.Rect(0, 0, 64, 48))
		for y := 10; y < 20; y++ {
			for x := 5; x < 25; x++ {
				gray.SetGray(x, y, color.Gray{Y: 0xff})
			}
		}
		f := brushForm(t, 64, 48, image.Rectangle{})
		f.files["mask"] = pngBytes(t, gray)
		f.files["reference"] = jpegBytes(t, referenceImage(40, 30))
		h.submit("", f)
		awaitCond(t, "the job at RunPod", func() bool { return len(h.rp.Jobs()) == 1 })
		imgs, raw := workerInputOf(t, h)
		if !bytes.Equal(raw["target"], f.files["target"]) || !bytes.Equal(raw["reference"], f.files["reference"]) {
			t.Fatal("images that need no change were not sent byte for byte")
		}
		m := imgs["mask"].(*image.NRGBA)
		if a := m.NRGBAAt(6, 12).A; a != 0 {
			t.Fatalf("white pixel of a grayscale mask: alpha %d, want 0 (paint)", a)
		}
		if c := m.NRGBAAt(40, 40); c.A != 0xff || c.R != 0 {
			t.Fatalf("black pixel of a grayscale mask: %v, want opaque black (keep)", c)
		}
		if c := m.NRGBAAt(6, 12); c.R != 0xff {
			t.Fatalf("painted pixel colour %v, want white (for ImageToMask readers)", c)
		}
	})
	t.Run("json with data URIs and a webp reference", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, hopts{open: true, noWorker: true})
		webp, err := os.ReadFile("testdata/small.webp")
		if err != nil {
			t.Fatal(err)
		}
		body := mustJSON(t, map[string]any{
			"target":    "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngBytes(t, targetImage(64, 48))),
			"reference": base64.StdEncoding.EncodeToString(webp),
			"mask":      base64.RawStdEncoding.EncodeToString(pngBytes(t, maskImage(64, 48, image.Rect(0, 0, 8, 8)))),
			"strength":  0.5,
			"seed":      json.RawMessage("18446744073709551615"),
			"prompt":    nil,
		})
		code, b := h.do("POST", "/v1/jobs", "", "application/json", body)
		if code != http.StatusAccepted {
			t.Fatalf("%d %s", code, b)
		}
		var a Accepted
		_ = json.Unmarshal(b, &a)
		if string(a.Params["seed"]) != "18446744073709551615" {
			t.Fatalf("the seed lost precision: %s", a.Params["seed"])
		}
		awaitCond(t, "the job at RunPod", func() bool { return len(h.rp.Jobs()) == 1 })
		imgs, raw := workerInputOf(t, h)
		if !bytes.HasPrefix(raw["reference"], []byte("\x89PNG")) || imgs["reference"].Bounds().Size() != image.Pt(150, 100) {
			t.Fatalf("the webp reference was not sent as a 150x100 PNG")
		}
	})
}

func TestPNGAndMaskHelpers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		w, h, limit, ww, wh int
	}{
		{100, 50, 0, 100, 50}, {100, 50, 100, 100, 50}, {4000, 3000, 1024, 1024, 768}, {3000, 4000, 1024, 768, 1024},
		{5000, 1, 100, 100, 1}, {1, 5000, 100, 1, 100},
	} {
		if w, h := fitSide(tc.w, tc.h, tc.limit); w != tc.ww || h != tc.wh {
			t.Errorf("fitSide(%d, %d, %d) = %d, %d; want %d, %d", tc.w, tc.h, tc.limit, w, h, tc.ww, tc.wh)
		}
	}
	for b, want := range map[string]string{
		"\x89PNG\r\n\x1a\nrest": "png", "\xff\xd8\xff\xe0": "jpeg", "RIFF\x00\x00\x00\x00WEBPVP8 ": "webp", "GIF89a": "gif",
		"BM": "bmp", "II*\x00": "tiff", "\x00\x00\x00\x1cftypavif": "avif", "\x00\x00\x00\x1cftypheic": "heic", "hello": "",
	} {
		if got := sniffFormat([]byte(b)); got != want {
			t.Errorf("sniffFormat(%q) = %q, want %q", b, got, want)
		}
	}
	// An alpha mask reads 255 − alpha; once written canonically it reads the
	// same again.
	m := maskImage(8, 8, image.Rect(2, 2, 4, 4))
	paint, painted := maskPaint(m)
	if !painted || paint.GrayAt(2, 2).Y != 0xff || paint.GrayAt(0, 0).Y != 0 {
		t.Fatalf("paint of an alpha mask: %v", paint.Pix)
	}
	again, _ := maskPaint(canonicalMask(paint))
	if !bytes.Equal(again.Pix, paint.Pix) {
		t.Fatal("the canonical mask does not read back the same")
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, canonicalMask(paint)); err != nil {
		t.Fatal(err)
	}
}

// TestUpright turns a 3×2 image of every pixel type the decoders return as
// each EXIF orientation says (the table of the engine's Frame.Transposed,
// which matches Pillow's exif_transpose).
func TestUpright(t *testing.T) {
	t.Parallel()
	// 0 1 2
	// 3 4 5
	cases := []struct {
		o    int
		w, h int
		want []uint8
	}{
		{0, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
		{1, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
		{2, 3, 2, []uint8{2, 1, 0, 5, 4, 3}},
		{3, 3, 2, []uint8{5, 4, 3, 2, 1, 0}},
		{4, 3, 2, []uint8{3, 4, 5, 0, 1, 2}},
		{5, 2, 3, []uint8{0, 3, 1, 4, 2, 5}},
		{6, 2, 3, []uint8{3, 0, 4, 1, 5, 2}},
		{7, 2, 3, []uint8{5, 2, 4, 1, 3, 0}},
		{8, 2, 3, []uint8{2, 5, 1, 4, 0, 3}},
		{9, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
	}
	r := image.Rect(0, 0, 3, 2)
	gray := image.NewGray(r)
	nrgba := image.NewNRGBA(r)
	g16 := image.NewGray16(r)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio444)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White})
	for i := range 6 {
		x, y := i%3, i/3
		gray.SetGray(x, y, color.Gray{Y: uint8(i * 40)})
		nrgba.SetNRGBA(x, y, color.NRGBA{uint8(i * 40), 7, 9, uint8(255 - i)})
		g16.SetGray16(x, y, color.Gray16{Y: uint16(i * 10000)})
		ycc.Y[ycc.YOffset(x, y)] = uint8(i * 40)
		ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = 128, 128
		pal.SetColorIndex(x, y, uint8(i%2))
	}
	for _, src := range []image.Image{gray, nrgba, g16, ycc, pal, gray.SubImage(r)} {
		for _, c := range cases {
			got := upright(src, c.o)
			if got.Bounds() != image.Rect(0, 0, c.w, c.h) {
				t.Fatalf("%T orientation %d: bounds %v, want %dx%d", src, c.o, got.Bounds(), c.w, c.h)
			}
			for i, from := range c.want {
				x, y := i%c.w, i/c.w
				want := color.NRGBA64Model.Convert(src.At(int(from)%3, int(from)/3))
				if have := color.NRGBA64Model.Convert(got.At(x, y)); have != want {
					t.Fatalf("%T orientation %d: pixel (%d,%d) = %v, want %v (stored pixel %d)", src, c.o, x, y, have, want, from)
				}
			}
		}
	}
	if _, ok := upright(ycc, 6).(*image.RGBA); !ok {
		t.Error("a turned YCbCr image is not RGBA")
	}
	if got := upright(pal, 6).(*image.Paletted); len(got.Palette) != 2 {
		t.Error("a turned paletted image lost its palette")
	}
}

// TestSidewaysPhoto sends a phone JPEG stored sideways (120×90 with EXIF
// orientation 6, captured for the ComfyUI conformance cases) as the target.
// ComfyUI's LoadImage shows it upright, 90×120, so that is the size the mask
// is painted at and checked against, and the worker gets the upright image
// (without the tag): the pixels real ComfyUI loaded from the same file.
func TestSidewaysPhoto(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.Conformance(t), "cases", "load_jpeg_webp")
	photo, err := os.ReadFile(filepath.Join(dir, "inputs", "photo_exif6_120x90.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(photo)); err != nil || cfg.Width != 120 || cfg.Height != 90 || orientationOf(photo, formatJPEG) != 6 {
		t.Fatalf("the test photo is %+v (%v), orientation %d: want 120×90 stored, orientation 6", cfg, err, orientationOf(photo, formatJPEG))
	}
	h := newHarness(t, hopts{open: true, noWorker: true})

	// A mask painted over the photo as stored is refused, saying why.
	f := brushForm(t, 90, 120, image.Rect(10, 20, 50, 60))
	f.files["target"] = photo
	sideways := with(f, func(f *form) { f.files["mask"] = pngBytes(t, maskImage(120, 90, image.Rect(1, 1, 5, 5))) })
	ct, body := sideways.body(t)
	code, b := h.do("POST", "/v1/jobs", "", ct, body)
	if e := errorOf(t, b); code != http.StatusUnprocessableEntity || e.Field != "mask" ||
		!strings.Contains(e.Message, "90×120") || !strings.Contains(e.Message, "EXIF orientation") {
		t.Fatalf("a mask of the stored size: %d %+v", code, e)
	}

	// An upright mask is taken, and the worker gets an upright JPEG.
	h.submit("", f)
	awaitCond(t, "the job at RunPod", func() bool { return len(h.rp.Jobs()) == 1 })
	imgs, raw := workerInputOf(t, h)
	if !bytes.HasPrefix(raw["target"], []byte{0xff, 0xd8}) || orientationOf(raw["target"], formatJPEG) != 0 {
		t.Fatal("the target is not sent as a JPEG without an orientation")
	}
	got := imgs["target"]
	if got.Bounds().Size() != image.Pt(90, 120) {
		t.Fatalf("the target is sent as %v, want upright 90×120", got.Bounds().Size())
	}
	wf, err := os.Open(filepath.Join(dir, "expected", "output", "load_fmt", "jpeg_exif6_00001_.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	want, err := png.Decode(wf)
	if err != nil {
		t.Fatal(err)
	}
	if want.Bounds() != got.Bounds() {
		t.Fatalf("ComfyUI loaded %v, the worker got %v", want.Bounds(), got.Bounds())
	}
	// Decoders differ (libjpeg-turbo upsamples chroma smoothly, Go's
	// image/jpeg does not) and the upright image is encoded again, so pixels
	// are compared on average; the other turns of the same size are far off.
	meanDiff := func(a, b image.Image) float64 {
		var sum int
		for y := range 120 {
			for x := range 90 {
				p := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
				q := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
				for _, d := range []int{int(p.R) - int(q.R), int(p.G) - int(q.G), int(p.B) - int(q.B)} {
					sum += max(d, -d)
				}
			}
		}
		return float64(sum) / (90 * 120 * 3)
	}
	if d := meanDiff(got, want); d > 10 {
		t.Fatalf("the worker's target differs from what ComfyUI loaded by %.1f on average", d)
	}
	stored, err := jpeg.Decode(bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []int{5, 7, 8} {
		if d := meanDiff(upright(stored, o), want); d < 40 {
			t.Fatalf("orientation %d is as close to ComfyUI's (%.1f) as the right one: the comparison proves nothing", o, d)
		}
	}
	if m := imgs["mask"]; m.Bounds().Size() != image.Pt(90, 120) {
		t.Fatalf("the mask is sent as %v", m.Bounds().Size())
	}
}

// with returns a copy of f changed by edit.
func with(f form, edit func(*form)) form {
	c := form{files: map[string][]byte{}, fields: map[string]string{}}
	for k, v := range f.files {
		c.files[k] = v
	}
	for k, v := range f.fields {
		c.fields[k] = v
	}
	edit(&c)
	return c
}
