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
			k := gaussianTaps(2*r+1, in.Float("sigma"))
			out, err := separableConv(ctx, im, k)
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
			// The kernel is -10α·G with 1 - sum(kernel) added at the centre,
			// so sharpened = (1 + 10α)·x - 10α·(G * x).
			alpha := in.Float("alpha")
			blur, err := separableConv(ctx, im, gaussianTaps(2*r+1, in.Float("sigma")))
			if err != nil {
				return nil, err
			}
			a := 10 * alpha
			out := node.NewImage(im.B, im.H, im.W, im.C)
			imaging.Parallel(im.B*im.H, im.W*im.C, func(lo, hi int) {
				row := im.W * im.C
				for i := lo * row; i < hi*row; i++ {
					v := float32((1+a)*float64(im.Pix[i]) - a*float64(blur.Pix[i]))
					if v < 0 {
						v = 0
					} else if v > 1 {
						v = 1
					}
					out.Pix[i] = v
				}
			})
			return result(out), nil
		},
	}
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
