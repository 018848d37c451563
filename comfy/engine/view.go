package engine

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/webp"
)

// annotatedFilepath is folder_paths.annotated_filepath: a name ending in
// "[output]", "[input]" or "[temp]" names that folder, and the suffix is cut
// with the character before it (so "x.png [output]" → "x.png").
func (s *Server) annotatedFilepath(name string) (string, string) {
	switch {
	case strings.HasSuffix(name, "[output]"):
		return cutRight(name, 9), s.outputDir
	case strings.HasSuffix(name, "[input]"):
		return cutRight(name, 8), s.inputDir
	case strings.HasSuffix(name, "[temp]"):
		return cutRight(name, 7), s.tempDir
	}
	return name, ""
}

func cutRight(s string, n int) string {
	if len(s) <= n {
		return ""
	}
	return s[:len(s)-n]
}

// dirByType is folder_paths.get_directory_by_type.
func (s *Server) dirByType(typ string) string {
	switch typ {
	case "output":
		return s.outputDir
	case "input":
		return s.inputDir
	case "temp":
		return s.tempDir
	}
	return ""
}

// joinPy is os.path.join for two parts: an absolute second part replaces
// the first.
func joinPy(base, rel string) string {
	if filepath.IsAbs(rel) {
		return filepath.Clean(rel)
	}
	return filepath.Join(base, rel)
}

// within says whether path is base or inside it (commonpath == base).
func within(base, path string) bool {
	r, err := filepath.Rel(base, path)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator))
}

// handleView is ComfyUI's /view: 400 for an empty name, a name starting with
// "/" or containing "..", or an unknown type; 403 for a subfolder leaving the
// folder; 404 for a missing file. channel=rgb and channel=a return converted
// PNGs, preview=jpeg;Q a JPEG and preview=webp;Q a WebP (lossless, where
// ComfyUI's is lossy at quality Q).
func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	if !q.Has("filename") {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	filename, dir := s.annotatedFilepath(q.Get("filename"))
	if filename == "" || filename[0] == '/' || strings.Contains(filename, "..") {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	if dir == "" {
		typ := "output"
		if q.Has("type") {
			typ = q.Get("type")
		}
		if dir = s.dirByType(typ); dir == "" {
			writeEmpty(w, http.StatusBadRequest)
			return
		}
	}
	if q.Has("subfolder") {
		full := joinPy(dir, q.Get("subfolder"))
		if !within(dir, full) {
			writeEmpty(w, http.StatusForbidden)
			return
		}
		dir = full
	}
	if i := strings.LastIndexByte(filename, '/'); i >= 0 {
		filename = filename[i+1:]
	}
	file := filepath.Join(dir, filename)
	st, err := os.Stat(file)
	if err != nil || !st.Mode().IsRegular() {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	disposition := `filename="` + filename + `"`

	channel := "rgba"
	if q.Has("channel") {
		channel = q.Get("channel")
	}
	if q.Has("preview") {
		s.viewPreview(w, file, disposition, q.Get("preview"), q.Get("channel"))
		return
	}
	switch channel {
	case "rgb", "a":
		s.viewChannel(w, file, disposition, channel)
		return
	}

	f, err := os.Open(file)
	if err != nil {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Disposition", disposition)
	w.Header().Set("Content-Type", contentTypeOf(filename))
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (s *Server) loadForView(w http.ResponseWriter, file string) (*decodedImage, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		writeEmpty(w, http.StatusNotFound)
		return nil, false
	}
	d, err := decodeImage(data)
	if err != nil {
		writeText(w, http.StatusBadRequest, "the file cannot be converted: "+err.Error())
		return nil, false
	}
	return d, true
}

func (s *Server) viewChannel(w http.ResponseWriter, file, disposition, channel string) {
	d, ok := s.loadForView(w, file)
	if !ok {
		return
	}
	src := d.rgba
	var buf bytes.Buffer
	if channel == "rgb" {
		if err := writePNG(&buf, src, false, nil); err != nil {
			writeText(w, http.StatusInternalServerError, "encoding failed")
			return
		}
	} else {
		out := image.NewNRGBA(src.Rect)
		for i := 3; i < len(out.Pix); i += 4 {
			if d.hasAlpha {
				out.Pix[i] = src.Pix[i]
			} else {
				out.Pix[i] = 255
			}
		}
		if err := writePNG(&buf, out, true, nil); err != nil {
			writeText(w, http.StatusInternalServerError, "encoding failed")
			return
		}
	}
	writeBytes(w, "image/png", disposition, buf.Bytes())
}

func (s *Server) viewPreview(w http.ResponseWriter, file, disposition, preview, channel string) {
	d, ok := s.loadForView(w, file)
	if !ok {
		return
	}
	parts := strings.Split(preview, ";")
	format := parts[0]
	if (format != "webp" && format != "jpeg") || strings.Contains(channel, "a") {
		format = "webp"
	}
	quality := 90
	if last := parts[len(parts)-1]; last != "" && isAllDigits(last) {
		if n, err := strconv.Atoi(last); err == nil {
			quality = n
		}
	}
	src := d.rgba
	var buf bytes.Buffer
	if format == "jpeg" {
		q := min(max(quality, 1), 100)
		if err := jpeg.Encode(&buf, dropAlpha(src), &jpeg.Options{Quality: q}); err != nil {
			writeText(w, http.StatusInternalServerError, "encoding failed")
			return
		}
		writeBytes(w, "image/jpeg", disposition, buf.Bytes())
		return
	}
	keepAlpha := d.hasAlpha && channel != "rgb"
	if err := webp.Encode(&buf, src, &webp.Options{Opaque: !keepAlpha}); err != nil {
		writeText(w, http.StatusBadRequest, "the image cannot be previewed as WebP: "+err.Error())
		return
	}
	writeBytes(w, "image/webp", disposition, buf.Bytes())
}

// dropAlpha is Pillow's convert("RGB"): every pixel keeps its colour and
// becomes opaque. Handing the NRGBA image to image/jpeg instead would
// premultiply it, turning transparent pixels black.
func dropAlpha(src *image.NRGBA) *image.RGBA {
	dst := image.NewRGBA(src.Rect)
	w := 4 * src.Rect.Dx()
	for y := 0; y < src.Rect.Dy(); y++ {
		row := dst.Pix[y*dst.Stride : y*dst.Stride+w]
		copy(row, src.Pix[y*src.Stride:y*src.Stride+w])
		for i := 3; i < w; i += 4 {
			row[i] = 0xff
		}
	}
	return dst
}

func isAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func writeBytes(w http.ResponseWriter, contentType, disposition string, data []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", disposition)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// contentTypeOf is mimetypes.guess_type for the files ComfyUI serves, with
// HTML, JavaScript and CSS forced to application/octet-stream as ComfyUI
// does.
func contentTypeOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg", ".jpe":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".bmp":
		return "image/bmp"
	case ".tif", ".tiff":
		return "image/tiff"
	case ".svg":
		return "image/svg+xml"
	case ".ico":
		return "image/vnd.microsoft.icon"
	case ".avif":
		return "image/avif"
	case ".mp4", ".m4v":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mov":
		return "video/quicktime"
	case ".mkv":
		return "video/x-matroska"
	case ".avi":
		return "video/x-msvideo"
	case ".mp3":
		return "audio/mpeg"
	case ".wav":
		return "audio/x-wav"
	case ".flac":
		return "audio/flac"
	case ".ogg", ".opus":
		return "audio/ogg"
	case ".m4a":
		return "audio/mp4"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain"
	case ".glb":
		return "model/gltf-binary"
	case ".gltf":
		return "model/gltf+json"
	case ".pdf":
		return "application/pdf"
	case ".zip":
		return "application/zip"
	}
	return "application/octet-stream"
}
