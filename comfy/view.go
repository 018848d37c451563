package comfy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// Download is an output file being read from /view. It is an io.ReadCloser
// over the response body: the file is streamed, never held in memory. Close
// it when done.
type Download struct {
	io.ReadCloser
	// ContentType is the server's Content-Type.
	ContentType string
	// Size is the Content-Length, or -1 when unknown.
	Size int64
	// Filename is the name from Content-Disposition, or the requested one.
	Filename string
}

// View opens an output, temp or input file for reading. A missing file is an
// error matching ErrNotFound.
func (c *Client) View(ctx context.Context, ref FileRef) (*Download, error) {
	if ref.Filename == "" {
		return nil, errors.New("comfy: View: empty file name")
	}
	q := url.Values{"filename": {ref.Filename}}
	if ref.Type != "" {
		q.Set("type", ref.Type)
	}
	if ref.Subfolder != "" {
		q.Set("subfolder", ref.Subfolder)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/view", query: q})
	if err != nil {
		return nil, err
	}
	d := &Download{ReadCloser: resp.Body, ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength, Filename: ref.Filename}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		d.Filename = params["filename"]
	}
	return d, nil
}
