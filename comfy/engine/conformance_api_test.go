package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/pyjson"
	"github.com/comfypod/comfypod/internal/testenv"
)

// TestConformanceMisc replays api/misc.json: small answers of an idle server.
func TestConformanceMisc(t *testing.T) {
	t.Parallel()
	var steps []struct {
		Description string `json:"description"`
		Request     struct {
			Method string `json:"method"`
			Path   string `json:"path"`
		} `json:"request"`
		Response struct {
			Status      int             `json:"status"`
			ContentType string          `json:"content_type"`
			Body        json.RawMessage `json:"body"`
			BodyText    *string         `json:"body_text"`
		} `json:"response"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(testenv.Conformance(t), "api", "misc.json")), &steps); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, nil)
	for _, st := range steps {
		status, ctype, body := e.do(st.Request.Method, st.Request.Path, nil, "")
		if status != st.Response.Status || ctype != st.Response.ContentType {
			t.Errorf("%s: %s %s = %d %q, want %d %q", st.Description, st.Request.Method, st.Request.Path, status, ctype, st.Response.Status, st.Response.ContentType)
			continue
		}
		if st.Response.BodyText != nil {
			if string(body) != *st.Response.BodyText {
				t.Errorf("%s: body %q, want %q", st.Description, body, *st.Response.BodyText)
			}
			continue
		}
		if d := diffJSON("body", mustParse(t, body), mustParse(t, st.Response.Body), nil); len(d) > 0 {
			t.Errorf("%s:\n%s", st.Description, strings.Join(d, "\n"))
		}
	}
}

// TestConformanceUpload replays upload/upload_image.json step by step on one
// server and checks the files left on disk.
func TestConformanceUpload(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.Conformance(t), "upload")
	var script struct {
		Steps []struct {
			Description string `json:"description"`
			Request     struct {
				Path      string                     `json:"path"`
				Multipart map[string]json.RawMessage `json:"multipart"`
			} `json:"request"`
			Response struct {
				Status      int             `json:"status"`
				ContentType string          `json:"content_type"`
				Body        json.RawMessage `json:"body"`
				BodyText    *string         `json:"body_text"`
			} `json:"response"`
		} `json:"steps"`
		Files map[string]string `json:"files_on_disk_after_all_steps_sha256"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "upload_image.json")), &script); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, nil)
	for _, st := range script.Steps {
		var filename string
		var content []byte
		fields := map[string]string{}
		for k, raw := range st.Request.Multipart {
			if k == "image" {
				var img struct {
					Filename  string `json:"filename"`
					BytesFile string `json:"bytes_file"`
				}
				if err := json.Unmarshal(raw, &img); err != nil {
					t.Fatal(err)
				}
				filename, content = img.Filename, mustRead(t, filepath.Join(dir, img.BytesFile))
				continue
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			fields[k] = v
		}
		status, body := e.uploadCT(st.Request.Path, filename, content, fields)
		if status.code != st.Response.Status || status.ctype != st.Response.ContentType {
			t.Errorf("%s: %d %q, want %d %q (%s)", st.Description, status.code, status.ctype, st.Response.Status, st.Response.ContentType, body)
			continue
		}
		if st.Response.BodyText != nil {
			if string(body) != *st.Response.BodyText {
				t.Errorf("%s: body %q, want %q", st.Description, body, *st.Response.BodyText)
			}
			continue
		}
		if d := diffJSON("body", mustParse(t, body), mustParse(t, st.Response.Body), nil); len(d) > 0 {
			t.Errorf("%s:\n%s", st.Description, strings.Join(d, "\n"))
		}
	}
	base := filepath.Dir(e.s.InputDir())
	for rel, want := range script.Files {
		data, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s", rel, got, want)
		}
	}
	// Nothing else was written (no temporary files left behind).
	var found []string
	for _, root := range []string{e.s.InputDir(), e.s.TempDir()} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(base, p)
				found = append(found, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	for _, f := range found {
		if _, ok := script.Files[f]; !ok {
			t.Errorf("unexpected file %s on disk", f)
		}
	}
}

type httpStatus struct {
	code  int
	ctype string
}

func (e *testEnv) uploadCT(path, filename string, content []byte, fields map[string]string) (httpStatus, []byte) {
	e.t.Helper()
	body, ctype := multipartBody(e.t, filename, content, fields)
	code, rct, data := e.do("POST", path, body, ctype)
	return httpStatus{code, rct}, data
}

// TestConformanceObjectInfo compares /object_info/<Class> with the capture
// of every class the corpus uses, and checks that /object_info serves each
// of them identically.
func TestConformanceObjectInfo(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(testenv.Conformance(t), "object_info")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	e := newTestEnv(t, nil)
	// The LoadImage lists are the input folder's images (top level only).
	for name, data := range map[string]string{"b.png": "x", "a.jpg": "x", "c.webp": "x", "notes.txt": "x", "sub/d.png": "x"} {
		p := filepath.Join(e.s.InputDir(), filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inputImages := []any{"a.jpg", "b.png", "c.webp"}

	var all any
	if status, _, body := e.do("GET", "/object_info", nil, ""); status != 200 {
		t.Fatalf("GET /object_info = %d", status)
	} else {
		all = mustParse(t, body)
	}
	allObj := all.(*pyjson.Object)
	if !slices.Equal(allObj.Keys(), e.s.Classes()) {
		t.Errorf("/object_info classes = %v, want the registered %v", allObj.Keys(), e.s.Classes())
	}

	for _, f := range files {
		class := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(class, func(t *testing.T) {
			want := mustParse(t, mustRead(t, f)).(*pyjson.Object)
			if class != "NoSuchNode" && want.Len() == 1 {
				if _, ok := allObj.Get(class); !ok {
					t.Skipf("core class %s not implemented yet", class)
				}
			}
			status, ctype, body := e.do("GET", "/object_info/"+class, nil, "")
			if status != 200 || ctype != "application/json; charset=utf-8" {
				t.Fatalf("GET = %d %s", status, ctype)
			}
			got := mustParse(t, body)
			if class == "LoadImage" || class == "LoadImageMask" {
				setImageList(t, want, class, inputImages)
			}
			if d := diffJSON(class, got, want, nil); len(d) > 0 {
				t.Errorf("differs from the capture:\n%s", strings.Join(d, "\n"))
			}
			if !sameKeyOrder(got, want) {
				t.Errorf("key order differs:\n got %s\nwant %s", truncate(string(pyjson.Marshal(got)), 600), truncate(string(pyjson.Marshal(want)), 600))
			}
			if class != "NoSuchNode" {
				entry, _ := got.(*pyjson.Object).Get(class)
				fromAll, _ := allObj.Get(class)
				if string(pyjson.Marshal(entry)) != string(pyjson.Marshal(fromAll)) {
					t.Errorf("/object_info and /object_info/%s differ", class)
				}
			}
		})
	}
}

func setImageList(t *testing.T, want *pyjson.Object, class string, list []any) {
	t.Helper()
	c, _ := want.Get(class)
	in, _ := c.(*pyjson.Object).Get("input")
	req, _ := in.(*pyjson.Object).Get("required")
	img, _ := req.(*pyjson.Object).Get("image")
	spec := img.([]any)
	spec[0] = list
}

// sameKeyOrder says whether two decoded values have their object keys in
// the same order throughout.
func sameKeyOrder(a, b any) bool {
	switch x := b.(type) {
	case *pyjson.Object:
		y, ok := a.(*pyjson.Object)
		if !ok || !slices.Equal(x.Keys(), y.Keys()) {
			return false
		}
		for _, k := range x.Keys() {
			if !sameKeyOrder(y.Value(k), x.Value(k)) {
				return false
			}
		}
	case []any:
		y, ok := a.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameKeyOrder(y[i], x[i]) {
				return false
			}
		}
	}
	return true
}
