package exif

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/internal/testenv"
)

// Two EXIF blocks: orientation 6 little endian, 8 big endian.
var (
	le = []byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00")
	be = []byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00")
)

func TestOrientation(t *testing.T) {
	long := []byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x04\x00\x01\x00\x00\x00\x03\x00\x00\x00")
	for _, c := range []struct {
		name string
		data []byte
		want int
	}{
		{"little endian", le, 6},
		{"big endian", be, 8},
		{"Exif prefix", append([]byte("Exif\x00\x00"), le...), 6},
		{"LONG value", long, 3},
		{"truncated", le[:15], 0},
		{"bad offset", []byte("II*\x00\xff\xff\x00\x00"), 0},
		{"not TIFF", []byte("hello world"), 0},
		{"empty", nil, 0},
	} {
		if got := Orientation(c.data); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
	for o := 0; o <= 9; o++ {
		if got, want := Swaps(o), o >= 5 && o <= 8; got != want {
			t.Errorf("Swaps(%d) = %v", o, got)
		}
	}
}

// TestJPEG reads the orientation of a phone photo captured for the ComfyUI
// conformance cases (stored 120×90 with orientation 6), and of a JPEG made
// here with an APP1 segment after an APP0 one.
func TestJPEG(t *testing.T) {
	photo, err := os.ReadFile(filepath.Join(testenv.Conformance(t), "cases", "load_jpeg_webp", "inputs", "photo_exif6_120x90.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Orientation(JPEG(photo)); got != Rotate90CW {
		t.Errorf("the conformance photo: orientation %d, want 6", got)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	if JPEG(plain) != nil {
		t.Error("a JPEG without EXIF has an EXIF block")
	}
	app0 := []byte{0xff, 0xe0, 0, 7, 'J', 'F', 'I', 'F', 0}
	block := append([]byte("Exif\x00\x00"), be...)
	app1 := append([]byte{0xff, 0xe1, 0, byte(len(block) + 2)}, block...)
	data := append(append(append(append([]byte{}, plain[:2]...), app0...), app1...), plain[2:]...)
	if got := Orientation(JPEG(data)); got != Rotate270 {
		t.Errorf("orientation %d, want 8", got)
	}
	for _, bad := range [][]byte{nil, {0xff, 0xd8}, {0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff}, {0xff, 0xd8, 0x00, 0x00, 0x00}} {
		if JPEG(bad) != nil {
			t.Errorf("JPEG(%x) found a block", bad)
		}
	}
}

// chunk is one PNG chunk, CRC included.
func chunk(typ string, body []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(len(body)))
	b.WriteString(typ)
	b.Write(body)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), body...)))
	return b.Bytes()
}

func TestPNG(t *testing.T) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	if PNG(plain) != nil {
		t.Error("a PNG without eXIf has an EXIF block")
	}
	// eXIf goes after IHDR (8 + 25 bytes in).
	withExif := append(append(append([]byte{}, plain[:33]...), chunk("eXIf", le)...), plain[33:]...)
	if got := Orientation(PNG(withExif)); got != Rotate90CW {
		t.Errorf("orientation %d, want 6", got)
	}
	if _, err := png.Decode(bytes.NewReader(withExif)); err != nil {
		t.Fatalf("the test PNG is not valid: %v", err)
	}
	if PNG(withExif[:40]) != nil || PNG([]byte("not a png")) != nil {
		t.Error("a truncated or foreign file has an EXIF block")
	}
}

func TestWEBP(t *testing.T) {
	riff := func(chunks ...[]byte) []byte {
		body := []byte("WEBP")
		for _, c := range chunks {
			body = append(body, c...)
		}
		out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		return append(out, body...)
	}
	ch := func(id string, body []byte) []byte {
		out := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		out = append(out, body...)
		if len(body)%2 == 1 {
			out = append(out, 0)
		}
		return out
	}
	data := riff(ch("VP8X", make([]byte, 10)), ch("VP8 ", []byte{1, 2, 3}), ch("EXIF", be))
	if got := Orientation(WEBP(data)); got != Rotate270 {
		t.Errorf("orientation %d, want 8", got)
	}
	if WEBP(riff(ch("VP8 ", []byte{1, 2, 3}))) != nil || WEBP([]byte("RIFF")) != nil {
		t.Error("found an EXIF block where there is none")
	}
}

func FuzzOrientation(f *testing.F) {
	f.Add(le)
	f.Add(be)
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x08Exif\x00\x00"))
	f.Add([]byte(pngSignature + "\x00\x00\x00\x04eXIf"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPEXIF\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, block := range [][]byte{data, JPEG(data), PNG(data), WEBP(data)} {
			if o := Orientation(block); o < 0 || o > 0xffff {
				t.Fatalf("orientation %d", o)
			}
		}
	})
}
