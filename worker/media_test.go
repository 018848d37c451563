package worker

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"math"
	"strings"
	"testing"
)

// isoBoxBytes builds an ISO base media box.
func isoBoxBytes(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = append(b, typ...)
	return append(b, body...)
}

// testMP4 builds a small MP4 the worker's checks read like a real one:
// ftyp, a moov index with its length (in ms) and one trak per handler
// ("vide", "soun"), and an mdat of payload.
func testMP4(brand string, millis uint32, payload []byte, handlers ...string) []byte {
	ftyp := isoBoxBytes("ftyp", []byte(brand), []byte{0, 0, 2, 0}, []byte("isomiso2mp41"))
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000)
	binary.BigEndian.PutUint32(mvhd[16:], millis)
	binary.BigEndian.PutUint32(mvhd[20:], 0x00010000)
	moov := [][]byte{isoBoxBytes("mvhd", mvhd)}
	for _, h := range handlers {
		hdlr := append(make([]byte, 8), h...)
		hdlr = append(hdlr, make([]byte, 12)...)
		hdlr = append(hdlr, "handler\x00"...)
		moov = append(moov, isoBoxBytes("trak", isoBoxBytes("tkhd", make([]byte, 84)), isoBoxBytes("mdia", isoBoxBytes("mdhd", make([]byte, 24)), isoBoxBytes("hdlr", hdlr))))
	}
	return bytes.Join([][]byte{ftyp, isoBoxBytes("moov", moov...), isoBoxBytes("mdat", payload)}, nil)
}

// ebml builds an EBML element with an 8-byte size.
func ebml(id uint32, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	var b []byte
	for shift := 24; shift >= 0; shift -= 8 {
		if c := byte(id >> shift); c != 0 || len(b) > 0 {
			b = append(b, c)
		}
	}
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], uint64(len(body)))
	b = append(b, 0x01) // a size of 8 bytes: the marker, then 7
	b = append(b, size[1:]...)
	return append(b, body...)
}

// testWebM builds a small WebM: header, then a segment with its Info
// (length in ms), one track per type (1 video, 2 audio) and a cluster.
func testWebM(docType string, millis float64, trackTypes ...byte) []byte {
	header := ebml(ebmlHeaderID, ebml(0x4286, []byte{1}), ebml(ebmlDocTypeID, []byte(docType)))
	info := ebml(mkvInfoID, ebml(mkvTimecodeID, []byte{0x0F, 0x42, 0x40}), ebml(mkvDurationID, binary.BigEndian.AppendUint64(nil, math.Float64bits(millis))))
	var entries [][]byte
	for _, t := range trackTypes {
		entries = append(entries, ebml(mkvTrackEntryID, ebml(mkvTrackTypeID, []byte{t})))
	}
	cluster := ebml(0x1F43B675, ebml(0xE7, []byte{0}), ebml(0xA3, bytes.Repeat([]byte{0x42}, 64)))
	return append(header, ebml(mkvSegmentID, info, ebml(mkvTracksID, entries...), cluster)...)
}

// testWAV builds a 16-bit mono PCM WAV of n samples at rate.
func testWAV(rate uint32, n int) []byte {
	fmtChunk := binary.LittleEndian.AppendUint16(nil, 1)
	fmtChunk = binary.LittleEndian.AppendUint16(fmtChunk, 1)
	fmtChunk = binary.LittleEndian.AppendUint32(fmtChunk, rate)
	fmtChunk = binary.LittleEndian.AppendUint32(fmtChunk, rate*2)
	fmtChunk = binary.LittleEndian.AppendUint16(fmtChunk, 2)
	fmtChunk = binary.LittleEndian.AppendUint16(fmtChunk, 16)
	chunk := func(id string, body []byte) []byte {
		b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
		return append(b, body...)
	}
	body := append([]byte("WAVE"), chunk("fmt ", fmtChunk)...)
	body = append(body, chunk("data", make([]byte, 2*n))...)
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// testFLAC builds the start of a FLAC: its STREAMINFO block.
func testFLAC(rate uint32, samples uint64) []byte {
	si := make([]byte, 34)
	si[10] = byte(rate >> 12)
	si[11] = byte(rate >> 4)
	si[12] = byte(rate<<4) | 0x01
	si[13] = 0xF0 | byte(samples>>32)&0x0F
	binary.BigEndian.PutUint32(si[14:], uint32(samples))
	return append(append([]byte("fLaC"), 0x80, 0, 0, 34), append(si, 0xFF, 0xF8, 0x69, 0x08)...)
}

// testGIF encodes an animated GIF of frames frames, delay hundredths of
// a second each.
func testGIF(t testing.TB, frames, delay int) []byte {
	t.Helper()
	pal := color.Palette{color.Black, color.White}
	g := &gif.GIF{}
	for i := range frames {
		img := image.NewPaletted(image.Rect(0, 0, 8, 6), pal)
		img.SetColorIndex(i%8, 2, 1)
		g.Image = append(g.Image, img)
		g.Delay = append(g.Delay, delay)
	}
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, g); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSniffFormat(t *testing.T) {
	t.Parallel()
	for want, data := range map[string][]byte{
		"png":  encoded(t, "png", testImage(2, 2)),
		"jpeg": encoded(t, "jpeg", testImage(2, 2)),
		"gif":  testGIF(t, 2, 5),
		"webp": encoded(t, "webp", testImage(2, 2)),
		"bmp":  encoded(t, "bmp", testImage(2, 2)),
		"tiff": []byte("II*\x00\x08\x00\x00\x00"),
		"mp4":  testMP4("isom", 1000, nil, "vide"),
		"mov":  testMP4("qt  ", 1000, nil, "vide"),
		"m4a":  testMP4("M4A ", 1000, nil, "soun"),
		"heif": testMP4("heic", 0, nil),
		"webm": testWebM("webm", 1000, 1),
		"mkv":  testWebM("matroska", 1000, 1),
		"wav":  testWAV(8000, 10),
		"flac": testFLAC(44100, 100),
		"ogg":  []byte("OggS\x00\x02" + strings.Repeat("\x00", 40)),
		"mp3":  []byte("\xff\xfb\x90\x64" + strings.Repeat("\x00", 40)),
		"":     []byte("<html>"),
	} {
		if got := sniffFormat(data); got != want {
			t.Errorf("%s: sniffed %q", want, got)
		}
	}
	// Old QuickTime files start with their moov or mdat box.
	if got := sniffFormat(isoBoxBytes("moov", nil)); got != "mov" {
		t.Errorf("a bare moov: %q", got)
	}
	// An ADTS AAC stream has a frame sync without an MPEG layer.
	if got := sniffFormat([]byte{0xFF, 0xF1, 0x50, 0x80}); got != "" {
		t.Errorf("ADTS: %q", got)
	}
}

func TestInspectMedia(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, format       string
		data               []byte
		wantFormat         string
		seconds            float64
		hasVideo, hasAudio bool
		kinds              string
	}{
		{"mp4 video and sound", "mp4", testMP4("isom", 5250, []byte("frames"), "vide", "soun"), "mp4", 5.25, true, true, "video,audio"},
		{"mp4 video only", "mp4", testMP4("mp42", 2000, nil, "vide"), "mp4", 2, true, false, "video"},
		{"mp4 sound only", "mp4", testMP4("isom", 2000, nil, "soun"), "mp4", 2, false, true, "audio"},
		{"mov", "mov", testMP4("qt  ", 1500, nil, "vide"), "mov", 1.5, true, false, "video"},
		{"m4a", "m4a", testMP4("M4A ", 60000, nil, "soun"), "m4a", 60, false, true, "audio"},
		{"webm", "webm", testWebM("webm", 3500, 1, 2), "webm", 3.5, true, true, "video,audio"},
		{"mkv", "mkv", testWebM("matroska", 1000, 1), "mkv", 1, true, false, "video"},
		{"webm named by its first bytes as mkv", "mkv", testWebM("webm", 1000, 1), "webm", 1, true, false, "video"},
		{"wav", "wav", testWAV(8000, 12000), "wav", 1.5, false, false, "audio"},
		{"flac", "flac", testFLAC(44100, 441000), "flac", 10, false, false, "audio"},
		{"mp3", "mp3", append([]byte("ID3\x04\x00\x00\x00\x00\x00\x02\x00\x00"), "\xff\xfb\x90\x64\x00\x00"...), "mp3", 0, false, false, "audio"},
	} {
		info, err := inspectMedia(tc.format, tc.data)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if info.format != tc.wantFormat || math.Abs(info.seconds-tc.seconds) > 1e-9 || info.hasVideo != tc.hasVideo || info.hasAudio != tc.hasAudio ||
			strings.Join(info.kinds(), ",") != tc.kinds {
			t.Errorf("%s: %+v kinds %v", tc.name, info, info.kinds())
		}
	}
}

func TestInspectMediaDamage(t *testing.T) {
	t.Parallel()
	mp4 := testMP4("isom", 1000, bytes.Repeat([]byte{7}, 200), "vide")
	noMoov := append(isoBoxBytes("ftyp", []byte("isom\x00\x00\x00\x00")), isoBoxBytes("mdat", []byte("x"))...)
	webm := testWebM("webm", 1000, 1)
	wav := testWAV(8000, 100)
	noData := bytes.Clone(wav[:36])
	binary.LittleEndian.PutUint32(noData[4:], 28)
	for _, tc := range []struct {
		name, format string
		data         []byte
		want         string
	}{
		{"mp4 cut in its mdat", "mp4", mp4[:len(mp4)-50], "the MP4 is cut off: its mdat box at byte"},
		{"mp4 cut in a box header", "mp4", append(bytes.Clone(mp4), 0, 0, 0), "ends inside a box header"},
		{"mp4 without moov", "mp4", noMoov, "no moov box"},
		{"mp4 box too small", "mp4", append(isoBoxBytes("ftyp", []byte("isom")), 0, 0, 0, 4, 'f', 'r', 'e', 'e'), "too small for its header"},
		{"webm cut off", "webm", webm[:len(webm)-20], "the WebM is cut off"},
		{"webm header only", "webm", webm[:bytes.Index(webm, []byte{0x18, 0x53, 0x80, 0x67})], "no segment"},
		{"ebml of another type", "mkv", testWebM("matroskaish", 1, 1), `an EBML file of type "matroskaish"`},
		{"wav cut off", "wav", wav[:len(wav)-10], "the WAV is cut off"},
		{"wav without data", "wav", noData, "no data chunk"},
		{"flac without streaminfo", "flac", []byte("fLaC\x04\x00\x00\x10"), "STREAMINFO"},
		{"mp3 that is only a tag", "mp3", []byte("ID3\x04\x00\x00\x00\x00\x01\x00" + strings.Repeat("\x00", 128)), "ID3 tag"},
		{"ogg of another version", "ogg", []byte("OggS\x01" + strings.Repeat("\x00", 30)), "not version 0"},
	} {
		_, err := inspectMedia(tc.format, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestGIFSeconds(t *testing.T) {
	t.Parallel()
	if got := gifSeconds(testGIF(t, 24, 6)); math.Abs(got-1.44) > 1e-9 {
		t.Errorf("24 frames of 6/100 s: %g s", got)
	}
	if got := gifSeconds(testGIF(t, 3, 0)); math.Abs(got-0.3) > 1e-9 {
		t.Errorf("3 frames without a delay: %g s, want 0.3 (a tenth each)", got)
	}
	if got := gifSeconds(encoded(t, "gif", testImage(4, 4))); math.Abs(got-0.1) > 1e-9 {
		t.Errorf("a still GIF: %g s, want 0.1", got)
	}
	g := testGIF(t, 4, 5)
	if got := gifSeconds(g[:len(g)-5]); got != 0 {
		t.Errorf("a cut-off GIF: %g s", got)
	}
}

func TestNotMedia(t *testing.T) {
	t.Parallel()
	mp4 := testMP4("isom", 1000, nil, "vide")
	for _, tc := range []struct {
		data  []byte
		kinds []string
		want  string
	}{
		{[]byte("<!DOCTYPE html><title>403</title>"), nil, "not an image, a video or an audio file: it is HTML or XML text (an error page?); send an image (PNG"},
		{[]byte(`{"error": "expired"}`), []string{"video"}, "not a video: it is JSON text; send a video (MP4, MOV, WebM, MKV or an animated GIF)"},
		{[]byte(base64.StdEncoding.EncodeToString(mp4)), []string{"video"}, "not a video: it is base64 text encoded twice"},
		{[]byte("hello"), []string{"audio"}, "not an audio file: it is text; send audio (WAV, MP3, FLAC, OGG or M4A)"},
		{[]byte{0, 1, 2, 3, 250}, []string{"video", "audio"}, "not a video or an audio file ComfyUI can load (a video (MP4, MOV, WebM, MKV or an animated GIF) or audio (WAV, MP3, FLAC, OGG or M4A)): it starts with bytes 00 01 02 03 fa"},
		{testMP4("avif", 0, nil), []string{"image"}, "it is an AVIF or HEIF image; convert it to PNG or JPEG"},
		{append([]byte("RIFF\x00\x00\x00\x00AVI "), make([]byte, 20)...), nil, "it is an AVI video; convert it to MP4 or WebM"},
		{nil, nil, "the file is empty"},
	} {
		if err := notMedia(tc.data, tc.kinds); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v\nwant %q", tc.data[:min(len(tc.data), 12)], err, tc.want)
		}
	}
}

func TestDecodeFileString(t *testing.T) {
	t.Parallel()
	raw := []byte("\x00\x00\x00\x18ftypmp42")
	std := base64.StdEncoding.EncodeToString(raw)
	for _, in := range []string{std, "data:video/mp4;base64," + std, `data:video/webm;codecs="vp9";base64,` + std, "data:audio/wav;base64," + std, "data:image/gif;base64," + std} {
		got, err := decodeFileString([]byte(in), 1<<20)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%.40s: %q, %v", in, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"data:text/html;base64,QUJD", `a data: URI of type "text/html"; want an image, a video or audio`},
		{"", "empty: give the file as base64"},
		{strings.Repeat("A", 2000), "over the 1.0 KB limit per file; send it as a URL"},
	} {
		if _, err := decodeFileString([]byte(tc.in), 1000); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40q: %v, want %q", tc.in, err, tc.want)
		}
	}
	// The image route still wants an image.
	if _, err := decodeImageString([]byte("data:video/mp4;base64,"+std), 1<<20); err == nil || !strings.Contains(err.Error(), `type "video/mp4"; want an image`) {
		t.Errorf("a video data: URI as an image: %v", err)
	}
}

// FuzzInspectMedia feeds arbitrary files to the video and audio checks:
// they never panic, and a length they report is a finite, non-negative
// number of seconds.
func FuzzInspectMedia(f *testing.F) {
	f.Add(testMP4("isom", 1000, []byte("x"), "vide", "soun"))
	f.Add(testWebM("webm", 1000, 1, 2))
	f.Add(testWAV(8000, 10))
	f.Add(testFLAC(44100, 100))
	f.Add(testGIF(f, 3, 4))
	f.Fuzz(func(t *testing.T, data []byte) {
		format := sniffFormat(data)
		if format == "gif" {
			if s := gifSeconds(data); s < 0 || math.IsNaN(s) {
				t.Fatalf("GIF of %g s", s)
			}
			return
		}
		if !isVideoOrAudio(format) {
			return
		}
		info, err := inspectMedia(format, data)
		if err != nil {
			return
		}
		if info.seconds < 0 || math.IsNaN(info.seconds) || math.IsInf(info.seconds, 0) {
			t.Fatalf("accepted %+v", info)
		}
	})
}
