package runpod

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strings"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
	_ "image/gif" // decoders for image.Decode

	"github.com/comfypod/comfypod/internal/bytesize"
)

// ImageOptions tune EncodeImage.
type ImageOptions struct {
	// MaxSide, when > 0, downscales an image whose width or height is larger
	// so that its longer side is MaxSide, keeping the aspect ratio (Catmull-Rom
	// resampling). 512 to 1024 suits most diffusion workflows. Smaller images
	// are sent as they are.
	MaxSide int
	// DataURI prefixes the result with "data:<type>;base64,". Workers such as
	// worker-comfyui accept both forms; the plain form is smaller.
	DataURI bool
}

// maxImagePixels refuses images whose header promises more pixels than any
// workflow input needs, before decoding them (a decompression bomb).
const maxImagePixels = 40 << 20

// maxImageFile bounds the file EncodeImage reads: RunPod's /runsync payload
// limit, since a larger image could not be sent anyway.
const maxImageFile = RunSyncPayloadLimit

// EncodeImageFile reads an image file and returns it as base64 for a job's
// input (e.g. {"name": "input.png", "image": <this>}); see EncodeImage.
func EncodeImageFile(path string, opts *ImageOptions) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("runpod: read image: %w", err)
	}
	defer f.Close()
	s, err := EncodeImage(f, opts)
	if err != nil {
		return "", fmt.Errorf("%w (%s)", err, path)
	}
	return s, nil
}

// EncodeImage reads a PNG, JPEG, GIF or WEBP image and returns it as base64,
// downscaled to opts.MaxSide if asked. An image that needs no downscaling is
// sent byte for byte. A downscaled image is re-encoded as PNG (keeping alpha,
// for masks) unless it was a JPEG, which stays JPEG.
func EncodeImage(r io.Reader, opts *ImageOptions) (string, error) {
	var o ImageOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxSide < 0 {
		return "", fmt.Errorf("runpod: image max side %d: want >= 0", o.MaxSide)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImageFile+1))
	if err != nil {
		return "", fmt.Errorf("runpod: read image: %w", err)
	}
	if len(data) > maxImageFile {
		return "", fmt.Errorf("runpod: image over %s: RunPod could not accept it in a request", bytesize.Binary(maxImageFile))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("runpod: not a PNG, JPEG, GIF or WEBP image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return "", fmt.Errorf("runpod: image of %dx%d pixels: too large to send", cfg.Width, cfg.Height)
	}
	mediaType := "image/" + format
	if o.MaxSide > 0 && max(cfg.Width, cfg.Height) > o.MaxSide {
		data, mediaType, err = downscale(data, format, o.MaxSide)
		if err != nil {
			return "", err
		}
	}
	enc := base64.StdEncoding.EncodeToString(data)
	if o.DataURI {
		return DataURI(mediaType, enc), nil
	}
	return enc, nil
}

// downscale resizes an image so its longer side is maxSide.
func downscale(data []byte, format string, maxSide int) ([]byte, string, error) {
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("runpod: decode %s image: %w", format, err)
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w >= h {
		h = max(1, int(int64(h)*int64(maxSide)/int64(w)))
		w = maxSide
	} else {
		w = max(1, int(int64(w)*int64(maxSide)/int64(h)))
		h = maxSide
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	var out bytes.Buffer
	if format == "jpeg" {
		if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 92}); err != nil {
			return nil, "", fmt.Errorf("runpod: encode JPEG: %w", err)
		}
		return out.Bytes(), "image/jpeg", nil
	}
	if err := png.Encode(&out, dst); err != nil {
		return nil, "", fmt.Errorf("runpod: encode PNG: %w", err)
	}
	return out.Bytes(), "image/png", nil
}

// DataURI returns "data:<mediaType>;base64,<b64>".
func DataURI(mediaType, b64 string) string {
	return "data:" + mediaType + ";base64," + b64
}

// ParseDataURI splits a base64 data URI into its media type and data. ok is
// false when s is not one (it may be plain base64).
func ParseDataURI(s string) (mediaType, b64 string, ok bool) {
	if len(s) < 5 || !strings.EqualFold(s[:5], "data:") {
		return "", "", false
	}
	header, data, found := strings.Cut(s[5:], ",")
	if !found {
		return "", "", false
	}
	mt, params, _ := strings.Cut(header, ";")
	if !strings.EqualFold(params, "base64") && !strings.HasSuffix(strings.ToLower(params), ";base64") {
		return "", "", false
	}
	return strings.ToLower(strings.TrimSpace(mt)), data, true
}

// StripDataURI returns the base64 data of s without a data: URI prefix, as
// workers that want plain base64 expect; plain base64 is returned as is.
func StripDataURI(s string) string {
	if _, data, ok := ParseDataURI(s); ok {
		return data
	}
	return s
}

// errNoImage is returned by DecodeImageString for empty input.
var errNoImage = errors.New("runpod: empty image data")

// DecodeImageString decodes base64 image data, with or without a data: URI
// prefix, line breaks or padding, for callers that hold an image as a string.
func DecodeImageString(s string) ([]byte, error) {
	s = StripDataURI(strings.TrimSpace(s))
	if s == "" {
		return nil, errNoImage
	}
	b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, &b64Normalizer{r: strings.NewReader(s)}))
	if err != nil {
		return nil, fmt.Errorf("runpod: image data is not valid base64: %w", err)
	}
	return b, nil
}
