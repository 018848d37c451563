package jpeg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestIslowAccuracy checks libjpeg's integer IDCT against a float IDCT:
// IEEE 1180 accuracy means at most one level off.
func TestIslowAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := 0; trial < 200; trial++ {
		var b block
		for i := range b {
			if rng.IntN(3) == 0 {
				b[i] = int32(rng.IntN(512) - 256)
			}
		}
		var got [64]uint8
		bb := b
		idctIslow(&bb, got[:], 8)
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				var s float64
				for v := 0; v < 8; v++ {
					for u := 0; u < 8; u++ {
						cu, cv := 1.0, 1.0
						if u == 0 {
							cu = 1 / math.Sqrt2
						}
						if v == 0 {
							cv = 1 / math.Sqrt2
						}
						s += cu * cv * float64(b[v*8+u]) * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
					}
				}
				want := math.Max(0, math.Min(255, math.Round(s/4+128)))
				if d := float64(got[y*8+x]) - want; d > 1 || d < -1 {
					t.Fatalf("trial %d: sample (%d,%d) = %d, float IDCT %v", trial, x, y, got[y*8+x], want)
				}
			}
		}
	}
}

func TestIslowDCOnly(t *testing.T) {
	var b block
	b[0] = 80 // a DC of 8*10 gives 10 above mid-grey everywhere
	var out [64]uint8
	idctIslow(&b, out[:], 8)
	for i, v := range out {
		if v != 138 {
			t.Fatalf("sample %d = %d, want 138", i, v)
		}
	}
	for _, c := range []struct {
		in   int64
		want uint8
	}{{-128, 0}, {0, 128}, {127, 255}, {300, 255}, {-300, 0}} {
		if got := rangeLimit(c.in); got != c.want {
			t.Errorf("rangeLimit(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
