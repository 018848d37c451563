package runpod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/redact"
)

// OutputFile is one file found in a job's output. Outputs finds them in every
// shape workers use:
//
//   - worker-comfyui ≥ 5: {"images": [{"filename", "type": "base64"|"s3_url", "data"}]},
//     and the same for "videos", "gifs", "audio", "files";
//   - older and hand-written handlers: {"images": [{"data": …}]},
//     {"images": ["<base64>"]}, {"image": "<base64>"}, {"message": "<base64>"},
//     and an output that is itself a base64 string or a list of them.
//
// Base64 may carry a data: URI prefix, line breaks, the URL-safe alphabet or
// no padding. A bare string (not under a key such as "images") counts as a
// file only when its content is recognisably an image, video or audio file.
type OutputFile struct {
	// Name is a safe file name: the worker's, stripped of directories, or
	// one made from Field and the content's type, e.g. "image-0.png".
	Name string
	// Field says where the file is in the output, e.g. "images[0]".
	Field string
	// MediaType is the content's type when known, e.g. "image/png".
	MediaType string
	// URL is where the file is fetched from, for files the worker uploaded
	// (type "s3_url"); empty for inline base64. It may be a presigned URL:
	// treat it as a secret. String() hides its query.
	URL string

	st       *Status
	off      int64 // offset of the JSON string holding the data
	skip     int64 // bytes of data: prefix to skip
	named    bool  // Name came from the worker
	needsExt bool  // the name has no extension yet; add one from the content
}

// String describes the file without secrets.
func (f OutputFile) String() string {
	if f.URL != "" {
		return fmt.Sprintf("%s (%s from %s)", f.Name, f.Field, redact.URL(f.URL))
	}
	return fmt.Sprintf("%s (%s)", f.Name, f.Field)
}

// Limits of the output walk.
const (
	probeLen  = 1024     // bytes of each string read to tell what it is
	maxURLLen = 64 << 10 // longest URL accepted
)

// Outputs lists the files in the job's output without loading them: the
// output is scanned once, each file's data is located, and Open streams it
// later. It returns no files (and no error) for an output without any.
func (s *Status) Outputs() ([]OutputFile, error) {
	if s.outOff < 0 || s.body == nil {
		return nil, nil
	}
	w := &outputWalk{st: s, sc: newScanner(s.body.section(s.outOff, s.outLen), s.outOff)}
	if err := w.root(); err != nil {
		return nil, fmt.Errorf("runpod: read the output of job %s: %w", s.ID, err)
	}
	w.nameFiles()
	return w.files, nil
}

// listKeys are output keys holding a list of files (or one file), with the
// base name of files that have none.
var listKeys = map[string]string{
	"images": "image", "videos": "video", "gifs": "gif", "audio": "audio", "audios": "audio",
	"files": "file", "image": "image", "video": "video", "gif": "gif", "file": "file",
}

type outputWalk struct {
	st    *Status
	sc    *scanner
	files []OutputFile
}

// probe is what was learnt about one string value.
type probe struct {
	off    int64  // offset of the opening quote
	prefix []byte // its first bytes, unescaped
	url    string // the whole value, when it is a URL
	total  int64  // its length, unescaped
}

func (w *outputWalk) root() error {
	c, err := w.sc.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		return w.stringFile("output", "output", false)
	case '[':
		return w.sc.array(func(i int) error {
			return w.element(fmt.Sprintf("output[%d]", i), "output", false)
		})
	case '{':
		return w.sc.object(func(key string) error {
			lk := strings.ToLower(key)
			if base, ok := listKeys[lk]; ok {
				return w.list(key, base)
			}
			if lk == "message" { // worker-comfyui before 5.0
				if c, err := w.sc.peek(); err == nil && c == '"' {
					return w.stringFile(key, "output", false)
				}
			}
			return w.sc.skip()
		})
	}
	return w.sc.skip()
}

// list reads the value of a key such as "images": a list, or a single file.
func (w *outputWalk) list(key, base string) error {
	c, err := w.sc.peek()
	if err != nil {
		return err
	}
	if c == '[' {
		return w.sc.array(func(i int) error {
			return w.element(fmt.Sprintf("%s[%d]", key, i), base, true)
		})
	}
	return w.element(key, base, true)
}

// element reads a string or an entry object; hinted says the key promised a
// file.
func (w *outputWalk) element(field, base string, hinted bool) error {
	c, err := w.sc.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		return w.stringFile(field, base, hinted)
	case '{':
		return w.entry(field, base, hinted)
	}
	return w.sc.skip()
}

// stringFile reads a string that may be a file.
func (w *outputWalk) stringFile(field, base string, hinted bool) error {
	p, err := w.probe()
	if err != nil {
		return err
	}
	if f, ok := w.classify(p, "", hinted); ok {
		f.Field, f.Name = field, base
		w.files = append(w.files, f)
	}
	return nil
}

// entry reads {"filename": …, "type": …, "data": …} and its variants.
func (w *outputWalk) entry(field, base string, hinted bool) error {
	var (
		name, typ, media string
		data             *probe
	)
	err := w.sc.object(func(key string) error {
		c, err := w.sc.peek()
		if err != nil {
			return err
		}
		if c != '"' {
			return w.sc.skip()
		}
		switch strings.ToLower(key) {
		case "filename", "name", "file_name":
			name, _, err = w.sc.stringTrunc(4096)
		case "type":
			typ, _, err = w.sc.stringTrunc(64)
		case "mime_type", "mimetype", "content_type", "media_type":
			media, _, err = w.sc.stringTrunc(256)
		case "data", "base64", "b64", "url", "s3_url", "content", "image", "video":
			if data != nil {
				return w.sc.skip()
			}
			data, err = w.probe()
		default:
			return w.sc.skip()
		}
		return err
	})
	if err != nil || data == nil {
		return err
	}
	if typ != "" || name != "" {
		hinted = true // an entry with a type or a name is meant as a file
	}
	f, ok := w.classify(data, strings.ToLower(typ), hinted)
	if !ok {
		return nil
	}
	f.Field, f.Name = field, base
	if n := safeName(name); n != "" {
		f.Name, f.named = n, true
	}
	if f.MediaType == "" {
		if mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(media)), ";"); mt != "" {
			f.MediaType = mt
		}
	}
	w.files = append(w.files, f)
	return nil
}

// probe reads the next string value's start (all of it if it is a URL) and
// skips the rest, remembering where it is.
func (w *outputWalk) probe() (*probe, error) {
	if _, err := w.sc.peek(); err != nil {
		return nil, err
	}
	p := &probe{off: w.sc.offset()}
	r, err := w.sc.stringReader()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, probeLen)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	p.prefix = buf[:n]
	p.total = int64(n)
	if isURL(p.prefix) {
		var all bytes.Buffer
		all.Write(p.prefix)
		m, err := io.Copy(&all, io.LimitReader(r, maxURLLen))
		if err != nil {
			return nil, err
		}
		p.total += m
		if all.Len() <= maxURLLen {
			p.url = strings.TrimSpace(all.String())
		}
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	p.total += rest
	if rest > 0 {
		p.url = ""
	}
	return p, nil
}

func isURL(b []byte) bool {
	b = bytes.TrimSpace(b)
	return hasPrefixFold(b, "https://") || hasPrefixFold(b, "http://")
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// classify decides whether a string is a file and how to read it. typ is
// the entry's "type" ("base64", "s3_url", …) if any.
func (w *outputWalk) classify(p *probe, typ string, hinted bool) (OutputFile, bool) {
	f := OutputFile{st: w.st, off: p.off}
	if typ == "s3_url" || typ == "url" || isURL(p.prefix) {
		u, err := url.Parse(p.url)
		if p.url == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return f, false
		}
		f.URL = p.url
		f.MediaType = extensionType(path.Ext(u.Path))
		return f, true
	}
	data := p.prefix
	if hasPrefixFold(data, "data:") {
		header, _, ok := bytes.Cut(data, []byte(","))
		if !ok || !bytes.HasSuffix(bytes.ToLower(header), []byte(";base64")) {
			return f, false // only base64 data URIs carry files
		}
		f.skip = int64(len(header) + 1)
		mt, _, _ := strings.Cut(string(header[len("data:"):]), ";")
		f.MediaType = strings.ToLower(strings.TrimSpace(mt))
		data = data[f.skip:]
		hinted = true
	}
	head, ok := decodeBase64Prefix(data)
	if !ok {
		return f, false
	}
	if t := sniff(head); t != "" && (f.MediaType == "" || f.MediaType == "application/octet-stream") {
		f.MediaType = t
	}
	if !hinted && (!isMedia(f.MediaType) || p.total < 16) {
		return f, false
	}
	return f, len(data) > 0
}

// extensionType is the reverse of extensions, for names taken from URLs.
func extensionType(ext string) string {
	ext = strings.ToLower(ext)
	if ext == ".jpeg" {
		return "image/jpeg"
	}
	for t, e := range extensions {
		if e == ext && t != "application/octet-stream" && !strings.Contains(t, "/x-") && t != "audio/wav" && t != "application/ogg" && t != "video/avi" {
			return t
		}
	}
	return ""
}

// decodeBase64Prefix decodes the start of a base64 text, or reports that it
// is not base64 (standard or URL-safe alphabet, whitespace allowed).
func decodeBase64Prefix(b []byte) ([]byte, bool) {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '-':
			clean = append(clean, '+')
		case c == '_':
			clean = append(clean, '/')
		case c == '=':
			clean = append(clean, c)
		case c == '\n' || c == '\r': // line breaks from encoders that wrap
		default:
			return nil, false
		}
	}
	if len(clean) == 0 {
		return nil, false
	}
	if i := bytes.IndexByte(clean, '='); i >= 0 {
		// Padding only at the end, at most two.
		if len(clean)-i > 2 || bytes.Count(clean[i:], []byte("=")) != len(clean)-i || (len(clean))%4 != 0 {
			return nil, false
		}
	}
	clean = clean[:len(clean)/4*4]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// nameFiles gives every file without a worker-given name one made from its
// key and type: "image.png" when it is the only image, else "image-0.png",
// "image-1.png", …; "output.png" for an output that is itself a file.
func (w *outputWalk) nameFiles() {
	count := map[string]int{}
	for _, f := range w.files {
		if !f.named {
			count[f.Name]++
		}
	}
	seen := map[string]int{}
	for i := range w.files {
		f := &w.files[i]
		if f.named {
			if path.Ext(f.Name) == "" {
				f.setExt()
			}
			continue
		}
		if f.URL != "" {
			if u, err := url.Parse(f.URL); err == nil {
				if n := safeName(path.Base(u.Path)); n != "" && path.Ext(n) != "" {
					f.Name, f.named = n, true
					continue
				}
			}
		}
		base := f.Name
		if count[base] > 1 {
			f.Name = base + "-" + strconv.Itoa(seen[base])
			seen[base]++
		}
		f.setExt()
	}
}

// setExt adds the extension of the file's type to its name, or marks it to
// be added once the content is seen.
func (f *OutputFile) setExt() {
	switch {
	case f.MediaType != "":
		f.Name += extensionFor(f.MediaType)
	case f.URL != "":
		f.needsExt = true
	default:
		f.Name += ".bin"
	}
}

// Open returns a reader of the file's content: inline base64 is decoded
// straight from the response (in memory or on disk), and a URL is fetched
// with a streaming GET (without the RunPod API key). Close it when done.
func (f *OutputFile) Open(ctx context.Context) (io.ReadCloser, error) {
	if f.st == nil || f.st.body == nil {
		return nil, errors.New("runpod: output file is not attached to a status")
	}
	if f.URL != "" {
		return f.st.client.fetch(ctx, f)
	}
	b := f.st.body
	sc := newScanner(b.section(f.off, b.size-f.off), f.off)
	r, err := sc.stringReader()
	if err != nil {
		return nil, fmt.Errorf("runpod: output %s: %w", f.Field, err)
	}
	if f.skip > 0 {
		if _, err := io.CopyN(io.Discard, r, f.skip); err != nil {
			return nil, fmt.Errorf("runpod: output %s: %w", f.Field, err)
		}
	}
	dec := base64.NewDecoder(base64.StdEncoding, &b64Normalizer{r: r})
	return &outputReader{r: dec, field: f.Field, ctx: ctx}, nil
}

// outputReader reads a decoded output, checking ctx and naming the output in
// errors.
type outputReader struct {
	r     io.Reader
	field string
	ctx   context.Context
	body  io.Closer
}

func (o *outputReader) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := o.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return n, fmt.Errorf("runpod: output %s: not valid base64 near byte %d", o.field, int64(ce))
		}
		return n, fmt.Errorf("runpod: output %s: %w", o.field, err)
	}
	return n, err
}

func (o *outputReader) Close() error {
	if o.body != nil {
		return o.body.Close()
	}
	return nil
}

// b64Normalizer turns the base64 workers send into standard padded base64:
// whitespace dropped, the URL-safe alphabet mapped, padding added at the end.
type b64Normalizer struct {
	r     io.Reader
	n     int64 // characters passed on
	pad   int   // padding still to emit
	eof   bool
	error error
}

func (b *b64Normalizer) Read(p []byte) (int, error) {
	for {
		if b.eof {
			if b.pad == 0 {
				return 0, io.EOF
			}
			n := min(len(p), b.pad)
			for i := range n {
				p[i] = '='
			}
			b.pad -= n
			return n, nil
		}
		n, err := b.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			switch c {
			case ' ', '\n', '\r', '\t':
				continue
			case '-':
				c = '+'
			case '_':
				c = '/'
			}
			p[j] = c
			j++
		}
		b.n += int64(j)
		if errors.Is(err, io.EOF) {
			b.eof = true
			if r := b.n % 4; r == 2 || r == 3 {
				b.pad = 4 - int(r)
			}
			err = nil
		}
		if err != nil {
			return j, err
		}
		if j > 0 {
			return j, nil
		}
	}
}

// fetch GETs a file the worker uploaded, retrying only before any byte was
// read. The URL is never logged or put in errors with its query.
func (c *Client) fetch(ctx context.Context, f *OutputFile) (io.ReadCloser, error) {
	where := redact.URL(f.URL)
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("runpod: output %s: bad URL %s", f.Field, where)
		}
		if c.userAgent != "" {
			req.Header.Set("User-Agent", c.userAgent)
		}
		resp, err := c.hc.Do(req)
		retry := false
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			err = fmt.Errorf("runpod: output %s: fetch %s: %w", f.Field, where, err)
			retry = ctx.Err() == nil
		} else if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			hint := ""
			if resp.StatusCode == http.StatusForbidden {
				hint = " (a presigned URL may have expired)"
			}
			err = fmt.Errorf("runpod: output %s: fetch %s: %s%s", f.Field, where, resp.Status, hint)
			retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		} else {
			return &outputReader{r: resp.Body, field: f.Field, ctx: ctx, body: resp.Body}, nil
		}
		d, ok := c.retry.Backoff(attempt)
		if !retry || !ok {
			return nil, err
		}
		if c.clock.Sleep(ctx, d) != nil {
			return nil, err
		}
	}
}

// SavedFile is an output file written to disk.
type SavedFile struct {
	OutputFile
	// Path is where it was written.
	Path string
	// Size is its size in bytes.
	Size int64
}

// WriteOutputs writes every output file into dir (created if missing),
// streaming each one: memory use does not grow with file size. Existing
// files are never overwritten: a name already taken gets a "-1", "-2", …
// suffix. A file that fails is removed; the files written before it are
// returned with the error.
func (s *Status) WriteOutputs(ctx context.Context, dir string) ([]SavedFile, error) {
	files, err := s.Outputs()
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runpod: output directory: %w", err)
	}
	var saved []SavedFile
	for _, f := range files {
		sf, err := writeOutput(ctx, dir, f)
		if err != nil {
			return saved, err
		}
		saved = append(saved, sf)
	}
	return saved, nil
}

func writeOutput(ctx context.Context, dir string, f OutputFile) (SavedFile, error) {
	rc, err := f.Open(ctx)
	if err != nil {
		return SavedFile{}, err
	}
	defer rc.Close()
	src := io.Reader(rc)
	if f.needsExt {
		br := bufio.NewReaderSize(rc, 4096)
		head, _ := br.Peek(512)
		if t := sniff(head); t != "" {
			f.MediaType = t
		}
		f.Name += extensionFor(f.MediaType)
		f.needsExt = false
		src = br
	}
	out, p, err := createUnique(dir, f.Name)
	if err != nil {
		return SavedFile{}, fmt.Errorf("runpod: output %s: %w", f.Field, err)
	}
	n, err := io.Copy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(p)
		return SavedFile{}, fmt.Errorf("runpod: write output %s to %s: %w", f.Field, p, err)
	}
	f.Name = filepath.Base(p)
	return SavedFile{OutputFile: f, Path: p, Size: n}, nil
}

// createUnique creates dir/name, or dir/name-1.ext, name-2.ext, … when taken.
func createUnique(dir, name string) (*os.File, string, error) {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 0; i < 10000; i++ {
		candidate := name
		if i > 0 {
			candidate = stem + "-" + strconv.Itoa(i) + ext
		}
		p := filepath.Join(dir, candidate)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, p, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("no free name for %s in %s", name, dir)
}
