package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/comfypod/comfypod/runpod"
)

// maxFieldBytes caps one non-file form field.
const maxFieldBytes = 64 << 10

// maxParts caps the parts of a multipart body.
const maxParts = 64

// readSubmission parses a POST /v1/jobs body: multipart/form-data with image
// files and text fields, or a JSON object with base64 images.
func (s *Service) readSubmission(w http.ResponseWriter, r *http.Request) (*submission, *apiError) {
	ct := r.Header.Get("Content-Type")
	mt, mparams, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, unsupported("", "send the job as multipart/form-data (files target, reference, mask) or as application/json (base64 images)")
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
	switch mt {
	case "multipart/form-data":
		return s.readMultipart(body, mparams["boundary"])
	case "application/json":
		return s.readJSON(body)
	}
	return nil, unsupported("", "content type %s is not accepted: send multipart/form-data or application/json", mt)
}

func (s *Service) bodyTooLarge(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge("", "the request is larger than %d MB", s.cfg.MaxRequestBytes>>20)
	}
	return nil
}

func (s *Service) readMultipart(body io.Reader, boundary string) (*submission, *apiError) {
	if boundary == "" {
		return nil, badRequest("", "the multipart/form-data content type has no boundary")
	}
	mr := multipart.NewReader(body, boundary)
	sub := &submission{files: map[string][]byte{}, params: map[string]any{}}
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if e := s.bodyTooLarge(err); e != nil {
				return nil, e
			}
			return nil, badRequest("", "the multipart body cannot be read: %v", err)
		}
		if n >= maxParts {
			return nil, badRequest("", "too many parts (at most %d)", maxParts)
		}
		name := part.FormName()
		if name == "" {
			_ = part.Close()
			return nil, badRequest("", "a part has no form name (Content-Disposition: form-data; name=…)")
		}
		if !utf8.ValidString(name) || len(name) > 100 {
			_ = part.Close()
			return nil, badRequest("", "a part has a name that is not a short UTF-8 string")
		}
		_, isImage := s.pkg.imageParam(name)
		if _, dup := sub.files[name]; dup {
			return nil, badRequest(name, "sent twice")
		}
		if _, dup := sub.params[name]; dup {
			return nil, badRequest(name, "sent twice")
		}
		if isImage || part.FileName() != "" {
			data, err := readLimited(part, s.cfg.MaxImageBytes)
			_ = part.Close()
			if err != nil {
				if e := s.bodyTooLarge(err); e != nil {
					return nil, e
				}
				if errors.Is(err, errLimit) {
					return nil, tooLarge(name, "the file is larger than %s", sizeText(s.cfg.MaxImageBytes))
				}
				return nil, badRequest(name, "the file cannot be read: %v", err)
			}
			sub.files[name] = data
			continue
		}
		data, err := readLimited(part, maxFieldBytes)
		_ = part.Close()
		if err != nil {
			if e := s.bodyTooLarge(err); e != nil {
				return nil, e
			}
			if errors.Is(err, errLimit) {
				return nil, tooLarge(name, "the field is longer than %d KB", maxFieldBytes>>10)
			}
			return nil, badRequest(name, "the field cannot be read: %v", err)
		}
		if !utf8.Valid(data) {
			return nil, badRequest(name, "the field is not UTF-8 text")
		}
		// An empty field is an omitted one: forms send every input.
		if v := string(data); strings.TrimSpace(v) != "" {
			sub.params[name] = v
		}
	}
	return sub, nil
}

func (s *Service) readJSON(body io.Reader) (*submission, *apiError) {
	data, err := io.ReadAll(body)
	if err != nil {
		if e := s.bodyTooLarge(err); e != nil {
			return nil, e
		}
		return nil, badRequest("", "the body cannot be read: %v", err)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&fields); err != nil {
		return nil, badRequest("", "the body is not a JSON object: %v", jsonProblem(err))
	}
	if fields == nil {
		return nil, badRequest("", "the body is not a JSON object")
	}
	if dec.More() {
		return nil, badRequest("", "the body holds more than one JSON value")
	}
	sub := &submission{files: map[string][]byte{}, params: map[string]any{}}
	for name, raw := range fields {
		if string(raw) == "null" {
			continue
		}
		if name == "params" {
			return nil, badRequest("params", "send params at the top level, beside the images: {\"prompt\": …, \"seed\": …}")
		}
		if _, ok := s.pkg.imageParam(name); !ok {
			sub.params[name] = raw
			continue
		}
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, badRequest(name, "want the image as a base64 string (with or without a data: URI prefix)")
		}
		if mt, _, ok := runpod.ParseDataURI(str); ok && !strings.HasPrefix(mt, "image/") {
			return nil, unsupported(name, "the data URI holds %s, not an image", mt)
		}
		if int64(len(str)) > s.cfg.MaxImageBytes*4/3+1024 {
			return nil, tooLarge(name, "the image is larger than %s", sizeText(s.cfg.MaxImageBytes))
		}
		img, err := runpod.DecodeImageString(str)
		if err != nil {
			return nil, badRequest(name, "not valid base64: %v", err)
		}
		if int64(len(img)) > s.cfg.MaxImageBytes {
			return nil, tooLarge(name, "the image is larger than %s", sizeText(s.cfg.MaxImageBytes))
		}
		sub.files[name] = img
	}
	return sub, nil
}

// jsonProblem describes a JSON syntax error without echoing the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "the body is " + te.Value + ", not an object"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the body ends early"
	}
	return "it cannot be decoded"
}

var errLimit = errors.New("over the size limit")

// readLimited reads all of r, failing with errLimit past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errLimit
	}
	return b, nil
}

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
