package corenodes

import (
	"fmt"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

// u8ToF32 is numpy's uint8 → float32 / 255.0 for every byte value.
var u8ToF32 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// clampUnit is torch.clamp(x, 0.0, 1.0) in place; NaN stays NaN.
func clampUnit(pix []float32) {
	for i, v := range pix {
		if v < 0 {
			pix[i] = 0
		} else if v > 1 {
			pix[i] = 1
		}
	}
}

// runtimeError is a torch-style RuntimeError.
func runtimeError(format string, args ...any) error {
	return node.Errorf("RuntimeError", format, args...)
}

// shapeString prints a shape the way torch prints torch.Size: [1, 2, 3].
func shapeString(dims ...int) string {
	s := "["
	for i, d := range dims {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(d)
	}
	return s + "]"
}

// broadcastDim returns the broadcast size of two dimensions of tensors a and
// b, or torch's error when they differ and neither is 1. dim counts from the
// left of the aligned shapes, as torch reports it.
func broadcastDim(a, b, dim int) (int, error) {
	switch {
	case a == b:
		return a, nil
	case a == 1:
		return b, nil
	case b == 1:
		return a, nil
	}
	return 0, runtimeError("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension %d", a, b, dim)
}

// imageFromFrames stacks 8-bit RGB frames of w×h into an IMAGE.
func imageFromRGB(frames [][]uint8, w, h int) *node.Image {
	im := node.NewImage(len(frames), h, w, 3)
	n := w * h * 3
	for b, rgb := range frames {
		dst := im.Pix[b*n : (b+1)*n]
		imaging.Parallel(h, w*3, func(lo, hi int) {
			for i := lo * w * 3; i < hi*w*3; i++ {
				dst[i] = u8ToF32[rgb[i]]
			}
		})
	}
	return im
}

// cloneImage returns a deep copy of im.
func cloneImage(im *node.Image) *node.Image {
	out := *im
	out.Pix = append([]float32(nil), im.Pix...)
	return &out
}

// cloneMask returns a deep copy of m.
func cloneMask(m *node.Mask) *node.Mask {
	out := *m
	out.Pix = append([]float32(nil), m.Pix...)
	return &out
}

// result wraps output values into a Result.
func result(outputs ...any) *node.Result {
	return &node.Result{Outputs: outputs}
}
