package worker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/truncate"
)

// fileInfo is what the worker learns of an input file before ComfyUI sees
// it: its format, read from its first bytes (never from its name), and what
// its header says.
type fileInfo struct {
	// format is png, jpeg, gif, webp, bmp or tiff (images); mp4, mov, webm
	// or mkv (videos); wav, mp3, flac, ogg or m4a (audio).
	format string
	// width and height are an image's size in pixels.
	width, height int
	// seconds is the length of a video, an animated GIF or an audio file
	// when the file states it; 0 when it does not.
	seconds float64
	// hasVideo and hasAudio are the tracks of a video container, when its
	// index was read.
	hasVideo, hasAudio bool
}

// formats are the formats the worker accepts, with how messages name them
// and the kinds of input they can be.
var formats = map[string]struct {
	name, noun string
	kinds      []string
}{
	"png":  {"PNG", "a PNG image", []string{comfy.MediaImage}},
	"jpeg": {"JPEG", "a JPEG image", []string{comfy.MediaImage}},
	"webp": {"WebP", "a WebP image", []string{comfy.MediaImage}},
	"bmp":  {"BMP", "a BMP image", []string{comfy.MediaImage}},
	"tiff": {"TIFF", "a TIFF image", []string{comfy.MediaImage}},
	"gif":  {"GIF", "a GIF", []string{comfy.MediaImage, comfy.MediaVideo}},
	"mp4":  {"MP4", "an MP4 video", []string{comfy.MediaVideo}},
	"mov":  {"MOV", "a QuickTime (MOV) video", []string{comfy.MediaVideo}},
	"webm": {"WebM", "a WebM video", []string{comfy.MediaVideo}},
	"mkv":  {"MKV", "a Matroska (MKV) video", []string{comfy.MediaVideo}},
	"wav":  {"WAV", "a WAV audio file", []string{comfy.MediaAudio}},
	"mp3":  {"MP3", "an MP3 audio file", []string{comfy.MediaAudio}},
	"flac": {"FLAC", "a FLAC audio file", []string{comfy.MediaAudio}},
	"ogg":  {"OGG", "an OGG audio file", []string{comfy.MediaAudio}},
	"m4a":  {"M4A", "an M4A audio file", []string{comfy.MediaAudio}},
}

// What each kind of input takes, for messages.
var kindFormats = map[string]string{
	comfy.MediaImage: "an image (PNG, JPEG, WebP, GIF, BMP or TIFF)",
	comfy.MediaVideo: "a video (MP4, MOV, WebM, MKV or an animated GIF)",
	comfy.MediaAudio: "audio (WAV, MP3, FLAC, OGG or M4A)",
}

// isContainer says whether format holds tracks (video, audio or both).
func isContainer(format string) bool {
	switch format {
	case "mp4", "mov", "webm", "mkv":
		return true
	}
	return false
}

// kinds returns what the file can be loaded as: "image", "video",
// "audio". A video container whose index lists only sound is audio; one
// with sound too is both.
func (i fileInfo) kinds() []string {
	if isContainer(i.format) {
		switch {
		case i.hasAudio && !i.hasVideo:
			return []string{comfy.MediaAudio}
		case i.hasAudio:
			return []string{comfy.MediaVideo, comfy.MediaAudio}
		}
	}
	return formats[i.format].kinds
}

// describe names the file for messages: "an MP4 video".
func (i fileInfo) describe() string {
	if f, ok := formats[i.format]; ok {
		return f.noun
	}
	return "a file of an unknown format"
}

// ext returns the usual file extension of the format.
func (i fileInfo) ext() string {
	if i.format == "jpeg" {
		return ".jpg"
	}
	return "." + i.format
}

// canBe says whether the file can be loaded as one of kinds.
func (i fileInfo) canBe(kinds []string) bool {
	return slices.ContainsFunc(i.kinds(), func(k string) bool { return slices.Contains(kinds, k) })
}

// describeKinds says what an input of the given kinds takes: "a video (MP4,
// …) or audio (WAV, …)".
func describeKinds(kinds []string) string {
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, kindFormats[k])
	}
	return strings.Join(parts, " or ")
}

// isVideoOrAudio says whether format is a video or audio format, whose
// files have the larger size limit.
func isVideoOrAudio(format string) bool {
	f, ok := formats[format]
	return ok && format != "gif" && !slices.Contains(f.kinds, comfy.MediaImage)
}

// sniffFormat returns the format data starts like, or "" when it is none
// the worker accepts. Only the first bytes are read.
func sniffFormat(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		return "wav"
	case bytes.HasPrefix(data, []byte("BM")) && len(data) >= 6:
		return "bmp"
	case bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	case len(data) >= 12 && string(data[4:8]) == "ftyp":
		switch brand := string(data[8:12]); brand {
		case "qt  ":
			return "mov"
		case "M4A ", "M4B ", "M4P ", "F4A ":
			return "m4a"
		case "avif", "avis", "heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1":
			return "heif"
		}
		return "mp4"
	case len(data) >= 8 && (string(data[4:8]) == "moov" || string(data[4:8]) == "mdat" || string(data[4:8]) == "wide"):
		return "mov" // QuickTime files older than the ftyp box
	case bytes.HasPrefix(data, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		if bytes.Contains(data[:min(len(data), 64)], []byte("webm")) {
			return "webm"
		}
		return "mkv"
	case bytes.HasPrefix(data, []byte("fLaC")):
		return "flac"
	case bytes.HasPrefix(data, []byte("OggS")):
		return "ogg"
	case bytes.HasPrefix(data, []byte("ID3")):
		return "mp3"
	case len(data) >= 4 && data[0] == 0xFF && data[1]&0xE0 == 0xE0 && (data[1]>>1)&3 != 0 && (data[1]>>3)&3 != 1 && data[2]>>4 != 0xF:
		return "mp3" // an MPEG audio frame header: sync, a layer, a valid version and bitrate
	}
	return ""
}

// notMedia explains why data is not a file of the kinds an input takes
// (nil: any kind), saying what it looks like instead.
func notMedia(data []byte, kinds []string) error {
	if len(kinds) == 0 {
		kinds = []string{comfy.MediaImage, comfy.MediaVideo, comfy.MediaAudio}
	}
	nouns := make([]string, len(kinds))
	for i, k := range kinds {
		nouns[i] = map[string]string{comfy.MediaImage: "an image", comfy.MediaVideo: "a video", comfy.MediaAudio: "an audio file"}[k]
	}
	what := strings.Join(nouns, " or ")
	if len(nouns) > 2 {
		what = strings.Join(nouns[:len(nouns)-1], ", ") + " or " + nouns[len(nouns)-1]
	}
	want := describeKinds(kinds)
	if len(data) == 0 {
		return errors.New("the file is empty (0 bytes)")
	}
	head := data[:min(len(data), 8)]
	trim := bytes.TrimSpace(data[:min(len(data), 256)])
	if n := len(data) / 4 * 4; n >= 8 {
		if dec, err := decodeBase64(data[:min(n, 64)]); err == nil && sniffFormat(dec) != "" {
			return fmt.Errorf("not %s: it is base64 text encoded twice; encode the file once", what)
		}
	}
	switch {
	case sniffFormat(data) == "heif":
		return fmt.Errorf("not %s ComfyUI loads: it is an AVIF or HEIF image; convert it to PNG or JPEG", what)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "AVI ":
		return fmt.Errorf("not %s ComfyUI loads: it is an AVI video; convert it to MP4 or WebM", what)
	case bytes.HasPrefix(trim, []byte("<")):
		return fmt.Errorf("not %s: it is HTML or XML text (an error page?); send %s", what, want)
	case bytes.HasPrefix(trim, []byte("{")) || bytes.HasPrefix(trim, []byte("[")):
		return fmt.Errorf("not %s: it is JSON text; send %s", what, want)
	case utf8.Valid(trim) && len(trim) > 0:
		return fmt.Errorf("not %s: it is text; send %s", what, want)
	}
	return fmt.Errorf("not %s ComfyUI can load (%s): it starts with bytes % x", what, want, head)
}

// inspectMedia checks that data is a whole video or audio file of format
// (from sniffFormat) and reads its length and tracks from its header.
// Nothing is decoded.
func inspectMedia(format string, data []byte) (fileInfo, error) {
	info := fileInfo{format: format}
	var err error
	switch format {
	case "mp4", "mov", "m4a":
		err = inspectISO(&info, data)
	case "webm", "mkv":
		err = inspectEBML(&info, data)
	case "wav":
		err = inspectWAV(&info, data)
	case "flac":
		err = inspectFLAC(&info, data)
	case "mp3":
		err = inspectMP3(data)
	case "ogg":
		if len(data) < 27 || data[4] != 0 {
			err = errors.New("the OGG file is damaged: its first page header is not version 0")
		}
	default:
		err = fmt.Errorf("%q is not a video or audio format", format)
	}
	if math.IsNaN(info.seconds) || math.IsInf(info.seconds, 0) || info.seconds < 0 {
		info.seconds = 0
	}
	return info, err
}

// isoBox is one box of an ISO base media file (MP4, MOV, M4A).
type isoBox struct {
	typ        string
	start, end int64 // end may lie past the data: a cut-off box
	body       int64
}

// isoBoxes walks the boxes of data[from:to], calling fn for each whole
// one; it returns the first that does not fit (a cut-off file), or an error
// for a box that cannot be read.
func isoBoxes(data []byte, from, to int64, fn func(b isoBox)) (*isoBox, error) {
	pos := from
	for pos < to {
		if to-pos < 8 {
			return &isoBox{typ: "", start: pos, end: pos + 8}, nil
		}
		size := int64(binary.BigEndian.Uint32(data[pos:]))
		typ := string(data[pos+4 : pos+8])
		hdr := int64(8)
		switch size {
		case 1:
			if to-pos < 16 {
				return &isoBox{typ: typ, start: pos, end: pos + 16}, nil
			}
			large := binary.BigEndian.Uint64(data[pos+8:])
			if large > math.MaxInt64/2 {
				large = math.MaxInt64 / 2
			}
			size, hdr = int64(large), 16
		case 0:
			size = to - pos // to the end
		}
		if size < hdr {
			return nil, fmt.Errorf("box %s at byte %d has a size of %d, too small for its header", printable(typ), pos, size)
		}
		b := isoBox{typ: typ, start: pos, end: pos + size, body: pos + hdr}
		if b.end > to {
			return &b, nil
		}
		fn(b)
		pos = b.end
	}
	return nil, nil
}

// inspectISO walks an MP4/MOV/M4A's top-level boxes — every box whole, a
// moov (the index) among them — and reads the length from mvhd and the
// track kinds from each trak's hdlr.
func inspectISO(info *fileInfo, data []byte) error {
	name := formats[info.format].name
	var moov *isoBox
	cut, err := isoBoxes(data, 0, int64(len(data)), func(b isoBox) {
		if b.typ == "moov" && moov == nil {
			moov = &b
		}
	})
	switch {
	case err != nil:
		return fmt.Errorf("the %s is damaged: %v", name, err)
	case cut != nil && cut.typ == "":
		return fmt.Errorf("the %s is cut off: it ends inside a box header at byte %d; send the whole file", name, cut.start)
	case cut != nil:
		return fmt.Errorf("the %s is cut off: its %s box at byte %d needs %d bytes, only %d were sent; send the whole file",
			name, printable(cut.typ), cut.start, cut.end-cut.start, int64(len(data))-cut.start)
	case moov == nil:
		return fmt.Errorf("the %s has no moov box (the index players need): the recording was not finished, or the file is cut off; send the whole file", name)
	}
	// The index: its length, and a handler per track.
	_, _ = isoBoxes(data, moov.body, moov.end, func(b isoBox) {
		body := data[b.body:b.end]
		switch b.typ {
		case "mvhd":
			info.seconds = mvhdSeconds(body)
		case "trak":
			_, _ = isoBoxes(data, b.body, b.end, func(m isoBox) {
				if m.typ != "mdia" {
					return
				}
				_, _ = isoBoxes(data, m.body, m.end, func(h isoBox) {
					if h.typ != "hdlr" || h.end-h.body < 12 {
						return
					}
					switch string(data[h.body+8 : h.body+12]) {
					case "vide":
						info.hasVideo = true
					case "soun":
						info.hasAudio = true
					}
				})
			})
		}
	})
	return nil
}

// mvhdSeconds reads a movie header's length; 0 when it is unknown.
func mvhdSeconds(b []byte) float64 {
	if len(b) < 20 {
		return 0
	}
	var scale, dur uint64
	if b[0] == 1 {
		if len(b) < 32 {
			return 0
		}
		scale, dur = uint64(binary.BigEndian.Uint32(b[20:])), binary.BigEndian.Uint64(b[24:])
		if dur == math.MaxUint64 {
			return 0
		}
	} else {
		scale, dur = uint64(binary.BigEndian.Uint32(b[12:])), uint64(binary.BigEndian.Uint32(b[16:]))
		if dur == math.MaxUint32 {
			return 0
		}
	}
	if scale == 0 {
		return 0
	}
	return float64(dur) / float64(scale)
}

// EBML (Matroska, WebM) element ids the worker reads.
const (
	ebmlHeaderID    = 0x1A45DFA3
	ebmlDocTypeID   = 0x4282
	mkvSegmentID    = 0x18538067
	mkvInfoID       = 0x1549A966
	mkvTimecodeID   = 0x2AD7B1
	mkvDurationID   = 0x4489
	mkvTracksID     = 0x1654AE6B
	mkvTrackEntryID = 0xAE
	mkvTrackTypeID  = 0x83
)

// ebmlElement is one element of an EBML file.
type ebmlElement struct {
	id         uint32
	start      int64
	body, end  int64 // end may lie past the data (cut off)
	unknownLen bool  // a live stream's element: it runs to its parent's end
}

// ebmlVint reads an EBML variable-length integer at data[pos:]: its value
// (with the length marker when keepMarker, as element ids are written) and
// its length; ok is false when it cannot be read.
func ebmlVint(data []byte, pos int64, maxLen int, keepMarker bool) (v uint64, n int, allOnes, ok bool) {
	if pos >= int64(len(data)) || data[pos] == 0 {
		return 0, 0, false, false
	}
	first := data[pos]
	n = 1
	for mask := byte(0x80); first&mask == 0; mask >>= 1 {
		n++
	}
	if n > maxLen || pos+int64(n) > int64(len(data)) {
		return 0, 0, false, false
	}
	v = uint64(first)
	if !keepMarker {
		v &= uint64(0xFF >> n)
	}
	allOnes = v == uint64(0xFF>>n)
	for i := 1; i < n; i++ {
		b := data[pos+int64(i)]
		allOnes = allOnes && b == 0xFF
		v = v<<8 | uint64(b)
	}
	return v, n, allOnes, true
}

// ebmlElements walks the elements of data[from:to], calling fn for each;
// fn returns false to stop. It returns the first element that does not
// fit (a cut-off file), or an error for one that cannot be read.
func ebmlElements(data []byte, from, to int64, fn func(e ebmlElement) bool) (*ebmlElement, error) {
	pos := from
	for pos < to {
		id, n, _, ok := ebmlVint(data, pos, 4, true)
		if !ok {
			if pos+4 > int64(len(data)) {
				return &ebmlElement{start: pos, end: pos + 4}, nil
			}
			return nil, fmt.Errorf("no element id at byte %d", pos)
		}
		size, m, unknown, ok := ebmlVint(data, pos+int64(n), 8, false)
		if !ok {
			if pos+int64(n)+8 > int64(len(data)) {
				return &ebmlElement{id: uint32(id), start: pos, end: pos + int64(n) + 8}, nil
			}
			return nil, fmt.Errorf("no element size at byte %d", pos+int64(n))
		}
		e := ebmlElement{id: uint32(id), start: pos, body: pos + int64(n+m), unknownLen: unknown}
		if unknown || size > uint64(math.MaxInt64/2) {
			e.end = to
		} else {
			e.end = e.body + int64(size)
		}
		if e.end > to {
			return &e, nil
		}
		if !fn(e) {
			return nil, nil
		}
		pos = e.end
	}
	return nil, nil
}

// inspectEBML checks a WebM/MKV: the EBML header and its document type,
// then every element of the segment whole (a live stream's segment or
// cluster of unknown size runs to the end), and reads the length from Info
// and the track kinds from Tracks.
func inspectEBML(info *fileInfo, data []byte) error {
	name := formats[info.format].name
	size := int64(len(data))
	cutOff := func(e *ebmlElement) error {
		return fmt.Errorf("the %s is cut off: an element at byte %d needs %d bytes, only %d were sent; send the whole file", name, e.start, e.end-e.start, size-e.start)
	}
	var header, segment *ebmlElement
	cut, err := ebmlElements(data, 0, size, func(e ebmlElement) bool {
		switch {
		case e.id == ebmlHeaderID && header == nil:
			header = &e
		case e.id == mkvSegmentID:
			segment = &e
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return fmt.Errorf("the %s is damaged: %v", name, err)
	case cut != nil:
		return cutOff(cut)
	case header == nil:
		return fmt.Errorf("the %s is damaged: it has no EBML header", name)
	case segment == nil:
		return fmt.Errorf("the %s has no segment: the file is cut off after its header; send the whole file", name)
	}
	docType := ""
	_, _ = ebmlElements(data, header.body, header.end, func(e ebmlElement) bool {
		if e.id == ebmlDocTypeID {
			docType = string(bytes.TrimRight(data[e.body:e.end], "\x00"))
		}
		return true
	})
	switch docType {
	case "webm":
		info.format = "webm"
	case "matroska":
		info.format = "mkv"
	default:
		return fmt.Errorf("an EBML file of type %q, not a WebM or Matroska video", truncate.Bytes(docType, 20))
	}
	var scale uint64 = 1_000_000 // TimecodeScale's default: milliseconds
	var duration float64
	cut, err = ebmlElements(data, segment.body, segment.end, func(e ebmlElement) bool {
		switch e.id {
		case mkvInfoID:
			_, _ = ebmlElements(data, e.body, e.end, func(c ebmlElement) bool {
				b := data[c.body:c.end]
				switch c.id {
				case mkvTimecodeID:
					if v := beUint(b); v > 0 {
						scale = v
					}
				case mkvDurationID:
					switch len(b) {
					case 4:
						duration = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
					case 8:
						duration = math.Float64frombits(binary.BigEndian.Uint64(b))
					}
				}
				return true
			})
		case mkvTracksID:
			_, _ = ebmlElements(data, e.body, e.end, func(t ebmlElement) bool {
				if t.id != mkvTrackEntryID {
					return true
				}
				_, _ = ebmlElements(data, t.body, t.end, func(c ebmlElement) bool {
					if c.id == mkvTrackTypeID {
						switch beUint(data[c.body:c.end]) {
						case 1:
							info.hasVideo = true
						case 2:
							info.hasAudio = true
						}
					}
					return true
				})
				return true
			})
		}
		// An element of unknown size (a live stream's cluster) runs to
		// the end: nothing after it can be walked.
		return !e.unknownLen
	})
	switch {
	case err != nil:
		return fmt.Errorf("the %s is damaged: %v", name, err)
	case cut != nil:
		return cutOff(cut)
	}
	info.seconds = duration * float64(scale) / 1e9
	return nil
}

// beUint reads a big-endian unsigned integer of up to 8 bytes.
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b[:min(len(b), 8)] {
		v = v<<8 | uint64(c)
	}
	return v
}

// inspectWAV checks a WAV's RIFF size and chunks and reads its length
// from the byte rate and the size of its data.
func inspectWAV(info *fileInfo, data []byte) error {
	riff := binary.LittleEndian.Uint32(data[4:8])
	streamed := riff == 0 || riff == math.MaxUint32 // written before its length was known
	if n := int64(riff) + 8; !streamed && n > int64(len(data)) {
		return fmt.Errorf("the WAV is cut off: its header says %d bytes, only %d were sent; send the whole file", n, len(data))
	}
	var byteRate uint32
	var dataSize int64 = -1
	pos := int64(12)
	for pos+8 <= int64(len(data)) {
		id := string(data[pos : pos+4])
		n := int64(binary.LittleEndian.Uint32(data[pos+4:]))
		body := pos + 8
		if id == "data" {
			if n == math.MaxUint32 || streamed {
				n = min(n, int64(len(data))-body)
			}
			if body+n > int64(len(data)) {
				return fmt.Errorf("the WAV is cut off: its data chunk needs %d bytes, only %d were sent; send the whole file", n, int64(len(data))-body)
			}
			dataSize = n
		}
		if id == "fmt " && n >= 12 && body+12 <= int64(len(data)) {
			byteRate = binary.LittleEndian.Uint32(data[body+8:])
		}
		pos = body + n + n&1
	}
	if dataSize < 0 {
		return errors.New("the WAV has no data chunk: the file is cut off or damaged; send the whole file")
	}
	if byteRate > 0 {
		info.seconds = float64(dataSize) / float64(byteRate)
	}
	return nil
}

// inspectFLAC reads a FLAC's length from its STREAMINFO block.
func inspectFLAC(info *fileInfo, data []byte) error {
	if len(data) < 8+34 || data[4]&0x7F != 0 {
		return errors.New("the FLAC is damaged or cut off: it does not start with its STREAMINFO block; send the whole file")
	}
	si := data[8:]
	rate := uint64(si[10])<<12 | uint64(si[11])<<4 | uint64(si[12])>>4
	samples := uint64(si[13]&0x0F)<<32 | uint64(binary.BigEndian.Uint32(si[14:]))
	if rate > 0 {
		info.seconds = float64(samples) / float64(rate)
	}
	return nil
}

// inspectMP3 checks that an ID3 tag, when there is one, fits in the file
// and is followed by audio.
func inspectMP3(data []byte) error {
	if !bytes.HasPrefix(data, []byte("ID3")) {
		return nil
	}
	if len(data) < 10 {
		return errors.New("the MP3 is cut off inside its ID3 tag; send the whole file")
	}
	n := int64(data[6]&0x7F)<<21 | int64(data[7]&0x7F)<<14 | int64(data[8]&0x7F)<<7 | int64(data[9]&0x7F)
	if 10+n >= int64(len(data)) {
		return fmt.Errorf("the MP3 is cut off: its ID3 tag needs %d bytes and no audio follows it; send the whole file", 10+n)
	}
	return nil
}

// gifSeconds adds up the frame delays of a GIF as ffmpeg reads them (what
// VideoHelperSuite's loader uses): a frame without a delay, or with one
// under 2/100 s, plays for a tenth of a second. It returns 0 for a GIF it
// cannot walk; inspectImage has checked its structure.
func gifSeconds(data []byte) float64 {
	if len(data) < 13 {
		return 0
	}
	pos := 13
	if data[10]&0x80 != 0 {
		pos += 3 << (data[10]&7 + 1)
	}
	subBlocks := func() bool {
		for pos < len(data) {
			n := int(data[pos])
			pos += 1 + n
			if n == 0 {
				return true
			}
		}
		return false
	}
	centis, delay := 0, 0
	for pos < len(data) {
		switch data[pos] {
		case 0x21: // extension
			if pos+2 > len(data) {
				return 0
			}
			if data[pos+1] == 0xF9 && pos+8 <= len(data) && data[pos+2] == 4 {
				delay = int(binary.LittleEndian.Uint16(data[pos+4:]))
			}
			pos += 2
			if !subBlocks() {
				return 0
			}
		case 0x2C: // image
			if pos+10 > len(data) {
				return 0
			}
			if delay < 2 {
				delay = 10
			}
			centis, delay = centis+delay, 0
			packed := data[pos+9]
			pos += 10
			if packed&0x80 != 0 {
				pos += 3 << (packed&7 + 1)
			}
			pos++ // LZW minimum code size
			if !subBlocks() {
				return 0
			}
		case 0x3B: // trailer
			return float64(centis) / 100
		default:
			return 0
		}
	}
	return 0
}
