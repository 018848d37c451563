package imaging

import (
	"math"
	"testing"
)

func resize(t *testing.T, src []float32, w, h, c, ow, oh int, m Method, cl bool) []float32 {
	t.Helper()
	dst := make([]float32, ow*oh*c)
	if err := Resize(NewView(dst, ow, oh, c), NewView(src, w, h, c), m, Layout{ChannelsLast: cl}); err != nil {
		t.Fatal(err)
	}
	return dst
}

func near(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-6 }

func TestNearestExact(t *testing.T) {
	// 2 → 5: src = floor((i+0.5)*0.4) = 0,0,1,1,1.
	got := resize(t, []float32{1, 2}, 2, 1, 1, 5, 1, NearestExact, true)
	want := []float32{1, 1, 2, 2, 2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("nearest-exact = %v, want %v", got, want)
		}
	}
}

func TestBilinear(t *testing.T) {
	// 2 → 4 (align_corners=False): positions -0.25→0, 0.25, 0.75, 1.25→last.
	src := []float32{0, 1}
	for _, cl := range []bool{true, false} {
		got := resize(t, src, 2, 1, 1, 4, 1, Bilinear, cl)
		want := []float32{0, 0.25, 0.75, 1}
		for i := range want {
			if !near(got[i], want[i]) {
				t.Fatalf("channels-last=%v: bilinear = %v, want %v", cl, got, want)
			}
		}
	}
	// Same size copies exactly, both kernels.
	src = []float32{0.1, 0.7, 0.3, 0.9, 0.5, 0.2}
	for _, cl := range []bool{true, false} {
		got := resize(t, src, 3, 2, 1, 3, 2, Bilinear, cl)
		for i := range src {
			if got[i] != src[i] {
				t.Fatalf("same-size bilinear changed %v to %v", src, got)
			}
		}
	}
}

func TestArea(t *testing.T) {
	// 4 → 2 averages pairs; 3 → 2 uses overlapping cells [0,2) and [1,3).
	got := resize(t, []float32{1, 3, 5, 7}, 4, 1, 1, 2, 1, Area, true)
	if got[0] != 2 || got[1] != 6 {
		t.Fatalf("area 4→2 = %v", got)
	}
	got = resize(t, []float32{1, 3, 5}, 3, 1, 1, 2, 1, Area, true)
	if got[0] != 2 || got[1] != 4 {
		t.Fatalf("area 3→2 = %v", got)
	}
}

func TestBicubic(t *testing.T) {
	src := []float32{0.2, 0.4, 0.1, 0.9}
	got := resize(t, src, 4, 1, 1, 4, 1, Bicubic, true)
	for i := range src {
		if got[i] != src[i] {
			t.Fatalf("same-size bicubic = %v", got)
		}
	}
	// A constant stays (nearly) constant; the weights sum to one.
	flat := []float32{0.5, 0.5, 0.5}
	got = resize(t, flat, 3, 1, 1, 7, 1, Bicubic, true)
	for _, v := range got {
		if !near(v, 0.5) {
			t.Fatalf("bicubic of a constant = %v", got)
		}
	}
	// Not clamped: a step overshoots.
	got = resize(t, []float32{0, 0, 1, 1}, 4, 1, 1, 8, 1, Bicubic, true)
	if mn, mx := minMax(got); mn >= 0 && mx <= 1 {
		t.Errorf("bicubic step does not overshoot: %v", got)
	}
}

func minMax(v []float32) (float32, float32) {
	mn, mx := v[0], v[0]
	for _, x := range v {
		mn, mx = min(mn, x), max(mx, x)
	}
	return mn, mx
}

func TestLanczos(t *testing.T) {
	// Same size: Pillow returns a copy of the 8-bit image.
	src := []float32{0.2, 0.4, 0.6, 0.1, 0.9, 0.3}
	got := resize(t, src, 2, 1, 3, 2, 1, Lanczos, true)
	for i := range src {
		if got[i] != float32(FloatToByte(src[i]))/255 {
			t.Fatalf("same-size lanczos = %v", got)
		}
	}
	// A flat image stays flat at 8 bits.
	flat := make([]float32, 5*4*3)
	for i := range flat {
		flat[i] = 100.0 / 255
	}
	got = resize(t, flat, 5, 4, 3, 13, 9, Lanczos, true)
	for _, v := range got {
		if FloatToByte(v) != 100 {
			t.Fatalf("lanczos of a flat image: %v", v*255)
		}
	}
	// RGBA goes through premultiplied alpha: a fully transparent pixel's
	// colour does not bleed into its neighbours.
	rgba := []float32{1, 0, 0, 0, 0, 0, 1, 1}
	got = resize(t, rgba, 2, 1, 4, 4, 1, Lanczos, true)
	if got[len(got)-4] != 0 || got[len(got)-2] != 1 {
		t.Errorf("premultiplied lanczos: %v", got)
	}
	if err := Resize(NewView(make([]float32, 2), 2, 1, 1), NewView([]float32{0, 1}, 2, 1, 1), Lanczos, Layout{}); err == nil {
		t.Error("lanczos on one channel accepted")
	}
}

func TestPillowCoeffsNormalised(t *testing.T) {
	for _, c := range [][2]int{{97, 151}, {151, 97}, {10, 3}, {3, 10}} {
		ksize, bounds, kk := pillowCoeffs(c[0], c[1])
		for i := 0; i < c[1]; i++ {
			var sum int64
			for x := 0; x < bounds[2*i+1]; x++ {
				sum += int64(kk[i*ksize+x])
			}
			if d := sum - 1<<pillowPrecisionBits; d > int64(ksize) || d < -int64(ksize) {
				t.Fatalf("%v: coefficients of %d sum to %d", c, i, sum)
			}
			if bounds[2*i] < 0 || bounds[2*i]+bounds[2*i+1] > c[0] {
				t.Fatalf("%v: bounds %d out of range", c, i)
			}
		}
	}
}

func TestResizeErrors(t *testing.T) {
	src := NewView([]float32{1}, 1, 1, 1)
	if err := Resize(NewView(nil, 0, 1, 1), src, Bilinear, Layout{}); err == nil {
		t.Error("zero width accepted")
	}
	if err := Resize(NewView(make([]float32, 2), 1, 1, 2), src, Bilinear, Layout{}); err == nil {
		t.Error("channel mismatch accepted")
	}
	if err := Resize(NewView(make([]float32, 1), 1, 1, 1), src, "bislerp", Layout{}); err == nil {
		t.Error("unknown method accepted")
	}
}

func TestChannelsLastContiguous(t *testing.T) {
	full := NewView(make([]float32, 4*3*3), 4, 3, 3)
	if !ChannelsLastContiguous(full, 2, 4*3*3) {
		t.Error("dense batch is not channels-last")
	}
	if ChannelsLastContiguous(full.Crop(1, 0, 2, 3), 1, 4*3*3) {
		t.Error("width crop is channels-last")
	}
	if !ChannelsLastContiguous(full.Crop(0, 1, 4, 1), 1, 4*3*3) {
		t.Error("a single full row is channels-last")
	}
	if ChannelsLastContiguous(full.Crop(0, 1, 4, 2), 2, 4*3*3) {
		t.Error("height crop of a batch is channels-last")
	}
}

func TestParallelCoversRange(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		seen := make([]int, n)
		Parallel(n, 1<<20, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, v := range seen {
			if v != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, v)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("a panic in a worker was lost")
		}
	}()
	Parallel(100, 1<<20, func(lo, hi int) {
		if hi == 100 {
			panic("boom")
		}
	})
}
