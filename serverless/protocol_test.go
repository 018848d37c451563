package serverless

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	t.Parallel()
	ts := newScriptedPlane(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		body := strings.Repeat("x", 100)
		switch r.URL.Path {
		case "/chunked": // no Content-Length
			w.(http.Flusher).Flush()
		case "/short": // declares more than it sends
			w.Header().Set("Content-Length", "200")
		}
		_, _ = w.Write([]byte(body))
	})
	get := func(path string, limit int64) ([]byte, error) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return readBody(resp, limit)
	}
	for _, path := range []string{"/sized", "/chunked"} {
		b, err := get(path, 100)
		if err != nil || len(b) != 100 {
			t.Errorf("%s: %d bytes, %v", path, len(b), err)
		}
		if cap(b) != 100 && path == "/sized" {
			t.Errorf("%s: buffer of %d bytes for a 100-byte answer", path, cap(b))
		}
		if _, err := get(path, 99); !errors.Is(err, errBodyTooLarge) {
			t.Errorf("%s over the limit: %v", path, err)
		}
	}
	if _, err := get("/short", 1000); err == nil {
		t.Error("an answer shorter than its Content-Length was accepted")
	}
}
