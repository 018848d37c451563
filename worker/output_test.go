package worker

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/comfypod/comfypod/comfy"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, name, format, want string
	}{
		{"images", "ComfyUI_00001_.png", "", familyImage},
		{"images", "anim_00001_.webp", "", familyImage},
		{"images", "clip_00001_.mp4", "", familyVideo},
		{"gifs", "dance_00001.mp4", "video/h264-mp4", familyVideo},
		{"gifs", "loop_00001.gif", "image/gif", familyVideo},
		{"gifs", "frame_00001.png", "image/png", familyImage},
		{"gifs", "song_00001.wav", "", familyAudio},
		{"audio", "voice_00001_.flac", "", familyAudio},
		{"audio", "voice", "", familyAudio},
		{"3d", "mesh_00001_.glb", "", familyFile},
		{"custom", "notes.bin", "", familyFile},
	} {
		f := comfy.OutputFile{FileRef: comfy.FileRef{Filename: tc.name}, Key: tc.key, Format: tc.format}
		if got := classify(f); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.key, tc.name, got, tc.want)
		}
	}
}

func TestPublicName(t *testing.T) {
	t.Parallel()
	r := &jobRun{tag: "cp0123456789"}
	for in, want := range map[string]string{
		"cp0123456789_ComfyUI_00001_.png": "ComfyUI_00001_.png",
		"cp0123456789_00001_.png":         "00001_.png",
		"other_00001_.png":                "other_00001_.png",
		"cp0123456789":                    "cp0123456789",
	} {
		if got := r.publicName(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestEncodeBase64(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("comfypod"), 1000)
	for _, size := range []int64{-1, int64(len(data))} {
		s, n, err := encodeBase64(bytes.NewReader(data), size, 1<<20)
		if err != nil || n != int64(len(data)) || s != base64.StdEncoding.EncodeToString(data) {
			t.Errorf("size %d: n %d err %v", size, n, err)
		}
	}
	if _, _, err := encodeBase64(bytes.NewReader(data), -1, 100); !errors.Is(err, errOverBudget) {
		t.Errorf("over budget: %v", err)
	}
}

func TestConvertImage(t *testing.T) {
	t.Parallel()
	src := encoded(t, "png", testImage(30, 20))
	for format, magic := range map[string]string{"jpeg": "\xff\xd8\xff", "webp": "RIFF", "png": "\x89PNG"} {
		out, err := convertImage(src, format, 80)
		if err != nil || !strings.HasPrefix(string(out), magic) {
			t.Errorf("%s: %v", format, err)
			continue
		}
		info, err := inspectImage(out, &Limits{DecodeImages: true})
		if err != nil || info.width != 30 || info.height != 20 {
			t.Errorf("%s: %+v %v", format, info, err)
		}
	}
	if _, err := convertImage([]byte("nope"), "png", 80); err == nil {
		t.Error("converted a non-image")
	}
}

func TestProblemAndErrorText(t *testing.T) {
	t.Parallel()
	e := &Error{Kind: ErrInvalidInput, Problems: []Problem{{Field: "images[0].name", Message: "is empty"}}}
	if e.Error() != "invalid job input: images[0].name: is empty" || !errors.Is(e, ErrInvalidInput) || errors.Is(e, ErrExecution) {
		t.Errorf("one problem: %q", e.Error())
	}
	e.Problems = append(e.Problems, Problem{Node: "9", ClassType: "SaveImage", Input: "images", Message: "Required input is missing"})
	want := "invalid job input: 2 problems:\n  - images[0].name: is empty\n  - node 9 (SaveImage) input \"images\": Required input is missing"
	if e.Error() != want {
		t.Errorf("two problems:\n%s\nwant\n%s", e.Error(), want)
	}
	if (&Error{Kind: ErrTimeout, Message: "took too long"}).Error() != "took too long" {
		t.Error("a headline alone")
	}
}

// TestEncodeBase64Lengths checks the block encoder against encoding/base64
// at every length around its 6-byte step and its chunk size, read in small
// and whole pieces.
func TestEncodeBase64Lengths(t *testing.T) {
	t.Parallel()
	data := make([]byte, 48<<10*2+7)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	lengths := []int{}
	for n := 0; n <= 40; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range []int{48<<10 - 1, 48 << 10, 48<<10 + 1, 48<<10 + 2, len(data)} {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		want := base64.StdEncoding.EncodeToString(data[:n])
		for _, r := range []io.Reader{bytes.NewReader(data[:n]), iotest.HalfReader(bytes.NewReader(data[:n]))} {
			s, got, err := encodeBase64(r, -1, 1<<20)
			if err != nil || got != int64(n) || s != want {
				t.Fatalf("%d bytes: read %d, err %v, match %v", n, got, err, s == want)
			}
		}
	}
}

func FuzzEncodeBase64(f *testing.F) {
	f.Add([]byte("comfypod"))
	f.Add([]byte{0xff, 0xfe, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, n, err := encodeBase64(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)), 1<<20)
		if err != nil || n != int64(len(data)) || s != base64.StdEncoding.EncodeToString(data) {
			t.Fatalf("%q: %q, %d, %v", data, s, n, err)
		}
	})
}
