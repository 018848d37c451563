package corenodes

import (
	"context"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func imageCompositeMaskedClass() *node.Class {
	return &node.Class{
		Info: info("ImageCompositeMasked"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			dst, err := in.Image("destination")
			if err != nil {
				return nil, err
			}
			src, err := in.Image("source")
			if err != nil {
				return nil, err
			}
			var mask *node.Mask
			if in.Has("mask") {
				if mask, err = in.Mask("mask"); err != nil {
					return nil, err
				}
			}
			out, err := compositeMasked(ctx, dst, src, int(in.Int("x")), int(in.Int("y")), mask, in.Bool("resize_source"))
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

// compositeMasked is ImageCompositeMasked.composite (node_helpers'
// composite with multiplier 1): the source, optionally resized to the
// destination (bilinear), repeated to the destination's batch and pasted at
// (x, y) through the mask (bilinear-resized to the source) as
// mask*source + (1-mask)*destination.
func compositeMasked(ctx context.Context, dst, src *node.Image, x, y int, mask *node.Mask, resize bool) (*node.Image, error) {
	dst, src = alphaFix(dst, src)
	if dst.C != src.C {
		return nil, runtimeError("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension 1", src.C, dst.C)
	}
	if resize {
		var err error
		if src, err = resizeImage(ctx, src, dst.W, dst.H, imaging.Bilinear); err != nil {
			return nil, err
		}
	}
	src = repeatImageToBatch(src, dst.B)
	x = max(-src.W, min(x, dst.W))
	y = max(-src.H, min(y, dst.H))
	left, top := x, y
	right, bottom := left+src.W, top+src.H
	var m *node.Mask
	if mask != nil {
		var err error
		if m, err = resizeMask(mask, src.W, src.H); err != nil {
			return nil, err
		}
		m = repeatMaskToBatch(m, src.B)
	}
	visW, visH := dst.W-left+min(0, x), dst.H-top+min(0, y)
	// The slices torch takes: mask and source [:visH, :visW], destination
	// [top:bottom, left:right].
	sx0, sx1 := pySlice(0, visW, src.W)
	sy0, sy1 := pySlice(0, visH, src.H)
	dx0, dx1 := pySlice(left, right, dst.W)
	dy0, dy1 := pySlice(top, bottom, dst.H)
	if sx1-sx0 != dx1-dx0 || sy1-sy0 != dy1-dy0 {
		return nil, runtimeError("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension 3", sx1-sx0, dx1-dx0)
	}
	out := cloneImage(dst)
	if m != nil && m.B != out.B {
		// repeat_to_batch_size makes them equal; a mask of another batch
		// size than the source cannot occur after it.
		return nil, runtimeError("mask batch %d does not match image batch %d", m.B, out.B)
	}
	c := dst.C
	w, h := sx1-sx0, sy1-sy0
	imaging.Parallel(out.B*h, w*c*4, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b, yy := r/h, r%h
			for xx := 0; xx < w; xx++ {
				si := src.Offset(b, sy0+yy, sx0+xx)
				di := out.Offset(b, dy0+yy, dx0+xx)
				if m == nil {
					copy(out.Pix[di:di+c], src.Pix[si:si+c])
					continue
				}
				mv := m.Pix[(b*m.H+sy0+yy)*m.W+sx0+xx]
				inv := 1 - mv
				for k := 0; k < c; k++ {
					out.Pix[di+k] = float32(mv*src.Pix[si+k]) + float32(inv*out.Pix[di+k])
				}
			}
		}
	})
	return out, nil
}

// resizeImage resamples every image of the batch with torch's interpolate
// (no crop), choosing the kernel torch would for a channels-last tensor.
func resizeImage(ctx context.Context, im *node.Image, w, h int, method imaging.Method) (*node.Image, error) {
	if im.W == w && im.H == h && method != imaging.Lanczos {
		// interpolate to the same size copies (bilinear weights are 1 and 0).
		return im, nil
	}
	return commonUpscale(ctx, im, w, h, string(method), "disabled")
}

// resizeMask is torch's bilinear interpolate of a [B,1,H,W] mask to w×h.
func resizeMask(m *node.Mask, w, h int) (*node.Mask, error) {
	if m.W == w && m.H == h {
		return m, nil
	}
	if w <= 0 || h <= 0 || m.W <= 0 || m.H <= 0 {
		return nil, runtimeError("Input and output sizes should be greater than 0, but got input (H: %d, W: %d) output (H: %d, W: %d)", m.H, m.W, h, w)
	}
	out := node.NewMask(m.B, h, w)
	for b := 0; b < m.B; b++ {
		src := imaging.NewView(m.Frame(b), m.W, m.H, 1)
		dst := imaging.NewView(out.Frame(b), w, h, 1)
		// A [B,1,H,W] tensor is channels-last contiguous (size-1 channels).
		if err := imaging.Resize(dst, src, imaging.Bilinear, imaging.Layout{ChannelsLast: true}); err != nil {
			return nil, runtimeError("%v", err)
		}
	}
	return out, nil
}

// repeatImageToBatch is comfy.utils.repeat_to_batch_size for images.
func repeatImageToBatch(im *node.Image, n int) *node.Image {
	if im.B == n {
		return im
	}
	sz := im.H * im.W * im.C
	out := node.NewImage(n, im.H, im.W, im.C)
	for b := 0; b < n; b++ {
		copy(out.Pix[b*sz:(b+1)*sz], im.Pix[(b%im.B)*sz:])
	}
	return out
}

// repeatMaskToBatch is comfy.utils.repeat_to_batch_size for masks.
func repeatMaskToBatch(m *node.Mask, n int) *node.Mask {
	if m.B == n {
		return m
	}
	sz := m.H * m.W
	out := node.NewMask(n, m.H, m.W)
	for b := 0; b < n; b++ {
		copy(out.Pix[b*sz:(b+1)*sz], m.Pix[(b%m.B)*sz:])
	}
	return out
}
