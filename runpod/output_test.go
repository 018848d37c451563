package runpod

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// makePNG returns a small PNG.
func makePNG(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 40), uint8(y * 40), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

var (
	pngBytes = makePNG(5, 4)
	pngB64   = base64.StdEncoding.EncodeToString(pngBytes)
	mp4Bytes = append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), bytes.Repeat([]byte{7}, 100)...)
	mp4B64   = base64.StdEncoding.EncodeToString(mp4Bytes)
	wavBytes = append([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"), bytes.Repeat([]byte{1}, 64)...)
	wavB64   = base64.StdEncoding.EncodeToString(wavBytes)
)

// statusFrom decodes a status body as the client would, optionally forcing
// the spool-to-disk path.
func statusFrom(t testing.TB, c *Client, body string) *Status {
	t.Helper()
	st, err := c.ReadStatus(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestOutputShapes(t *testing.T) {
	t.Parallel()
	wrapped := strings.Join(splitEvery(pngB64, 20), `\n`) // line breaks, as Python's encodebytes makes
	urlSafe := strings.TrimRight(base64.URLEncoding.EncodeToString(pngBytes), "=")
	cases := []struct {
		name   string
		output string
		want   map[string][]byte // name → content
		fields []string
	}{
		{"worker-comfyui images", `{"images":[{"filename":"ComfyUI_00001_.png","type":"base64","data":"` + pngB64 + `"}],"errors":["warn"]}`,
			map[string][]byte{"ComfyUI_00001_.png": pngBytes}, []string{"images[0]"}},
		{"images[0].data without name", `{"images":[{"data":"` + pngB64 + `"}]}`,
			map[string][]byte{"image.png": pngBytes}, []string{"images[0]"}},
		{"images[0] as a string", `{"images":["` + pngB64 + `","` + pngB64 + `"]}`,
			map[string][]byte{"image-0.png": pngBytes, "image-1.png": pngBytes}, []string{"images[0]", "images[1]"}},
		{"output.image", `{"image":"` + pngB64 + `"}`,
			map[string][]byte{"image.png": pngBytes}, []string{"image"}},
		{"output as a bare string", `"` + pngB64 + `"`,
			map[string][]byte{"output.png": pngBytes}, []string{"output"}},
		{"data URI prefix", `{"images":[{"data":"data:image/png;base64,` + pngB64 + `"}]}`,
			map[string][]byte{"image.png": pngBytes}, []string{"images[0]"}},
		{"bare data URI", `"data:image/png;base64,` + pngB64 + `"`,
			map[string][]byte{"output.png": pngBytes}, []string{"output"}},
		{"wrapped base64", `{"image":"` + wrapped + `"}`,
			map[string][]byte{"image.png": pngBytes}, []string{"image"}},
		{"url-safe, unpadded", `{"image":"` + urlSafe + `"}`,
			map[string][]byte{"image.png": pngBytes}, []string{"image"}},
		{"escaped slashes", `{"image":"` + strings.ReplaceAll(pngB64, "/", `\/`) + `"}`,
			map[string][]byte{"image.png": pngBytes}, []string{"image"}},
		{"videos and gifs", `{"videos":[{"filename":"dance_00001.mp4","type":"base64","data":"` + mp4B64 + `"}],"gifs":[{"data":"` + pngB64 + `"}]}`,
			map[string][]byte{"dance_00001.mp4": mp4Bytes, "gif.png": pngBytes}, []string{"videos[0]", "gifs[0]"}},
		{"audio list", `{"audio":[{"filename":"voice","type":"base64","data":"` + wavB64 + `"}]}`,
			map[string][]byte{"voice.wav": wavBytes}, []string{"audio[0]"}},
		{"name after data, no extension", `{"images":[{"data":"` + pngB64 + `","filename":"result"}]}`,
			map[string][]byte{"result.png": pngBytes}, []string{"images[0]"}},
		{"legacy message", `{"message":"` + pngB64 + `","status":"success"}`,
			map[string][]byte{"output.png": pngBytes}, []string{"message"}},
		{"list of strings", `["` + pngB64 + `"]`,
			map[string][]byte{"output.png": pngBytes}, []string{"output[0]"}},
		{"hostile name", `{"images":[{"filename":"../../etc/passwd","type":"base64","data":"` + pngB64 + `"}]}`,
			map[string][]byte{"passwd.png": pngBytes}, []string{"images[0]"}},
		{"text is not a file", `"a cat sitting on a mat"`, map[string][]byte{}, nil},
		{"short base64-looking text is not a file", `{"text":"SGVsbG8=","caption":"YWJj"}`, map[string][]byte{}, nil},
		{"errors only", `{"errors":["something"],"images":[]}`, map[string][]byte{}, nil},
		{"numbers", `{"images":[1,2,{"x":null}],"image":null}`, map[string][]byte{}, nil},
	}
	for _, tc := range cases {
		for _, spool := range []bool{false, true} {
			name := tc.name
			if spool {
				name += "/spooled"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				opts := []Option{WithAPIKey("k")}
				if spool {
					opts = append(opts, WithMemoryLimit(16), WithTempDir(t.TempDir()))
				}
				c, err := New("ep1", opts...)
				if err != nil {
					t.Fatal(err)
				}
				st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":`+tc.output+`}`)
				if spool != (st.Output == nil) {
					t.Errorf("spooled=%v but Output=%q", spool, st.Output)
				}
				files, err := st.Outputs()
				if err != nil {
					t.Fatal(err)
				}
				var fields []string
				for _, f := range files {
					fields = append(fields, f.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
					t.Errorf("fields %v, want %v", fields, tc.fields)
				}
				dir := t.TempDir()
				saved, err := st.WriteOutputs(context.Background(), dir)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][]byte{}
				for _, s := range saved {
					b, err := os.ReadFile(s.Path)
					if err != nil {
						t.Fatal(err)
					}
					if int64(len(b)) != s.Size || filepath.Dir(s.Path) != dir {
						t.Errorf("saved %+v: %d bytes in %s", s, len(b), filepath.Dir(s.Path))
					}
					got[filepath.Base(s.Path)] = b
				}
				if len(got) != len(tc.want) {
					t.Errorf("files %v, want %v", keys(got), keys(tc.want))
				}
				for n, w := range tc.want {
					if !bytes.Equal(got[n], w) {
						t.Errorf("%s: %d bytes, want %d", n, len(got[n]), len(w))
					}
				}
			})
		}
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func keys(m map[string][]byte) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func TestOutputFromS3URL(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth []string
	s3 := newEndpoint(t) // any server will do; it serves /bucket/...
	s3.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.URL.Query().Get("X-Amz-Signature") != "sig":
			http.Error(w, "denied", http.StatusForbidden)
		case strings.HasSuffix(r.URL.Path, "/noext"):
			_, _ = w.Write(pngBytes)
		default:
			w.Header().Set("Content-Type", "video/mp4")
			_, _ = w.Write(mp4Bytes)
		}
	})
	base := s3.srv.URL + "/bucket/"
	c, err := New("ep1", WithAPIKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"videos":[`+
		`{"filename":"dance.mp4","type":"s3_url","data":"`+base+`dance.mp4?X-Amz-Signature=sig"},`+
		`{"type":"s3_url","data":"`+base+`noext?X-Amz-Signature=sig"}],`+
		`"images":["`+base+`x.png?X-Amz-Signature=sig"]}}`)
	dir := t.TempDir()
	saved, err := st.WriteOutputs(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range saved {
		names = append(names, filepath.Base(s.Path))
	}
	if strings.Join(names, ",") != "dance.mp4,video.png,x.png" {
		t.Errorf("names %v", names)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "dance.mp4"))
	if !bytes.Equal(b, mp4Bytes) {
		t.Errorf("dance.mp4 content differs")
	}
	mu.Lock()
	for _, a := range auth {
		if a != "" {
			t.Errorf("sent Authorization %q to the bucket", a)
		}
	}
	mu.Unlock()
	if !strings.Contains(saved[0].String(), "?REDACTED") || strings.Contains(saved[0].String(), "sig") {
		t.Errorf("String() leaks the signature: %s", saved[0].String())
	}

	// An expired presigned URL: a clear error without the signature.
	bad := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"images":[{"type":"s3_url","data":"`+base+`a.png?X-Amz-Signature=expired"}]}}`)
	_, err = bad.WriteOutputs(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "expired") || strings.Contains(err.Error(), "X-Amz-Signature=expired") {
		t.Errorf("err = %v", err)
	}
}

func TestWriteOutputsNeverOverwrites(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"a.png","data":"`+pngB64+`"},{"filename":"a.png","data":"`+pngB64+`"}]}}`)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.png"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved, err := st.WriteOutputs(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 2 || filepath.Base(saved[0].Path) != "a-1.png" || filepath.Base(saved[1].Path) != "a-2.png" {
		t.Errorf("saved %v", saved)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.png")); string(b) != "mine" {
		t.Errorf("an existing file was overwritten")
	}
}

func TestWriteOutputsRemovesBrokenFile(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	// Damage beyond the part read to classify the value.
	long := base64.StdEncoding.EncodeToString(append(append([]byte{}, pngBytes...), make([]byte, 4000)...))
	broken := long[:3000] + "!!!!" + long[3004:]
	st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"ok.png","data":"`+pngB64+`"},{"filename":"bad.png","data":"`+broken+`"}]}}`)
	dir := t.TempDir()
	saved, err := st.WriteOutputs(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "images[1]") || !strings.Contains(err.Error(), "base64") {
		t.Fatalf("err = %v", err)
	}
	if len(saved) != 1 || filepath.Base(saved[0].Path) != "ok.png" {
		t.Errorf("saved %v", saved)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the broken file was left behind")
	}
}

func TestWriteOutputsStopsOnCancel(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"image":"`+pngB64+`"}}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := st.WriteOutputs(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}
}

func TestLargeOutputIsSpooled(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	data := base64.StdEncoding.EncodeToString(big)
	e := newEndpoint(t)
	e.on("status", rawReply(200, `{"id":"j","status":"COMPLETED","output":{"images":[{"filename":"big.bin","type":"base64","data":"`+data+`"}]}}`))
	tmp := t.TempDir()
	c, _ := e.client(WithMemoryLimit(64<<10), WithTempDir(tmp))
	st, err := c.Status(context.Background(), "j")
	if err != nil {
		t.Fatal(err)
	}
	if st.Output != nil || !st.HasOutput() {
		t.Fatalf("a 1.3 MB answer was kept in memory")
	}
	var out struct {
		Images []struct{ Filename string } `json:"images"`
	}
	if err := st.DecodeOutput(&out); err != nil || out.Images[0].Filename != "big.bin" {
		t.Errorf("DecodeOutput: %+v, %v", out, err)
	}
	var raw bytes.Buffer
	if err := st.WriteJSON(&raw); err != nil || !bytes.HasPrefix(raw.Bytes(), []byte(`{"id":"j"`)) || raw.Len() < len(data) {
		t.Errorf("WriteJSON: %d bytes, %v", raw.Len(), err)
	}
	saved, err := st.WriteOutputs(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(saved[0].Path)
	if !bytes.Equal(got, big) {
		t.Errorf("content differs")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("spool file visible in the temp dir: %v", entries)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOutputsAreOpenedIndependently(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"), WithMemoryLimit(0), WithTempDir(t.TempDir()))
	st := statusFrom(t, c, `{"id":"j","status":"COMPLETED","output":{"images":["`+pngB64+`"],"videos":["`+mp4B64+`"]}}`)
	files, err := st.Outputs()
	if err != nil || len(files) != 2 {
		t.Fatalf("%v, %v", files, err)
	}
	// Read them concurrently, in reverse order.
	var wg sync.WaitGroup
	for i, want := range [][]byte{pngBytes, mp4Bytes} {
		f := files[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := f.Open(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer rc.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(rc); err != nil {
				t.Error(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s content differs", f.Field)
			}
		}()
	}
	wg.Wait()
}

func TestStatusWithoutOutput(t *testing.T) {
	t.Parallel()
	c, _ := New("ep1", WithAPIKey("k"))
	for _, body := range []string{`{"id":"j","status":"COMPLETED"}`, `{"id":"j","status":"COMPLETED","output":null}`} {
		st := statusFrom(t, c, body)
		if st.HasOutput() {
			t.Errorf("%s: HasOutput", body)
		}
		files, err := st.Outputs()
		if err != nil || len(files) != 0 {
			t.Errorf("%s: %v, %v", body, files, err)
		}
		saved, err := st.WriteOutputs(context.Background(), filepath.Join(t.TempDir(), "never-made"))
		if err != nil || saved != nil {
			t.Errorf("%s: %v, %v", body, saved, err)
		}
		if err := st.DecodeOutput(new(any)); err == nil {
			t.Errorf("DecodeOutput of no output succeeded")
		}
	}
}

func TestSafeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a.png":                           "a.png",
		"../../etc/passwd":                "passwd",
		`..\..\win.ini`:                   "win.ini",
		"/abs/path/x.mp4":                 "x.mp4",
		".hidden":                         "hidden",
		"..":                              "",
		"":                                "",
		"a\x00b\nc.png":                   "abc.png",
		`we:ird*na?me<>.png`:              "we_ird_na_me__.png",
		strings.Repeat("é", 300) + ".png": strings.Repeat("é", 98) + ".png",
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{pngBytes, "image/png"},
		{mp4Bytes, "video/mp4"},
		{[]byte("\x00\x00\x00\x14ftypqt  \x00\x00"), "video/quicktime"},
		{[]byte("\x00\x00\x00\x1cftypavif\x00\x00"), "image/avif"},
		{[]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), "image/webp"},
		{[]byte("GIF89a......"), "image/gif"},
		{[]byte("\xff\xd8\xff\xe0\x00\x10JFIF"), "image/jpeg"},
		{[]byte("fLaC\x00\x00"), "audio/flac"},
		{[]byte("RIFF\x10\x00\x00\x00WAVEfmt "), "audio/wave"},
		{[]byte("plain words"), ""},
	} {
		if got := sniff(tc.b); got != tc.want {
			t.Errorf("sniff(%q) = %q, want %q", tc.b[:min(12, len(tc.b))], got, tc.want)
		}
	}
}
