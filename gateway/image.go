package gateway

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"

	"github.com/comfypod/comfypod/internal/exif"
)

// Image formats the gateway accepts.
const (
	formatPNG  = "png"
	formatJPEG = "jpeg"
	formatWEBP = "webp"
)

// sniffFormat names an image format from its first bytes: png, jpeg, webp,
// or, for formats that are refused, gif, bmp, tiff, heic or avif; "" when
// the data is no image at all.
func sniffFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return formatJPEG
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return formatWEBP
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case bytes.HasPrefix(b, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && bytes.Equal(b[4:8], []byte("ftyp")):
		switch string(b[8:12]) {
		case "avif", "avis":
			return "avif"
		case "heic", "heix", "mif1", "msf1":
			return "heic"
		}
	}
	return ""
}

func decodeConfig(b []byte, format string) (image.Config, error) {
	r := bytes.NewReader(b)
	switch format {
	case formatPNG:
		return png.DecodeConfig(r)
	case formatJPEG:
		return jpeg.DecodeConfig(r)
	case formatWEBP:
		return webp.DecodeConfig(r)
	}
	return image.Config{}, fmt.Errorf("unsupported format %q", format)
}

func decodeImage(b []byte, format string) (image.Image, error) {
	r := bytes.NewReader(b)
	switch format {
	case formatPNG:
		return png.Decode(r)
	case formatJPEG:
		return jpeg.Decode(r)
	case formatWEBP:
		return webp.Decode(r)
	}
	return nil, fmt.Errorf("unsupported format %q", format)
}

// orientationOf returns the EXIF orientation of an image file (1 to 8), or 0
// when it has none.
func orientationOf(b []byte, format string) int {
	var block []byte
	switch format {
	case formatJPEG:
		block = exif.JPEG(b)
	case formatPNG:
		block = exif.PNG(b)
	case formatWEBP:
		block = exif.WEBP(b)
	}
	if o := exif.Orientation(block); o >= exif.Normal && o <= exif.Rotate270 {
		return o
	}
	return 0
}

// turns reports whether EXIF orientation o changes the pixels.
func turns(o int) bool { return o > exif.Normal && o <= exif.Rotate270 }

// uprightSize is the size of a w×h image once turned as orientation o says.
func uprightSize(w, h, o int) (int, int) {
	if exif.Swaps(o) {
		return h, w
	}
	return w, h
}

// upright returns img turned as EXIF orientation o says, as Pillow's
// ImageOps.exif_transpose (and so ComfyUI's LoadImage) turns it. Images of
// the standard pixel types keep their type; the others (YCbCr from JPEG)
// become RGBA, or NRGBA when they have alpha.
func upright(img image.Image, o int) image.Image {
	if !turns(o) {
		return img
	}
	switch m := img.(type) {
	case *image.NRGBA:
		p, s, r := turnPix(m.Pix, m.Stride, 4, m.Rect, o)
		return &image.NRGBA{Pix: p, Stride: s, Rect: r}
	case *image.RGBA:
		p, s, r := turnPix(m.Pix, m.Stride, 4, m.Rect, o)
		return &image.RGBA{Pix: p, Stride: s, Rect: r}
	case *image.NRGBA64:
		p, s, r := turnPix(m.Pix, m.Stride, 8, m.Rect, o)
		return &image.NRGBA64{Pix: p, Stride: s, Rect: r}
	case *image.RGBA64:
		p, s, r := turnPix(m.Pix, m.Stride, 8, m.Rect, o)
		return &image.RGBA64{Pix: p, Stride: s, Rect: r}
	case *image.Gray:
		p, s, r := turnPix(m.Pix, m.Stride, 1, m.Rect, o)
		return &image.Gray{Pix: p, Stride: s, Rect: r}
	case *image.Gray16:
		p, s, r := turnPix(m.Pix, m.Stride, 2, m.Rect, o)
		return &image.Gray16{Pix: p, Stride: s, Rect: r}
	case *image.Alpha:
		p, s, r := turnPix(m.Pix, m.Stride, 1, m.Rect, o)
		return &image.Alpha{Pix: p, Stride: s, Rect: r}
	case *image.CMYK:
		p, s, r := turnPix(m.Pix, m.Stride, 4, m.Rect, o)
		return &image.CMYK{Pix: p, Stride: s, Rect: r}
	case *image.Paletted:
		p, s, r := turnPix(m.Pix, m.Stride, 1, m.Rect, o)
		return &image.Paletted{Pix: p, Stride: s, Rect: r, Palette: m.Palette}
	}
	b := img.Bounds()
	r := image.Rect(0, 0, b.Dx(), b.Dy())
	if _, ok := img.(*image.YCbCr); ok {
		dst := image.NewRGBA(r)
		draw.Draw(dst, r, img, b.Min, draw.Src)
		return upright(dst, o)
	}
	dst := image.NewNRGBA(r)
	draw.Draw(dst, r, img, b.Min, draw.Src)
	return upright(dst, o)
}

// turnPix turns the pixels of an image of bpp bytes per pixel as EXIF
// orientation o says, returning the new pixels, stride and bounds (from 0,0).
func turnPix(pix []byte, stride, bpp int, r image.Rectangle, o int) ([]byte, int, image.Rectangle) {
	w, h := r.Dx(), r.Dy()
	ow, oh := uprightSize(w, h, o)
	out := make([]byte, ow*oh*bpp)
	// src maps an output pixel to the stored one.
	var src func(x, y int) (int, int)
	switch o {
	case exif.FlipH:
		src = func(x, y int) (int, int) { return w - 1 - x, y }
	case exif.Rotate180:
		src = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case exif.FlipV:
		src = func(x, y int) (int, int) { return x, h - 1 - y }
	case exif.Transpose:
		src = func(x, y int) (int, int) { return y, x }
	case exif.Rotate90CW:
		src = func(x, y int) (int, int) { return y, h - 1 - x }
	case exif.Transverse:
		src = func(x, y int) (int, int) { return w - 1 - y, h - 1 - x }
	default: // exif.Rotate270: a quarter turn counter-clockwise
		src = func(x, y int) (int, int) { return w - 1 - y, x }
	}
	for y := range oh {
		row := out[y*ow*bpp:]
		for x := range ow {
			sx, sy := src(x, y)
			s := sy*stride + sx*bpp
			copy(row[x*bpp:(x+1)*bpp], pix[s:s+bpp])
		}
	}
	return out, ow * bpp, image.Rect(0, 0, ow, oh)
}

// fitSide returns w×h scaled so that the longer side is limit, keeping the
// aspect ratio; unchanged when it already fits or limit is 0.
func fitSide(w, h, limit int) (int, int) {
	if limit <= 0 || max(w, h) <= limit {
		return w, h
	}
	if w >= h {
		return limit, max(1, (h*limit+w/2)/w)
	}
	return max(1, (w*limit+h/2)/h), limit
}

// scaleImage resamples img to w×h (Catmull-Rom) as non-premultiplied RGBA.
func scaleImage(img image.Image, w, h int) *image.NRGBA {
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}

func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maskPaint reads how strongly each pixel of a mask asks to be painted, 0 to
// 255. A mask with any transparency is read by its alpha, as ComfyUI's mask
// editor writes it (transparent = paint); an opaque one by its brightness
// (white = paint). It also reports whether any pixel is painted.
func maskPaint(img image.Image) (*image.Gray, bool) {
	b := img.Bounds()
	n := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(n, n.Bounds(), img, b.Min, draw.Src)
	alpha := false
	for i := 3; i < len(n.Pix); i += 4 {
		if n.Pix[i] != 0xff {
			alpha = true
			break
		}
	}
	g := image.NewGray(n.Bounds())
	painted := false
	for i, j := 0, 0; i < len(n.Pix); i, j = i+4, j+1 {
		var v uint8
		if alpha {
			v = 0xff - n.Pix[i+3]
		} else {
			v = color.GrayModel.Convert(color.NRGBA{n.Pix[i], n.Pix[i+1], n.Pix[i+2], 0xff}).(color.Gray).Y
		}
		g.Pix[j] = v
		if v != 0 {
			painted = true
		}
	}
	return g, painted
}

// canonicalMask writes a paint map as the mask workers get: RGBA where both
// readings agree — alpha is 255 − paint (LoadImage's MASK output, 1 − alpha,
// is the paint) and the colour is the paint in grey (ImageToMask on any
// channel reads the paint too).
func canonicalMask(paint *image.Gray) *image.NRGBA {
	out := image.NewNRGBA(paint.Bounds())
	for i, v := range paint.Pix {
		o := i * 4
		out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = v, v, v, 0xff-v
	}
	return out
}

// scaleGray resamples a paint map to w×h (bilinear, so edges stay soft but
// no ringing pushes values out of range).
func scaleGray(g *image.Gray, w, h int) *image.Gray {
	dst := image.NewGray(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), g, g.Bounds(), draw.Src, nil)
	return dst
}
