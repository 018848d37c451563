package corenodes

import (
	"context"
	"strings"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func imageInvertClass() *node.Class {
	return &node.Class{
		Info: info("ImageInvert"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			out := &node.Image{B: im.B, H: im.H, W: im.W, C: im.C, Pix: make([]float32, len(im.Pix))}
			rows := im.B * im.H
			row := im.W * im.C
			imaging.Parallel(rows, row, func(lo, hi int) {
				src, dst := im.Pix[lo*row:hi*row], out.Pix[lo*row:hi*row]
				for i, v := range src {
					dst[i] = 1 - v
				}
			})
			return result(out), nil
		},
	}
}

func emptyImageClass() *node.Class {
	return &node.Class{
		Info: info("EmptyImage"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			w, h, b, color := int(in.Int("width")), int(in.Int("height")), int(in.Int("batch_size")), in.Int("color")
			if err := checkAlloc(b, h, w, 3); err != nil {
				return nil, err
			}
			rgb := [3]float32{
				float32(float64((color>>16)&0xff) / 255),
				float32(float64((color>>8)&0xff) / 255),
				float32(float64(color&0xff) / 255),
			}
			im := node.NewImage(b, h, w, 3)
			for i := 0; i < len(im.Pix); i += 3 {
				im.Pix[i], im.Pix[i+1], im.Pix[i+2] = rgb[0], rgb[1], rgb[2]
			}
			return result(im), nil
		},
	}
}

// maxElements bounds the size of a tensor a node may allocate from its
// parameters (EmptyImage 16384×16384×4096 would need terabytes): 2^31 float32
// values, 8 GiB.
const maxElements = 1 << 31

// checkAlloc refuses a tensor of the given shape when it is too large to
// allocate, with the error torch gives when the allocation fails.
func checkAlloc(dims ...int) error {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return runtimeError("Trying to create tensor with negative dimension %d: %s", d, shapeString(dims...))
		}
		n *= int64(d)
		if n > maxElements {
			return runtimeError("[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate %d bytes.", totalBytes(dims))
		}
	}
	return nil
}

func totalBytes(dims []int) int64 {
	n := int64(4)
	for _, d := range dims {
		n *= int64(d)
	}
	return n
}

func imageFlipClass() *node.Class {
	return &node.Class{
		Info: info("ImageFlip"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			method := in.String("flip_method")
			switch {
			case strings.HasPrefix(method, "x"):
				return result(remapImage(im, im.W, im.H, func(x, y int) (int, int) { return x, im.H - 1 - y })), nil
			case strings.HasPrefix(method, "y"):
				return result(remapImage(im, im.W, im.H, func(x, y int) (int, int) { return im.W - 1 - x, y })), nil
			}
			return result(im), nil
		},
	}
}

func imageRotateClass() *node.Class {
	return &node.Class{
		Info: info("ImageRotate"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			// torch.rot90(image, k, dims=[2, 1]) turns clockwise.
			rot := in.String("rotation")
			switch {
			case strings.HasPrefix(rot, "90"):
				return result(remapImage(im, im.H, im.W, func(x, y int) (int, int) { return y, im.H - 1 - x })), nil
			case strings.HasPrefix(rot, "180"):
				return result(remapImage(im, im.W, im.H, func(x, y int) (int, int) { return im.W - 1 - x, im.H - 1 - y })), nil
			case strings.HasPrefix(rot, "270"):
				return result(remapImage(im, im.H, im.W, func(x, y int) (int, int) { return im.W - 1 - y, x })), nil
			}
			return result(im), nil
		},
	}
}

// remapImage returns an ow×oh image whose pixel (x, y) is pixel src(x, y)
// of im, for every image of the batch.
func remapImage(im *node.Image, ow, oh int, src func(x, y int) (int, int)) *node.Image {
	out := node.NewImage(im.B, oh, ow, im.C)
	c := im.C
	imaging.Parallel(im.B*oh, ow*c, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b, y := r/oh, r%oh
			for x := 0; x < ow; x++ {
				sx, sy := src(x, y)
				copy(out.Pix[out.Offset(b, y, x):out.Offset(b, y, x)+c], im.Pix[im.Offset(b, sy, sx):im.Offset(b, sy, sx)+c])
			}
		}
	})
	return out
}

func imageCropClass() *node.Class {
	return &node.Class{
		Info: info("ImageCrop"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			x := min(int(in.Int("x")), im.W-1)
			y := min(int(in.Int("y")), im.H-1)
			x0, x1 := pySlice(x, x+int(in.Int("width")), im.W)
			y0, y1 := pySlice(y, y+int(in.Int("height")), im.H)
			return result(cropImage(im, x0, y0, x1, y1)), nil
		},
	}
}

// pySlice returns the bounds Python's seq[start:stop] selects from a
// sequence of length n.
func pySlice(start, stop, n int) (int, int) {
	norm := func(i int) int {
		if i < 0 {
			i += n
			if i < 0 {
				i = 0
			}
		}
		if i > n {
			i = n
		}
		return i
	}
	start, stop = norm(start), norm(stop)
	if stop < start {
		stop = start
	}
	return start, stop
}

// cropImage returns the pixels [y0:y1, x0:x1] of every image of the batch.
func cropImage(im *node.Image, x0, y0, x1, y1 int) *node.Image {
	w, h := x1-x0, y1-y0
	out := node.NewImage(im.B, h, w, im.C)
	for b := 0; b < im.B; b++ {
		for y := 0; y < h; y++ {
			copy(out.Pix[out.Offset(b, y, 0):out.Offset(b, y, 0)+w*im.C], im.Pix[im.Offset(b, y0+y, x0):])
		}
	}
	return out
}

func repeatImageBatchClass() *node.Class {
	return &node.Class{
		Info: info("RepeatImageBatch"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			amount := int(in.Int("amount"))
			if err := checkAlloc(im.B*amount, im.H, im.W, im.C); err != nil {
				return nil, err
			}
			out := &node.Image{B: im.B * amount, H: im.H, W: im.W, C: im.C, Pix: make([]float32, 0, len(im.Pix)*amount)}
			for i := 0; i < amount; i++ {
				out.Pix = append(out.Pix, im.Pix...)
			}
			return result(out), nil
		},
	}
}

func imageFromBatchClass() *node.Class {
	return &node.Class{
		Info: info("ImageFromBatch"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			index := min(im.B-1, int(in.Int("batch_index")))
			length := min(im.B-index, int(in.Int("length")))
			lo, hi := pySlice(index, index+length, im.B)
			sz := im.H * im.W * im.C
			out := &node.Image{B: hi - lo, H: im.H, W: im.W, C: im.C, Pix: append([]float32(nil), im.Pix[lo*sz:hi*sz]...)}
			return result(out), nil
		},
	}
}

func imagePadForOutpaintClass() *node.Class {
	return &node.Class{
		Info: info("ImagePadForOutpaint"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			left, top := int(in.Int("left")), int(in.Int("top"))
			right, bottom := int(in.Int("right")), int(in.Int("bottom"))
			feather := int(in.Int("feathering"))
			ow, oh := im.W+left+right, im.H+top+bottom
			if err := checkAlloc(im.B, oh, ow, im.C); err != nil {
				return nil, err
			}
			out := node.NewImage(im.B, oh, ow, im.C)
			for i := range out.Pix {
				out.Pix[i] = 0.5
			}
			for b := 0; b < im.B; b++ {
				for y := 0; y < im.H; y++ {
					copy(out.Pix[out.Offset(b, top+y, left):], im.Pix[im.Offset(b, y, 0):im.Offset(b, y, 0)+im.W*im.C])
				}
			}
			mask := node.NewMask(1, oh, ow)
			for i := range mask.Pix {
				mask.Pix[i] = 1
			}
			d2, d3 := im.H, im.W
			for i := 0; i < d2; i++ {
				for j := 0; j < d3; j++ {
					var v float32
					if feather > 0 && feather*2 < d2 && feather*2 < d3 {
						dt, db, dl, dr := d2, d2, d3, d3
						if top != 0 {
							dt = i
						}
						if bottom != 0 {
							db = d2 - i
						}
						if left != 0 {
							dl = j
						}
						if right != 0 {
							dr = d3 - j
						}
						if d := min(dt, db, dl, dr); d < feather {
							f := float64(feather-d) / float64(feather)
							v = float32(f * f)
						}
					}
					mask.Pix[(top+i)*ow+left+j] = v
				}
			}
			return result(out, mask), nil
		},
	}
}

func imageBatchClass() *node.Class {
	return &node.Class{
		Info: info("ImageBatch"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			a, err := in.Image("image1")
			if err != nil {
				return nil, err
			}
			b, err := in.Image("image2")
			if err != nil {
				return nil, err
			}
			// An RGB image batched with an RGBA one gets an opaque alpha.
			if a.C != b.C {
				if a.C > b.C {
					b = padChannel(b, 1)
				} else {
					a = padChannel(a, 1)
				}
			}
			if a.H != b.H || a.W != b.W || a.C != b.C {
				if b, err = commonUpscale(ctx, b, a.W, a.H, "bilinear", "center"); err != nil {
					return nil, err
				}
			}
			if a.C != b.C {
				return nil, runtimeError("Sizes of tensors must match except in dimension 0. Expected size %d but got size %d for tensor number 1 in the list.", a.C, b.C)
			}
			if err := checkAlloc(a.B+b.B, a.H, a.W, a.C); err != nil {
				return nil, err
			}
			out := &node.Image{B: a.B + b.B, H: a.H, W: a.W, C: a.C, Pix: make([]float32, 0, len(a.Pix)+len(b.Pix))}
			out.Pix = append(append(out.Pix, a.Pix...), b.Pix...)
			return result(out), nil
		},
	}
}

// padChannel appends one channel of value v to every pixel.
func padChannel(im *node.Image, v float32) *node.Image {
	out := node.NewImage(im.B, im.H, im.W, im.C+1)
	for i := 0; i < im.B*im.H*im.W; i++ {
		copy(out.Pix[i*out.C:], im.Pix[i*im.C:(i+1)*im.C])
		out.Pix[i*out.C+im.C] = v
	}
	return out
}

func joinImageWithAlphaClass() *node.Class {
	return &node.Class{
		Info: info("JoinImageWithAlpha"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			alpha, err := in.Mask("alpha")
			if err != nil {
				return nil, err
			}
			batch := min(im.B, alpha.B)
			m, err := resizeMask(alpha, im.W, im.H)
			if err != nil {
				return nil, err
			}
			if im.C < 3 {
				return nil, runtimeError("Sizes of tensors must match except in dimension 2. Expected size %d but got size 1 for tensor number 1 in the list.", im.H)
			}
			out := node.NewImage(batch, im.H, im.W, 4)
			n := im.H * im.W
			for b := 0; b < batch; b++ {
				for p := 0; p < n; p++ {
					si := (b*n + p) * im.C
					di := (b*n + p) * 4
					copy(out.Pix[di:di+3], im.Pix[si:si+3])
					out.Pix[di+3] = 1 - m.Pix[b*n+p]
				}
			}
			return result(out), nil
		},
	}
}

func splitImageWithAlphaClass() *node.Class {
	return &node.Class{
		Info: info("SplitImageWithAlpha"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			c3 := min(im.C, 3)
			rgb := node.NewImage(im.B, im.H, im.W, c3)
			mask := node.NewMask(im.B, im.H, im.W)
			for i := 0; i < im.B*im.H*im.W; i++ {
				copy(rgb.Pix[i*c3:(i+1)*c3], im.Pix[i*im.C:])
				a := float32(1)
				if im.C > 3 {
					a = im.Pix[i*im.C+3]
				}
				mask.Pix[i] = 1 - a
			}
			return result(rgb, mask), nil
		},
	}
}
