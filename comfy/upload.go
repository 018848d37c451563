package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path"
	"strings"
)

// Upload is a file to send with UploadImage or UploadMask.
type Upload struct {
	// Name is the file name to store it under (no folders: use Subfolder).
	Name string
	// Data is read to the end and not closed.
	Data io.Reader
	// Subfolder stores the file in a folder under the base ("" for none).
	Subfolder string
	// Type is the base folder: input (default), temp or output.
	Type string
	// Overwrite replaces a file of the same name. Without it the server
	// keeps an identical existing file, and renames the upload "name (1).ext"
	// when the contents differ.
	Overwrite bool
	// ContentType of the part (default: from the extension, else
	// application/octet-stream).
	ContentType string
}

// Uploaded is where the server stored an upload.
type Uploaded struct {
	// Name is the stored name; it differs from Upload.Name when the server
	// renamed the file to avoid a clash.
	Name string `json:"name"`
	// Subfolder is the folder under Type's base.
	Subfolder string `json:"subfolder"`
	// Type is the base folder: input, temp or output.
	Type string `json:"type"`
}

// Ref returns the value to put into a LoadImage-style input: "sub/name.png",
// annotated " [temp]" or " [output]" when the file is not in input/.
func (u Uploaded) Ref() string {
	r := u.Name
	if u.Subfolder != "" {
		r = strings.TrimRight(u.Subfolder, "/") + "/" + u.Name
	}
	if u.Type != "" && u.Type != "input" {
		r += " [" + u.Type + "]"
	}
	return r
}

// FileRef returns the upload as a file reference (for /view or an original_ref).
func (u Uploaded) FileRef() FileRef {
	return FileRef{Filename: u.Name, Subfolder: u.Subfolder, Type: u.Type}
}

// UploadImage sends a file to /upload/image and returns where the server
// stored it. Put Uploaded.Ref() into the LoadImage input (RenameFile does
// that for a workflow); never assume the name is unchanged.
func (c *Client) UploadImage(ctx context.Context, up Upload) (*Uploaded, error) {
	return c.upload(ctx, "/upload/image", up, nil)
}

// UploadMask sends a mask to /upload/mask: the server stores original with
// its alpha replaced by the alpha of the uploaded image, under up.Name.
func (c *Client) UploadMask(ctx context.Context, up Upload, original FileRef) (*Uploaded, error) {
	if original.Filename == "" {
		return nil, errors.New("comfy: UploadMask: the original image's file name is empty")
	}
	if original.Type == "" {
		original.Type = "input"
	}
	return c.upload(ctx, "/upload/mask", up, &original)
}

func checkUpload(up Upload) error {
	switch {
	case up.Name == "":
		return errors.New("the file name is empty")
	case strings.ContainsAny(up.Name, `/\`) || up.Name == "." || up.Name == "..":
		return fmt.Errorf("file name %q must be a plain name; put folders in Subfolder", up.Name)
	case up.Data == nil:
		return errors.New("no data")
	case up.Type != "" && up.Type != "input" && up.Type != "temp" && up.Type != "output":
		return fmt.Errorf("type %q: want input, temp or output", up.Type)
	case strings.HasPrefix(up.Subfolder, "/") || strings.Contains(up.Subfolder, `\`) || hasDotDot(up.Subfolder):
		return fmt.Errorf("subfolder %q must be relative, with forward slashes and no ..", up.Subfolder)
	}
	for _, r := range up.Name {
		if r < 0x20 || r == 0x7f || r == '"' {
			return fmt.Errorf("file name %q contains a control character or a quote", up.Name)
		}
	}
	return nil
}

func hasDotDot(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}

func (c *Client) upload(ctx context.Context, route string, up Upload, original *FileRef) (*Uploaded, error) {
	if err := checkUpload(up); err != nil {
		return nil, fmt.Errorf("comfy: upload: %w", err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	// The body is streamed, so a large file is never held in memory.
	go func() {
		defer close(done)
		pw.CloseWithError(writeUpload(mw, up, original))
	}()
	resp, err := c.send(ctx, request{method: http.MethodPost, path: route, contentType: mw.FormDataContentType(), bodyReader: pr})
	// Whatever happened, stop the writer and wait for it.
	_ = pr.CloseWithError(errors.New("upload request finished"))
	<-done
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.StatusCode == http.StatusBadRequest && len(ae.Body) == 0 {
			ae.Body = []byte(fmt.Sprintf("the server refused the upload of %q (bad subfolder, name or missing file part)", up.Name))
		}
		return nil, err
	}
	out := new(Uploaded)
	if err := decodeBody(resp, route, out); err != nil {
		return nil, err
	}
	if out.Name == "" {
		return nil, fmt.Errorf("ComfyUI %s: the answer names no file", route)
	}
	if out.Type == "" {
		out.Type = "input"
	}
	return out, nil
}

func writeUpload(mw *multipart.Writer, up Upload, original *FileRef) error {
	if up.Overwrite {
		if err := mw.WriteField("overwrite", "true"); err != nil {
			return err
		}
	}
	if up.Type != "" {
		if err := mw.WriteField("type", up.Type); err != nil {
			return err
		}
	}
	if up.Subfolder != "" {
		if err := mw.WriteField("subfolder", up.Subfolder); err != nil {
			return err
		}
	}
	if original != nil {
		ref, _ := json.Marshal(original)
		if err := mw.WriteField("original_ref", string(ref)); err != nil {
			return err
		}
	}
	ct := up.ContentType
	if ct == "" {
		ct = contentTypeOf(up.Name)
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="image"; filename="%s"`, up.Name))
	h.Set("Content-Type", ct)
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, up.Data); err != nil {
		return fmt.Errorf("reading %s: %w", up.Name, err)
	}
	return mw.Close()
}

func contentTypeOf(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".wav":
		return "audio/wav"
	case ".mp3":
		return "audio/mpeg"
	case ".flac":
		return "audio/flac"
	}
	return "application/octet-stream"
}
