package engine

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// maxFormMemory is how much of a multipart form is held in memory; larger
// files are spooled to the system's temporary folder while the request is
// handled.
const maxFormMemory = 32 << 20

func (s *Server) handleUploadImage(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, false)
}

// handleUploadMask is /upload/mask: like /upload/image, but the file saved is
// the original named by the form's original_ref with its alpha channel
// replaced by the uploaded image's.
func (s *Server) handleUploadMask(w http.ResponseWriter, r *http.Request) {
	s.upload(w, r, true)
}

// upload is ComfyUI's image_upload: type input (default), temp or output;
// subfolder echoed back as sent; a name in use is kept when the bytes are the
// same (sha256), else "name (1).ext", "name (2).ext", …; overwrite=true or 1
// keeps the name. A path leaving the folder or a missing image part is a 400
// with an empty body.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, mask bool) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	form, err := mr.ReadForm(maxFormMemory)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("upload is larger than the %d-byte limit", mbe.Limit))
			return
		}
		writeText(w, http.StatusBadRequest, "the multipart form cannot be read")
		return
	}
	defer func() { _ = form.RemoveAll() }()

	files := form.File["image"]
	if len(files) == 0 {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	fh := files[0]
	filename := rawFilename(fh)
	if filename == "" {
		writeEmpty(w, http.StatusBadRequest)
		return
	}
	field := func(k string) (string, bool) {
		if v := form.Value[k]; len(v) > 0 {
			return v[0], true
		}
		return "", false
	}
	typ, ok := field("type")
	if !ok {
		typ = "input"
	}
	uploadDir := s.dirByType(typ)
	if uploadDir == "" {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("type %q is not one of input, temp, output", typ))
		return
	}
	subfolder, _ := field("subfolder")
	overwrite, _ := field("overwrite")
	if !cleanName(filename) || !cleanName(subfolder) {
		writeText(w, http.StatusBadRequest, "the file name and subfolder must be valid UTF-8 without NUL characters")
		return
	}

	folder := joinPy(uploadDir, subfolder)
	path := joinPy(folder, filename)
	if !within(uploadDir, path) || path == uploadDir {
		writeEmpty(w, http.StatusBadRequest)
		return
	}

	var merged []byte
	if mask {
		data, err := readUpload(fh)
		if err != nil {
			writeText(w, http.StatusBadRequest, "reading the uploaded file failed")
			return
		}
		merged, err = s.mergeMask(form, data)
		if err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
	}

	s.uploadMu.Lock()
	defer s.uploadMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		if blockedByFile(uploadDir, filepath.Dir(path)) {
			writeText(w, http.StatusBadRequest, "the subfolder names an existing file")
			return
		}
		s.log.Error("upload: creating folder failed", "err", err)
		writeText(w, http.StatusInternalServerError, "the upload folder cannot be created")
		return
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("%q is a folder", filename))
		return
	}
	duplicate := false
	if overwrite != "true" && overwrite != "1" {
		sum, err := uploadHash(fh)
		if err != nil {
			writeText(w, http.StatusBadRequest, "reading the uploaded file failed")
			return
		}
		stem, ext := splitExt(filename)
		for i := 1; ; i++ {
			if _, err := os.Stat(path); err != nil {
				break
			}
			if same, _ := fileHashEquals(path, sum); same {
				duplicate = true
				break
			}
			filename = fmt.Sprintf("%s (%d)%s", stem, i, ext)
			path = filepath.Join(folder, filename)
		}
	}
	if !duplicate {
		var err error
		switch {
		case mask && merged == nil:
			// ComfyUI writes nothing when the original cannot be found, and
			// still answers with the name.
			s.log.Warn("upload/mask: original_ref names no readable file; nothing saved")
		case mask:
			err = writeFileAtomic(path, bytes.NewReader(merged))
		default:
			var f multipart.File
			if f, err = fh.Open(); err == nil {
				err = writeFileAtomic(path, f)
				_ = f.Close()
			}
		}
		if err != nil {
			s.log.Error("upload: writing failed", "err", err)
			writeText(w, http.StatusInternalServerError, "the uploaded file cannot be saved")
			return
		}
	}
	writeJSONResponse(w, http.StatusOK, pyjson.NewObject().Set("name", filename).Set("subfolder", subfolder).Set("type", typ))
}

// rawFilename returns the filename parameter as the client sent it
// (mime/multipart reduces it to its base name; ComfyUI does not, and rejects
// names that leave the folder).
func rawFilename(fh *multipart.FileHeader) string {
	if _, params, err := mime.ParseMediaType(fh.Header.Get("Content-Disposition")); err == nil {
		if f, ok := params["filename"]; ok {
			return f
		}
	}
	return fh.Filename
}

func readUpload(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// splitExt is os.path.splitext: the extension starts at the last dot of the
// base name, unless the base name has only leading dots there.
func splitExt(name string) (stem, ext string) {
	base := name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
	}
	dot := strings.LastIndexByte(base, '.')
	if dot <= 0 || strings.TrimLeft(base[:dot], ".") == "" {
		return name, ""
	}
	cut := len(name) - len(base) + dot
	return name[:cut], name[cut:]
}

// uploadHash is the sha256 of the uploaded file, read as a stream.
func uploadHash(fh *multipart.FileHeader) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := fh.Open()
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func fileHashEquals(path string, sum [sha256.Size]byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return bytes.Equal(h.Sum(nil), sum[:]), nil
}

// writeFileAtomic writes the content of r to path through a temporary file
// in the same folder, so readers never see a partial file.
func writeFileAtomic(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, werr := io.Copy(tmp, r)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(name, 0o644)
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		_ = os.Remove(name)
		return werr
	}
	return nil
}

// mergeMask builds the file /upload/mask saves: the original named by the
// original_ref field, as RGBA, with the uploaded image's alpha, keeping the
// original's PNG text chunks. It returns nil data (and no error) when the
// original cannot be found, which ComfyUI also ignores.
func (s *Server) mergeMask(form *multipart.Form, upload []byte) ([]byte, error) {
	refs := form.Value["original_ref"]
	if len(refs) == 0 {
		return nil, errors.New(`upload/mask needs an original_ref field: {"filename": …, "subfolder": …, "type": …}`)
	}
	v, err := pyjson.Parse([]byte(refs[0]))
	if err != nil {
		return nil, fmt.Errorf("original_ref is not valid JSON: %w", err)
	}
	ref, ok := v.(*pyjson.Object)
	if !ok {
		return nil, errors.New("original_ref must be a JSON object")
	}
	fv, _ := ref.Get("filename")
	name, _ := fv.(string)
	name, dir := s.annotatedFilepath(name)
	if name == "" || name[0] == '/' || strings.Contains(name, "..") {
		return nil, nil
	}
	if dir == "" {
		typ := "output"
		if t, ok := ref.Get("type"); ok {
			typ = pyStr(t)
		}
		if dir = s.dirByType(typ); dir == "" {
			return nil, nil
		}
	}
	if sub, ok := ref.Get("subfolder"); ok && pyStr(sub) != "" {
		full := joinPy(dir, pyStr(sub))
		if !within(dir, full) {
			return nil, nil
		}
		dir = full
	}
	origData, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, nil
	}
	orig, err := decodeImage(origData)
	if err != nil {
		return nil, fmt.Errorf("the original %s is not a readable image", name)
	}
	maskImg, err := decodeImage(upload)
	if err != nil {
		return nil, errors.New("the uploaded mask is not a readable image")
	}
	o, m := orig.rgba, maskImg.rgba
	if o.Rect.Size() != m.Rect.Size() {
		return nil, fmt.Errorf("the mask is %v but the original is %v; they must match", m.Rect.Size(), o.Rect.Size())
	}
	out := image.NewNRGBA(o.Rect)
	copy(out.Pix, o.Pix)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = m.Pix[i] // convert('RGBA') gives opaque images an alpha of 255
	}
	var buf bytes.Buffer
	if err := writePNG(&buf, out, true, orig.texts); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cleanName says whether a client-supplied name can become a path: valid
// UTF-8 (names are echoed back in JSON) and no NUL.
func cleanName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// blockedByFile says whether a folder between base and dir is a file.
func blockedByFile(base, dir string) bool {
	for d := dir; within(base, d) && d != base; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}
