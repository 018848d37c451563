package imaging

import (
	"bytes"
	"image/png"
	"io"
	"testing"
)

// benchPix returns a 1024×1024 RGB test picture as bytes.
func benchPix() []uint8 {
	img := testPhoto(1024, 1024)
	pix := make([]uint8, 1024*1024*3)
	for i := 0; i < 1024*1024; i++ {
		copy(pix[3*i:3*i+3], img.Pix[4*i:4*i+3])
		pix[3*i] += uint8(i*7919) & 7 // a little noise
	}
	return pix
}

func BenchmarkEncodePNG1024(b *testing.B) {
	pix := benchPix()
	b.SetBytes(int64(len(pix)))
	for b.Loop() {
		if err := EncodePNG(io.Discard, pix, 1024, 1024, 3, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePNG1024(b *testing.B) {
	var buf bytes.Buffer
	if err := EncodePNG(&buf, benchPix(), 1024, 1024, 3, nil); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(1024 * 1024 * 3)
	for b.Loop() {
		if _, err := Decode(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePNG1024Stdlib is image/png on the same file, for comparison.
func BenchmarkDecodePNG1024Stdlib(b *testing.B) {
	var buf bytes.Buffer
	if err := EncodePNG(&buf, benchPix(), 1024, 1024, 3, nil); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(1024 * 1024 * 3)
	for b.Loop() {
		if _, err := png.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchResize(b *testing.B, m Method, ow, oh int) {
	pix := benchPix()
	src := make([]float32, len(pix))
	for i, v := range pix {
		src[i] = float32(v) / 255
	}
	dst := make([]float32, ow*oh*3)
	for b.Loop() {
		if err := Resize(NewView(dst, ow, oh, 3), NewView(src, 1024, 1024, 3), m, Layout{ChannelsLast: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResizeBilinear1024To1536(b *testing.B) { benchResize(b, Bilinear, 1536, 1536) }
func BenchmarkResizeBicubic1024To1536(b *testing.B)  { benchResize(b, Bicubic, 1536, 1536) }
func BenchmarkResizeLanczos1024To768(b *testing.B)   { benchResize(b, Lanczos, 768, 768) }
func BenchmarkResizeArea1024To512(b *testing.B)      { benchResize(b, Area, 512, 512) }
