package imaging

import (
	"bytes"
	"fmt"
	"image"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging/jpeg"
	"github.com/comfypod/comfypod/internal/exif"
)

func decodeJPEG(data []byte, opts Options) (*Picture, error) {
	w, h, _, err := jpeg.DecodeSize(bytes.NewReader(data))
	if err != nil {
		return nil, &FormatError{Format: "JPEG", Err: err}
	}
	if err := opts.checkSize(w, h); err != nil {
		return nil, err
	}
	p, err := jpeg.DecodePlanes(bytes.NewReader(data))
	if err != nil {
		return nil, &FormatError{Format: "JPEG", Err: err}
	}
	f, err := jpegFrame(p)
	if err != nil {
		return nil, &FormatError{Format: "JPEG", Err: err}
	}
	return &Picture{Format: "JPEG", Frames: []*Frame{f}, Orientation: exif.Orientation(exif.JPEG(data))}, nil
}

// jpegFrame upsamples and converts the planes the way libjpeg-turbo does for
// Pillow: "fancy" (triangle) chroma upsampling and jdcolor.c's fixed-point
// YCbCr → RGB; four-component images become Pillow's CMYK (inverted when an
// Adobe marker is present, as Pillow's "CMYK;I" raw mode does).
func jpegFrame(p *jpeg.Planes) (*Frame, error) {
	w, h := p.Width, p.Height
	if p.Gray != nil {
		f := &Frame{Mode: ModeL, W: w, H: h, Pix: make([]uint8, w*h)}
		for y := 0; y < h; y++ {
			copy(f.Pix[y*w:(y+1)*w], p.Gray.Pix[y*p.Gray.Stride:])
		}
		return f, nil
	}
	m := p.YCbCr
	if m == nil {
		return nil, fmt.Errorf("no image data")
	}
	hf, vf, err := chromaFactors(m.SubsampleRatio)
	if err != nil {
		return nil, err
	}
	cw, ch := (w+hf-1)/hf, (h+vf-1)/vf
	cb := upsample(m.Cb, m.CStride, cw, ch, hf, vf, w, h)
	cr := upsample(m.Cr, m.CStride, cw, ch, hf, vf, w, h)
	yy := make([]uint8, w*h)
	for y := 0; y < h; y++ {
		copy(yy[y*w:(y+1)*w], m.Y[y*m.YStride:])
	}
	n := w * h
	if p.Black == nil {
		f := &Frame{Mode: ModeRGB, W: w, H: h, Pix: make([]uint8, 3*n)}
		if p.RGB {
			for i := 0; i < n; i++ {
				f.Pix[3*i], f.Pix[3*i+1], f.Pix[3*i+2] = yy[i], cb[i], cr[i]
			}
			return f, nil
		}
		Parallel(h, 3*w, func(lo, hi int) {
			for i := lo * w; i < hi*w; i++ {
				r, g, b := yccToRGB(int(yy[i]), int(cb[i]), int(cr[i]))
				f.Pix[3*i], f.Pix[3*i+1], f.Pix[3*i+2] = r, g, b
			}
		})
		return f, nil
	}
	f := &Frame{Mode: ModeCMYK, W: w, H: h, Pix: make([]uint8, 4*n)}
	for i := 0; i < n; i++ {
		k := p.Black[(i/w)*p.BlackStride+i%w]
		c0, c1, c2 := yy[i], cb[i], cr[i]
		if p.Transform == jpeg.TransformYCbCrK {
			r, g, b := yccToRGB(int(c0), int(c1), int(c2))
			c0, c1, c2 = 255-r, 255-g, 255-b
		}
		f.Pix[4*i], f.Pix[4*i+1], f.Pix[4*i+2], f.Pix[4*i+3] = c0, c1, c2, k
	}
	if p.Transform != jpeg.TransformNone {
		for i := range f.Pix {
			f.Pix[i] = 255 - f.Pix[i]
		}
	}
	return f, nil
}

// chromaFactors returns how many luma samples each chroma sample covers.
func chromaFactors(r image.YCbCrSubsampleRatio) (hf, vf int, err error) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, nil
	case image.YCbCrSubsampleRatio422:
		return 2, 1, nil
	case image.YCbCrSubsampleRatio420:
		return 2, 2, nil
	case image.YCbCrSubsampleRatio440:
		return 1, 2, nil
	case image.YCbCrSubsampleRatio411:
		return 4, 1, nil
	case image.YCbCrSubsampleRatio410:
		return 4, 2, nil
	}
	return 0, 0, fmt.Errorf("unsupported chroma subsampling %v", r)
}

// upsample expands a cw×ch chroma plane to w×h with libjpeg-turbo's method
// for the factors: h2v1, h1v2 and h2v2 "fancy" triangle filters (with their
// alternating rounding biases and edge replication), plain replication
// otherwise.
func upsample(src []uint8, stride, cw, ch, hf, vf, w, h int) []uint8 {
	row := func(y int) []uint8 {
		y = max(0, min(y, ch-1))
		return src[y*stride : y*stride+cw]
	}
	ow := cw * hf // libjpeg's output rows are whole groups, cropped to w
	out := make([]uint8, w*h)
	line := make([]uint8, ow)
	fancyH := hf == 2 && cw > 2
	for y := 0; y < h; y++ {
		switch {
		case hf == 1 && vf == 1:
			copy(line, row(y))
		case hf == 2 && vf == 1 && fancyH:
			h2v1Fancy(line, row(y), cw)
		case hf == 1 && vf == 2:
			in, v := y/2, y%2
			near, far := row(in), row(in-1)
			bias := 1
			if v == 1 {
				far, bias = row(in+1), 2
			}
			for x := 0; x < cw; x++ {
				line[x] = uint8((3*int(near[x]) + int(far[x]) + bias) >> 2)
			}
		case hf == 2 && vf == 2 && fancyH:
			in, v := y/2, y%2
			near, far := row(in), row(in-1)
			if v == 1 {
				far = row(in + 1)
			}
			h2v2Fancy(line, near, far, cw)
		default:
			r := row(y / vf)
			for x := 0; x < ow; x++ {
				line[x] = r[x/hf]
			}
		}
		copy(out[y*w:(y+1)*w], line)
	}
	return out
}

// h2v1Fancy is jdsample.c's h2v1_fancy_upsample for one row.
func h2v1Fancy(out, in []uint8, cw int) {
	v := int(in[0])
	out[0] = uint8(v)
	out[1] = uint8((v*3 + int(in[1]) + 2) >> 2)
	for i := 1; i < cw-1; i++ {
		v := int(in[i]) * 3
		out[2*i] = uint8((v + int(in[i-1]) + 1) >> 2)
		out[2*i+1] = uint8((v + int(in[i+1]) + 2) >> 2)
	}
	v = int(in[cw-1])
	out[2*cw-2] = uint8((v*3 + int(in[cw-2]) + 1) >> 2)
	out[2*cw-1] = uint8(v)
}

// h2v2Fancy is jdsample.c's h2v2_fancy_upsample for one output row, from the
// nearer input row and the next nearer one.
func h2v2Fancy(out, near, far []uint8, cw int) {
	colsum := func(i int) int { return int(near[i])*3 + int(far[i]) }
	this, next := colsum(0), colsum(1)
	out[0] = uint8((this*4 + 8) >> 4)
	out[1] = uint8((this*3 + next + 7) >> 4)
	last := this
	this = next
	for i := 1; i < cw-1; i++ {
		next = colsum(i + 1)
		out[2*i] = uint8((this*3 + last + 8) >> 4)
		out[2*i+1] = uint8((this*3 + next + 7) >> 4)
		last, this = this, next
	}
	out[2*cw-2] = uint8((this*3 + last + 8) >> 4)
	out[2*cw-1] = uint8((this*4 + 7) >> 4)
}

// jdcolor.c's fixed-point conversion constants (SCALEBITS = 16).
const (
	yccScaleBits = 16
	yccHalf      = 1 << (yccScaleBits - 1)
	fixCrR       = 91881  // FIX(1.40200)
	fixCbB       = 116130 // FIX(1.77200)
	fixCrG       = 46802  // FIX(0.71414)
	fixCbG       = 22554  // FIX(0.34414)
)

// yccToRGB is jdcolor.c's ycc_rgb_convert for one pixel.
func yccToRGB(y, cb, cr int) (r, g, b uint8) {
	cbx, crx := cb-128, cr-128
	crR := (fixCrR*crx + yccHalf) >> yccScaleBits
	cbB := (fixCbB*cbx + yccHalf) >> yccScaleBits
	gg := (-fixCbG*cbx + yccHalf - fixCrG*crx) >> yccScaleBits
	return clip8(y + crR), clip8(y + gg), clip8(y + cbB)
}
