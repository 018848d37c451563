// Package exif reads the orientation an image's EXIF data gives it: the tag
// cameras and phones write instead of turning the pixels, which Pillow's
// ImageOps.exif_transpose (and so ComfyUI's LoadImage) applies. It finds the
// EXIF block in JPEG, PNG and WEBP files and reads its Orientation tag;
// turning the pixels is left to the caller, whose image type it knows.
package exif

import (
	"bytes"
	"encoding/binary"
)

// Orientations, as EXIF numbers them (tag 0x0112): how the stored pixels
// must be turned to show the picture upright.
const (
	Normal     = 1 // as stored
	FlipH      = 2 // mirrored left to right
	Rotate180  = 3 // a half turn
	FlipV      = 4 // mirrored top to bottom
	Transpose  = 5 // mirrored along the main diagonal
	Rotate90CW = 6 // a quarter turn clockwise
	Transverse = 7 // mirrored along the other diagonal
	Rotate270  = 8 // a quarter turn counter-clockwise
)

// Swaps reports whether orientation o swaps width and height.
func Swaps(o int) bool { return o >= Transpose && o <= Rotate270 }

// Orientation returns the Orientation tag (0x0112) of IFD0 of an EXIF block
// (a TIFF structure, optionally preceded by "Exif\0\0"), or 0 when the block
// has none or is malformed.
func Orientation(block []byte) int {
	block = bytes.TrimPrefix(block, []byte("Exif\x00\x00"))
	if len(block) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(block[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int64(bo.Uint32(block[4:8]))
	if off < 8 || off+2 > int64(len(block)) {
		return 0
	}
	n := int64(bo.Uint16(block[off:]))
	for i := int64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > int64(len(block)) {
			return 0
		}
		if bo.Uint16(block[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(block[e+2:]), bo.Uint32(block[e+4:])
		if count < 1 {
			return 0
		}
		switch typ {
		case 3: // SHORT
			return int(bo.Uint16(block[e+8:]))
		case 4: // LONG
			v := bo.Uint32(block[e+8:])
			if v > 8 {
				return 0
			}
			return int(v)
		}
		return 0
	}
	return 0
}

// JPEG returns the payload of the first APP1 "Exif" segment of a JPEG file,
// which is what Pillow reads the orientation from, or nil.
func JPEG(data []byte) []byte {
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xff {
			return nil
		}
		marker := data[p+1]
		if marker == 0xff { // fill byte
			p++
			continue
		}
		if marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01 {
			p += 2
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			return nil
		}
		n := int(data[p+2])<<8 | int(data[p+3])
		if n < 2 || p+2+n > len(data) {
			return nil
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg
		}
		p += 2 + n
	}
	return nil
}

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// PNG returns the body of the eXIf chunk of a PNG file, or nil.
func PNG(data []byte) []byte {
	if !bytes.HasPrefix(data, []byte(pngSignature)) {
		return nil
	}
	p := len(pngSignature)
	for p+8 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		end := int64(p) + 8 + n
		if end > int64(len(data)) {
			return nil
		}
		switch typ {
		case "eXIf":
			return data[p+8 : end]
		case "IEND":
			return nil
		}
		p = int(end) + 4 // the CRC
	}
	return nil
}

// WEBP returns the body of the first EXIF chunk of a WEBP file, or nil.
func WEBP(data []byte) []byte {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return nil
	}
	p := 12
	for p+8 <= len(data) {
		id := string(data[p : p+4])
		n := int64(binary.LittleEndian.Uint32(data[p+4:]))
		body := data[p+8:]
		if n > int64(len(body)) {
			n = int64(len(body))
		}
		if id == "EXIF" {
			return body[:n]
		}
		p += 8 + int(n) + int(n&1)
	}
	return nil
}
