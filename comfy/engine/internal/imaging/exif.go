package imaging

import (
	"bytes"
	"encoding/binary"
)

// exifOrientation returns the Orientation tag (0x0112) of IFD0 of an EXIF
// block (a TIFF structure, optionally preceded by "Exif\0\0"), or 0 when the
// block has none or is malformed.
func exifOrientation(data []byte) int {
	data = bytes.TrimPrefix(data, []byte("Exif\x00\x00"))
	if len(data) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(data[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 0
	}
	off := int64(bo.Uint32(data[4:8]))
	if off < 8 || off+2 > int64(len(data)) {
		return 0
	}
	n := int64(bo.Uint16(data[off:]))
	for i := int64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > int64(len(data)) {
			return 0
		}
		if bo.Uint16(data[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(data[e+2:]), bo.Uint32(data[e+4:])
		if count < 1 {
			return 0
		}
		switch typ {
		case 3: // SHORT
			return int(bo.Uint16(data[e+8:]))
		case 4: // LONG
			v := bo.Uint32(data[e+8:])
			if v > 8 {
				return 0
			}
			return int(v)
		}
		return 0
	}
	return 0
}
