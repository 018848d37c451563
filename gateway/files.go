package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/store"
)

// Thumbnails.
const (
	// thumbSide is the longer side of a thumbnail, in pixels.
	thumbSide = 256
	// thumbMaxBytes caps the output file a thumbnail is made from.
	thumbMaxBytes = 64 << 20
	// thumbWorkers bounds the thumbnails made at once: each decodes a whole
	// output.
	thumbWorkers = 2
)

// inputKey is where input file name of job id is kept in the output store.
func inputKey(id, name string) string { return "jobs/" + id + "/inputs/" + name }

// thumbKey is where the thumbnail of output n of job id is kept.
func thumbKey(id string, n int) string { return "jobs/" + id + "/thumbs/" + strconv.Itoa(n) }

// keepInputs stores the images of job id as its workers get them, for
// clients that show the job's before and after. It is best effort: when the
// output store fails, the job goes on without them (and nothing half-written
// is left), and the failure is logged.
func (s *Service) keepInputs(ctx context.Context, id string, images []preparedImage) []store.Output {
	outs := make([]store.Output, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, im := range images {
		wg.Go(func() {
			key := inputKey(id, im.name)
			n, err := s.blobs.Put(ctx, key, bytes.NewReader(im.data), im.contentType)
			outs[i], errs[i] = store.Output{Name: im.param, ContentType: im.contentType, Key: key, Size: n}, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.dropFiles(context.WithoutCancel(ctx), outs)
		s.log.LogAttrs(ctx, slog.LevelWarn, "the job's images could not be kept; it runs without them (no before and after)",
			slog.String("job", id), slog.String("err", scrub(err.Error())))
		return nil
	}
	return outs
}

// dropFiles deletes files from the output store, best effort: a file left
// behind costs space, not correctness.
func (s *Service) dropFiles(ctx context.Context, files []store.Output) {
	for _, f := range files {
		if f.Key == "" {
			continue
		}
		if err := s.blobs.Delete(ctx, f.Key); err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "deleting a file failed", slog.String("key", f.Key), slog.String("err", scrub(err.Error())))
		}
	}
}

// handleInput serves one of the images a job was submitted with, as its
// workers got it (upright, downscaled, the mask in its canonical form).
func (s *Service) handleInput(w http.ResponseWriter, r *http.Request) {
	e, aerr := s.job(r.Context(), r.PathValue("id"), false)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	name := r.PathValue("name")
	for _, in := range e.job.Inputs {
		if in.Name == name {
			s.serveFile(w, r, in, path.Base(in.Key), e.job.ID+"-in-"+name)
			return
		}
	}
	if _, ok := s.pkg.imageParam(name); ok {
		s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found",
			msg: "input not found: the job's " + name + " was not kept (it was sent without one, or before the service kept inputs)"})
		return
	}
	s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found",
		msg: fmt.Sprintf("input not found: the inputs are %s", s.pkg.imageNames())})
}

// handleOutput streams an output file from the output store.
func (s *Service) handleOutput(w http.ResponseWriter, r *http.Request) {
	e, n, ok := s.output(w, r)
	if !ok {
		return
	}
	out := e.job.Outputs[n]
	s.serveFile(w, r, out, out.Name, e.job.ID+"-"+strconv.Itoa(n))
}

// output finds the output a request names, or answers the request.
func (s *Service) output(w http.ResponseWriter, r *http.Request) (*cached, int, bool) {
	e, aerr := s.job(r.Context(), r.PathValue("id"), false)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return nil, 0, false
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(e.job.Outputs) {
		if e.job.State.Terminal() {
			s.writeError(w, r, notFound("output"))
		} else {
			s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found", msg: "output not found: the job has not succeeded yet"})
		}
		return nil, 0, false
	}
	return e, n, true
}

// serveFile streams a file of the output store, with range requests.
func (s *Service) serveFile(w http.ResponseWriter, r *http.Request, f store.Output, filename, etag string) {
	obj, err := s.blobs.Open(r.Context(), f.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			s.writeError(w, r, &apiError{status: http.StatusGone, code: "gone", msg: "the file is no longer stored", cause: err})
			return
		}
		s.writeError(w, r, unavailable("the output store does not answer; try again", err))
		return
	}
	defer obj.Close()
	serveContent(w, r, obj, obj.ModTime, f.ContentType, filename, etag)
}

// serveContent answers with a file's content, with range requests; an empty
// contentType is sniffed from the content.
func serveContent(w http.ResponseWriter, r *http.Request, content io.ReadSeeker, mod time.Time, contentType, filename, etag string) {
	h := w.Header()
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": filename}))
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", strconv.Quote(url.PathEscape(etag)))
	http.ServeContent(w, r, "", mod, content)
}

// handleThumbnail serves a small copy of an image output (its longer side
// thumbSide pixels at most), made on first request and kept beside it.
func (s *Service) handleThumbnail(w http.ResponseWriter, r *http.Request) {
	e, n, ok := s.output(w, r)
	if !ok {
		return
	}
	id, out := e.job.ID, e.job.Outputs[n]
	key := thumbKey(id, n)
	name, etag := "thumbnail-"+strconv.Itoa(n), id+"-"+strconv.Itoa(n)+"-thumb"
	if obj, err := s.blobs.Open(r.Context(), key); err == nil {
		defer obj.Close()
		serveContent(w, r, obj, obj.ModTime, "", name, etag)
		return
	}
	select {
	case s.thumbs <- struct{}{}:
		defer func() { <-s.thumbs }()
	case <-r.Context().Done():
		return
	}
	data, ct, aerr := s.makeThumbnail(r.Context(), out)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	if _, err := s.blobs.Put(r.Context(), key, bytes.NewReader(data), ct); err != nil {
		// Served anyway; made again next time.
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "keeping a thumbnail failed", slog.String("job", id), slog.String("err", scrub(err.Error())))
	}
	serveContent(w, r, bytes.NewReader(data), time.Time{}, ct, name, etag)
}

// makeThumbnail reads an output and makes its thumbnail: JPEG when it is
// opaque, PNG otherwise.
func (s *Service) makeThumbnail(ctx context.Context, out store.Output) ([]byte, string, *apiError) {
	obj, err := s.blobs.Open(ctx, out.Key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return nil, "", &apiError{status: http.StatusGone, code: "gone", msg: "the file is no longer stored", cause: err}
		}
		return nil, "", unavailable("the output store does not answer; try again", err)
	}
	defer obj.Close()
	noThumb := &apiError{status: http.StatusNotFound, code: "not_found", msg: "this output has no thumbnail: it is not a PNG, JPEG or WEBP image of a size the service decodes"}
	if obj.Size > thumbMaxBytes {
		return nil, "", noThumb
	}
	data, err := readLimited(obj, thumbMaxBytes)
	if err != nil {
		return nil, "", unavailable("the output store does not answer; try again", err)
	}
	format := sniffFormat(data)
	cfg, err := decodeConfig(data, format)
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxPixels {
		return nil, "", noThumb
	}
	img, err := decodeImage(data, format)
	if err != nil {
		return nil, "", noThumb
	}
	img = upright(img, orientationOf(data, format))
	b := img.Bounds()
	if w, h := fitSide(b.Dx(), b.Dy(), thumbSide); w != b.Dx() || h != b.Dy() {
		img = scaleImage(img, w, h)
	}
	enc, ct := []byte(nil), "image/png"
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		ct = "image/jpeg"
		enc, err = encodeJPEG(img)
	} else {
		enc, err = encodePNG(img)
	}
	if err != nil {
		return nil, "", internal(fmt.Errorf("encoding a thumbnail: %w", err))
	}
	return enc, ct, nil
}

// jobFiles lists every file of a job in the output store: outputs, their
// thumbnails and inputs.
func jobFiles(j *store.Job) []store.Output {
	files := append([]store.Output(nil), j.Outputs...)
	for n := range j.Outputs {
		files = append(files, store.Output{Key: thumbKey(j.ID, n)})
	}
	return append(files, j.Inputs...)
}
