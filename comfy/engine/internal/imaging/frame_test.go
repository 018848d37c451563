package imaging

import (
	"bytes"
	"testing"
)

func TestFrameRGB(t *testing.T) {
	pal := grayRamp([]uint8{10, 20, 30, 40, 50, 60})
	for _, c := range []struct {
		name string
		f    *Frame
		want []uint8
	}{
		{"L", &Frame{Mode: ModeL, W: 2, H: 1, Pix: []uint8{0, 200}}, []uint8{0, 0, 0, 200, 200, 200}},
		{"1", &Frame{Mode: Mode1, W: 2, H: 1, Pix: []uint8{0, 255}}, []uint8{0, 0, 0, 255, 255, 255}},
		{"LA", &Frame{Mode: ModeLA, W: 1, H: 1, Pix: []uint8{7, 9}}, []uint8{7, 7, 7}},
		{"P", &Frame{Mode: ModeP, W: 3, H: 1, Pix: []uint8{1, 0, 200}, Palette: pal}, []uint8{40, 50, 60, 10, 20, 30, 200, 200, 200}},
		{"RGBA", &Frame{Mode: ModeRGBA, W: 1, H: 1, Pix: []uint8{1, 2, 3, 4}}, []uint8{1, 2, 3}},
		{"I clipped", &Frame{Mode: ModeI, W: 3, H: 1, Int: []int32{-5, 100, 300}}, []uint8{0, 0, 0, 100, 100, 100, 255, 255, 255}},
		// Pillow's cmyk2rgb: nk - c*nk/255 rounded, nk = 255-k.
		{"CMYK", &Frame{Mode: ModeCMYK, W: 1, H: 1, Pix: []uint8{255, 0, 128, 51}}, []uint8{0, 204, 102}},
	} {
		if got := c.f.RGB(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: RGB() = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFrameAlphaFollowsLoadImage(t *testing.T) {
	pal := grayRamp(nil)
	palAlpha := bytes.Repeat([]byte{255}, 256)
	palAlpha[1] = 0
	for _, c := range []struct {
		name string
		f    *Frame
		want []uint8
	}{
		{"LA", &Frame{Mode: ModeLA, W: 2, H: 1, Pix: []uint8{1, 10, 2, 20}}, []uint8{10, 20}},
		{"RGBA", &Frame{Mode: ModeRGBA, W: 1, H: 1, Pix: []uint8{1, 2, 3, 99}}, []uint8{99}},
		{"P with tRNS", &Frame{Mode: ModeP, W: 2, H: 1, Pix: []uint8{1, 2}, Palette: pal, PaletteAlpha: palAlpha}, []uint8{0, 255}},
		{"P without tRNS", &Frame{Mode: ModeP, W: 1, H: 1, Pix: []uint8{1}, Palette: pal}, nil},
		// A colour key on L or RGB is ignored by LoadImage (no A band).
		{"L with key", &Frame{Mode: ModeL, W: 1, H: 1, Pix: []uint8{5}, Key: []int{5}}, nil},
		{"RGB with key", &Frame{Mode: ModeRGB, W: 1, H: 1, Pix: []uint8{1, 2, 3}, Key: []int{1, 2, 3}}, nil},
	} {
		if got := c.f.Alpha(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: Alpha() = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFrameRGBAHonoursColourKeys(t *testing.T) {
	for _, c := range []struct {
		name string
		f    *Frame
		want []uint8
	}{
		{"L key", &Frame{Mode: ModeL, W: 2, H: 1, Pix: []uint8{5, 6}, Key: []int{5}}, []uint8{5, 5, 5, 0, 6, 6, 6, 255}},
		{"RGB key", &Frame{Mode: ModeRGB, W: 2, H: 1, Pix: []uint8{1, 2, 3, 1, 2, 4}, Key: []int{1, 2, 3}}, []uint8{1, 2, 3, 0, 1, 2, 4, 255}},
		// Pillow compares the low byte of a 16-bit key.
		{"16-bit key low byte", &Frame{Mode: ModeRGB, W: 1, H: 1, Pix: []uint8{1, 2, 3}, Key: []int{0x101, 0x202, 0x303}}, []uint8{1, 2, 3, 0}},
		{"LA", &Frame{Mode: ModeLA, W: 1, H: 1, Pix: []uint8{9, 8}}, []uint8{9, 9, 9, 8}},
	} {
		if got := c.f.RGBA(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: RGBA() = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestScaleInt(t *testing.T) {
	f := &Frame{Mode: ModeI, W: 4, H: 1, Int: []int32{0, 254, 255, 65535}}
	f.ScaleInt(1.0 / 255)
	// int(x * (1/255)), truncated: 65535/255 = 257.
	want := []int32{0, 0, 1, 257}
	for i := range want {
		if f.Int[i] != want[i] {
			t.Fatalf("ScaleInt = %v, want %v", f.Int, want)
		}
	}
}

// TestTransposed checks every EXIF orientation on a 3×2 frame whose pixels
// are their own indexes.
func TestTransposed(t *testing.T) {
	// 0 1 2
	// 3 4 5
	f := &Frame{Mode: ModeL, W: 3, H: 2, Pix: []uint8{0, 1, 2, 3, 4, 5}}
	for _, c := range []struct {
		o    int
		w, h int
		want []uint8
	}{
		{1, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
		{OrientFlipH, 3, 2, []uint8{2, 1, 0, 5, 4, 3}},
		{OrientRotate180, 3, 2, []uint8{5, 4, 3, 2, 1, 0}},
		{OrientFlipV, 3, 2, []uint8{3, 4, 5, 0, 1, 2}},
		{OrientTranspose, 2, 3, []uint8{0, 3, 1, 4, 2, 5}},
		{OrientRotate90CW, 2, 3, []uint8{3, 0, 4, 1, 5, 2}},
		{OrientTransverse, 2, 3, []uint8{5, 2, 4, 1, 3, 0}},
		{OrientRotate270, 2, 3, []uint8{2, 5, 1, 4, 0, 3}},
		{9, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
	} {
		g := f.Transposed(c.o)
		if g.W != c.w || g.H != c.h || !bytes.Equal(g.Pix, c.want) {
			t.Errorf("orientation %d: %dx%d %v, want %dx%d %v", c.o, g.W, g.H, g.Pix, c.w, c.h, c.want)
		}
	}
}
