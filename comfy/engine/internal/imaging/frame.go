package imaging

import "fmt"

// Mode is a Pillow image mode: how the samples of a Frame are stored.
type Mode string

// The Pillow modes Decode produces.
const (
	Mode1    Mode = "1"    // bilevel, stored as 0 or 255
	ModeL    Mode = "L"    // 8-bit grey
	ModeLA   Mode = "LA"   // 8-bit grey and alpha
	ModeP    Mode = "P"    // 8-bit palette indexes
	ModeRGB  Mode = "RGB"  // 8-bit red, green, blue
	ModeRGBA Mode = "RGBA" // 8-bit red, green, blue, alpha
	ModeCMYK Mode = "CMYK" // 8-bit cyan, magenta, yellow, black
	ModeI    Mode = "I"    // 32-bit signed integer grey (16-bit PNGs)
)

// Channels returns the number of samples per pixel of an 8-bit mode, and 1
// for ModeI (whose samples live in Frame.Int).
func (m Mode) Channels() int {
	switch m {
	case ModeLA:
		return 2
	case ModeRGB:
		return 3
	case ModeRGBA, ModeCMYK:
		return 4
	}
	return 1
}

// Frame is one decoded image, in Pillow's representation.
type Frame struct {
	Mode Mode
	W, H int
	// Pix holds the samples of the 8-bit modes, interleaved, row by row:
	// Mode.Channels() bytes per pixel. Palette indexes for ModeP.
	Pix []uint8
	// Int holds the samples of ModeI, one per pixel.
	Int []int32
	// Palette holds 256 RGB triples for ModeP. Entries the file does not define
	// keep Pillow's initial grey ramp (i, i, i).
	Palette []uint8
	// PaletteAlpha holds 256 alphas for ModeP when the image has transparency
	// (Pillow's info["transparency"]); nil otherwise.
	PaletteAlpha []uint8
	// Key is the colour-key transparency of Mode1, ModeL, ModeI (one value)
	// or ModeRGB (three values), as the file states it; nil when there is none.
	Key []int
}

// Pixels returns W*H.
func (f *Frame) Pixels() int { return f.W * f.H }

// grayRamp returns a Pillow palette: 256 RGB triples initialised to the grey
// ramp, with the given RGB triples copied over the first entries.
func grayRamp(rgb []uint8) []uint8 {
	p := make([]uint8, 768)
	for i := 0; i < 256; i++ {
		p[3*i], p[3*i+1], p[3*i+2] = uint8(i), uint8(i), uint8(i)
	}
	copy(p, rgb)
	return p
}

// ScaleInt applies Pillow's point transform to a ModeI frame: every sample
// becomes int32(sample*scale), truncated toward zero like C's conversion.
// Frames of other modes are left alone.
func (f *Frame) ScaleInt(scale float64) {
	if f.Mode != ModeI {
		return
	}
	for i, v := range f.Int {
		x := float64(v) * scale
		switch {
		case x >= 2147483647:
			f.Int[i] = 2147483647
		case x <= -2147483648:
			f.Int[i] = -2147483648
		default:
			f.Int[i] = int32(x)
		}
	}
}

// RGB returns the frame converted to 8-bit RGB like Pillow's convert("RGB"):
// transparency is dropped, grey is replicated, palettes are looked up, mode I
// is clipped to 0..255. For an RGB frame it returns Pix itself.
func (f *Frame) RGB() []uint8 {
	n := f.Pixels()
	if f.Mode == ModeRGB {
		return f.Pix[:3*n]
	}
	out := make([]uint8, 3*n)
	switch f.Mode {
	case Mode1, ModeL:
		for i, v := range f.Pix[:n] {
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
	case ModeLA:
		for i := 0; i < n; i++ {
			v := f.Pix[2*i]
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
	case ModeP:
		for i, v := range f.Pix[:n] {
			copy(out[3*i:3*i+3], f.Palette[3*int(v):3*int(v)+3])
		}
	case ModeRGBA:
		for i := 0; i < n; i++ {
			copy(out[3*i:3*i+3], f.Pix[4*i:4*i+3])
		}
	case ModeCMYK:
		for i := 0; i < n; i++ {
			c, m, y, k := f.Pix[4*i], f.Pix[4*i+1], f.Pix[4*i+2], f.Pix[4*i+3]
			out[3*i], out[3*i+1], out[3*i+2] = cmykToRGB(c, k), cmykToRGB(m, k), cmykToRGB(y, k)
		}
	case ModeI:
		for i, v := range f.Int[:n] {
			b := clip8(int(v))
			out[3*i], out[3*i+1], out[3*i+2] = b, b, b
		}
	default:
		panic(fmt.Sprintf("imaging: unknown mode %q", f.Mode))
	}
	return out
}

// cmykToRGB is Pillow's cmyk2rgb for one channel.
func cmykToRGB(c, k uint8) uint8 {
	nk := 255 - int(k)
	t := int(c)*nk + 128
	return clip8(nk - ((t>>8)+t)>>8)
}

func clip8(v int) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// Alpha returns the alpha plane that ComfyUI's LoadImage reads: the A band of
// LA and RGBA frames, or the palette alphas of a P frame with transparency.
// It returns nil for every other frame, including grey and RGB frames with a
// colour key (LoadImage ignores those).
func (f *Frame) Alpha() []uint8 {
	n := f.Pixels()
	switch {
	case f.Mode == ModeLA:
		out := make([]uint8, n)
		for i := range out {
			out[i] = f.Pix[2*i+1]
		}
		return out
	case f.Mode == ModeRGBA:
		out := make([]uint8, n)
		for i := range out {
			out[i] = f.Pix[4*i+3]
		}
		return out
	case f.Mode == ModeP && f.PaletteAlpha != nil:
		out := make([]uint8, n)
		for i, v := range f.Pix[:n] {
			out[i] = f.PaletteAlpha[v]
		}
		return out
	}
	return nil
}

// RGBA returns the frame converted to 8-bit RGBA like Pillow's
// convert("RGBA"), honouring transparency: palette alphas for P, and for
// 1, L, I and RGB frames with a colour key, alpha 0 where the converted colour
// equals the key (compared on the key's low bytes, as Pillow does).
func (f *Frame) RGBA() []uint8 {
	n := f.Pixels()
	out := make([]uint8, 4*n)
	switch f.Mode {
	case ModeRGBA:
		copy(out, f.Pix)
		return out
	case ModeLA:
		for i := 0; i < n; i++ {
			v := f.Pix[2*i]
			out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = v, v, v, f.Pix[2*i+1]
		}
		return out
	case ModeP:
		for i, v := range f.Pix[:n] {
			copy(out[4*i:4*i+3], f.Palette[3*int(v):3*int(v)+3])
			a := uint8(255)
			if f.PaletteAlpha != nil {
				a = f.PaletteAlpha[v]
			}
			out[4*i+3] = a
		}
		return out
	}
	rgb := f.RGB()
	for i := 0; i < n; i++ {
		copy(out[4*i:4*i+3], rgb[3*i:3*i+3])
		out[4*i+3] = 255
	}
	var key [3]uint8
	switch {
	case f.Key == nil || f.Mode == ModeCMYK:
		return out
	case f.Mode == ModeRGB && len(f.Key) == 3:
		key = [3]uint8{uint8(f.Key[0]), uint8(f.Key[1]), uint8(f.Key[2])}
	case len(f.Key) == 1:
		k := uint8(f.Key[0])
		key = [3]uint8{k, k, k}
	default:
		return out
	}
	for i := 0; i < n; i++ {
		if out[4*i] == key[0] && out[4*i+1] == key[1] && out[4*i+2] == key[2] {
			out[4*i+3] = 0
		}
	}
	return out
}

// Orientation methods, as EXIF numbers them (tag 0x0112).
const (
	OrientNormal     = 1
	OrientFlipH      = 2
	OrientRotate180  = 3
	OrientFlipV      = 4
	OrientTranspose  = 5
	OrientRotate90CW = 6
	OrientTransverse = 7
	OrientRotate270  = 8
)

// Transposed returns the frame turned upright for an EXIF orientation, like
// Pillow's ImageOps.exif_transpose. Orientations other than 2..8 return f.
func (f *Frame) Transposed(orientation int) *Frame {
	if orientation < 2 || orientation > 8 {
		return f
	}
	w, h := f.W, f.H
	ow, oh := w, h
	if orientation >= 5 {
		ow, oh = h, w
	}
	// src returns the source pixel of output pixel (x, y).
	src := func(x, y int) int {
		switch orientation {
		case OrientFlipH:
			return y*w + (w - 1 - x)
		case OrientRotate180:
			return (h-1-y)*w + (w - 1 - x)
		case OrientFlipV:
			return (h-1-y)*w + x
		case OrientTranspose:
			return x*w + y
		case OrientRotate90CW:
			return (h-1-x)*w + y
		case OrientTransverse:
			return (h-1-x)*w + (w - 1 - y)
		default: // OrientRotate270: a quarter turn counter-clockwise
			return x*w + (w - 1 - y)
		}
	}
	out := &Frame{Mode: f.Mode, W: ow, H: oh, Palette: f.Palette, PaletteAlpha: f.PaletteAlpha, Key: f.Key}
	if f.Mode == ModeI {
		out.Int = make([]int32, len(f.Int))
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				out.Int[y*ow+x] = f.Int[src(x, y)]
			}
		}
		return out
	}
	c := f.Mode.Channels()
	out.Pix = make([]uint8, len(f.Pix))
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			s := src(x, y) * c
			copy(out.Pix[(y*ow+x)*c:(y*ow+x+1)*c], f.Pix[s:s+c])
		}
	}
	return out
}
