package corenodes

import (
	"context"
	"math"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func imageScaleClass() *node.Class {
	return &node.Class{
		Info: info("ImageScale"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			width, height := int(in.Int("width")), int(in.Int("height"))
			if width == 0 && height == 0 {
				return result(im), nil
			}
			// Python's round() rounds halves to even.
			if width == 0 {
				width = max(1, int(math.RoundToEven(float64(im.W*height)/float64(im.H))))
			} else if height == 0 {
				height = max(1, int(math.RoundToEven(float64(im.H*width)/float64(im.W))))
			}
			out, err := commonUpscale(ctx, im, width, height, in.String("upscale_method"), in.String("crop"))
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

func imageScaleByClass() *node.Class {
	return &node.Class{
		Info: info("ImageScaleBy"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			s := in.Float("scale_by")
			width := int(math.RoundToEven(float64(im.W) * s))
			height := int(math.RoundToEven(float64(im.H) * s))
			out, err := commonUpscale(ctx, im, width, height, in.String("upscale_method"), "disabled")
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

// commonUpscale is comfy.utils.common_upscale on an IMAGE: with crop
// "center" the source is first cut to the target's aspect ratio, then every
// image is resampled to width×height.
func commonUpscale(ctx context.Context, im *node.Image, width, height int, method, crop string) (*node.Image, error) {
	x0, y0, cw, ch := 0, 0, im.W, im.H
	if crop == "center" {
		if height == 0 {
			return nil, node.Errorf("ZeroDivisionError", "division by zero")
		}
		if im.H == 0 {
			return nil, node.Errorf("ZeroDivisionError", "division by zero")
		}
		oldAspect := float64(im.W) / float64(im.H)
		newAspect := float64(width) / float64(height)
		if oldAspect > newAspect {
			x0 = int(math.RoundToEven((float64(im.W) - float64(im.W)*(newAspect/oldAspect)) / 2))
		} else if oldAspect < newAspect {
			y0 = int(math.RoundToEven((float64(im.H) - float64(im.H)*(oldAspect/newAspect)) / 2))
		}
		cw, ch = im.W-2*x0, im.H-2*y0
		if cw < 0 || ch < 0 {
			return nil, runtimeError("narrow(): length must be non-negative.")
		}
	}
	if method == string(imaging.Lanczos) && (width <= 0 || height <= 0) {
		return nil, node.Errorf("ValueError", "height and width must be > 0")
	}
	if method == string(imaging.Area) && (width == 0 || height == 0) {
		return node.NewImage(im.B, max(height, 0), max(width, 0), im.C), nil
	}
	if width <= 0 || height <= 0 || cw == 0 || ch == 0 {
		return nil, runtimeError("Input and output sizes should be greater than 0, but got input (H: %d, W: %d) output (H: %d, W: %d)", ch, cw, height, width)
	}
	if err := checkAlloc(im.B, height, width, im.C); err != nil {
		return nil, err
	}
	out := node.NewImage(im.B, height, width, im.C)
	for b := 0; b < im.B; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src := imaging.NewView(im.Frame(b), im.W, im.H, im.C).Crop(x0, y0, cw, ch)
		layout := imaging.Layout{ChannelsLast: imaging.ChannelsLastContiguous(src, im.B, im.H*im.W*im.C)}
		dst := imaging.NewView(out.Frame(b), width, height, im.C)
		if err := imaging.Resize(dst, src, imaging.Method(method), layout); err != nil {
			return nil, runtimeError("%v", err)
		}
	}
	return out, nil
}
