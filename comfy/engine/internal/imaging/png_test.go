package imaging

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"testing"
)

// pngChunk returns a PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// rawPNG builds a PNG from packed scanlines (without filter bytes), using
// filter type ft on every row, Adam7 interlacing when interlace is set
// (sample gives the packed bytes of pixel (x, y) for bit depths >= 8), and
// the extra chunks placed before IDAT.
func rawPNG(t *testing.T, w, h, colorType, depth int, interlace bool, sample func(x, y int) []byte, extra ...[]byte) []byte {
	t.Helper()
	var raw bytes.Buffer
	passes := [][4]int{{0, 0, 1, 1}}
	if interlace {
		passes = adam7[:]
	}
	for _, p := range passes {
		for y := p[1]; y < h; y += p[3] {
			var row []byte
			for x := p[0]; x < w; x += p[2] {
				row = append(row, sample(x, y)...)
			}
			if len(row) == 0 {
				continue
			}
			raw.WriteByte(0)
			raw.Write(row)
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), byte(colorType)
	if interlace {
		ihdr[12] = 1
	}
	out := append([]byte{}, pngSignature...)
	out = append(out, pngChunk("IHDR", ihdr)...)
	for _, c := range extra {
		out = append(out, c...)
	}
	out = append(out, pngChunk("IDAT", z.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

func decodeOne(t *testing.T, data []byte) *Frame {
	t.Helper()
	p, err := Decode(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "PNG" || len(p.Frames) != 1 {
		t.Fatalf("format %s, %d frames", p.Format, len(p.Frames))
	}
	return p.Frames[0]
}

func TestDecodePNGModes(t *testing.T) {
	t.Run("grey 8 with colour key", func(t *testing.T) {
		data := rawPNG(t, 3, 2, 0, 8, false, func(x, y int) []byte { return []byte{byte(10*x + y)} }, pngChunk("tRNS", []byte{0, 10}))
		f := decodeOne(t, data)
		if f.Mode != ModeL || !bytes.Equal(f.Pix, []byte{0, 10, 20, 1, 11, 21}) || len(f.Key) != 1 || f.Key[0] != 10 {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("grey 16 is mode I", func(t *testing.T) {
		data := rawPNG(t, 2, 1, 0, 16, false, func(x, y int) []byte { return []byte{byte(x + 1), 0x34} })
		f := decodeOne(t, data)
		if f.Mode != ModeI || f.Int[0] != 0x134 || f.Int[1] != 0x234 {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("grey 1 is mode 1", func(t *testing.T) {
		// Packed sub-byte rows are built by hand.
		row := []byte{0b10100000, 0b01000000}
		data := rawPNGRows(t, 10, 1, 0, 1, [][]byte{row})
		f := decodeOne(t, data)
		want := []byte{255, 0, 255, 0, 0, 0, 0, 0, 0, 255}
		if f.Mode != Mode1 || !bytes.Equal(f.Pix, want) {
			t.Fatalf("%v %v", f.Mode, f.Pix)
		}
	})
	t.Run("grey 2 scales by 85", func(t *testing.T) {
		data := rawPNGRows(t, 4, 1, 0, 2, [][]byte{{0b00011011}})
		f := decodeOne(t, data)
		if !bytes.Equal(f.Pix, []byte{0, 85, 170, 255}) {
			t.Fatalf("%v", f.Pix)
		}
	})
	t.Run("RGB 16 keeps high bytes", func(t *testing.T) {
		data := rawPNG(t, 1, 1, 2, 16, false, func(x, y int) []byte { return []byte{1, 2, 3, 4, 5, 6} })
		f := decodeOne(t, data)
		if f.Mode != ModeRGB || !bytes.Equal(f.Pix, []byte{1, 3, 5}) {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("grey+alpha", func(t *testing.T) {
		data := rawPNG(t, 1, 1, 4, 8, false, func(x, y int) []byte { return []byte{7, 8} })
		f := decodeOne(t, data)
		if f.Mode != ModeLA || !bytes.Equal(f.Pix, []byte{7, 8}) {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("palette 4-bit with tRNS", func(t *testing.T) {
		plte := pngChunk("PLTE", []byte{255, 0, 0, 0, 255, 0})
		trns := pngChunk("tRNS", []byte{0})
		data := rawPNGRows(t, 3, 1, 3, 4, [][]byte{{0x01, 0x50}}, plte, trns)
		f := decodeOne(t, data)
		if f.Mode != ModeP || !bytes.Equal(f.Pix, []byte{0, 1, 5}) {
			t.Fatalf("%+v", f)
		}
		// Index 5 is not in PLTE: Pillow's palette keeps its grey ramp there.
		if !bytes.Equal(f.RGB(), []byte{255, 0, 0, 0, 255, 0, 5, 5, 5}) {
			t.Fatalf("RGB %v", f.RGB())
		}
		if !bytes.Equal(f.Alpha(), []byte{0, 255, 255}) {
			t.Fatalf("alpha %v", f.Alpha())
		}
	})
	t.Run("interlaced equals plain", func(t *testing.T) {
		sample := func(x, y int) []byte { return []byte{byte(x * 7), byte(y * 13), byte(x ^ y), byte(200 - x)} }
		plain := decodeOne(t, rawPNG(t, 13, 11, 6, 8, false, sample))
		inter := decodeOne(t, rawPNG(t, 13, 11, 6, 8, true, sample))
		if !bytes.Equal(plain.Pix, inter.Pix) || plain.Mode != ModeRGBA {
			t.Fatal("interlaced image decodes differently")
		}
	})
}

// rawPNGRows builds a non-interlaced PNG from packed rows.
func rawPNGRows(t *testing.T, w, h, colorType, depth int, rows [][]byte, extra ...[]byte) []byte {
	t.Helper()
	var raw bytes.Buffer
	for _, r := range rows {
		raw.WriteByte(0)
		raw.Write(r)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), byte(colorType)
	out := append([]byte{}, pngSignature...)
	out = append(out, pngChunk("IHDR", ihdr)...)
	for _, c := range extra {
		out = append(out, c...)
	}
	out = append(out, pngChunk("IDAT", z.Bytes())...)
	return append(out, pngChunk("IEND", nil)...)
}

// TestDecodePNGMatchesStdlib decodes stdlib-encoded PNGs (which use every
// filter type) and compares with image/png.
func TestDecodePNGMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewNRGBA(image.Rect(0, 0, 67, 45))
	for i := range img.Pix {
		img.Pix[i] = uint8(i/7) + uint8(rng.IntN(4))
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	f := decodeOne(t, buf.Bytes())
	if f.Mode != ModeRGBA || !bytes.Equal(f.Pix, img.Pix) {
		t.Fatal("RGBA pixels differ from image/png's")
	}
}

func TestDecodePNGErrors(t *testing.T) {
	good := rawPNG(t, 2, 2, 2, 8, false, func(x, y int) []byte { return []byte{1, 2, 3} })
	badCRC := append([]byte{}, good...)
	badCRC[len(pngSignature)+8+13] ^= 0xff // IHDR CRC
	huge := rawPNG(t, 1, 1, 0, 8, false, func(x, y int) []byte { return []byte{0} })
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	for _, c := range []struct {
		name string
		data []byte
		bomb bool
	}{
		{"bad IHDR CRC", badCRC, false},
		{"no IHDR", append(append([]byte{}, pngSignature...), pngChunk("IEND", nil)...), false},
		{"decompression bomb", huge, true},
		{"bad depth", rawPNGRows(t, 1, 1, 2, 4, [][]byte{{0}}), false},
	} {
		_, err := Decode(c.data, Options{})
		var bomb *BombError
		if err == nil || errors.As(err, &bomb) != c.bomb {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	// A truncated image keeps the rows it has, like Pillow loading
	// truncated images.
	rng := rand.New(rand.NewPCG(5, 6))
	big := rawPNG(t, 64, 64, 0, 8, false, func(x, y int) []byte {
		if y == 0 {
			return []byte{byte(x)}
		}
		return []byte{byte(1 + rng.IntN(255))}
	})
	idat := bytes.Index(big, []byte("IDAT"))
	cut := append([]byte{}, big[:idat+4+len(big)/2]...)
	f := decodeOne(t, cut)
	if f.Pix[1] != 1 || f.Pix[len(f.Pix)-1] != 0 {
		t.Fatalf("truncated image: first row %v, last pixel %d", f.Pix[:4], f.Pix[len(f.Pix)-1])
	}
}

func TestEncodePNGRoundTrip(t *testing.T) {
	for _, c := range []int{1, 2, 3, 4} {
		for _, size := range [][2]int{{1, 1}, {37, 5}, {300, 900}} {
			w, h := size[0], size[1]
			pix := make([]uint8, w*h*c)
			rng := rand.New(rand.NewPCG(uint64(c), uint64(w)))
			for i := range pix {
				if i%3 == 0 {
					pix[i] = uint8(rng.IntN(256))
				} else {
					pix[i] = uint8(i / (w * c))
				}
			}
			var buf bytes.Buffer
			if err := EncodePNG(&buf, pix, w, h, c, []PNGText{{Key: "prompt", Value: `{"a": 1}`}}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(buf.Bytes(), []byte("tEXtprompt\x00{\"a\": 1}")) {
				t.Errorf("%d channels: no tEXt chunk", c)
			}
			img, err := png.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("%d channels %dx%d: image/png: %v", c, w, h, err)
			}
			f := decodeOne(t, buf.Bytes())
			if !bytes.Equal(f.Pix, pix) {
				t.Errorf("%d channels %dx%d: pixels differ after round trip", c, w, h)
			}
			if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
				t.Errorf("size %v", img.Bounds())
			}
		}
	}
	// A flat image is deflated, not just Huffman-coded.
	flat := make([]uint8, 512*512*3)
	var buf bytes.Buffer
	if err := EncodePNG(&buf, flat, 512, 512, 3, nil); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 20000 {
		t.Errorf("flat 512x512 image encoded to %d bytes", buf.Len())
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestEncodePNGRejects(t *testing.T) {
	var buf bytes.Buffer
	for _, c := range []struct {
		pix  []uint8
		w, h int
		ch   int
		txt  []PNGText
	}{
		{make([]uint8, 4), 2, 2, 5, nil},
		{make([]uint8, 3), 2, 2, 1, nil},
		{nil, 0, 1, 1, nil},
		{make([]uint8, 1), 1, 1, 1, []PNGText{{Key: ""}}},
		{make([]uint8, 1), 1, 1, 1, []PNGText{{Key: "a\x00b"}}},
	} {
		if err := EncodePNG(&buf, c.pix, c.w, c.h, c.ch, c.txt); err == nil {
			t.Errorf("EncodePNG(%dx%d, %d channels) succeeded", c.w, c.h, c.ch)
		}
	}
}

func TestAdler32Combine(t *testing.T) {
	a, b := []byte("hello, "), bytes.Repeat([]byte("world"), 30000)
	got := adler32Combine(adler32.Checksum(a), adler32.Checksum(b), len(b))
	if want := adler32.Checksum(append(a, b...)); got != want {
		t.Fatalf("combine = %08x, want %08x", got, want)
	}
}

func TestUnfilterAllTypes(t *testing.T) {
	prev := []byte{10, 20, 30, 40, 50, 60}
	orig := []byte{12, 25, 33, 41, 200, 7}
	bpp := 2
	filters := map[uint8]func(i int) byte{
		1: func(i int) byte { return orig[i] - at(orig, i-bpp) },
		2: func(i int) byte { return orig[i] - prev[i] },
		3: func(i int) byte { return orig[i] - byte((int(at(orig, i-bpp))+int(prev[i]))/2) },
		4: func(i int) byte {
			a, b, c := int(at(orig, i-bpp)), int(prev[i]), int(at(prev, i-bpp))
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				return orig[i] - byte(a)
			case pb <= pc:
				return orig[i] - byte(b)
			}
			return orig[i] - byte(c)
		},
	}
	for ft, f := range filters {
		cur := make([]byte, len(orig))
		for i := range cur {
			cur[i] = f(i)
		}
		if err := unfilter(ft, cur, prev, bpp); err != nil || !bytes.Equal(cur, orig) {
			t.Errorf("filter %d: %v %v", ft, cur, err)
		}
	}
	if err := unfilter(5, []byte{1}, []byte{1}, 1); err == nil {
		t.Error("filter 5 accepted")
	}
}

func at(b []byte, i int) byte {
	if i < 0 {
		return 0
	}
	return b[i]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
