package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy the page is served with: everything from
// the page's own origin, images also from blob: and data: URLs (the page shows
// the user's files and the results it fetched), nothing from elsewhere.
const ContentSecurityPolicy = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
	"script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// FS returns the page's files: index.html at the root, beside its scripts,
// stylesheet and icon.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// The folder is embedded at build time; fs.Sub fails only on a bad name.
		panic("web: " + err.Error())
	}
	return sub
}

// file is one embedded file, ready to serve.
type file struct {
	name        string
	body        []byte
	etag        string
	contentType string
}

// handler serves the embedded files.
type handler struct {
	files map[string]*file
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// Handler serves the Image Brush page, meant to be mounted at "/" of the
// service that also answers /v1/jobs: "/" is the page, the other paths are
// its assets. Only GET and HEAD are allowed. Files are served with an ETag
// and Cache-Control: no-cache (browsers revalidate, so a new binary is picked
// up at once), with ContentSecurityPolicy and nosniff headers.
func Handler() http.Handler {
	h := &handler{files: map[string]*file{}}
	root := FS()
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentTypes[path.Ext(name)]
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		h.files["/"+name] = &file{
			name:        name,
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			contentType: ct,
		}
		return nil
	})
	if err != nil {
		panic("web: reading the embedded files: " + err.Error())
	}
	h.files["/"] = h.files["/index.html"]
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f := h.files[r.URL.Path]
	if f == nil || strings.Contains(r.URL.Path, "..") {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("ETag", f.etag)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(f.contentType, "text/html") {
		hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
