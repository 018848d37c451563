package imaging

import (
	"fmt"
	"math"
)

// View is a channels-last float32 image [H,W,C] inside a larger buffer:
// sample k of pixel (x, y) is Pix[y*Stride+x*C+k]. A view of a crop shares
// its parent's Pix and Stride.
type View struct {
	Pix     []float32
	W, H, C int
	Stride  int
}

// NewView returns a view of a dense [H,W,C] buffer.
func NewView(pix []float32, w, h, c int) View {
	return View{Pix: pix, W: w, H: h, C: c, Stride: w * c}
}

// Crop returns the view of the w×h rectangle at (x, y).
func (v View) Crop(x, y, w, h int) View {
	return View{Pix: v.Pix[y*v.Stride+x*v.C:], W: w, H: h, C: v.C, Stride: v.Stride}
}

// Dense says whether the view's rows are packed (Stride == W*C).
func (v View) Dense() bool { return v.Stride == v.W*v.C }

func (v View) at(x, y int) []float32 {
	o := y*v.Stride + x*v.C
	return v.Pix[o : o+v.C]
}

// Method is an interpolation method of ComfyUI's common_upscale.
type Method string

// The methods of torch.nn.functional.interpolate that ComfyUI offers, and
// Pillow's LANCZOS.
const (
	NearestExact Method = "nearest-exact"
	Bilinear     Method = "bilinear"
	Area         Method = "area"
	Bicubic      Method = "bicubic"
	Lanczos      Method = "lanczos"
)

// Layout tells the resamplers which of torch's kernels would run: torch picks
// a channels-last kernel for bilinear when the [B,C,H,W] tensor is
// channels-last contiguous, and its arithmetic differs (in the last bit) from
// the generic kernel.
type Layout struct {
	// ChannelsLast is true when the source tensor is channels-last
	// contiguous (see ChannelsLastContiguous).
	ChannelsLast bool
}

// ChannelsLastContiguous reports torch's is_contiguous(ChannelsLast) for the
// [B,C,H,W] tensor made of batch views like v, frameStride floats apart:
// dimensions of size 1 are ignored, the others must have the strides of a
// packed NHWC tensor.
func ChannelsLastContiguous(v View, batch, frameStride int) bool {
	expected := 1
	for _, d := range []struct{ size, stride int }{
		{v.C, 1}, {v.W, v.C}, {v.H, v.Stride}, {batch, frameStride},
	} {
		if d.size == 1 {
			continue
		}
		if d.stride != expected {
			return false
		}
		expected *= d.size
	}
	return true
}

// Resize resamples src into dst (a dense ow×oh view with the same channels)
// with torch's interpolate(mode=method, align_corners=False) arithmetic, or
// Pillow's 8-bit LANCZOS for Lanczos.
func Resize(dst, src View, method Method, layout Layout) error {
	if dst.C != src.C {
		return fmt.Errorf("resize: %d channels into %d", src.C, dst.C)
	}
	if dst.W <= 0 || dst.H <= 0 || src.W <= 0 || src.H <= 0 {
		return fmt.Errorf("Input and output sizes should be greater than 0, but got input (H: %d, W: %d) output (H: %d, W: %d)", src.H, src.W, dst.H, dst.W)
	}
	switch method {
	case NearestExact:
		nearestExact(dst, src)
	case Bilinear:
		if layout.ChannelsLast {
			bilinearChannelsLast(dst, src)
		} else {
			bilinearGeneric(dst, src)
		}
	case Bicubic:
		bicubic(dst, src)
	case Area:
		area(dst, src)
	case Lanczos:
		return lanczos(dst, src)
	default:
		return fmt.Errorf("resize: unknown method %q", method)
	}
	return nil
}

// scaleOf is torch's area_pixel_compute_scale without a scale factor:
// float(input) / output, in float32.
func scaleOf(in, out int) float32 { return float32(in) / float32(out) }

// nearestExact is upsample_nearest_exact2d: src = min(floor((dst+0.5)*scale),
// in-1) with the product computed in double and rounded to float.
func nearestExact(dst, src View) {
	xs := make([]int, dst.W)
	sx := scaleOf(src.W, dst.W)
	for x := range xs {
		xs[x] = min(int(math.Floor(float64(float32((float64(x)+0.5)*float64(sx))))), src.W-1)
	}
	sy := scaleOf(src.H, dst.H)
	Parallel(dst.H, dst.W*dst.C, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			iy := min(int(math.Floor(float64(float32((float64(y)+0.5)*float64(sy))))), src.H-1)
			for x, ix := range xs {
				copy(dst.at(x, y), src.at(ix, iy))
			}
		}
	})
}

// linearTaps are the two source indexes and weights of one output position.
type linearTaps struct {
	i0, i1 int
	l0, l1 float32
}

// linearWeights is torch 1.13's compute_source_index_and_lambda: the scale
// is a float, the source position is computed in double (acc_type), lambda1
// is rounded to float and lambda0 = 1 - lambda1.
func linearWeights(in, out int) []linearTaps {
	taps := make([]linearTaps, out)
	if in == out {
		for i := range taps {
			taps[i] = linearTaps{i0: i, i1: i, l0: 1, l1: 0}
		}
		return taps
	}
	scale := float64(scaleOf(in, out))
	for i := range taps {
		real := scale*(float64(i)+0.5) - 0.5
		if real < 0 {
			real = 0
		}
		i0 := int(real)
		i1 := i0
		if i0 < in-1 {
			i1 = i0 + 1
		}
		l1 := float32(real - float64(i0))
		taps[i] = linearTaps{i0: i0, i1: i1, l0: float32(1 - float64(l1)), l1: l1}
	}
	return taps
}

// bilinearChannelsLast is torch 1.13's cpu_upsample_linear_channels_last:
// the four weights are float products of the lambdas, and each output is
// their weighted sum accumulated in double, rounded to float once.
func bilinearChannelsLast(dst, src View) {
	tx, ty := linearWeights(src.W, dst.W), linearWeights(src.H, dst.H)
	c := dst.C
	Parallel(dst.H, dst.W*c*4, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			t := ty[y]
			r0 := src.Pix[t.i0*src.Stride:]
			r1 := src.Pix[t.i1*src.Stride:]
			out := dst.Pix[y*dst.Stride:]
			for x := 0; x < dst.W; x++ {
				s := tx[x]
				w00, w01 := float64(t.l0*s.l0), float64(t.l0*s.l1)
				w10, w11 := float64(t.l1*s.l0), float64(t.l1*s.l1)
				a, b := s.i0*c, s.i1*c
				for k := 0; k < c; k++ {
					out[x*c+k] = float32(float64(r0[a+k])*w00 + float64(r0[b+k])*w01 + float64(r1[a+k])*w10 + float64(r1[b+k])*w11)
				}
			}
		}
	})
}

// fma32 is a float32 fused multiply-add: x*y+z rounded once. The product of
// two floats is exact in float64, so one float64 addition and a rounding to
// float32 gives the fused result except in double-rounding ties, which are
// rarer than the one-level tolerance these kernels are held to; it is much
// faster than math.FMA without hardware FMA.
func fma32(x, y, z float32) float32 {
	return float32(float64(x)*float64(y) + float64(z))
}

// bilinearGeneric is torch 1.13's generic separable kernel (used when the
// source is not channels-last contiguous, e.g. after a centre crop): each
// pass computes t0*w0 + t1*w1 in float, which the compiler fuses into
// fma(t0, w0, t1*w1).
func bilinearGeneric(dst, src View) {
	tx, ty := linearWeights(src.W, dst.W), linearWeights(src.H, dst.H)
	c := dst.C
	Parallel(dst.H, dst.W*c*4, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			t := ty[y]
			p0 := src.Pix[t.i0*src.Stride:]
			p1 := src.Pix[t.i1*src.Stride:]
			out := dst.Pix[y*dst.Stride:]
			for x := 0; x < dst.W; x++ {
				s := tx[x]
				a, b := s.i0*c, s.i1*c
				for k := 0; k < c; k++ {
					r0 := fma32(p0[a+k], s.l0, p0[b+k]*s.l1)
					r1 := fma32(p1[a+k], s.l0, p1[b+k]*s.l1)
					out[x*c+k] = fma32(r0, t.l0, r1*t.l1)
				}
			}
		}
	})
}

// cubicTaps are the four source indexes (clamped to the edge) and weights of
// one output position.
type cubicTaps struct {
	idx [4]int
	w   [4]float32
}

const cubicA = float32(-0.75)

// cubicConv1 and cubicConv2 are torch's cubic_convolution1/2 in float, with
// the multiply-adds fused the way the compiler fuses them.
func cubicConv1(x float32) float32 {
	return fma32(fma32(cubicA+2, x, -(cubicA+3))*x, x, 1)
}

func cubicConv2(x float32) float32 {
	return fma32(fma32(fma32(cubicA, x, -5*cubicA), x, 8*cubicA), x, -4*cubicA)
}

// cubicWeights computes the taps of upsample_bicubic2d: the source position
// in double from a float scale, its floor taken in float (floorf), the
// fraction rounded to float and the four Keys weights (A = -0.75) in float.
func cubicWeights(in, out int) []cubicTaps {
	taps := make([]cubicTaps, out)
	scale := float64(scaleOf(in, out))
	for i := range taps {
		real := scale*(float64(i)+0.5) - 0.5
		i0 := math.Floor(float64(float32(real)))
		t := float32(real - i0)
		ct := &taps[i]
		ct.w[0] = cubicConv2(t + 1)
		ct.w[1] = cubicConv1(t)
		ct.w[2] = cubicConv1(1 - t)
		ct.w[3] = cubicConv2((1 - t) + 1)
		for j := 0; j < 4; j++ {
			ct.idx[j] = max(min(int(i0)-1+j, in-1), 0)
		}
	}
	return taps
}

// dot4 is x0*c0 + x1*c1 + x2*c2 + x3*c3 in float as the compiler fuses it.
func dot4(x0, x1, x2, x3 float32, c *[4]float32) float32 {
	return fma32(x3, c[3], fma32(x2, c[2], fma32(x0, c[0], x1*c[1])))
}

// bicubic is upsample_bicubic2d (A = -0.75, edge-clamped taps, not clamped
// in value): four horizontal interpolations combined vertically. It agrees
// with torch 1.13 to within one level after SaveImage's truncation; the exact
// order of torch's float operations is not known. The horizontal
// interpolation of a source row does not depend on the output row, so it is
// computed once per source row.
func bicubic(dst, src View) {
	tx, ty := cubicWeights(src.W, dst.W), cubicWeights(src.H, dst.H)
	c := dst.C
	// Source rows the output needs.
	need := make([]bool, src.H)
	for _, t := range ty {
		for _, i := range t.idx {
			need[i] = true
		}
	}
	rowLen := dst.W * c
	horiz := make([]float32, src.H*rowLen)
	Parallel(src.H, dst.W*c*8, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			if !need[y] {
				continue
			}
			r := src.Pix[y*src.Stride:]
			out := horiz[y*rowLen : (y+1)*rowLen]
			for x := 0; x < dst.W; x++ {
				s := &tx[x]
				i0, i1, i2, i3 := s.idx[0]*c, s.idx[1]*c, s.idx[2]*c, s.idx[3]*c
				for k := 0; k < c; k++ {
					out[x*c+k] = dot4(r[i0+k], r[i1+k], r[i2+k], r[i3+k], &s.w)
				}
			}
		}
	})
	Parallel(dst.H, rowLen*8, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			t := &ty[y]
			h0 := horiz[t.idx[0]*rowLen : (t.idx[0]+1)*rowLen]
			h1 := horiz[t.idx[1]*rowLen : (t.idx[1]+1)*rowLen]
			h2 := horiz[t.idx[2]*rowLen : (t.idx[2]+1)*rowLen]
			h3 := horiz[t.idx[3]*rowLen : (t.idx[3]+1)*rowLen]
			out := dst.Pix[y*dst.Stride : y*dst.Stride+rowLen]
			for i := range out {
				out[i] = dot4(h0[i], h1[i], h2[i], h3[i], &t.w)
			}
		}
	})
}

// area is adaptive_avg_pool2d: the plain mean of the source cells
// [floor(i*in/out), ceil((i+1)*in/out)), summed in float32 row by row and
// divided by the height, then the width.
func area(dst, src View) {
	bounds := func(in, out int) [][2]int {
		b := make([][2]int, out)
		for i := range b {
			b[i][0] = int(math.Floor(float64(float32(i*in) / float32(out))))
			b[i][1] = int(math.Ceil(float64(float32((i+1)*in) / float32(out))))
		}
		return b
	}
	bx, by := bounds(src.W, dst.W), bounds(src.H, dst.H)
	c := dst.C
	Parallel(dst.H, dst.W*c*8, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			y0, y1 := by[y][0], by[y][1]
			kh := float32(y1 - y0)
			for x := 0; x < dst.W; x++ {
				x0, x1 := bx[x][0], bx[x][1]
				kw := float32(x1 - x0)
				out := dst.at(x, y)
				for k := 0; k < c; k++ {
					var sum float32
					for iy := y0; iy < y1; iy++ {
						r := src.Pix[iy*src.Stride:]
						for ix := x0; ix < x1; ix++ {
							sum += r[ix*c+k]
						}
					}
					out[k] = sum / kh / kw
				}
			}
		}
	})
}
