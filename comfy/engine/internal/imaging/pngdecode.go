package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/comfypod/comfypod/internal/exif"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// pngHeader is what decodePNG reads from the chunks before decoding pixels.
type pngHeader struct {
	width, height int
	depth         int
	colorType     int
	interlace     bool
	plte          []byte   // raw PLTE data
	trns          []byte   // raw tRNS data; nil when absent
	exif          []byte   // eXIf data
	idat          [][]byte // the IDAT chunks' data, in order
}

// readPNGHeader walks the chunk list, checking the CRC of critical chunks
// (an ancillary chunk with a bad CRC is skipped, as Pillow does when it
// loads truncated images), and collects IHDR, PLTE, tRNS, eXIf and IDAT.
func readPNGHeader(data []byte) (*pngHeader, error) {
	h := &pngHeader{}
	p := len(pngSignature)
	sawIHDR := false
	for p+8 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[p:]))
		typ := data[p+4 : p+8]
		start := int64(p + 8)
		end := start + n
		if end+4 > int64(len(data)) {
			if string(typ) == "IDAT" && end > start {
				// A truncated last IDAT: keep what there is.
				h.idat = append(h.idat, data[start:min(end, int64(len(data)))])
			}
			break
		}
		body := data[start:end]
		critical := typ[0]&0x20 == 0
		crc := crc32.ChecksumIEEE(data[p+4 : end])
		if crc != binary.BigEndian.Uint32(data[end:]) {
			if critical {
				return nil, fmt.Errorf("broken PNG file (bad checksum in %q chunk)", typ)
			}
			p = int(end) + 4
			continue
		}
		switch string(typ) {
		case "IHDR":
			if len(body) < 13 {
				return nil, errors.New("short IHDR chunk")
			}
			w, ht := binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:])
			if w == 0 || ht == 0 || w > 1<<31-1 || ht > 1<<31-1 {
				return nil, fmt.Errorf("invalid size %dx%d", w, ht)
			}
			h.width, h.height = int(w), int(ht)
			h.depth, h.colorType = int(body[8]), int(body[9])
			if body[10] != 0 || body[11] != 0 {
				return nil, errors.New("unknown compression or filter method")
			}
			if body[12] > 1 {
				return nil, fmt.Errorf("unknown interlace method %d", body[12])
			}
			h.interlace = body[12] == 1
			sawIHDR = true
		case "PLTE":
			h.plte = body
		case "tRNS":
			h.trns = body
		case "eXIf":
			h.exif = body
		case "IDAT":
			h.idat = append(h.idat, body)
		case "IEND":
			p = len(data)
			continue
		}
		p = int(end) + 4
	}
	if !sawIHDR {
		return nil, errors.New("missing IHDR chunk")
	}
	ok := false
	switch h.colorType {
	case 0:
		ok = h.depth == 1 || h.depth == 2 || h.depth == 4 || h.depth == 8 || h.depth == 16
	case 3:
		ok = h.depth == 1 || h.depth == 2 || h.depth == 4 || h.depth == 8
	case 2, 4, 6:
		ok = h.depth == 8 || h.depth == 16
	}
	if !ok {
		return nil, fmt.Errorf("unsupported colour type %d with bit depth %d", h.colorType, h.depth)
	}
	if h.colorType == 3 && len(h.plte) < 3 {
		return nil, errors.New("palette image without a PLTE chunk")
	}
	return h, nil
}

// channels returns the number of samples per pixel of the colour type.
func (h *pngHeader) channels() int {
	switch h.colorType {
	case 2:
		return 3
	case 4:
		return 2
	case 6:
		return 4
	}
	return 1
}

func decodePNG(data []byte, opts Options) (*Picture, error) {
	h, err := readPNGHeader(data)
	if err != nil {
		return nil, &FormatError{Format: "PNG", Err: err}
	}
	if err := opts.checkSize(h.width, h.height); err != nil {
		return nil, err
	}
	if len(h.idat) == 0 {
		return nil, &FormatError{Format: "PNG", Err: errors.New("no image data (IDAT chunk)")}
	}
	// Deflate cannot expand data more than 1032 times: image data that small
	// cannot hold the declared image, so refuse it before allocating.
	var compressed int64
	for _, b := range h.idat {
		compressed += int64(len(b))
	}
	raw := int64(h.height) * (int64(h.width)*int64(h.depth*h.channels())/8 + 2)
	if raw > 1032*compressed+4096 {
		return nil, &FormatError{Format: "PNG", Err: fmt.Errorf("image data is truncated: %d bytes cannot hold a %dx%d image", compressed, h.width, h.height)}
	}
	f := newPNGFrame(h)
	if err := decodePNGPixels(h, f); err != nil {
		return nil, &FormatError{Format: "PNG", Err: err}
	}
	return &Picture{Format: "PNG", Frames: []*Frame{f}, Orientation: exif.Orientation(h.exif)}, nil
}

// newPNGFrame allocates the frame Pillow 9.4 would open for the header:
// 16-bit grey becomes mode I, other 16-bit images keep their high bytes,
// bilevel grey is mode "1", palettes and colour keys are kept as Pillow's
// info has them.
func newPNGFrame(h *pngHeader) *Frame {
	n := h.width * h.height
	f := &Frame{W: h.width, H: h.height}
	switch h.colorType {
	case 0:
		if len(h.trns) >= 2 {
			f.Key = []int{int(binary.BigEndian.Uint16(h.trns))}
		}
		switch h.depth {
		case 16:
			f.Mode, f.Int = ModeI, make([]int32, n)
			return f
		case 1:
			f.Mode = Mode1
		default:
			f.Mode = ModeL
		}
	case 2:
		if len(h.trns) >= 6 {
			f.Key = []int{int(binary.BigEndian.Uint16(h.trns)), int(binary.BigEndian.Uint16(h.trns[2:])), int(binary.BigEndian.Uint16(h.trns[4:]))}
		}
		f.Mode = ModeRGB
	case 3:
		f.Mode = ModeP
		f.Palette = grayRamp(h.plte[:min(len(h.plte), 768)/3*3])
		if h.trns != nil {
			f.PaletteAlpha = bytes.Repeat([]byte{255}, 256)
			copy(f.PaletteAlpha, h.trns)
		}
	case 4:
		f.Mode = ModeLA
	case 6:
		f.Mode = ModeRGBA
	}
	f.Pix = make([]uint8, n*f.Mode.Channels())
	return f
}

// adam7 are the Adam7 passes: x0, y0, dx, dy.
var adam7 = [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}

// decodePNGPixels inflates the image data, undoes the row filters and stores
// the pixels into f. Like Pillow loading a truncated image, it keeps the rows
// it could decode when the data stream ends early or is damaged (the rest
// stay zero); it fails only when no row at all can be read.
func decodePNGPixels(h *pngHeader, f *Frame) error {
	readers := make([]io.Reader, len(h.idat))
	for i, b := range h.idat {
		readers[i] = bytes.NewReader(b)
	}
	zr, err := zlib.NewReader(io.MultiReader(readers...))
	if err != nil {
		return fmt.Errorf("image data: %w", err)
	}
	defer zr.Close()
	bitsPP := h.depth * h.channels()
	bpp := max(1, bitsPP/8)
	passes := [][4]int{{0, 0, 1, 1}}
	if h.interlace {
		passes = adam7[:]
	}
	rowsRead := 0
	for _, pass := range passes {
		pw := (h.width - pass[0] + pass[2] - 1) / pass[2]
		ph := (h.height - pass[1] + pass[3] - 1) / pass[3]
		if pw <= 0 || ph <= 0 {
			continue
		}
		rowBytes := (pw*bitsPP + 7) / 8
		cur := make([]uint8, rowBytes+1)
		prev := make([]uint8, rowBytes+1)
		for py := 0; py < ph; py++ {
			if _, err := io.ReadFull(zr, cur); err != nil {
				if rowsRead == 0 {
					return fmt.Errorf("image data: %w", err)
				}
				return nil
			}
			if err := unfilter(cur[0], cur[1:], prev[1:], bpp); err != nil {
				if rowsRead == 0 {
					return err
				}
				return nil
			}
			storeRow(h, f, cur[1:], pass, py, pw)
			rowsRead++
			cur, prev = prev, cur
		}
	}
	return nil
}

// unfilter undoes one row's PNG filter in place.
func unfilter(ft uint8, cur, prev []uint8, bpp int) error {
	switch ft {
	case 0:
	case 1: // sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // up
		for i, p := range prev[:len(cur)] {
			cur[i] += p
		}
	case 3: // average
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i]
		}
		for i := bpp; i < len(cur); i++ {
			a, b, c := int(cur[i-bpp]), int(prev[i]), int(prev[i-bpp])
			pa, pb, pc := b-c, a-c, a+b-2*c
			if pa < 0 {
				pa = -pa
			}
			if pb < 0 {
				pb = -pb
			}
			if pc < 0 {
				pc = -pc
			}
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += uint8(a)
			case pb <= pc:
				cur[i] += uint8(b)
			default:
				cur[i] += uint8(c)
			}
		}
	default:
		return fmt.Errorf("bad filter type %d", ft)
	}
	return nil
}

// storeRow writes one unfiltered row of pass pass (row py, pw pixels wide)
// into the frame, unpacking sub-byte samples the way Pillow's unpackers do
// (grey scaled to 0..255, bilevel to 0/255, palette indexes kept) and keeping
// the high byte of 16-bit samples (except mode I).
func storeRow(h *pngHeader, f *Frame, row []uint8, pass [4]int, py, pw int) {
	y := pass[1] + py*pass[3]
	c := f.Mode.Channels()
	base := y * h.width
	at := func(px int) int { return base + pass[0] + px*pass[2] }
	switch {
	case f.Mode == ModeI:
		for px := 0; px < pw; px++ {
			f.Int[at(px)] = int32(row[2*px])<<8 | int32(row[2*px+1])
		}
	case h.depth < 8:
		per := 8 / h.depth
		mask := uint8(1<<h.depth - 1)
		scale := uint8(1)
		if h.colorType == 0 {
			scale = 255 / mask
		}
		for px := 0; px < pw; px++ {
			b := row[px/per]
			shift := uint(8 - h.depth*(px%per+1))
			f.Pix[at(px)] = (b >> shift & mask) * scale
		}
	case h.depth == 16:
		for px := 0; px < pw; px++ {
			o := at(px) * c
			for k := 0; k < c; k++ {
				f.Pix[o+k] = row[2*(px*c+k)]
			}
		}
	case pass[2] == 1:
		copy(f.Pix[base*c:(base+pw)*c], row[:pw*c])
	default:
		for px := 0; px < pw; px++ {
			copy(f.Pix[at(px)*c:(at(px)+1)*c], row[px*c:(px+1)*c])
		}
	}
}
