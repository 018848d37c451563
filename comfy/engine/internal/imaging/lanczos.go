package imaging

import (
	"fmt"
	"math"
)

// pillowPrecisionBits is Resample.c's PRECISION_BITS for 8-bit images.
const pillowPrecisionBits = 32 - 8 - 2

// lanczos is comfy.utils.lanczos: each image goes to 8 bits
// (clip(255*x).astype(uint8)), through Pillow's Image.resize(LANCZOS) —
// premultiplied for RGBA, two separable fixed-point passes, 8-bit rounding
// between them — and back to float (x/255).
func lanczos(dst, src View) error {
	c := src.C
	if c != 3 && c != 4 {
		return fmt.Errorf("Cannot handle this data type: (1, 1, %d), |u1", c)
	}
	w, h := src.W, src.H
	img := make([]uint8, w*h*c)
	Parallel(h, w*c, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			row := src.Pix[y*src.Stride : y*src.Stride+w*c]
			out := img[y*w*c:]
			for i, v := range row {
				out[i] = FloatToByte(v)
			}
		}
	})
	var res []uint8
	switch {
	case dst.W == w && dst.H == h:
		// Image.resize returns a copy for an unchanged size.
		res = img
	case c == 4:
		premultiply(img)
		res = pillowResample(img, w, h, c, dst.W, dst.H)
		unpremultiply(res)
	default:
		res = pillowResample(img, w, h, c, dst.W, dst.H)
	}
	Parallel(dst.H, dst.W*c, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			out := dst.Pix[y*dst.Stride : y*dst.Stride+dst.W*c]
			in := res[y*dst.W*c:]
			for i := range out {
				out[i] = float32(in[i]) / 255
			}
		}
	})
	return nil
}

// FloatToByte is ComfyUI's float → byte conversion, numpy's
// clip(255.*x, 0, 255).astype(uint8) for one float32: it truncates, and NaN
// becomes 0. SaveImage and Pillow-based resizes convert tensors with it.
func FloatToByte(x float32) uint8 {
	v := x * 255
	if !(v > 0) {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// muldiv255 is Pillow's MULDIV255: a*b/255 rounded.
func muldiv255(a, b uint8) uint8 {
	t := int(a)*int(b) + 128
	return uint8(((t >> 8) + t) >> 8)
}

// premultiply is Pillow's RGBA → RGBa conversion.
func premultiply(p []uint8) {
	for i := 0; i < len(p); i += 4 {
		a := p[i+3]
		p[i], p[i+1], p[i+2] = muldiv255(p[i], a), muldiv255(p[i+1], a), muldiv255(p[i+2], a)
	}
}

// unpremultiply is Pillow's RGBa → RGBA conversion.
func unpremultiply(p []uint8) {
	for i := 0; i < len(p); i += 4 {
		a := int(p[i+3])
		if a == 0 || a == 255 {
			continue
		}
		for k := 0; k < 3; k++ {
			p[i+k] = clip8(255 * int(p[i+k]) / a)
		}
	}
}

// pillowCoeffs is Resample.c's precompute_coeffs followed by
// normalize_coeffs_8bpc for the LANCZOS filter (support 3).
func pillowCoeffs(inSize, outSize int) (ksize int, bounds []int, kk []int32) {
	const support0 = 3.0
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := support0 * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	pre := make([]float64, outSize*ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1.0 / filterscale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		k := pre[xx*ksize : (xx+1)*ksize]
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := lanczosFilter((float64(x+xmin) - center + 0.5) * ss)
			k[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				k[x] /= ww
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	kk = make([]int32, len(pre))
	for i, v := range pre {
		if v < 0 {
			kk[i] = int32(-0.5 + v*(1<<pillowPrecisionBits))
		} else {
			kk[i] = int32(0.5 + v*(1<<pillowPrecisionBits))
		}
	}
	return ksize, bounds, kk
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func lanczosFilter(x float64) float64 {
	if -3 <= x && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

// clipFixed is Resample.c's clip8 of a fixed-point sum.
func clipFixed(ss int) uint8 {
	v := ss >> pillowPrecisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// pillowResample is ImagingResampleInner for 8-bit images of c channels:
// a horizontal pass over the rows the vertical pass needs, then a vertical
// pass, each only when its size changes.
func pillowResample(img []uint8, w, h, c, ow, oh int) []uint8 {
	ksH, boundsH, kkH := pillowCoeffs(w, ow)
	ksV, boundsV, kkV := pillowCoeffs(h, oh)
	needH, needV := ow != w, oh != h
	cur, cw := img, w
	if needH {
		first := boundsV[0]
		last := boundsV[2*oh-2] + boundsV[2*oh-1]
		rows := last - first
		tmp := make([]uint8, rows*ow*c)
		Parallel(rows, ow*c*ksH, func(lo, hi int) {
			for yy := lo; yy < hi; yy++ {
				in := img[(yy+first)*w*c : (yy+first+1)*w*c]
				out := tmp[yy*ow*c:]
				for xx := 0; xx < ow; xx++ {
					xmin, xmax := boundsH[2*xx], boundsH[2*xx+1]
					k := kkH[xx*ksH : xx*ksH+xmax]
					px := in[xmin*c:]
					const half = 1 << (pillowPrecisionBits - 1)
					switch c {
					case 3:
						s0, s1, s2 := half, half, half
						for x, kv := range k {
							q := px[3*x : 3*x+3]
							s0 += int(q[0]) * int(kv)
							s1 += int(q[1]) * int(kv)
							s2 += int(q[2]) * int(kv)
						}
						out[3*xx], out[3*xx+1], out[3*xx+2] = clipFixed(s0), clipFixed(s1), clipFixed(s2)
					case 4:
						s0, s1, s2, s3 := half, half, half, half
						for x, kv := range k {
							q := px[4*x : 4*x+4]
							s0 += int(q[0]) * int(kv)
							s1 += int(q[1]) * int(kv)
							s2 += int(q[2]) * int(kv)
							s3 += int(q[3]) * int(kv)
						}
						out[4*xx], out[4*xx+1], out[4*xx+2], out[4*xx+3] = clipFixed(s0), clipFixed(s1), clipFixed(s2), clipFixed(s3)
					default:
						for ch := 0; ch < c; ch++ {
							ss := half
							for x, kv := range k {
								ss += int(px[x*c+ch]) * int(kv)
							}
							out[xx*c+ch] = clipFixed(ss)
						}
					}
				}
			}
		})
		for i := 0; i < oh; i++ {
			boundsV[2*i] -= first
		}
		cur, cw = tmp, ow
	}
	if !needV {
		return cur
	}
	rowLen := cw * c
	out := make([]uint8, oh*rowLen)
	Parallel(oh, rowLen*ksV, func(lo, hi int) {
		acc := make([]int, rowLen)
		for yy := lo; yy < hi; yy++ {
			ymin, ymax := boundsV[2*yy], boundsV[2*yy+1]
			for i := range acc {
				acc[i] = 1 << (pillowPrecisionBits - 1)
			}
			for y, kv := range kkV[yy*ksV : yy*ksV+ymax] {
				k := int(kv)
				row := cur[(y+ymin)*rowLen : (y+ymin+1)*rowLen]
				for i, v := range row {
					acc[i] += int(v) * k
				}
			}
			o := out[yy*rowLen : (yy+1)*rowLen]
			for i, v := range acc {
				o[i] = clipFixed(v)
			}
		}
	})
	return out
}
