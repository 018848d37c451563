package worker

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"path"
	"strings"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/webp"
)

// maxConvertBytes bounds an output image read for conversion.
const maxConvertBytes = 256 << 20

// sameFormat says whether a file name already has the format's extension.
func sameFormat(name, format string) bool {
	ext := strings.ToLower(path.Ext(name))
	switch format {
	case "jpeg":
		return ext == ".jpg" || ext == ".jpeg"
	default:
		return ext == "."+format
	}
}

// convert reads an output image and re-encodes it in the job's format.
func (r *jobRun) convert(ctx context.Context, f comfy.OutputFile) (data []byte, name string, err error) {
	d, err := r.h.client.View(ctx, f.FileRef)
	if err != nil {
		return nil, "", fmt.Errorf("could not be read from ComfyUI: %w", err)
	}
	defer d.Close()
	src, err := io.ReadAll(io.LimitReader(d, maxConvertBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("could not be read from ComfyUI: %w", err)
	}
	if len(src) > maxConvertBytes {
		return nil, "", fmt.Errorf("is over %s, too large to convert", bytesize.Decimal(maxConvertBytes))
	}
	out, err := convertImage(src, r.format, r.quality)
	if err != nil {
		return nil, "", err
	}
	name = strings.TrimSuffix(r.publicName(f.Filename), path.Ext(f.Filename))
	ext := "." + r.format
	if r.format == "jpeg" {
		ext = ".jpg"
	}
	return out, name + ext, nil
}

// convertImage decodes an image and encodes it as png, jpeg (flattened on
// white, at quality) or webp (lossless).
func convertImage(src []byte, format string, quality int) ([]byte, error) {
	info, err := inspectImage(src, &Limits{MaxImageSide: MaxImageSideDefault, MaxImagePixels: 1 << 30})
	if err != nil {
		return nil, fmt.Errorf("cannot be converted: %w", err)
	}
	var img image.Image
	switch info.format {
	case "png":
		img, err = png.Decode(bytes.NewReader(src))
	case "jpeg":
		img, err = jpeg.Decode(bytes.NewReader(src))
	default:
		img, _, err = image.Decode(bytes.NewReader(src))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot be decoded for conversion: %w", err)
	}
	var buf bytes.Buffer
	switch format {
	case "png":
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, flatten(img), &jpeg.Options{Quality: quality})
	case "webp":
		err = webp.Encode(&buf, img, nil)
	default:
		return nil, fmt.Errorf("cannot convert to %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding %s failed: %w", format, err)
	}
	return buf.Bytes(), nil
}

// flatten composites an image with transparency onto white, since JPEG has
// no alpha.
func flatten(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	dst := image.NewRGBA(b)
	draw.Draw(dst, b, image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, b, img, b.Min, draw.Over)
	return dst
}
