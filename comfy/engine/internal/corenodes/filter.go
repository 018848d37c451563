package corenodes

import (
	"context"
	"math"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func imageBlurClass() *node.Class {
	return &node.Class{
		Info: info("ImageBlur"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			r := int(in.Int("blur_radius"))
			if r == 0 {
				return result(im), nil
			}
			if err := checkReflectPad(im, r); err != nil {
				return nil, err
			}
			k := 2*r + 1
			sigma := in.Float("sigma")
			var out *node.Image
			if exactConvAffordable(im, k) {
				out, err = conv2d(ctx, im, gaussianKernel32(k, sigma), k)
			} else {
				out, err = separableConv(ctx, im, gaussianTaps(k, sigma))
			}
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

func imageSharpenClass() *node.Class {
	return &node.Class{
		Info: info("ImageSharpen"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			r := int(in.Int("sharpen_radius"))
			if r == 0 {
				return result(im), nil
			}
			if err := checkReflectPad(im, r); err != nil {
				return nil, err
			}
			k := 2*r + 1
			alpha, sigma := in.Float("alpha"), in.Float("sigma")
			var out *node.Image
			if exactConvAffordable(im, k) {
				// kernel = gaussian * -(alpha*10); centre += 1 - sum(kernel).
				kern := gaussianKernel32(k, sigma)
				scale := float32(-(alpha * 10))
				for i := range kern {
					kern[i] *= scale
				}
				c := (k/2)*k + k/2
				kern[c] = (kern[c] - torchSum(kern)) + 1
				if out, err = conv2d(ctx, im, kern, k); err != nil {
					return nil, err
				}
			} else {
				// The kernel is -10α·G with 1 - sum(kernel) added at the
				// centre, so sharpened = (1 + 10α)·x - 10α·(G * x).
				blur, err := separableConv(ctx, im, gaussianTaps(k, sigma))
				if err != nil {
					return nil, err
				}
				a := 10 * alpha
				out = node.NewImage(im.B, im.H, im.W, im.C)
				for i := range out.Pix {
					out.Pix[i] = float32((1+a)*float64(im.Pix[i]) - a*float64(blur.Pix[i]))
				}
			}
			clampUnit(out.Pix)
			return result(out), nil
		},
	}
}

// exactConvBudget is the number of multiply-adds up to which ImageBlur and
// ImageSharpen convolve with the full 2-D kernel in torch's order (about a
// tenth of a second on two cores); larger jobs use the separable form, which
// can land one 8-bit level off on a small share of pixels.
const exactConvBudget = 1 << 28

func exactConvAffordable(im *node.Image, k int) bool {
	return int64(k)*int64(k)*int64(len(im.Pix)) <= exactConvBudget
}

// gaussianKernel32 is ComfyUI's gaussian_kernel computed the way torch does
// in float32: linspace(-1, 1, k) meshgrid, d = sqrt(x*x + y*y),
// g = exp(-(d*d) / (2σ²)) (SLEEF's expf for the elements torch vectorises,
// the C library's for the rest), then g / g.sum() with torch's summation
// order.
func gaussianKernel32(k int, sigma float64) []float32 {
	lin := make([]float32, k)
	for i := range lin {
		lin[i] = linspace32(-1, 1, k, i)
	}
	g := make([]float32, k*k)
	div := float32(2.0 * sigma * sigma)
	vectorised := len(g) / 16 * 16
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			x, y := lin[i], lin[j]
			d := float32(math.Sqrt(float64(float32(x*x) + float32(y*y))))
			v := -float32(d*d) / div
			if n := i*k + j; n < vectorised {
				g[n] = sleefExpf(v)
			} else {
				g[n] = float32(math.Exp(float64(v)))
			}
		}
	}
	sum := torchSum(g)
	for i := range g {
		g[i] /= sum
	}
	return g
}

// torchSum is torch 1.13's cascade sum of a contiguous float32 tensor:
// 8-lane vectors summed into four vector accumulators, the accumulators
// folded together, the leftover scalars summed, then the eight lanes added in
// order.
func torchSum(g []float32) float32 {
	type vec [8]float32
	add := func(a *vec, b []float32) {
		for l := range a {
			a[l] += b[l]
		}
	}
	nv := len(g) / 8
	var part [4]vec
	ilp := nv / 4
	for i := 0; i < ilp; i++ {
		for k := 0; k < 4; k++ {
			add(&part[k], g[8*(4*i+k):])
		}
	}
	for i := ilp * 4; i < nv; i++ {
		add(&part[0], g[8*i:])
	}
	for k := 1; k < 4; k++ {
		add(&part[0], part[k][:])
	}
	var sum float32
	for i := nv * 8; i < len(g); i++ {
		sum += g[i]
	}
	for l := 0; l < 8; l++ {
		sum += part[0][l]
	}
	return sum
}

// sleefExpf is SLEEF's expf (1.0-ULP variant) as torch's vectorised exp
// computes it: range reduction by ln 2, a degree-6 polynomial with fused
// multiply-adds, then scaling by 2^q.
func sleefExpf(d float32) float32 {
	const (
		rln2 = float32(1.442695040888963407359924681001892137426645954152985934135449406931)
		l2u  = float32(0.693145751953125)
		l2l  = float32(1.428606765330187045e-06)
	)
	if d < -104 {
		return 0
	}
	if d > 100 {
		return float32(math.Inf(1))
	}
	fma := func(x, y, z float32) float32 { return float32(math.FMA(float64(x), float64(y), float64(z))) }
	q := int32(math.RoundToEven(float64(d * rln2)))
	s := fma(float32(q), -l2u, d)
	s = fma(float32(q), -l2l, s)
	u := float32(0.000198527617612853646278381)
	u = fma(u, s, 0.00139304355252534151077271)
	u = fma(u, s, 0.00833336077630519866943359)
	u = fma(u, s, 0.0416664853692054748535156)
	u = fma(u, s, 0.166666671633720397949219)
	u = fma(u, s, 0.5)
	u = 1 + fma(s*s, u, s)
	return u * float32(math.Ldexp(1, int(q>>1))) * float32(math.Ldexp(1, int(q-q>>1)))
}

// conv2d is the depthwise convolution ComfyUI runs (reflect padding, then
// conv2d): every output is the fused multiply-add chain over the k×k kernel
// in row-major order, starting from zero, as oneDNN's depthwise kernel
// accumulates.
func conv2d(ctx context.Context, im *node.Image, kern []float32, k int) (*node.Image, error) {
	r := k / 2
	w, h, c := im.W, im.H, im.C
	out := node.NewImage(im.B, h, w, c)
	xs := make([]int, w+2*r) // reflected column of padded x
	for i := range xs {
		xs[i] = reflect(i-r, w) * c
	}
	for b := 0; b < im.B; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src, dst := im.Frame(b), out.Frame(b)
		imaging.Parallel(h, w*c*k*k, func(lo, hi int) {
			rows := make([][]float32, k)
			for y := lo; y < hi; y++ {
				for i := range rows {
					rows[i] = src[reflect(y+i-r, h)*w*c:]
				}
				o := dst[y*w*c:]
				for x := 0; x < w; x++ {
					cols := xs[x : x+k]
					for ch := 0; ch < c; ch++ {
						var acc float64
						kn := kern
						for _, row := range rows {
							for j, cx := range cols {
								// fma in float32: the product of two floats is
								// exact in float64; round once per step.
								acc = float64(float32(float64(row[cx+ch])*float64(kn[j]) + acc))
							}
							kn = kn[k:]
						}
						o[x*c+ch] = float32(acc)
					}
				}
			}
		})
	}
	return out, nil
}

// checkReflectPad fails like torch's reflection_pad2d when the radius is not
// smaller than the image (reflect padding cannot mirror past the far edge).
func checkReflectPad(im *node.Image, r int) error {
	if r >= im.W {
		return runtimeError("Argument #4: Padding size should be less than the corresponding input dimension, but got: padding (%d, %d) at dimension 3 of input %s", r, r, shapeString(im.B, im.C, im.H, im.W))
	}
	if r >= im.H {
		return runtimeError("Argument #6: Padding size should be less than the corresponding input dimension, but got: padding (%d, %d) at dimension 2 of input %s", r, r, shapeString(im.B, im.C, im.H, im.W))
	}
	return nil
}

// gaussianTaps returns the 1-D factor of ComfyUI's gaussian_kernel: the
// Gaussian exp(-x²/2σ²) sampled on linspace(-1, 1, k) (so sigma is relative
// to the radius, not in pixels), normalised. The 2-D kernel
// exp(-(x²+y²)/2σ²)/Σ is the outer product of this with itself.
func gaussianTaps(k int, sigma float64) []float64 {
	taps := make([]float64, k)
	var sum float64
	for i := range taps {
		x := float64(linspace32(-1, 1, k, i))
		taps[i] = math.Exp(-(x * x) / (2 * sigma * sigma))
		sum += taps[i]
	}
	for i := range taps {
		taps[i] /= sum
	}
	return taps
}

// linspace32 is element i of torch.linspace(start, end, steps) in float32:
// the first half counts up from start, the second half down from end.
func linspace32(start, end float32, steps, i int) float32 {
	if steps == 1 {
		return start
	}
	step := (end - start) / float32(steps-1)
	if i < steps/2 {
		return start + float32(step*float32(i))
	}
	return end - float32(step*float32(steps-i-1))
}

// reflect maps an index outside [0, n) into it by mirroring without
// repeating the edge (torch's "reflect" padding); n must exceed the overhang.
func reflect(i, n int) int {
	if i < 0 {
		return -i
	}
	if i >= n {
		return 2*(n-1) - i
	}
	return i
}

// separableConv convolves every channel of every image with the outer
// product of taps with itself, with reflect padding, in float64: a
// horizontal pass into a float64 buffer, then a vertical pass.
func separableConv(ctx context.Context, im *node.Image, taps []float64) (*node.Image, error) {
	r := len(taps) / 2
	w, h, c := im.W, im.H, im.C
	out := node.NewImage(im.B, h, w, c)
	tmp := make([]float64, h*w*c)
	for b := 0; b < im.B; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src := im.Frame(b)
		imaging.Parallel(h, w*c*len(taps), func(lo, hi int) {
			for y := lo; y < hi; y++ {
				row := src[y*w*c:]
				dst := tmp[y*w*c:]
				for x := 0; x < w; x++ {
					for k := 0; k < c; k++ {
						var s float64
						for t, wt := range taps {
							s += wt * float64(row[reflect(x+t-r, w)*c+k])
						}
						dst[x*c+k] = s
					}
				}
			}
		})
		dst := out.Frame(b)
		imaging.Parallel(h, w*c*len(taps), func(lo, hi int) {
			acc := make([]float64, w*c)
			for y := lo; y < hi; y++ {
				clear(acc)
				for t, wt := range taps {
					in := tmp[reflect(y+t-r, h)*w*c:][:w*c]
					for i, v := range in {
						acc[i] += wt * v
					}
				}
				o := dst[y*w*c : (y+1)*w*c]
				for i, v := range acc {
					o[i] = float32(v)
				}
			}
		})
	}
	return out, nil
}
