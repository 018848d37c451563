package engine

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"io"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	_ "golang.org/x/image/bmp" // decoders for the formats imaging does not read
	_ "golang.org/x/image/tiff"
)

// The routes that convert images (/view with channel or preview, and
// /upload/mask) decode with package imaging, which opens files as Pillow
// does, work on 8-bit non-premultiplied RGBA, as Pillow's RGBA mode does, and
// write PNGs with a small encoder that, unlike image/png, can write an RGBA
// file whose pixels are all opaque and can carry text chunks.

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// decodedImage is an image file decoded for conversion.
type decodedImage struct {
	// rgba is the first frame as Pillow's convert("RGBA") gives it; its RGB
	// samples are also what convert("RGB") gives.
	rgba *image.NRGBA
	// hasAlpha says whether Pillow opens the file in RGBA mode.
	hasAlpha bool
	// texts are the PNG's text chunks (tEXt, zTXt, iTXt), raw.
	texts []pngChunk
}

type pngChunk struct {
	typ  string
	data []byte
}

// decodeImage decodes PNG, JPEG, WEBP and GIF files the way Pillow opens
// them (modes, palette and colour-key transparency, the decompression-bomb
// limit; no EXIF rotation, as ComfyUI's /view applies none), and BMP and TIFF
// files with Go's decoders.
func decodeImage(data []byte) (*decodedImage, error) {
	p, err := imaging.Decode(data, imaging.Options{})
	if errors.Is(err, imaging.ErrUnknownFormat) {
		return decodeOther(data)
	}
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	f := p.Frames[0]
	d := &decodedImage{
		rgba:     &image.NRGBA{Pix: f.RGBA(), Stride: 4 * f.W, Rect: image.Rect(0, 0, f.W, f.H)},
		hasAlpha: f.Mode == imaging.ModeRGBA,
	}
	if p.Format == "PNG" {
		_, d.texts, _ = pngInfo(data)
	}
	return d, nil
}

// decodeOther decodes the formats package imaging does not read (BMP, TIFF)
// with Go's decoders, under the same pixel limit.
func decodeOther(data []byte) (*decodedImage, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > imaging.MaxPixelsDefault {
		return nil, fmt.Errorf("not a readable image: %w", &imaging.BombError{Pixels: px, Limit: imaging.MaxPixelsDefault})
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable image: %w", err)
	}
	d := &decodedImage{rgba: toNRGBA(img)}
	switch img.(type) {
	case *image.NRGBA, *image.NRGBA64, *image.RGBA, *image.RGBA64:
		d.hasAlpha = format == "tiff"
	}
	return d, nil
}

// pngInfo returns a PNG's colour type and its text chunks.
func pngInfo(data []byte) (colorType byte, texts []pngChunk, err error) {
	if !bytes.HasPrefix(data, pngSignature) || len(data) < 33 {
		return 0, nil, errors.New("not a PNG")
	}
	colorType = data[25]
	p := data[8:]
	for len(p) >= 12 {
		n := binary.BigEndian.Uint32(p[:4])
		if uint64(n)+12 > uint64(len(p)) {
			break
		}
		typ := string(p[4:8])
		switch typ {
		case "tEXt", "zTXt", "iTXt":
			texts = append(texts, pngChunk{typ: typ, data: append([]byte(nil), p[8:8+n]...)})
		case "IEND":
			return colorType, texts, nil
		}
		p = p[12+n:]
	}
	return colorType, texts, nil
}

// toNRGBA converts an image to 8-bit non-premultiplied RGBA without losing
// the colour of transparent pixels where the source keeps it.
func toNRGBA(src image.Image) *image.NRGBA {
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	switch s := src.(type) {
	case *image.NRGBA:
		for y := 0; y < b.Dy(); y++ {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*b.Dx()], s.Pix[(y)*s.Stride:(y)*s.Stride+4*b.Dx()])
		}
		return dst
	case *image.NRGBA64:
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				c := s.NRGBA64At(b.Min.X+x, b.Min.Y+y)
				i := y*dst.Stride + 4*x
				dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8), uint8(c.A>>8)
			}
		}
		return dst
	}
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			c := color.NRGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := y*dst.Stride + 4*x
			dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = c.R, c.G, c.B, c.A
		}
	}
	return dst
}

// writePNG encodes img as an 8-bit PNG: RGBA when alpha is set, else RGB
// (the alpha channel is dropped). texts are written before the image data.
func writePNG(w io.Writer, img *image.NRGBA, alpha bool, texts []pngChunk) error {
	bw := bufio.NewWriter(w)
	width, height := img.Rect.Dx(), img.Rect.Dy()
	if _, err := bw.Write(pngSignature); err != nil {
		return err
	}
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:4], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:8], uint32(height))
	ihdr[8] = 8 // bit depth
	ihdr[9] = 2 // RGB
	bpp := 3
	if alpha {
		ihdr[9] = 6
		bpp = 4
	}
	if err := writeChunk(bw, "IHDR", ihdr[:]); err != nil {
		return err
	}
	for _, t := range texts {
		if err := writeChunk(bw, t.typ, t.data); err != nil {
			return err
		}
	}
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.DefaultCompression)
	if err != nil {
		return err
	}
	row := make([]byte, 1+width*bpp)
	prev := make([]byte, 1+width*bpp)
	cur := make([]byte, 1+width*bpp)
	for y := 0; y < height; y++ {
		src := img.Pix[y*img.Stride:]
		for x := 0; x < width; x++ {
			copy(cur[1+x*bpp:1+x*bpp+bpp], src[4*x:4*x+bpp])
		}
		// Filter "Up" (2): cheap and good for photos and flat areas alike.
		row[0] = 2
		for i := 1; i < len(row); i++ {
			row[i] = cur[i] - prev[i]
		}
		if _, err := zw.Write(row); err != nil {
			return err
		}
		prev, cur = cur, prev
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := writeChunk(bw, "IDAT", z.Bytes()); err != nil {
		return err
	}
	if err := writeChunk(bw, "IEND", nil); err != nil {
		return err
	}
	return bw.Flush()
}

func writeChunk(w io.Writer, typ string, data []byte) error {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], typ)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:8])
	crc.Write(data)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	for _, b := range [][]byte{hdr[:], data, sum[:]} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
