package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

func testPhoto(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) * 2), 255})
		}
	}
	return img
}

// TestDecodeJPEGCloseToStdlib decodes a 4:2:0 JPEG and compares it with
// image/jpeg's decoding: the two differ in IDCT, upsampling and colour
// conversion, but only by a few levels.
func TestDecodeJPEGCloseToStdlib(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testPhoto(61, 43), &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	p, err := Decode(buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := p.Frames[0]
	if p.Format != "JPEG" || f.Mode != ModeRGB || f.W != 61 || f.H != 43 {
		t.Fatalf("%s %s %dx%d", p.Format, f.Mode, f.W, f.H)
	}
	ref, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	worst := 0
	for y := 0; y < 43; y++ {
		for x := 0; x < 61; x++ {
			r, g, b, _ := ref.At(x, y).RGBA()
			for k, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				d := int(f.Pix[(y*61+x)*3+k]) - int(v)
				worst = max(worst, d, -d)
			}
		}
	}
	if worst > 8 {
		t.Errorf("differs from image/jpeg by up to %d levels", worst)
	}
}

func TestDecodeJPEGGreyAndExif(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 16, 8))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 2)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, g, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	// Insert an APP1 Exif segment with orientation 6 after SOI.
	exif := []byte("Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00")
	seg := append([]byte{0xff, 0xe1, 0, byte(len(exif) + 2)}, exif...)
	data := append(append(append([]byte{}, buf.Bytes()[:2]...), seg...), buf.Bytes()[2:]...)
	p, err := Decode(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Orientation != 6 || p.Frames[0].Mode != ModeL || p.Frames[0].W != 16 {
		t.Fatalf("orientation %d mode %s width %d", p.Orientation, p.Frames[0].Mode, p.Frames[0].W)
	}
	for i, v := range p.Frames[0].Pix {
		if d := int(v) - int(g.Pix[i]); d > 2 || d < -2 {
			t.Fatalf("pixel %d = %d, want about %d", i, v, g.Pix[i])
		}
	}
}

func TestFancyUpsampling(t *testing.T) {
	out := make([]uint8, 6)
	h2v1Fancy(out, []uint8{0, 100, 200}, 3)
	// Ends copy the sample; inside 3/4 nearer + 1/4 farther, biased 1 then 2.
	want := []uint8{0, (0*3 + 100 + 2) >> 2, (100*3 + 0 + 1) >> 2, (100*3 + 200 + 2) >> 2, (200*3 + 100 + 1) >> 2, 200}
	if !bytes.Equal(out, want) {
		t.Errorf("h2v1 = %v, want %v", out, want)
	}
	near, far := []uint8{16, 32, 48}, []uint8{0, 0, 0}
	h2v2Fancy(out, near, far, 3)
	c := func(i int) int { return int(near[i])*3 + int(far[i]) }
	want = []uint8{
		uint8((c(0)*4 + 8) >> 4), uint8((c(0)*3 + c(1) + 7) >> 4),
		uint8((c(1)*3 + c(0) + 8) >> 4), uint8((c(1)*3 + c(2) + 7) >> 4),
		uint8((c(2)*3 + c(1) + 8) >> 4), uint8((c(2)*4 + 7) >> 4),
	}
	if !bytes.Equal(out, want) {
		t.Errorf("h2v2 = %v, want %v", out, want)
	}
}

func TestYCCToRGB(t *testing.T) {
	for _, c := range []struct {
		y, cb, cr int
		r, g, b   uint8
	}{
		{128, 128, 128, 128, 128, 128},
		{0, 128, 255, 178, 0, 0},       // R = round(1.402*127) = 178
		{255, 255, 128, 255, 211, 255}, // G = 255 - round(0.34414*127) = 211
		{76, 85, 255, 254, 0, 0},       // pure red, as libjpeg rounds it
	} {
		r, g, b := yccToRGB(c.y, c.cb, c.cr)
		if r != c.r || g != c.g || b != c.b {
			t.Errorf("yccToRGB(%d,%d,%d) = %d,%d,%d; want %d,%d,%d", c.y, c.cb, c.cr, r, g, b, c.r, c.g, c.b)
		}
	}
}

func TestChromaFactors(t *testing.T) {
	if _, _, err := chromaFactors(image.YCbCrSubsampleRatio(99)); err == nil {
		t.Error("unknown ratio accepted")
	}
	// A 4:4:0 plane (vertical only) upsampled with h1v2's biases.
	src := []uint8{10, 20, 90, 100}
	out := upsample(src, 2, 2, 2, 1, 2, 2, 4)
	want := []uint8{10, 20, (3*10 + 90 + 2) >> 2, (3*20 + 100 + 2) >> 2, (3*90 + 10 + 1) >> 2, (3*100 + 20 + 1) >> 2, 90, 100}
	if !bytes.Equal(out, want) {
		t.Errorf("h1v2 = %v, want %v", out, want)
	}
}
