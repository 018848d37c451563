package imaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"

	"golang.org/x/image/webp"

	"github.com/comfypod/comfypod/internal/exif"
)

// webpInfo is what decodeWEBP reads from the RIFF chunks itself.
type webpInfo struct {
	hasAlpha bool // libwebp's WebPGetFeatures has_alpha
	animated bool
	exif     []byte
}

func readWEBPInfo(data []byte) webpInfo {
	var info webpInfo
	p := 12
	first := true
	for p+8 <= len(data) {
		id := string(data[p : p+4])
		n := int(binary.LittleEndian.Uint32(data[p+4:]))
		body := data[p+8:]
		if n < 0 || n > len(body) {
			n = len(body)
		}
		body = body[:n]
		switch id {
		case "VP8X":
			if first && len(body) >= 1 {
				info.hasAlpha = body[0]&0x10 != 0
				info.animated = body[0]&0x02 != 0
			}
		case "ALPH":
			info.hasAlpha = true
		case "VP8L":
			if first && len(body) >= 5 && body[0] == 0x2f {
				info.hasAlpha = binary.LittleEndian.Uint32(body[1:])>>28&1 != 0
			}
		case "EXIF":
			if info.exif == nil {
				info.exif = body
			}
		}
		first = false
		p += 8 + n + n&1
	}
	return info
}

func decodeWEBP(data []byte, opts Options) (*Picture, error) {
	info := readWEBPInfo(data)
	if info.animated {
		return nil, &FormatError{Format: "WEBP", Err: errors.New("animated WEBP is not supported")}
	}
	cfg, err := webp.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, &FormatError{Format: "WEBP", Err: err}
	}
	if err := opts.checkSize(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, &FormatError{Format: "WEBP", Err: err}
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	rgba := make([]uint8, 4*w*h)
	switch m := img.(type) {
	case *image.YCbCr:
		webpToRGBA(rgba, m, nil, 0)
	case *image.NYCbCrA:
		webpToRGBA(rgba, &m.YCbCr, m.A, m.AStride)
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			copy(rgba[y*w*4:(y+1)*w*4], m.Pix[y*m.Stride:])
		}
	default:
		return nil, &FormatError{Format: "WEBP", Err: fmt.Errorf("unexpected %T", img)}
	}
	f := &Frame{W: w, H: h}
	if info.hasAlpha {
		f.Mode, f.Pix = ModeRGBA, rgba
	} else {
		f.Mode, f.Pix = ModeRGB, make([]uint8, 3*w*h)
		for i := 0; i < w*h; i++ {
			copy(f.Pix[3*i:3*i+3], rgba[4*i:4*i+3])
		}
	}
	return &Picture{Format: "WEBP", Frames: []*Frame{f}, Orientation: exif.Orientation(info.exif)}, nil
}

// webpToRGBA converts a lossy WEBP's 4:2:0 planes to RGBA the way libwebp
// does for MODE_RGBA output: "fancy" chroma upsampling (9-3-3-1 weights with
// libwebp's rounding) and its 14-bit fixed-point BT.601 conversion.
func webpToRGBA(dst []uint8, m *image.YCbCr, alpha []uint8, aStride int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	uvRows := (h + 1) / 2
	uRow := func(k int) []uint8 { return m.Cb[k*m.CStride:] }
	vRow := func(k int) []uint8 { return m.Cr[k*m.CStride:] }
	Parallel(h, 4*w, func(lo, hi int) {
		us := make([]uint8, w)
		vs := make([]uint8, w)
		for y := lo; y < hi; y++ {
			near, far := 0, 0
			if y > 0 {
				k := (y + 1) / 2
				if y%2 == 1 { // upper row of a pair
					near, far = k-1, k
				} else {
					near, far = k, k-1
				}
				far = min(far, uvRows-1)
				near = min(near, uvRows-1)
			}
			fancyRow(us, uRow(near), uRow(far), w)
			fancyRow(vs, vRow(near), vRow(far), w)
			yr := m.Y[y*m.YStride:]
			out := dst[y*w*4:]
			for x := 0; x < w; x++ {
				yy, u, v := int(yr[x]), int(us[x]), int(vs[x])
				out[4*x] = webpClip8(multHi(yy, 19077) + multHi(v, 26149) - 14234)
				out[4*x+1] = webpClip8(multHi(yy, 19077) - multHi(u, 6419) - multHi(v, 13320) + 8708)
				out[4*x+2] = webpClip8(multHi(yy, 19077) + multHi(u, 33050) - 17685)
				if alpha != nil {
					out[4*x+3] = alpha[y*aStride+x]
				} else {
					out[4*x+3] = 255
				}
			}
		}
	})
}

// fancyRow upsamples one chroma row to width w from the nearer chroma row n
// and the farther row f, with libwebp's UpsampleRgbaLinePair arithmetic.
func fancyRow(dst, n, f []uint8, w int) {
	dst[0] = uint8((3*int(n[0]) + int(f[0]) + 2) >> 2)
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		n0, n1, f0, f1 := int(n[x-1]), int(n[x]), int(f[x-1]), int(f[x])
		sum := n0 + n1 + f0 + f1 + 8
		da := (sum + 2*(n1+f0)) >> 3
		db := (sum + 2*(n0+f1)) >> 3
		dst[2*x-1] = uint8((da + n0) >> 1)
		dst[2*x] = uint8((db + n1) >> 1)
	}
	if w&1 == 0 {
		dst[w-1] = uint8((3*int(n[last]) + int(f[last]) + 2) >> 2)
	}
}

func multHi(v, coeff int) int { return (v * coeff) >> 8 }

// webpClip8 is libwebp's VP8Clip8 (YUV_FIX2 = 6).
func webpClip8(v int) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}
