package worker

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/comfypod/comfypod/internal/webp"
)

func testImage(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 13), uint8(y * 7), uint8(x ^ y), 255})
		}
	}
	return img
}

func encoded(t testing.TB, format string, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	case "bmp":
		err = bmp.Encode(&buf, img)
	case "webp":
		err = webp.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInspectImage(t *testing.T) {
	t.Parallel()
	lim := &Limits{MaxImageSide: 100, MaxImagePixels: 5000, DecodeImages: true}
	for _, format := range []string{"png", "jpeg", "gif", "bmp", "webp"} {
		data := encoded(t, format, testImage(40, 30))
		info, err := inspectImage(data, lim)
		if err != nil || info.format != format || info.width != 40 || info.height != 30 {
			t.Errorf("%s: %+v, %v", format, info, err)
		}
		if _, err := inspectImage(data, &Limits{MaxImageSide: 39}); err == nil || !strings.Contains(err.Error(), "40x30 pixels, over the 39 px limit per side") {
			t.Errorf("%s side limit: %v", format, err)
		}
		if _, err := inspectImage(data, &Limits{MaxImagePixels: 1000}); err == nil || !strings.Contains(err.Error(), "megapixel limit") {
			t.Errorf("%s pixel limit: %v", format, err)
		}
		if format == "bmp" {
			continue // BMP has no end marker: a short file is caught by its size field only
		}
		if _, err := inspectImage(data[:len(data)*2/3], lim); err == nil || !strings.Contains(err.Error(), "cut off") {
			t.Errorf("%s truncated: %v", format, err)
		}
	}
}

func TestInspectImageDamage(t *testing.T) {
	t.Parallel()
	pngData := encoded(t, "png", testImage(20, 20))
	jpegData := encoded(t, "jpeg", testImage(20, 20))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty (0 bytes)"},
		{"html", []byte("<!DOCTYPE html><title>403</title>"), "HTML or XML"},
		{"json", []byte(`{"error": "expired"}`), "JSON text"},
		{"double base64", []byte(base64.StdEncoding.EncodeToString(pngData)), "encoded twice"},
		{"mp4", []byte("\x00\x00\x00\x18ftypmp42isom"), "MP4/MOV video"},
		{"text", []byte("hello"), "it is text"},
		{"binary", []byte{0, 1, 2, 3, 250}, "starts with bytes 00 01 02 03 fa"},
		{"png without IHDR first", append([]byte("\x89PNG\r\n\x1a\n"), pngData[33:]...), "not IHDR"},
		{"png bad crc", flip(pngData, 40), "checksum"},
		{"png no IEND", pngData[:len(pngData)-12], "no IEND"},
		{"jpeg no scan end", jpegData[:len(jpegData)-2], "cut off"},
		{"jpeg ends early", []byte{0xFF, 0xD8, 0xFF, 0xD9}, "ends before its image data"},
		{"jpeg junk marker", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0x12, 0x34}, "no marker at byte 8"},
		{"webp short", []byte("RIFF\xff\x00\x00\x00WEBPVP8L"), "header says 263 bytes"},
	} {
		_, err := inspectImage(tc.data, &Limits{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x55
	return c
}

func TestDecodeImageString(t *testing.T) {
	t.Parallel()
	raw := []byte{0xfb, 0xff, 0xbf, 1, 2}
	std := base64.StdEncoding.EncodeToString(raw)
	for _, tc := range []struct{ name, in string }{
		{"standard", std},
		{"data URI", "data:image/png;base64," + std},
		{"data URI upper case", "DATA:image/PNG;BASE64," + std},
		{"no padding", base64.RawStdEncoding.EncodeToString(raw)},
		{"url-safe", base64.URLEncoding.EncodeToString(raw)},
		{"url-safe no padding", base64.RawURLEncoding.EncodeToString(raw)},
		{"line breaks", std[:4] + "\r\n" + std[4:]},
	} {
		got, err := decodeImageString([]byte(tc.in), 1<<20)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%s: %x, %v", tc.name, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"data:image/png,abc", "not base64"},
		{"data:text/html;base64,QUJD", `type "text/html"`},
		{"data:image/png;base64", "without a comma"},
		{"QU JD", "a space"},
		{"QQ==QUJD", "padding in the middle"},
		{"QUJ\x01", "byte 0x01"},
		{strings.Repeat("A", 2000), "limit per image"},
	} {
		_, err := decodeImageString([]byte(tc.in), 1000)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzInspectImage feeds arbitrary files to the image checks: they never
// panic, and what they accept has a header the decoders read.
func FuzzInspectImage(f *testing.F) {
	for _, format := range []string{"png", "jpeg", "gif", "bmp", "webp"} {
		f.Add(encoded(f, format, testImage(5, 4)))
	}
	f.Add([]byte("II*\x00\x08\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := inspectImage(data, &Limits{MaxImageSide: 4096, MaxImagePixels: 1 << 20})
		if err != nil {
			return
		}
		if info.width <= 0 || info.height <= 0 || info.width > 4096 || int64(info.width)*int64(info.height) > 1<<20 {
			t.Fatalf("accepted %+v", info)
		}
	})
}
