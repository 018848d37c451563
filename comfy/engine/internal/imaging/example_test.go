package imaging_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
)

// Example encodes a 2×1 RGBA image and decodes it back the way Pillow opens
// it: mode, alpha band, and the RGB conversion ComfyUI's LoadImage uses.
func Example() {
	var buf bytes.Buffer
	pix := []uint8{255, 0, 0, 255, 0, 0, 255, 51}
	if err := imaging.EncodePNG(&buf, pix, 2, 1, 4, []imaging.PNGText{{Key: "prompt", Value: "{}"}}); err != nil {
		fmt.Println(err)
		return
	}
	p, err := imaging.Decode(buf.Bytes(), imaging.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := p.Frames[0]
	fmt.Println(p.Format, f.Mode, f.W, f.H)
	fmt.Println("rgb", f.RGB())
	fmt.Println("alpha", f.Alpha())
	// Output:
	// PNG RGBA 2 1
	// rgb [255 0 0 0 0 255]
	// alpha [255 51]
}

// ExampleResize upsamples a row with torch's bilinear kernel
// (align_corners=False).
func ExampleResize() {
	src := imaging.NewView([]float32{0, 1}, 2, 1, 1)
	dst := imaging.NewView(make([]float32, 4), 4, 1, 1)
	if err := imaging.Resize(dst, src, imaging.Bilinear, imaging.Layout{ChannelsLast: true}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(dst.Pix)
	// Output:
	// [0 0.25 0.75 1]
}

// ExampleDecode_bomb shows the decompression-bomb check: the size in the
// header is refused before any pixel is allocated.
func ExampleDecode_bomb() {
	// A PNG signature and an IHDR chunk declaring 65536×65536 RGB pixels.
	ihdr := []byte("IHDR\x00\x01\x00\x00\x00\x01\x00\x00\x08\x02\x00\x00\x00")
	file := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	file = binary.BigEndian.AppendUint32(file, crc32.ChecksumIEEE(ihdr))
	_, err := imaging.Decode(file, imaging.Options{MaxPixels: 1 << 20})
	fmt.Println(err)
	// Output:
	// Image size (4294967296 pixels) exceeds limit of 1048576 pixels, could be decompression bomb DOS attack.
}
