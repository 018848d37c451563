package gateway

import (
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// handleUI serves the page and its assets from Config.UI, or a placeholder
// page when there is none.
func (s *Service) handleUI(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		s.handleNoRoute(w, r)
		return
	}
	if s.cfg.UIHandler != nil {
		s.cfg.UIHandler.ServeHTTP(w, r)
		return
	}
	if s.cfg.UI == nil {
		if r.URL.Path != "/" {
			s.writeError(w, r, notFound("page"))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(placeholderPage))
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name == "" {
		name = "."
	}
	if _, err := fs.Stat(s.cfg.UI, name); errors.Is(err, fs.ErrNotExist) {
		s.writeError(w, r, notFound("page"))
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.FileServerFS(s.cfg.UI).ServeHTTP(w, r)
}

// placeholderPage stands in for the Image Brush page until one is mounted:
// a plain form posting to the API, with links to the API's description.
const placeholderPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>comfypod · Image Brush</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
label { display: block; margin: .6rem 0 .2rem; font-weight: 600; }
input[type=text], input[type=number] { width: 100%; padding: .3rem; }
button { margin-top: 1rem; padding: .5rem 1.2rem; font-size: 1rem; }
code { background: #f3f3f3; padding: 0 .2rem; }
pre { background: #f3f3f3; padding: .6rem; overflow: auto; }
</style>
</head>
<body>
<h1>Image Brush</h1>
<p>Paint the style of a reference image into the masked area of a target image.
The full page is not installed in this build; this form calls the same API.
The API is described in <a href="/openapi.json">/openapi.json</a>.</p>
<form method="post" action="/v1/jobs" enctype="multipart/form-data">
<label for="target">Target image (PNG, JPEG or WEBP)</label>
<input id="target" name="target" type="file" accept="image/png,image/jpeg,image/webp" required>
<label for="reference">Reference image (the style)</label>
<input id="reference" name="reference" type="file" accept="image/png,image/jpeg,image/webp" required>
<label for="mask">Mask (same size as the target: transparent or white = paint here)</label>
<input id="mask" name="mask" type="file" accept="image/png" required>
<label for="prompt">Prompt</label>
<input id="prompt" name="prompt" type="text" placeholder="a hand-painted texture, soft brush strokes">
<label for="strength">Strength</label>
<input id="strength" name="strength" type="number" step="0.05" min="0" max="10" placeholder="1.0">
<label for="seed">Seed (a number, or empty for a random one)</label>
<input id="seed" name="seed" type="text" placeholder="random">
<button type="submit">Paint</button>
</form>
<p>The answer is the new job; follow it at <code>/v1/jobs/{id}</code> or as events at
<code>/v1/jobs/{id}/events</code>, and download the result from its <code>outputs</code>.</p>
<pre>curl -F target=@target.png -F reference=@style.png -F mask=@mask.png -F prompt="oil paint" http://HOST/v1/jobs</pre>
</body>
</html>
`
