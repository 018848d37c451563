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
