package imaging

import (
	"bytes"
	"errors"
	"fmt"
)

// MaxPixelsDefault is Pillow's decompression-bomb limit (twice
// Image.MAX_IMAGE_PIXELS): an image with more pixels than this fails to open.
const MaxPixelsDefault = 2 * 89478485

// ErrUnknownFormat reports data that is not a PNG, JPEG, WEBP or GIF file.
var ErrUnknownFormat = errors.New("unknown image format")

// BombError reports an image whose declared size exceeds the pixel limit. Its
// text is Pillow's DecompressionBombError message.
type BombError struct {
	Pixels, Limit int64
}

// Error returns Pillow's DecompressionBombError message.
func (e *BombError) Error() string {
	return fmt.Sprintf("Image size (%d pixels) exceeds limit of %d pixels, could be decompression bomb DOS attack.", e.Pixels, e.Limit)
}

// FormatError reports a file of a known format that could not be decoded.
type FormatError struct {
	Format string // "PNG", "JPEG", "WEBP" or "GIF"
	Err    error
}

// Error says which format failed and why.
func (e *FormatError) Error() string { return fmt.Sprintf("bad %s image: %v", e.Format, e.Err) }

// Unwrap returns the decoder's error.
func (e *FormatError) Unwrap() error { return e.Err }

// Picture is a decoded image file.
type Picture struct {
	// Format is Pillow's name of the file format: "PNG", "JPEG", "WEBP", "GIF".
	Format string
	// Frames holds the frames in file order (several for animated GIFs), each
	// as Pillow presents it after seeking to it.
	Frames []*Frame
	// Orientation is the EXIF orientation tag (1..8), or 0 when absent.
	Orientation int
}

// Options tune Decode.
type Options struct {
	// MaxPixels is the largest width*height of a frame, and of all frames
	// together, that Decode accepts; 0 means MaxPixelsDefault.
	MaxPixels int64
}

func (o Options) maxPixels() int64 {
	if o.MaxPixels <= 0 {
		return MaxPixelsDefault
	}
	return o.MaxPixels
}

// checkSize refuses a frame of w×h pixels (or a declared size) above the limit.
func (o Options) checkSize(w, h int) error {
	px := int64(w) * int64(h)
	if px > o.maxPixels() {
		return &BombError{Pixels: px, Limit: o.maxPixels()}
	}
	return nil
}

// Sniff returns Pillow's format name for data, or "" when it is none of the
// formats Decode reads.
func Sniff(data []byte) string {
	switch {
	case bytes.HasPrefix(data, pngSignature):
		return "PNG"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		return "JPEG"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "WEBP"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "GIF"
	}
	return ""
}

// Decode decodes a PNG, JPEG, WEBP or GIF file. It checks the declared size
// against the pixel limit before allocating any pixels, and returns
// ErrUnknownFormat, a *BombError or a *FormatError on failure.
func Decode(data []byte, opts Options) (*Picture, error) {
	var (
		p   *Picture
		err error
	)
	switch format := Sniff(data); format {
	case "PNG":
		p, err = decodePNG(data, opts)
	case "JPEG":
		p, err = decodeJPEG(data, opts)
	case "WEBP":
		p, err = decodeWEBP(data, opts)
	case "GIF":
		p, err = decodeGIF(data, opts)
	default:
		return nil, ErrUnknownFormat
	}
	if err != nil {
		var bomb *BombError
		if errors.As(err, &bomb) {
			return nil, bomb
		}
		var fe *FormatError
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, &FormatError{Format: Sniff(data), Err: err}
	}
	if len(p.Frames) == 0 {
		return nil, &FormatError{Format: p.Format, Err: errors.New("no image in file")}
	}
	return p, nil
}
