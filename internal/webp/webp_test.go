package webp

import (
	"bytes"
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	xwebp "golang.org/x/image/webp"
)

func roundTrip(t *testing.T, img *image.NRGBA) {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	got, err := xwebp.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	b := img.Bounds()
	if got.Bounds() != b {
		t.Fatalf("bounds %v, want %v", got.Bounds(), b)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			want := img.NRGBAAt(x, y)
			g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
			if want.A == 0 {
				if g.A != 0 {
					t.Fatalf("pixel %d,%d = %v, want transparent", x, y, g)
				}
				continue
			}
			if g != want {
				t.Fatalf("pixel %d,%d = %v, want %v", x, y, g, want)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		w, h int
		pix  func(x, y int) color.NRGBA
	}{
		{"one pixel", 1, 1, func(x, y int) color.NRGBA { return color.NRGBA{10, 20, 30, 255} }},
		{"solid", 37, 5, func(x, y int) color.NRGBA { return color.NRGBA{200, 100, 50, 255} }},
		{"gradient", 300, 200, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), uint8(x + y), 255} }},
		{"noise with alpha", 129, 67, func(x, y int) color.NRGBA {
			return color.NRGBA{uint8(rnd.IntN(256)), uint8(rnd.IntN(256)), uint8(rnd.IntN(256)), uint8(rnd.IntN(256))}
		}},
		{"two colors", 64, 64, func(x, y int) color.NRGBA {
			if (x+y)%2 == 0 {
				return color.NRGBA{0, 0, 0, 255}
			}
			return color.NRGBA{255, 255, 255, 255}
		}},
		{"wide", 600, 3, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x * 7), uint8(x * 3), uint8(y * 50), 255} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := image.NewNRGBA(image.Rect(0, 0, tc.w, tc.h))
			for y := range tc.h {
				for x := range tc.w {
					img.SetNRGBA(x, y, tc.pix(x, y))
				}
			}
			roundTrip(t, img)
		})
	}
}

func TestSkewedHistogramNeedsLengthLimit(t *testing.T) {
	// Fibonacci-like frequencies make an unlimited Huffman tree deeper than 15.
	img := image.NewNRGBA(image.Rect(0, 0, 2000, 1))
	x := 0
	a, b := 1, 1
	for v := 0; v < 25 && x < 2000; v++ {
		for range a {
			if x < 2000 {
				img.SetNRGBA(x, 0, color.NRGBA{uint8(v * 9), 0, 0, 255})
				x++
			}
		}
		a, b = b, a+b
	}
	roundTrip(t, img)
}

func TestTooLarge(t *testing.T) {
	if err := Encode(new(bytes.Buffer), image.NewNRGBA(image.Rect(0, 0, 16385, 1)), nil); err == nil {
		t.Fatal("no error for a 16385 px wide image")
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(2), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add(uint8(1), uint8(1), []byte{255, 0, 0, 0})
	f.Fuzz(func(t *testing.T, w, h uint8, data []byte) {
		if w == 0 || h == 0 || len(data) == 0 {
			return
		}
		img := image.NewNRGBA(image.Rect(0, 0, int(w), int(h)))
		for i := range img.Pix {
			img.Pix[i] = data[i%len(data)]
		}
		roundTrip(t, img)
	})
}

func TestHuffmanLengthsAreLimitedAndComplete(t *testing.T) {
	freq := make([]uint32, 40)
	a, b := uint32(1), uint32(1)
	for i := range freq {
		freq[i] = a
		a, b = b, a+b
	}
	if _, depth := buildLengths(freq, 1); depth <= 15 {
		t.Fatalf("test data too shallow: depth %d", depth)
	}
	lens := huffmanLengths(freq, 15)
	kraft := 0.0
	for s, l := range lens {
		if l == 0 || l > 15 {
			t.Fatalf("symbol %d has length %d", s, l)
		}
		kraft += 1 / float64(uint(1)<<l)
	}
	if kraft != 1 {
		t.Fatalf("Kraft sum %v, want 1 (a complete code)", kraft)
	}
}

// TestOpaque encodes with and without Options.Opaque and checks every
// pixel: alpha is kept, or dropped with the colour kept (what the engine's
// /view?preview=webp&channel=rgb serves).
func TestOpaque(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name  string
		w, h  int
		alpha bool
		fill  func(x, y int) [4]uint8
	}{
		{"noise", 37, 23, true, func(x, y int) [4]uint8 {
			return [4]uint8{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256))}
		}},
		{"noise dropped", 37, 23, false, func(x, y int) [4]uint8 {
			return [4]uint8{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256))}
		}},
		{"gradient", 300, 7, false, func(x, y int) [4]uint8 { return [4]uint8{uint8(x), uint8(y * 30), uint8(x ^ y), 255} }},
		{"one colour", 5, 5, false, func(x, y int) [4]uint8 { return [4]uint8{10, 20, 30, 255} }},
		{"two colours", 9, 4, true, func(x, y int) [4]uint8 {
			if x%2 == 0 {
				return [4]uint8{0, 0, 0, 0}
			}
			return [4]uint8{255, 255, 255, 255}
		}},
		{"skewed", 200, 200, false, func(x, y int) [4]uint8 {
			v := uint8(0)
			if r.IntN(1000) == 0 {
				v = uint8(r.IntN(256))
			}
			return [4]uint8{v, v / 2, 255 - v, 255}
		}},
		{"one pixel", 1, 1, true, func(x, y int) [4]uint8 { return [4]uint8{1, 2, 3, 4} }},
		{"transparent colour dropped", 3, 3, false, func(x, y int) [4]uint8 { return [4]uint8{200, 30, 60, 0} }},
	} {
		img := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				p := c.fill(x, y)
				copy(img.Pix[img.PixOffset(x, y):], p[:])
			}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, img, &Options{Opaque: !c.alpha}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := xwebp.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: decoding: %v", c.name, err)
		}
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				want := img.NRGBAAt(x, y)
				if !c.alpha {
					want.A = 255
				}
				g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
				if g.A != want.A || (want.A != 0 && g != want) {
					t.Fatalf("%s: pixel %d,%d = %v, want %v", c.name, x, y, g, want)
				}
			}
		}
	}
}
