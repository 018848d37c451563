package worker

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/serverless"
)

// The runtime writes an Output with AppendJSON, straight into the job-done
// body.
var _ serverless.JSONAppender = (*Output)(nil)

// AppendJSON appends the output's JSON to b: the bytes encoding/json writes
// with HTML escaping off, as the serverless runtime encodes results. It
// exists for speed: the base64 files are copied into b once, after b has
// been grown to hold the whole output, instead of being encoded at
// encoding/json's pace into a buffer that doubles as it goes.
func (o *Output) AppendJSON(b []byte) ([]byte, error) {
	if o == nil {
		return append(b, "null"...), nil
	}
	b = slices.Grow(b, o.jsonSize()+64)
	b = append(b, `{"images":`...)
	b = appendFiles(b, o.Images)
	if len(o.Videos) > 0 {
		b = append(b, `,"videos":`...)
		b = appendFiles(b, o.Videos)
	}
	if len(o.Audio) > 0 {
		b = append(b, `,"audio":`...)
		b = appendFiles(b, o.Audio)
	}
	if len(o.Files) > 0 {
		b = append(b, `,"files":`...)
		b = appendFiles(b, o.Files)
	}
	if len(o.Text) > 0 {
		b = append(b, `,"text":`...)
		b = appendStrings(b, o.Text)
	}
	if len(o.Params) > 0 {
		b = append(b, `,"params":`...)
		var err error
		if b, err = appendEncoded(b, o.Params); err != nil {
			return nil, err
		}
	}
	if o.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, o.Status)
	}
	if len(o.Errors) > 0 {
		b = append(b, `,"errors":`...)
		b = appendStrings(b, o.Errors)
	}
	return append(b, '}'), nil
}

// jsonSize is about the size of the output's JSON: its strings plus the
// keys and punctuation around them. Strings that need escaping make it low.
func (o *Output) jsonSize() int {
	n := 256
	for _, fs := range [][]File{o.Images, o.Videos, o.Audio, o.Files} {
		for _, f := range fs {
			n += len(f.Filename) + len(f.Type) + len(f.Data) + len(f.Format) + len(f.Node) + 96
		}
	}
	for _, ss := range [][]string{o.Text, o.Errors} {
		for _, s := range ss {
			n += len(s) + 3
		}
	}
	for k, v := range o.Params {
		n += len(k) + len(v) + 4
	}
	return n + len(o.Status)
}

func appendFiles(b []byte, files []File) []byte {
	if files == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, f := range files {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"filename":`...)
		b = appendString(b, f.Filename)
		b = append(b, `,"type":`...)
		b = appendString(b, f.Type)
		b = append(b, `,"data":`...)
		b = appendString(b, f.Data)
		if f.Format != "" {
			b = append(b, `,"format":`...)
			b = appendString(b, f.Format)
		}
		if f.Node != "" {
			b = append(b, `,"node":`...)
			b = appendString(b, f.Node)
		}
		if f.Animated {
			b = append(b, `,"animated":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as encoding/json writes it with HTML escaping off.
// Printable ASCII without quotes or backslashes, which is all of a base64
// file, is copied as is, checked eight bytes at a time.
func appendString(b []byte, s string) []byte {
	if !plainASCII(s) {
		out, _ := appendEncoded(b, s) // a string always encodes
		return out
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainASCII reports whether s holds only bytes 0x20-0x7e other than '"' and
// '\\', which JSON takes unescaped. Quotes and backslashes are looked for
// with the vectorised strings.IndexByte, the other bytes 32 at a time.
func plainASCII(s string) bool {
	if strings.IndexByte(s, '"') >= 0 || strings.IndexByte(s, '\\') >= 0 {
		return false
	}
	i := 0
	for ; i+32 <= len(s); i += 32 {
		if outside(load64(s[i:i+8]))|outside(load64(s[i+8:i+16]))|outside(load64(s[i+16:i+24]))|outside(load64(s[i+24:i+32])) != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// load64 reads eight bytes little-endian.
func load64(w string) uint64 {
	_ = w[7]
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

// outside is non-zero when a byte of x is below 0x20 or at or above 0x7f.
func outside(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	return ((x-0x2020202020202020)&^x | x | (x + ones)) & highs
}

// appendEncoded appends v as encoding/json encodes it with HTML escaping
// off, without the newline.
func appendEncoded(b []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil
}
