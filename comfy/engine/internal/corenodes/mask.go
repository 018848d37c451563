package corenodes

import (
	"context"
	"math"
	"slices"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
)

func solidMaskClass() *node.Class {
	return &node.Class{
		Info: info("SolidMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			w, h := int(in.Int("width")), int(in.Int("height"))
			if err := checkAlloc(1, h, w); err != nil {
				return nil, err
			}
			m := node.NewMask(1, h, w)
			v := float32(in.Float("value"))
			for i := range m.Pix {
				m.Pix[i] = v
			}
			return result(m), nil
		},
	}
}

func invertMaskClass() *node.Class {
	return &node.Class{
		Info: info("InvertMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			out := node.NewMask(m.B, m.H, m.W)
			for i, v := range m.Pix {
				out.Pix[i] = 1 - v
			}
			return result(out), nil
		},
	}
}

func maskToImageClass() *node.Class {
	return &node.Class{
		Info: info("MaskToImage"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			im := node.NewImage(m.B, m.H, m.W, 3)
			imaging.Parallel(m.B*m.H, m.W*3, func(lo, hi int) {
				for i := lo * m.W; i < hi*m.W; i++ {
					v := m.Pix[i]
					im.Pix[3*i], im.Pix[3*i+1], im.Pix[3*i+2] = v, v, v
				}
			})
			return result(im), nil
		},
	}
}

func imageToMaskClass() *node.Class {
	return &node.Class{
		Info: info("ImageToMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			im, err := in.Image("image")
			if err != nil {
				return nil, err
			}
			c := slices.Index([]string{"red", "green", "blue", "alpha"}, in.String("channel"))
			if c < 0 {
				return nil, node.Errorf("ValueError", "'%s' is not in list", in.String("channel"))
			}
			if c >= im.C {
				return nil, node.Errorf("IndexError", "index %d is out of bounds for dimension 3 with size %d", c, im.C)
			}
			return result(imageChannel(im, c)), nil
		},
	}
}

// imageChannel returns channel c of every pixel as a mask.
func imageChannel(im *node.Image, c int) *node.Mask {
	m := node.NewMask(im.B, im.H, im.W)
	for i := range m.Pix {
		m.Pix[i] = im.Pix[i*im.C+c]
	}
	return m
}

func thresholdMaskClass() *node.Class {
	return &node.Class{
		Info: info("ThresholdMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			t := float32(in.Float("value"))
			out := node.NewMask(m.B, m.H, m.W)
			for i, v := range m.Pix {
				if v > t {
					out.Pix[i] = 1
				}
			}
			return result(out), nil
		},
	}
}

func cropMaskClass() *node.Class {
	return &node.Class{
		Info: info("CropMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			x, y := int(in.Int("x")), int(in.Int("y"))
			x0, x1 := pySlice(x, x+int(in.Int("width")), m.W)
			y0, y1 := pySlice(y, y+int(in.Int("height")), m.H)
			return result(cropMask(m, x0, y0, x1, y1)), nil
		},
	}
}

// cropMask returns the pixels [y0:y1, x0:x1] of every plane.
func cropMask(m *node.Mask, x0, y0, x1, y1 int) *node.Mask {
	w, h := x1-x0, y1-y0
	out := node.NewMask(m.B, h, w)
	for b := 0; b < m.B; b++ {
		for y := 0; y < h; y++ {
			copy(out.Pix[(b*h+y)*w:(b*h+y+1)*w], m.Pix[(b*m.H+y0+y)*m.W+x0:])
		}
	}
	return out
}

func featherMaskClass() *node.Class {
	return &node.Class{
		Info: info("FeatherMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			out := cloneMask(m)
			w, h := m.W, m.H
			left := min(int(in.Int("left")), w)
			right := min(int(in.Int("right")), w)
			top := min(int(in.Int("top")), h)
			bottom := min(int(in.Int("bottom")), h)
			col := func(x int, rate float32) {
				for b := 0; b < m.B; b++ {
					for y := 0; y < h; y++ {
						out.Pix[(b*h+y)*w+x] *= rate
					}
				}
			}
			row := func(y int, rate float32) {
				for b := 0; b < m.B; b++ {
					r := out.Pix[(b*h+y)*w : (b*h+y+1)*w]
					for x := range r {
						r[x] *= rate
					}
				}
			}
			// output[:, :, -x] with x = 0 is column 0, not the last one: the
			// right and bottom loops scale the first column (row) by 1/n and
			// leave the last at 2/n. ComfyUI does this; so do we.
			wrap := func(i, n int) int { return (n - i) % n }
			for x := 0; x < left; x++ {
				col(x, float32(float64(x+1)/float64(left)))
			}
			for x := 0; x < right; x++ {
				col(wrap(x, w), float32(float64(x+1)/float64(right)))
			}
			for y := 0; y < top; y++ {
				row(y, float32(float64(y+1)/float64(top)))
			}
			for y := 0; y < bottom; y++ {
				row(wrap(y, h), float32(float64(y+1)/float64(bottom)))
			}
			return result(out), nil
		},
	}
}

func maskCompositeClass() *node.Class {
	return &node.Class{
		Info: info("MaskComposite"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			dst, err := in.Mask("destination")
			if err != nil {
				return nil, err
			}
			src, err := in.Mask("source")
			if err != nil {
				return nil, err
			}
			return maskComposite(dst, src, int(in.Int("x")), int(in.Int("y")), in.String("operation"))
		},
	}
}

// maskComposite is MaskComposite.combine: the operation applied inside the
// source's footprint at (x, y), clipped to the destination, then the whole
// result clamped to 0..1.
func maskComposite(dst, src *node.Mask, x, y int, op string) (*node.Result, error) {
	out := cloneMask(dst)
	left, top := x, y
	right, bottom := min(left+src.W, dst.W), min(top+src.H, dst.H)
	vw, vh := right-left, bottom-top
	// source[:, :vh, :vw] and output[:, top:bottom, left:right], as Python
	// slices them (a negative visible size counts from the end).
	sx0, sx1 := pySlice(0, vw, src.W)
	sy0, sy1 := pySlice(0, vh, src.H)
	dx0, dx1 := pySlice(left, right, dst.W)
	dy0, dy1 := pySlice(top, bottom, dst.H)
	b, err := broadcastDim(dst.B, src.B, 0)
	if err != nil {
		return nil, err
	}
	hh, err := broadcastDim(dy1-dy0, sy1-sy0, 1)
	if err != nil {
		return nil, err
	}
	ww, err := broadcastDim(dx1-dx0, sx1-sx0, 2)
	if err != nil {
		return nil, err
	}
	if b != dst.B || hh != dy1-dy0 || ww != dx1-dx0 {
		return nil, runtimeError("The expanded size of the tensor (%d) must match the existing size (%d) at non-singleton dimension 0.  Target sizes: %s.  Tensor sizes: %s",
			dst.B, b, shapeString(dst.B, dy1-dy0, dx1-dx0), shapeString(b, hh, ww))
	}
	truth := func(v float32) bool { return math.RoundToEven(float64(v)) != 0 }
	bit := func(t bool) float32 {
		if t {
			return 1
		}
		return 0
	}
	var f func(d, s float32) float32
	switch op {
	case "multiply":
		f = func(d, s float32) float32 { return d * s }
	case "add":
		f = func(d, s float32) float32 { return d + s }
	case "subtract":
		f = func(d, s float32) float32 { return d - s }
	case "and":
		f = func(d, s float32) float32 { return bit(truth(d) && truth(s)) }
	case "or":
		f = func(d, s float32) float32 { return bit(truth(d) || truth(s)) }
	case "xor":
		f = func(d, s float32) float32 { return bit(truth(d) != truth(s)) }
	}
	if f != nil && hh > 0 && ww > 0 {
		for n := 0; n < b; n++ {
			sn := min(n, src.B-1)
			for yy := 0; yy < hh; yy++ {
				sy := sy0 + min(yy, sy1-sy0-1)
				for xx := 0; xx < ww; xx++ {
					sx := sx0 + min(xx, sx1-sx0-1)
					di := (n*dst.H+dy0+yy)*dst.W + dx0 + xx
					out.Pix[di] = f(dst.Pix[di], src.Pix[(sn*src.H+sy)*src.W+sx])
				}
			}
		}
	}
	clampUnit(out.Pix)
	return result(out), nil
}

func growMaskClass() *node.Class {
	return &node.Class{
		Info: info("GrowMask"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			m, err := in.Mask("mask")
			if err != nil {
				return nil, err
			}
			out, err := growMask(ctx, m, int(in.Int("expand")), in.Bool("tapered_corners"))
			if err != nil {
				return nil, err
			}
			return result(out), nil
		},
	}
}

// growMask is GrowMask.expand_mask: |expand| rounds of scipy's grey_dilation
// (expand > 0) or grey_erosion (expand < 0) with a 3×3 footprint, whose
// corners are off when tapered. With scipy's "reflect" border a 3×3 window
// never sees a value from outside the plane, so k rounds equal one max (or
// min) over the pixels within Chebyshev distance k (square footprint) or
// Manhattan distance k (tapered), clipped to the plane.
func growMask(ctx context.Context, m *node.Mask, expand int, tapered bool) (*node.Mask, error) {
	out := cloneMask(m)
	if expand == 0 {
		return out, nil
	}
	k := expand
	better := func(a, b float32) bool { return a > b } // dilation keeps the larger
	if expand < 0 {
		k = -expand
		better = func(a, b float32) bool { return a < b }
	}
	for b := 0; b < m.B; b++ {
		plane := out.Frame(b)
		if tapered {
			if err := growDiamond(ctx, plane, m.W, m.H, k, better); err != nil {
				return nil, err
			}
		} else {
			growSquare(plane, m.W, m.H, k, better)
		}
	}
	return out, nil
}

// growSquare replaces every value by the best one within Chebyshev distance
// k, as a row pass and a column pass of sliding-window extremes.
func growSquare(plane []float32, w, h, k int, better func(a, b float32) bool) {
	imaging.Parallel(h, w, func(lo, hi int) {
		line := make([]float32, w)
		for y := lo; y < hi; y++ {
			row := plane[y*w : (y+1)*w]
			copy(line, row)
			slidingBest(row, line, k, better)
		}
	})
	imaging.Parallel(w, h, func(lo, hi int) {
		line := make([]float32, h)
		res := make([]float32, h)
		for x := lo; x < hi; x++ {
			for y := 0; y < h; y++ {
				line[y] = plane[y*w+x]
			}
			slidingBest(res, line, k, better)
			for y := 0; y < h; y++ {
				plane[y*w+x] = res[y]
			}
		}
	})
}

// slidingBest sets dst[i] to the best of src[i-k..i+k] (clipped to the
// slice), keeping a queue of indexes whose values get strictly worse from
// front to back.
func slidingBest(dst, src []float32, k int, better func(a, b float32) bool) {
	n := len(src)
	q := make([]int, 0, n)
	head, next := 0, 0
	for i := 0; i < n; i++ {
		for ; next < n && next <= i+k; next++ {
			for len(q) > head && !better(src[q[len(q)-1]], src[next]) {
				q = q[:len(q)-1]
			}
			q = append(q, next)
		}
		for q[head] < i-k {
			head++
		}
		dst[i] = src[q[head]]
	}
}

// growDiamond applies k rounds of the plus-shaped 3×3 dilation (or erosion),
// stopping early once a round changes nothing.
func growDiamond(ctx context.Context, plane []float32, w, h, k int, better func(a, b float32) bool) error {
	if len(plane) == 0 {
		return nil
	}
	k = min(k, w+h) // after w+h rounds every pixel has seen the whole plane
	cur := plane
	next := make([]float32, len(plane))
	for round := 0; round < k; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		changed := make([]bool, h)
		imaging.Parallel(h, w*5, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				up, down := max(y-1, 0), min(y+1, h-1)
				for x := 0; x < w; x++ {
					v := cur[y*w+x]
					best := v
					for _, c := range [4]float32{cur[up*w+x], cur[down*w+x], cur[y*w+max(x-1, 0)], cur[y*w+min(x+1, w-1)]} {
						if better(c, best) {
							best = c
						}
					}
					next[y*w+x] = best
					if best != v {
						changed[y] = true
					}
				}
			}
		})
		cur, next = next, cur
		if !slices.Contains(changed, true) {
			break
		}
	}
	if &cur[0] != &plane[0] {
		copy(plane, cur)
	}
	return nil
}
