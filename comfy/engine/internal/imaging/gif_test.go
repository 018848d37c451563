package imaging

import (
	"bytes"
	"compress/lzw"
	"testing"
)

// testGIFFrame describes one frame for gifBytes.
type testGIFFrame struct {
	x, y, w, h int
	local      []byte // local palette (RGB triples), or nil
	gce        bool   // write a graphic control extension
	trans      int    // transparent index, -1 for none
	disposal   int
	interlace  bool
	idx        []byte // palette indexes in row order
}

// gifBytes writes a GIF89a file.
func gifBytes(w, h int, global []byte, bg byte, frames []testGIFFrame) []byte {
	tableBits := func(p []byte) byte {
		n := len(p) / 3
		b := byte(0)
		for 2<<b < n {
			b++
		}
		return b
	}
	var out bytes.Buffer
	out.WriteString("GIF89a")
	out.Write([]byte{byte(w), byte(w >> 8), byte(h), byte(h >> 8)})
	if global != nil {
		out.Write([]byte{0x80 | tableBits(global), bg, 0})
		out.Write(global)
	} else {
		out.Write([]byte{0, 0, 0})
	}
	for _, f := range frames {
		if f.gce {
			packed := byte(f.disposal << 2)
			ti := byte(0)
			if f.trans >= 0 {
				packed |= 1
				ti = byte(f.trans)
			}
			out.Write([]byte{'!', 0xf9, 4, packed, 0, 0, ti, 0})
		}
		flags := byte(0)
		if f.local != nil {
			flags = 0x80 | tableBits(f.local)
		}
		if f.interlace {
			flags |= 0x40
		}
		out.WriteByte(',')
		out.Write([]byte{byte(f.x), byte(f.x >> 8), byte(f.y), byte(f.y >> 8), byte(f.w), byte(f.w >> 8), byte(f.h), byte(f.h >> 8), flags})
		if f.local != nil {
			out.Write(f.local)
		}
		idx := f.idx
		if f.interlace {
			idx = nil
			for _, p := range [][2]int{{0, 8}, {4, 8}, {2, 4}, {1, 2}} {
				for y := p[0]; y < f.h; y += p[1] {
					idx = append(idx, f.idx[y*f.w:(y+1)*f.w]...)
				}
			}
		}
		var data bytes.Buffer
		zw := lzw.NewWriter(&data, lzw.LSB, 8)
		zw.Write(idx)
		zw.Close()
		out.WriteByte(8)
		b := data.Bytes()
		for len(b) > 0 {
			n := min(255, len(b))
			out.WriteByte(byte(n))
			out.Write(b[:n])
			b = b[n:]
		}
		out.WriteByte(0)
	}
	out.WriteByte(';')
	return out.Bytes()
}

// pal4 is black, red, green, blue.
var pal4 = []byte{0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255}

func gifFrames(t *testing.T, data []byte) []*Frame {
	t.Helper()
	p, err := Decode(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "GIF" {
		t.Fatalf("format %s", p.Format)
	}
	return p.Frames
}

func TestGIFSingleFrame(t *testing.T) {
	fr := gifFrames(t, gifBytes(2, 1, pal4, 0, []testGIFFrame{{w: 2, h: 1, trans: -1, idx: []byte{1, 3}}}))
	if len(fr) != 1 || fr[0].Mode != ModeP || fr[0].Alpha() != nil {
		t.Fatalf("%+v", fr[0])
	}
	if !bytes.Equal(fr[0].RGB(), []byte{255, 0, 0, 0, 0, 255}) {
		t.Errorf("RGB %v", fr[0].RGB())
	}
	// A palette that is the identity grey ramp makes Pillow read "L".
	grey := []byte{0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3}
	fr = gifFrames(t, gifBytes(2, 1, grey, 0, []testGIFFrame{{w: 2, h: 1, trans: -1, idx: []byte{1, 3}}}))
	if fr[0].Mode != ModeL || !bytes.Equal(fr[0].Pix, []byte{1, 3}) {
		t.Errorf("grey ramp palette: %s %v", fr[0].Mode, fr[0].Pix)
	}
}

// TestGIFBackgroundDisposal: the second frame's area is cleared to the
// background colour before the third frame, and the disposal method sticks
// for frames without a control extension.
func TestGIFBackgroundDisposal(t *testing.T) {
	data := gifBytes(3, 2, pal4, 3, []testGIFFrame{
		{w: 3, h: 2, trans: -1, idx: []byte{1, 1, 1, 1, 1, 1}},
		{x: 1, w: 1, h: 1, gce: true, trans: -1, disposal: 2, idx: []byte{2}},
		{y: 1, w: 1, h: 1, trans: -1, idx: []byte{0}},
	})
	fr := gifFrames(t, data)
	if len(fr) != 3 {
		t.Fatalf("%d frames", len(fr))
	}
	R, G, B, K := []byte{255, 0, 0}, []byte{0, 255, 0}, []byte{0, 0, 255}, []byte{0, 0, 0}
	join := func(px ...[]byte) []byte { return bytes.Join(px, nil) }
	if fr[1].Mode != ModeRGB || !bytes.Equal(fr[1].Pix, join(R, G, R, R, R, R)) {
		t.Errorf("frame 1: %s %v", fr[1].Mode, fr[1].Pix)
	}
	if !bytes.Equal(fr[2].Pix, join(R, B, R, K, R, R)) {
		t.Errorf("frame 2: %v", fr[2].Pix)
	}
}

// TestGIFTransparency: transparency in the first frame makes the canvas RGBA;
// transparent pixels of later frames let the canvas show through.
func TestGIFTransparency(t *testing.T) {
	data := gifBytes(2, 1, pal4, 0, []testGIFFrame{
		{w: 2, h: 1, gce: true, trans: 0, idx: []byte{0, 1}},
		{w: 2, h: 1, gce: true, trans: 0, idx: []byte{2, 0}},
	})
	fr := gifFrames(t, data)
	if fr[0].Mode != ModeP || !bytes.Equal(fr[0].Alpha(), []byte{0, 255}) {
		t.Errorf("frame 0: %s alpha %v", fr[0].Mode, fr[0].Alpha())
	}
	if fr[1].Mode != ModeRGBA || !bytes.Equal(fr[1].Pix, []byte{0, 255, 0, 255, 255, 0, 0, 255}) {
		t.Errorf("frame 1: %s %v", fr[1].Mode, fr[1].Pix)
	}
}

// TestGIFPreviousDisposal: method 3 restores what was under the frame.
func TestGIFPreviousDisposal(t *testing.T) {
	data := gifBytes(2, 1, pal4, 0, []testGIFFrame{
		{w: 2, h: 1, trans: -1, idx: []byte{1, 1}},
		{w: 1, h: 1, gce: true, trans: -1, disposal: 3, idx: []byte{2}},
		{x: 1, w: 1, h: 1, trans: -1, idx: []byte{3}},
	})
	fr := gifFrames(t, data)
	if !bytes.Equal(fr[1].Pix, []byte{0, 255, 0, 255, 0, 0}) || !bytes.Equal(fr[2].Pix, []byte{255, 0, 0, 0, 0, 255}) {
		t.Errorf("frames %v %v", fr[1].Pix, fr[2].Pix)
	}
}

func TestGIFInterlaced(t *testing.T) {
	idx := make([]byte, 3*10)
	for i := range idx {
		idx[i] = byte(i % 4)
	}
	plain := gifFrames(t, gifBytes(3, 10, pal4, 0, []testGIFFrame{{w: 3, h: 10, trans: -1, idx: idx}}))
	inter := gifFrames(t, gifBytes(3, 10, pal4, 0, []testGIFFrame{{w: 3, h: 10, trans: -1, idx: idx, interlace: true}}))
	if !bytes.Equal(plain[0].Pix, idx) || !bytes.Equal(inter[0].Pix, idx) {
		t.Errorf("plain %v interlaced %v", plain[0].Pix, inter[0].Pix)
	}
}

func TestGIFErrors(t *testing.T) {
	for _, data := range [][]byte{
		[]byte("GIF89a"),
		[]byte("GIF89a\x02\x00\x01\x00\x00\x00\x00;"), // no image
	} {
		if _, err := Decode(data, Options{}); err == nil {
			t.Errorf("Decode(%q) succeeded", data)
		}
	}
	// A screen bigger than the pixel limit is refused before decoding.
	big := gifBytes(60000, 60000, pal4, 0, []testGIFFrame{{w: 1, h: 1, trans: -1, idx: []byte{1}}})
	if _, err := Decode(big, Options{MaxPixels: 1 << 20}); err == nil {
		t.Error("oversized GIF accepted")
	}
}
