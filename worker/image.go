package worker

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"unicode/utf8"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"

	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/truncate"
)

// imageInfo is what the worker learns of an input image before ComfyUI sees
// it.
type imageInfo struct {
	// format is png, jpeg, gif, webp, bmp or tiff.
	format        string
	width, height int
}

// isDataURI says whether v starts like a data: URI.
func isDataURI(v []byte) bool {
	return len(v) >= 5 && strings.EqualFold(string(v[:5]), "data:")
}

// isURL says whether v starts like an http(s) URL.
func isURL(v []byte) bool {
	l := min(len(v), 8)
	p := strings.ToLower(string(v[:l]))
	return strings.HasPrefix(p, "https://") || strings.HasPrefix(p, "http://")
}

// decodeImageString decodes an inline image: base64 with or without a
// data:image/…;base64, prefix. maxBytes bounds the decoded size; it is
// checked before decoding.
func decodeImageString(v []byte, maxBytes int64) ([]byte, error) {
	return decodeInline(v, maxBytes, false)
}

// decodeFileString decodes an inline file of any kind: base64 with or
// without a data:<image, video or audio type>;base64, prefix. maxBytes
// bounds the decoded size; it is checked before decoding.
func decodeFileString(v []byte, maxBytes int64) ([]byte, error) {
	return decodeInline(v, maxBytes, true)
}

// decodeInline decodes base64 with or without a data: URI prefix, whose
// media type must be an image's, or with anyMedia a video's or audio's.
func decodeInline(v []byte, maxBytes int64, anyMedia bool) ([]byte, error) {
	if isDataURI(v) {
		comma := bytes.IndexByte(v, ',')
		if comma < 0 {
			return nil, errors.New("a data: URI without a comma; want data:image/png;base64,<data>")
		}
		meta := strings.ToLower(string(v[5:comma]))
		if !strings.HasSuffix(meta, ";base64") {
			return nil, fmt.Errorf("a data: URI that is not base64 (%q); want data:image/png;base64,<data>", truncate.Bytes(string(v[:comma+1]), 60))
		}
		mt := strings.TrimSuffix(meta, ";base64")
		if i := strings.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i] // parameters, such as codecs="…"
		}
		media := strings.HasPrefix(mt, "image/") || mt == "application/octet-stream" ||
			anyMedia && (strings.HasPrefix(mt, "video/") || strings.HasPrefix(mt, "audio/"))
		switch {
		case mt != "" && !media && anyMedia:
			return nil, fmt.Errorf("a data: URI of type %q; want an image, a video or audio (data:video/mp4;base64,…)", truncate.Bytes(mt, 40))
		case mt != "" && !media:
			return nil, fmt.Errorf("a data: URI of type %q; want an image (data:image/png;base64,…)", truncate.Bytes(mt, 40))
		}
		v = v[comma+1:]
	}
	if len(v) == 0 {
		if anyMedia {
			return nil, errors.New("empty: give the file as base64")
		}
		return nil, errors.New("empty: give the image as base64")
	}
	if n := int64(len(v)) / 4 * 3; n > maxBytes {
		if anyMedia {
			return nil, fmt.Errorf("%s decoded, over the %s limit per file; send it as a URL", bytesize.Decimal(n), bytesize.Decimal(maxBytes))
		}
		return nil, fmt.Errorf("%s decoded, over the %s limit per image; scale it down, or send a URL", bytesize.Decimal(n), bytesize.Decimal(maxBytes))
	}
	return decodeBase64(v)
}

// decodeBase64 decodes standard or URL-safe base64, padded or not, ignoring
// line breaks.
func decodeBase64(src []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if bytes.IndexByte(src, '-') >= 0 || bytes.IndexByte(src, '_') >= 0 {
		enc = base64.URLEncoding
	}
	n := len(src) - bytes.Count(src, []byte{'\n'}) - bytes.Count(src, []byte{'\r'})
	trimmed := bytes.TrimRight(src, "\r\n")
	if n%4 != 0 && !bytes.HasSuffix(trimmed, []byte("=")) {
		enc = enc.WithPadding(base64.NoPadding)
	}
	dst := make([]byte, enc.DecodedLen(len(src)))
	m, err := enc.Decode(dst, src)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) && int(ce) < len(src) {
			c := src[int(ce)]
			hint := ""
			switch {
			case c == ' ':
				hint = " (a space: was a '+' turned into a space by URL encoding?)"
			case c == '=' || int(ce) > 0 && src[int(ce)-1] == '=':
				hint = " (padding in the middle: are two images joined?)"
			}
			return nil, fmt.Errorf("not valid base64: unexpected %s at offset %d%s", describeByte(c), int(ce), hint)
		}
		return nil, fmt.Errorf("not valid base64: %v", err)
	}
	return dst[:m], nil
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// inspectImage checks that data is a whole image of a format ComfyUI loads,
// reads its size from the header (never decoding pixels of an image whose
// header claims too many), and with lim.DecodeImages decodes it fully.
func inspectImage(data []byte, lim *Limits) (imageInfo, error) {
	var info imageInfo
	if len(data) == 0 {
		return info, errors.New("the image is empty (0 bytes)")
	}
	var (
		cfg image.Config
		err error
		r   = bytes.NewReader(data)
	)
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		info.format = "png"
		if err := checkPNG(data); err != nil {
			return info, err
		}
		cfg, err = png.DecodeConfig(r)
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		info.format = "jpeg"
		if err := checkJPEG(data); err != nil {
			return info, err
		}
		cfg, err = jpeg.DecodeConfig(r)
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		info.format = "gif"
		if t := bytes.TrimRight(data, "\x00"); len(t) < 14 || t[len(t)-1] != 0x3B {
			return info, errors.New("the GIF is cut off (no trailer byte at its end): send the whole file")
		}
		cfg, err = gif.DecodeConfig(r)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		info.format = "webp"
		if size := int64(binary.LittleEndian.Uint32(data[4:8])) + 8; size > int64(len(data)) {
			return info, fmt.Errorf("the WebP is cut off: its header says %d bytes, only %d were sent", size, len(data))
		}
		cfg, err = webp.DecodeConfig(r)
	case bytes.HasPrefix(data, []byte("BM")) && len(data) >= 6:
		info.format = "bmp"
		if size := int64(binary.LittleEndian.Uint32(data[2:6])); size > int64(len(data)) {
			return info, fmt.Errorf("the BMP is cut off: its header says %d bytes, only %d were sent", size, len(data))
		}
		cfg, err = bmp.DecodeConfig(r)
	case bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*")):
		info.format = "tiff"
		cfg, err = tiff.DecodeConfig(r)
	default:
		return info, notAnImage(data)
	}
	if err != nil {
		return info, fmt.Errorf("the %s header cannot be read (%v): the file is damaged", strings.ToUpper(info.format), err)
	}
	info.width, info.height = cfg.Width, cfg.Height
	if info.width <= 0 || info.height <= 0 {
		return info, fmt.Errorf("the %s is empty (%dx%d pixels)", strings.ToUpper(info.format), info.width, info.height)
	}
	if lim.MaxImageSide > 0 && (info.width > lim.MaxImageSide || info.height > lim.MaxImageSide) {
		return info, fmt.Errorf("the image is %dx%d pixels, over the %d px limit per side; scale it down", info.width, info.height, lim.MaxImageSide)
	}
	if px := int64(info.width) * int64(info.height); lim.MaxImagePixels > 0 && px > lim.MaxImagePixels {
		return info, fmt.Errorf("the image is %dx%d = %.1f megapixels, over the %.1f megapixel limit; scale it down", info.width, info.height, float64(px)/1e6, float64(lim.MaxImagePixels)/1e6)
	}
	if lim.DecodeImages {
		if err := decodeFully(info.format, data); err != nil {
			return info, fmt.Errorf("the %s cannot be decoded (%v): the file is damaged", strings.ToUpper(info.format), err)
		}
	}
	return info, nil
}

// decodeFully decodes every pixel (Limits.DecodeImages).
func decodeFully(format string, data []byte) error {
	r := bytes.NewReader(data)
	var err error
	switch format {
	case "png":
		_, err = png.Decode(r)
	case "jpeg":
		_, err = jpeg.Decode(r)
	case "gif":
		_, err = gif.DecodeAll(r)
	case "webp":
		_, err = webp.Decode(r)
	case "bmp":
		_, err = bmp.Decode(r)
	case "tiff":
		_, err = tiff.Decode(r)
	}
	return err
}

// notAnImage explains what data looks like instead.
func notAnImage(data []byte) error {
	head := data[:min(len(data), 8)]
	trim := bytes.TrimSpace(data[:min(len(data), 256)])
	switch {
	case bytes.HasPrefix(trim, []byte("<")):
		return errors.New("not an image: it is HTML or XML text (an error page?); send a PNG, JPEG, WebP, GIF, BMP or TIFF file")
	case bytes.HasPrefix(trim, []byte("{")) || bytes.HasPrefix(trim, []byte("[")):
		return errors.New("not an image: it is JSON text; send a PNG, JPEG, WebP, GIF, BMP or TIFF file")
	case bytes.HasPrefix(data, []byte("iVBOR")) || bytes.HasPrefix(data, []byte("/9j/")):
		return errors.New("not an image: it is base64 text encoded twice; encode the file once")
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		return errors.New("not an image: it is an MP4/MOV video; images takes PNG, JPEG, WebP, GIF, BMP or TIFF files")
	case utf8.Valid(trim) && len(trim) > 0:
		return errors.New("not an image: it is text; send a PNG, JPEG, WebP, GIF, BMP or TIFF file")
	}
	return fmt.Errorf("not an image ComfyUI can load (PNG, JPEG, WebP, GIF, BMP or TIFF): it starts with bytes % x", head)
}

// checkPNG walks a PNG's chunks: IHDR first, every chunk whole with a
// matching CRC, at least one IDAT, and IEND at the end. It reads no pixels.
func checkPNG(data []byte) error {
	pos := 8
	first := true
	idat := false
	for {
		if pos+8 > len(data) {
			return errors.New("the PNG is cut off (no IEND chunk at its end): send the whole file")
		}
		n := int(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		if first && typ != "IHDR" {
			return fmt.Errorf("the PNG is damaged: its first chunk is %q, not IHDR", typ)
		}
		first = false
		if n < 0 || n > len(data)-pos-12 {
			return fmt.Errorf("the PNG is cut off: chunk %s at byte %d needs %d bytes, only %d were sent; send the whole file", printable(typ), pos, n+12, len(data)-pos)
		}
		body := data[pos+4 : pos+8+n]
		if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(data[pos+8+n:]) {
			return fmt.Errorf("the PNG is damaged: the checksum of chunk %s at byte %d is wrong", printable(typ), pos)
		}
		switch typ {
		case "IDAT":
			idat = true
		case "IEND":
			if !idat {
				return errors.New("the PNG is damaged: it has no image data (IDAT)")
			}
			return nil
		}
		pos += n + 12
	}
}

func printable(s string) string {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("% x", s)
		}
	}
	return s
}

// checkJPEG walks a JPEG's marker segments up to the first scan and checks
// that an end-of-image marker follows it. It reads no pixels.
func checkJPEG(data []byte) error {
	const cut = "the JPEG is cut off (no end-of-image marker): send the whole file"
	pos := 2
	for {
		for pos < len(data) && data[pos] == 0xFF && pos+1 < len(data) && data[pos+1] == 0xFF {
			pos++ // fill bytes
		}
		if pos+2 > len(data) {
			return errors.New(cut)
		}
		if data[pos] != 0xFF {
			return fmt.Errorf("the JPEG is damaged: no marker at byte %d", pos)
		}
		m := data[pos+1]
		pos += 2
		switch {
		case m == 0xD8 || m == 0x01 || m >= 0xD0 && m <= 0xD7:
			continue // no length
		case m == 0xD9:
			return errors.New("the JPEG is damaged: it ends before its image data")
		}
		if pos+2 > len(data) {
			return errors.New(cut)
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		if n < 2 || pos+n > len(data) {
			return errors.New(cut)
		}
		pos += n
		if m == 0xDA { // start of scan: the entropy-coded data follows
			if bytes.LastIndex(data[pos:], []byte{0xFF, 0xD9}) < 0 {
				return errors.New(cut)
			}
			return nil
		}
	}
}
