package engine

import (
	"bytes"
	"image"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/webp"
)

// TestWebPRoundTrip decodes the encoder's output with x/image/webp and
// checks every pixel.
func TestWebPRoundTrip(t *testing.T) {
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
	} {
		img := image.NewNRGBA(image.Rect(0, 0, c.w, c.h))
		for y := 0; y < c.h; y++ {
			for x := 0; x < c.w; x++ {
				p := c.fill(x, y)
				copy(img.Pix[img.PixOffset(x, y):], p[:])
			}
		}
		var buf bytes.Buffer
		if err := writeWebP(&buf, img, c.alpha); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := webp.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: decoding: %v", c.name, err)
		}
		n := toNRGBA(got)
		for i := 0; i < len(img.Pix); i += 4 {
			want := img.Pix[i : i+4]
			wa := want[3]
			if !c.alpha {
				wa = 255
			}
			g := n.Pix[i : i+4]
			if g[3] != wa || (wa != 0 && (g[0] != want[0] || g[1] != want[1] || g[2] != want[2])) {
				t.Fatalf("%s: pixel %d = %v, want %v (alpha %d)", c.name, i/4, g, want, wa)
			}
		}
	}
}
