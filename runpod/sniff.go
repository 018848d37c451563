package runpod

import (
	"bytes"
	"net/http"
	"path"
	"strings"
	"unicode"
)

// extensions maps the media types of job outputs to file extensions. It is a
// fixed table rather than the system's MIME database, so names do not depend
// on the machine.
var extensions = map[string]string{
	"image/png":                ".png",
	"image/jpeg":               ".jpg",
	"image/gif":                ".gif",
	"image/webp":               ".webp",
	"image/bmp":                ".bmp",
	"image/tiff":               ".tiff",
	"image/avif":               ".avif",
	"image/heic":               ".heic",
	"image/x-icon":             ".ico",
	"image/svg+xml":            ".svg",
	"video/mp4":                ".mp4",
	"video/webm":               ".webm",
	"video/quicktime":          ".mov",
	"video/avi":                ".avi",
	"video/x-msvideo":          ".avi",
	"video/x-matroska":         ".mkv",
	"audio/wave":               ".wav",
	"audio/wav":                ".wav",
	"audio/x-wav":              ".wav",
	"audio/mpeg":               ".mp3",
	"audio/ogg":                ".ogg",
	"application/ogg":          ".ogg",
	"audio/flac":               ".flac",
	"audio/aiff":               ".aiff",
	"audio/mp4":                ".m4a",
	"audio/midi":               ".mid",
	"model/gltf-binary":        ".glb",
	"application/pdf":          ".pdf",
	"application/zip":          ".zip",
	"application/json":         ".json",
	"text/plain":               ".txt",
	"application/octet-stream": ".bin",
}

// extensionFor returns the extension of a media type, ".bin" if unknown.
func extensionFor(mediaType string) string {
	if ext, ok := extensions[mediaType]; ok {
		return ext
	}
	return ".bin"
}

// sniff guesses the media type of content from its first bytes. It returns
// "" when it cannot tell.
func sniff(b []byte) string {
	if len(b) >= 12 && string(b[4:8]) == "ftyp" {
		switch brand := string(b[8:12]); brand {
		case "qt  ":
			return "video/quicktime"
		case "avif", "avis":
			return "image/avif"
		case "heic", "heix", "mif1", "msf1":
			return "image/heic"
		case "M4A ", "M4B ":
			return "audio/mp4"
		default:
			return "video/mp4"
		}
	}
	switch {
	case bytes.HasPrefix(b, []byte("fLaC")):
		return "audio/flac"
	case bytes.HasPrefix(b, []byte("glTF")):
		return "model/gltf-binary"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "image/tiff"
	case bytes.HasPrefix(b, []byte("\x1aE\xdf\xa3")) && bytes.Contains(b[:min(len(b), 64)], []byte("matroska")):
		return "video/x-matroska"
	}
	t := http.DetectContentType(b)
	t, _, _ = strings.Cut(t, ";")
	switch t {
	case "application/octet-stream":
		return ""
	case "text/plain", "text/html", "text/xml":
		return ""
	}
	return t
}

// isMedia says whether a media type is an image, video or audio file, the
// kinds a bare string in an output is taken to be.
func isMedia(t string) bool {
	return strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/") ||
		t == "application/ogg" || t == "model/gltf-binary" || t == "application/pdf"
}

// safeName turns a name a worker gave into a plain file name that cannot
// leave the output directory: no directories, no control or reserved
// characters, not hidden, at most 200 bytes. It returns "" when nothing
// usable is left.
func safeName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	name = strings.Map(func(r rune) rune {
		switch {
		case r == utf8RuneError, unicode.IsControl(r):
			return -1
		case strings.ContainsRune(`/:*?"<>|`, r):
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	name = strings.TrimRight(name, ". ")
	if len(name) > 200 {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		cut := 200 - len(ext)
		for cut > 0 && !utf8RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	if name == "" || name == "/" {
		return ""
	}
	return name
}

const utf8RuneError = '\uFFFD'

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
