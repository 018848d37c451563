package imaging

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must return a picture or an
// error, never panic, and never allocate more pixels than the limit allows.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("../../../../testdata/conformance/comfyui/cases/*/inputs/*")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
			f.Add(data)
		}
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 9, 9)), nil)
	f.Add(buf.Bytes())
	f.Add(gifBytes(2, 2, pal4, 0, []testGIFFrame{{w: 2, h: 2, gce: true, trans: 0, disposal: 2, idx: []byte{0, 1, 2, 3}}}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8X"))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data, Options{MaxPixels: limit})
		if err != nil {
			return
		}
		var total int64
		for _, fr := range p.Frames {
			total += int64(fr.W) * int64(fr.H)
			// Every conversion must work on whatever decoded.
			fr.RGB()
			fr.RGBA()
			fr.Alpha()
			fr.Transposed(p.Orientation)
		}
		if total > limit {
			t.Fatalf("decoded %d pixels, limit %d", total, limit)
		}
	})
}
