package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngHeader is what decodePNG reads from the chunks before decoding pixels.
type pngHeader struct {
	width, height int
	depth         int
	colorType     int
	plte          []byte // raw PLTE data
	trns          []byte // raw tRNS data; nil when absent
	exif          []byte // eXIf data
}

// readPNGHeader walks the chunk list and collects IHDR, PLTE, tRNS and eXIf.
func readPNGHeader(data []byte) (*pngHeader, error) {
	h := &pngHeader{}
	p := len(pngSignature)
	sawIHDR := false
	for p+8 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		start := int64(p + 8)
		end := start + n
		if end > int64(len(data)) {
			// Truncated chunk: stop here and let the decoder report it.
			break
		}
		body := data[start:end]
		switch typ {
		case "IHDR":
			if len(body) < 13 {
				return nil, errors.New("png: short IHDR chunk")
			}
			w, ht := binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:])
			if w == 0 || ht == 0 || w > 1<<31-1 || ht > 1<<31-1 {
				return nil, fmt.Errorf("png: invalid size %dx%d", w, ht)
			}
			h.width, h.height = int(w), int(ht)
			h.depth, h.colorType = int(body[8]), int(body[9])
			sawIHDR = true
		case "PLTE":
			h.plte = body
		case "tRNS":
			h.trns = body
		case "eXIf":
			h.exif = body
		case "IEND":
			p = len(data)
			continue
		}
		p = int(end) + 4
	}
	if !sawIHDR {
		return nil, errors.New("png: missing IHDR chunk")
	}
	return h, nil
}

func decodePNG(data []byte, opts Options) (*Picture, error) {
	h, err := readPNGHeader(data)
	if err != nil {
		return nil, &FormatError{Format: "PNG", Err: err}
	}
	if err := opts.checkSize(h.width, h.height); err != nil {
		return nil, err
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, &FormatError{Format: "PNG", Err: err}
	}
	f, err := pngFrame(img, h)
	if err != nil {
		return nil, &FormatError{Format: "PNG", Err: err}
	}
	return &Picture{Format: "PNG", Frames: []*Frame{f}, Orientation: exifOrientation(h.exif)}, nil
}

// pngFrame converts what image/png returned into the frame Pillow 9.4 would
// open: 16-bit grey becomes mode I, other 16-bit images keep their high bytes,
// palettes and colour keys are kept as Pillow's info has them.
func pngFrame(img image.Image, h *pngHeader) (*Frame, error) {
	b := img.Bounds()
	w, ht := b.Dx(), b.Dy()
	n := w * ht
	f := &Frame{W: w, H: ht}
	switch h.colorType {
	case 0: // grey
		if len(h.trns) >= 2 {
			f.Key = []int{int(binary.BigEndian.Uint16(h.trns))}
		}
		if h.depth == 16 {
			f.Mode = ModeI
			f.Int = make([]int32, n)
			switch m := img.(type) {
			case *image.Gray16:
				for y := 0; y < ht; y++ {
					row := m.Pix[y*m.Stride:]
					for x := 0; x < w; x++ {
						f.Int[y*w+x] = int32(row[2*x])<<8 | int32(row[2*x+1])
					}
				}
			case *image.NRGBA64:
				for y := 0; y < ht; y++ {
					row := m.Pix[y*m.Stride:]
					for x := 0; x < w; x++ {
						f.Int[y*w+x] = int32(row[8*x])<<8 | int32(row[8*x+1])
					}
				}
			default:
				return nil, fmt.Errorf("unexpected %T for 16-bit grey", img)
			}
			return f, nil
		}
		f.Mode = ModeL
		if h.depth == 1 {
			f.Mode = Mode1
		}
		f.Pix = make([]uint8, n)
		switch m := img.(type) {
		case *image.Gray:
			for y := 0; y < ht; y++ {
				copy(f.Pix[y*w:(y+1)*w], m.Pix[y*m.Stride:])
			}
		case *image.NRGBA:
			for y := 0; y < ht; y++ {
				row := m.Pix[y*m.Stride:]
				for x := 0; x < w; x++ {
					f.Pix[y*w+x] = row[4*x]
				}
			}
		default:
			return nil, fmt.Errorf("unexpected %T for grey", img)
		}
	case 2: // RGB
		if len(h.trns) >= 6 {
			f.Key = []int{int(binary.BigEndian.Uint16(h.trns)), int(binary.BigEndian.Uint16(h.trns[2:])), int(binary.BigEndian.Uint16(h.trns[4:]))}
		}
		f.Mode = ModeRGB
		f.Pix = make([]uint8, 3*n)
		if err := copySamples(f.Pix, img, 3); err != nil {
			return nil, err
		}
	case 3: // palette
		m, ok := img.(*image.Paletted)
		if !ok {
			return nil, fmt.Errorf("unexpected %T for palette", img)
		}
		f.Mode = ModeP
		f.Pix = make([]uint8, n)
		for y := 0; y < ht; y++ {
			copy(f.Pix[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		f.Palette = grayRamp(h.plte[:len(h.plte)/3*3])
		if h.trns != nil {
			f.PaletteAlpha = make([]uint8, 256)
			for i := range f.PaletteAlpha {
				f.PaletteAlpha[i] = 255
			}
			copy(f.PaletteAlpha, h.trns)
		}
	case 4: // grey + alpha
		f.Mode = ModeLA
		f.Pix = make([]uint8, 2*n)
		rgba := make([]uint8, 4*n)
		if err := copySamples(rgba, img, 4); err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			f.Pix[2*i], f.Pix[2*i+1] = rgba[4*i], rgba[4*i+3]
		}
	case 6: // RGBA
		f.Mode = ModeRGBA
		f.Pix = make([]uint8, 4*n)
		if err := copySamples(f.Pix, img, 4); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unsupported colour type %d", h.colorType)
	}
	return f, nil
}

// copySamples copies the non-premultiplied 8-bit samples (high bytes of
// 16-bit ones) of an RGB-like image into dst with c = 3 or 4 bytes per pixel.
func copySamples(dst []uint8, img image.Image, c int) error {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var (
		pix    []uint8
		stride int
		bpp    int // bytes per pixel in pix
		step   int // bytes per sample in pix
	)
	switch m := img.(type) {
	case *image.RGBA:
		pix, stride, bpp, step = m.Pix, m.Stride, 4, 1
	case *image.NRGBA:
		pix, stride, bpp, step = m.Pix, m.Stride, 4, 1
	case *image.RGBA64:
		pix, stride, bpp, step = m.Pix, m.Stride, 8, 2
	case *image.NRGBA64:
		pix, stride, bpp, step = m.Pix, m.Stride, 8, 2
	default:
		return fmt.Errorf("unexpected %T", img)
	}
	if bpp == 4 && c == 4 {
		for y := 0; y < h; y++ {
			copy(dst[y*w*4:(y+1)*w*4], pix[y*stride:])
		}
		return nil
	}
	for y := 0; y < h; y++ {
		row := pix[y*stride:]
		out := dst[y*w*c:]
		for x := 0; x < w; x++ {
			for k := 0; k < c; k++ {
				out[x*c+k] = row[x*bpp+k*step]
			}
		}
	}
	return nil
}
