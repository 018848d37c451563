package runpod

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func decodeB64Image(t *testing.T, s string) (image.Image, string) {
	t.Helper()
	b, err := DecodeImageString(s)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img, format
}

func TestEncodeImageDownscales(t *testing.T) {
	t.Parallel()
	src := makePNG(300, 200)
	s, err := EncodeImage(bytes.NewReader(src), &ImageOptions{MaxSide: 100})
	if err != nil {
		t.Fatal(err)
	}
	img, format := decodeB64Image(t, s)
	if format != "png" || img.Bounds().Dx() != 100 || img.Bounds().Dy() != 66 {
		t.Errorf("got %s %v, want png 100x66", format, img.Bounds())
	}

	// Portrait, JPEG in → JPEG out.
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, image.NewRGBA(image.Rect(0, 0, 120, 480)), nil); err != nil {
		t.Fatal(err)
	}
	s, err = EncodeImage(&jb, &ImageOptions{MaxSide: 240, DataURI: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "data:image/jpeg;base64,") {
		t.Errorf("prefix %.30q", s)
	}
	img, format = decodeB64Image(t, s)
	if format != "jpeg" || img.Bounds().Dx() != 60 || img.Bounds().Dy() != 240 {
		t.Errorf("got %s %v, want jpeg 60x240", format, img.Bounds())
	}
}

func TestEncodeImageKeepsSmallImagesAsTheyAre(t *testing.T) {
	t.Parallel()
	webp, err := os.ReadFile(filepath.Join("testdata", "tex_50x50.webp"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := EncodeImage(bytes.NewReader(webp), &ImageOptions{MaxSide: 512})
	if err != nil {
		t.Fatal(err)
	}
	if s != base64.StdEncoding.EncodeToString(webp) {
		t.Errorf("a small image was re-encoded")
	}
	// Downscaled WEBP becomes PNG (there is no WEBP encoder).
	s, err = EncodeImageFile(filepath.Join("testdata", "tex_50x50.webp"), &ImageOptions{MaxSide: 25, DataURI: true})
	if err != nil {
		t.Fatal(err)
	}
	mt, _, ok := ParseDataURI(s)
	if !ok || mt != "image/png" {
		t.Errorf("media type %q", mt)
	}
	img, _ := decodeB64Image(t, s)
	if img.Bounds().Dx() != 25 || img.Bounds().Dy() != 25 {
		t.Errorf("size %v", img.Bounds())
	}
}

func TestEncodeImageRefusesBadInput(t *testing.T) {
	t.Parallel()
	// A PNG header promising 100000×100000 pixels.
	var bomb bytes.Buffer
	bomb.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	binary.BigEndian.PutUint32(ihdr[8:], 100000)
	ihdr[12], ihdr[13] = 8, 2
	_ = binary.Write(&bomb, binary.BigEndian, uint32(13))
	bomb.Write(ihdr)
	_ = binary.Write(&bomb, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	for name, tc := range map[string]struct {
		in   []byte
		opts *ImageOptions
		want string
	}{
		"not an image": {[]byte("hello"), nil, "not a PNG, JPEG, GIF or WEBP"},
		"bomb":         {bomb.Bytes(), &ImageOptions{MaxSide: 512}, "too large"},
		"negative":     {makePNG(2, 2), &ImageOptions{MaxSide: -1}, "max side"},
	} {
		if _, err := EncodeImage(bytes.NewReader(tc.in), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := EncodeImageFile(filepath.Join(t.TempDir(), "missing.png"), nil); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDataURIHelpers(t *testing.T) {
	t.Parallel()
	uri := DataURI("image/png", "QUJD")
	if uri != "data:image/png;base64,QUJD" {
		t.Errorf("DataURI = %q", uri)
	}
	if mt, data, ok := ParseDataURI("DATA:Image/PNG;base64,QUJD"); !ok || mt != "image/png" || data != "QUJD" {
		t.Errorf("ParseDataURI = %q %q %v", mt, data, ok)
	}
	for _, s := range []string{"QUJD", "data:text/plain,hello", "data:image/png;base64"} {
		if _, _, ok := ParseDataURI(s); ok {
			t.Errorf("ParseDataURI(%q) ok", s)
		}
	}
	if StripDataURI(uri) != "QUJD" || StripDataURI("QUJD") != "QUJD" {
		t.Errorf("StripDataURI")
	}
	for _, s := range []string{uri, "QUJD", "QU\nJD", "QUJ", "QQ"} {
		b, err := DecodeImageString(s)
		if err != nil || !strings.HasPrefix("ABC", string(b)) || len(b) == 0 {
			t.Errorf("DecodeImageString(%q) = %q, %v", s, b, err)
		}
	}
	if _, err := DecodeImageString("  "); err == nil {
		t.Error("empty accepted")
	}
	if _, err := DecodeImageString("QU!D"); err == nil {
		t.Error("bad base64 accepted")
	}
}
