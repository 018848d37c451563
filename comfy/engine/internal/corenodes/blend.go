package corenodes

import (
	"context"
	"math"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// blendModes are ImageBlend's blend functions, each with torch's order of
// float32 operations (every tensor operation rounds).
var blendModes = map[string]func(a, b float32) float32{
	"normal":   func(a, b float32) float32 { return b },
	"multiply": func(a, b float32) float32 { return a * b },
	"screen":   func(a, b float32) float32 { return 1 - float32((1-a)*(1-b)) },
	"overlay": func(a, b float32) float32 {
		if a <= 0.5 {
			return float32(2*a) * b
		}
		return 1 - float32(float32(2*(1-a))*(1-b))
	},
	"soft_light": func(a, b float32) float32 {
		if b <= 0.5 {
			return a - float32(float32((1-float32(2*b))*a)*(1-a))
		}
		return a + float32((float32(2*b)-1)*(softLightG(a)-a))
	},
	"difference": func(a, b float32) float32 { return a - b },
}

// softLightG is Blend.g: ((16x - 12)x + 4)x below 0.25, sqrt(x) above.
func softLightG(x float32) float32 {
	if x <= 0.25 {
		return float32(float32(float32(float32(16*x)-12)*x)+4) * x
	}
	return float32(math.Sqrt(float64(x)))
}

func imageBlendClass() *node.Class {
	return &node.Class{
		Info: info("ImageBlend"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			a, err := in.Image("image1")
			if err != nil {
				return nil, err
			}
			b, err := in.Image("image2")
			if err != nil {
				return nil, err
			}
			out, err := blendImages(ctx, a, b, in.Float("blend_factor"), in.String("blend_mode"))
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

// blendImages is Blend.execute: alpha fix, image2 resized (bicubic, centre
// crop) when the shapes differ, the mode applied, then
// clamp(image1*(1-f) + blended*f, 0, 1) with torch's broadcasting.
func blendImages(ctx context.Context, a, b *node.Image, factor float64, mode string) (*node.Image, error) {
	a, b = alphaFix(a, b)
	if a.B != b.B || a.H != b.H || a.W != b.W || a.C != b.C {
		var err error
		b, err = commonUpscale(ctx, b, a.W, a.H, "bicubic", "center")
		if err != nil {
			return nil, err
		}
	}
	f, ok := blendModes[mode]
	if !ok {
		return nil, node.Errorf("ValueError", "Unsupported blend mode: %s", mode)
	}
	// Broadcasting: batch (dimension 0) and channels (dimension 3).
	batch, err := broadcastDim(a.B, b.B, 0)
	if err != nil {
		return nil, err
	}
	ch, err := broadcastDim(a.C, b.C, 3)
	if err != nil {
		return nil, err
	}
	keep, mix := float32(1-factor), float32(factor)
	out := node.NewImage(batch, a.H, a.W, ch)
	px := a.H * a.W
	imaging.Parallel(batch*a.H, a.W*ch*8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			n, y := r/a.H, r%a.H
			an, bn := min(n, a.B-1), min(n, b.B-1)
			for x := 0; x < a.W; x++ {
				p := y*a.W + x
				ai := (an*px + p) * a.C
				bi := (bn*px + p) * b.C
				oi := (n*px + p) * ch
				for k := 0; k < ch; k++ {
					va := a.Pix[ai+min(k, a.C-1)]
					vb := b.Pix[bi+min(k, b.C-1)]
					v := float32(va*keep) + float32(f(va, vb)*mix)
					if v < 0 {
						v = 0
					} else if v > 1 {
						v = 1
					}
					out.Pix[oi+k] = v
				}
			}
		}
	})
	return out, nil
}

// alphaFix is node_helpers.image_alpha_fix: a source with more channels than
// the destination loses the extra ones; a destination with more channels
// than the source gets one more channel of 1.0 (ComfyUI's quirk: an RGBA
// destination with an RGB source then fails to broadcast).
func alphaFix(dst, src *node.Image) (*node.Image, *node.Image) {
	switch {
	case dst.C < src.C:
		out := node.NewImage(src.B, src.H, src.W, dst.C)
		for i := 0; i < src.B*src.H*src.W; i++ {
			copy(out.Pix[i*dst.C:(i+1)*dst.C], src.Pix[i*src.C:])
		}
		return dst, out
	case dst.C > src.C:
		out := node.NewImage(dst.B, dst.H, dst.W, dst.C+1)
		for i := 0; i < dst.B*dst.H*dst.W; i++ {
			copy(out.Pix[i*out.C:], dst.Pix[i*dst.C:(i+1)*dst.C])
			out.Pix[i*out.C+dst.C] = 1
		}
		return out, src
	}
	return dst, src
}
