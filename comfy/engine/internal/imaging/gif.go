package imaging

import (
	"bytes"
	"compress/lzw"
	"errors"
	"io"
)

// GIF decoding follows Pillow 9.4's GifImagePlugin with its default
// LoadingStrategy.RGB_AFTER_FIRST: the first frame is a "P" image (or "L"
// when the palette is the identity grey ramp), later frames are composited
// onto an "RGB" canvas — "RGBA" when the first frame had transparency —
// honouring the disposal methods as Pillow applies them (sticky disposal,
// transparency before background, the previous canvas for method 3).

// gifReader reads the GIF block structure.
type gifReader struct {
	data []byte
	pos  int
}

var errGIFShort = errors.New("unexpected end of GIF data")

func (r *gifReader) byte() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, errGIFShort
	}
	b := r.data[r.pos]
	r.pos++
	return b, nil
}

func (r *gifReader) bytes(n int) ([]byte, error) {
	if n < 0 || r.pos+n > len(r.data) {
		return nil, errGIFShort
	}
	b := r.data[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// subBlock returns the next data sub-block, or nil at the terminator (or at
// the end of the data).
func (r *gifReader) subBlock() []byte {
	n, err := r.byte()
	if err != nil || n == 0 {
		return nil
	}
	b, err := r.bytes(int(n))
	if err != nil {
		r.pos = len(r.data)
		return nil
	}
	return b
}

func le16(b []byte) int { return int(b[0]) | int(b[1])<<8 }

// paletteNeeded is GifImageFile._is_palette_needed: a palette that is the
// identity grey ramp is not needed (the frame is read as "L").
func paletteNeeded(p []byte) bool {
	for i := 0; i+2 < len(p); i += 3 {
		if !(i/3 == int(p[i]) && p[i] == p[i+1] && p[i+1] == p[i+2]) {
			return true
		}
	}
	return false
}

// gifCanvas is the image Pillow keeps between frames.
type gifCanvas struct {
	mode Mode // ModeP or ModeL for frame 0, then ModeRGB/ModeRGBA (or ModeL)
	w, h int
	pix  []uint8 // 1 byte per pixel for P/L, 4 (RGBA) for RGB/RGBA
	pal  []uint8 // palette of frame 0 (768 bytes) for P
}

type gifDispose struct {
	x0, y0, x1, y1 int
	pix            []uint8 // same layout as the canvas at the time it applies
	bpp            int
}

func decodeGIF(data []byte, opts Options) (*Picture, error) {
	r := &gifReader{data: data}
	hdr, err := r.bytes(13)
	if err != nil {
		return nil, &FormatError{Format: "GIF", Err: err}
	}
	w, h := le16(hdr[6:]), le16(hdr[8:])
	if err := opts.checkSize(w, h); err != nil {
		return nil, err
	}
	flags := hdr[10]
	background := 0
	var global []byte
	if flags&0x80 != 0 {
		background = int(hdr[11])
		p, err := r.bytes(3 << (int(flags&7) + 1))
		if err != nil {
			return nil, &FormatError{Format: "GIF", Err: err}
		}
		if paletteNeeded(p) {
			global = p
		}
	}

	var (
		frames        []*Frame
		cv            gifCanvas
		disposal      int // sticky, as Pillow keeps it between frames
		dispose       *gifDispose
		infoTrans     = -1
		total         int64
		maxPix        = opts.maxPixels()
		frameIndex    = 0
		transparency  = -1
		sawDescriptor bool
	)
frames:
	for {
		b, err := r.byte()
		if err != nil || b == ';' {
			break
		}
		switch b {
		case '!':
			label, err := r.byte()
			if err != nil {
				break frames
			}
			block := r.subBlock()
			if label == 0xf9 && len(block) >= 4 {
				if block[0]&1 != 0 {
					transparency = int(block[3])
				}
				if bits := int(block[0]>>2) & 7; bits != 0 {
					disposal = bits
				}
			}
			for block != nil {
				block = r.subBlock()
			}
			continue
		case ',':
		default:
			// Pillow skips unknown bytes between blocks.
			continue
		}
		desc, err := r.bytes(9)
		if err != nil {
			break frames
		}
		sawDescriptor = true
		x0, y0 := le16(desc), le16(desc[2:])
		x1, y1 := x0+le16(desc[4:]), y0+le16(desc[6:])
		if x1 > w || y1 > h {
			if frameIndex > 0 {
				// Pillow grows the canvas; every later frame then has another
				// size than the first and LoadImage skips it, so stop here.
				break frames
			}
			w, h = max(x1, w), max(y1, h)
			if err := opts.checkSize(w, h); err != nil {
				return nil, err
			}
		}
		dflags := desc[8]
		interlace := dflags&0x40 != 0
		framePal := global
		if dflags&0x80 != 0 {
			p, err := r.bytes(3 << (int(dflags&7) + 1))
			if err != nil {
				break frames
			}
			if paletteNeeded(p) {
				framePal = p
			} else {
				framePal = nil
			}
		}
		litWidth, err := r.byte()
		if err != nil {
			break frames
		}
		var lzwData bytes.Buffer
		for block := r.subBlock(); block != nil; block = r.subBlock() {
			lzwData.Write(block)
		}

		total += int64(w) * int64(h)
		if total > maxPix {
			return nil, &BombError{Pixels: total, Limit: maxPix}
		}
		ft := transparency
		transparency = -1
		indexes := gifLZW(lzwData.Bytes(), int(litWidth), x1-x0, y1-y0, interlace)

		// Apply the previous frame's disposal.
		if dispose != nil {
			cv.paste(dispose)
			dispose = nil
		}
		if frameIndex == 0 {
			cv = gifCanvas{mode: ModeL, w: w, h: h, pix: make([]uint8, w*h)}
			if framePal != nil {
				cv.mode = ModeP
				cv.pal = grayRamp(framePal)
			}
			if ft >= 0 {
				infoTrans = ft
				for i := range cv.pix {
					cv.pix[i] = uint8(ft)
				}
			}
		} else if cv.mode == ModeP {
			cv.toRGB(infoTrans)
			infoTrans = -1
		}
		rgb := func(c int) (uint8, uint8, uint8) {
			if framePal == nil {
				return uint8(c), uint8(c), uint8(c)
			}
			if c*3+3 > len(framePal) {
				c = 0
			}
			return framePal[3*c], framePal[3*c+1], framePal[3*c+2]
		}
		// The disposal to apply before the next frame.
		if disposal >= 2 {
			dispose = cv.disposeFor(disposal, x0, y0, x1, y1, frameIndex, infoTrans, ft, background, rgb)
		}

		// Draw the frame.
		fw := x1 - x0
		switch cv.mode {
		case ModeP, ModeL:
			skip := -1
			if frameIndex > 0 && ft >= 0 {
				skip = ft
			}
			for i, v := range indexes {
				if int(v) == skip {
					continue
				}
				cv.pix[(y0+i/fw)*w+x0+i%fw] = v
			}
		default:
			for i, v := range indexes {
				if int(v) == ft {
					continue // transparent: the canvas shows through
				}
				r, g, b := rgb(int(v))
				o := 4 * ((y0+i/fw)*w + x0 + i%fw)
				cv.pix[o], cv.pix[o+1], cv.pix[o+2], cv.pix[o+3] = r, g, b, 255
			}
		}
		frames = append(frames, cv.frame(infoTrans))
		frameIndex++
	}
	if !sawDescriptor || len(frames) == 0 {
		return nil, &FormatError{Format: "GIF", Err: errors.New("image not found in GIF frame")}
	}
	return &Picture{Format: "GIF", Frames: frames}, nil
}

// gifLZW decodes the LZW data of a w×h frame into palette indexes in row
// order, de-interlacing if needed. Like Pillow with truncated images
// allowed, it keeps what it could decode: missing pixels are 0.
func gifLZW(data []byte, litWidth, w, h int, interlace bool) []uint8 {
	out := make([]uint8, w*h)
	if litWidth < 2 || litWidth > 8 || w*h == 0 {
		return out
	}
	rd := lzw.NewReader(bytes.NewReader(data), lzw.LSB, litWidth)
	defer rd.Close()
	raw := make([]uint8, w*h)
	n, _ := io.ReadFull(rd, raw)
	raw = raw[:n]
	if !interlace {
		copy(out, raw)
		return out
	}
	row := 0
	for _, pass := range [][2]int{{0, 8}, {4, 8}, {2, 4}, {1, 2}} {
		for y := pass[0]; y < h; y += pass[1] {
			if row*w >= len(raw) {
				return out
			}
			copy(out[y*w:(y+1)*w], raw[row*w:])
			row++
		}
	}
	return out
}

// toRGB is the conversion Pillow does when seeking to the second frame: the
// P canvas becomes RGBA (palette transparency as alpha 0) when the first
// frame had transparency, RGB otherwise. Canvas pixels are kept as 4 bytes.
func (cv *gifCanvas) toRGB(trans int) {
	out := make([]uint8, 4*cv.w*cv.h)
	for i, v := range cv.pix {
		copy(out[4*i:4*i+3], cv.pal[3*int(v):3*int(v)+3])
		out[4*i+3] = 255
		if int(v) == trans {
			out[4*i+3] = 0
		}
	}
	cv.pix = out
	cv.mode = ModeRGB
	if trans >= 0 {
		cv.mode = ModeRGBA
	}
}

// disposeFor returns what Pillow pastes over the frame's area before the
// next frame, for disposal method 2 (background) or 3 (previous).
func (cv *gifCanvas) disposeFor(method, x0, y0, x1, y1, frameIndex, infoTrans, ft, background int, rgb func(int) (uint8, uint8, uint8)) *gifDispose {
	d := &gifDispose{x0: x0, y0: y0, x1: x1, y1: y1}
	n := (x1 - x0) * (y1 - y0)
	rgbMode := cv.mode == ModeRGB || cv.mode == ModeRGBA
	fill := func(color int, transparent bool) {
		if !rgbMode {
			d.bpp = 1
			d.pix = bytes.Repeat([]byte{uint8(color)}, n)
			return
		}
		d.bpp = 4
		r, g, b := rgb(color)
		a := uint8(255)
		if transparent {
			a = 0
		}
		d.pix = bytes.Repeat([]byte{r, g, b, a}, n)
	}
	if method == 2 {
		color := infoTrans
		if color < 0 {
			color = ft
		}
		if color >= 0 {
			fill(color, true)
		} else {
			fill(background, false)
		}
		return d
	}
	if method == 3 {
		if frameIndex > 0 {
			d.bpp = 1
			if rgbMode {
				d.bpp = 4
			}
			d.pix = make([]uint8, 0, n*d.bpp)
			for y := y0; y < y1; y++ {
				d.pix = append(d.pix, cv.pix[(y*cv.w+x0)*d.bpp:(y*cv.w+x1)*d.bpp]...)
			}
			return d
		}
		if ft >= 0 {
			fill(ft, true)
			return d
		}
	}
	return nil
}

// paste copies a disposal area into the canvas. An RGB canvas keeps only
// the colour of an RGBA fill, as Pillow's 4-byte pixels do.
func (cv *gifCanvas) paste(d *gifDispose) {
	bpp := 1
	if cv.mode == ModeRGB || cv.mode == ModeRGBA {
		bpp = 4
	}
	if d.bpp != bpp {
		return
	}
	rw := d.x1 - d.x0
	for y := d.y0; y < d.y1; y++ {
		copy(cv.pix[(y*cv.w+d.x0)*bpp:(y*cv.w+d.x1)*bpp], d.pix[(y-d.y0)*rw*bpp:])
	}
}

// frame returns the canvas as the Frame LoadImage would read.
func (cv *gifCanvas) frame(infoTrans int) *Frame {
	n := cv.w * cv.h
	switch cv.mode {
	case ModeP:
		f := &Frame{Mode: ModeP, W: cv.w, H: cv.h, Pix: append([]uint8(nil), cv.pix...), Palette: cv.pal}
		if infoTrans >= 0 {
			f.PaletteAlpha = bytes.Repeat([]byte{255}, 256)
			f.PaletteAlpha[infoTrans] = 0
		}
		return f
	case ModeL:
		f := &Frame{Mode: ModeL, W: cv.w, H: cv.h, Pix: append([]uint8(nil), cv.pix...)}
		if infoTrans >= 0 {
			f.Key = []int{infoTrans}
		}
		return f
	case ModeRGBA:
		return &Frame{Mode: ModeRGBA, W: cv.w, H: cv.h, Pix: append([]uint8(nil), cv.pix...)}
	}
	f := &Frame{Mode: ModeRGB, W: cv.w, H: cv.h, Pix: make([]uint8, 3*n)}
	for i := 0; i < n; i++ {
		copy(f.Pix[3*i:3*i+3], cv.pix[4*i:4*i+3])
	}
	return f
}
