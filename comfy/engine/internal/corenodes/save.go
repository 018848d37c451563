package corenodes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/comfypod/comfypod/comfy/engine/internal/imaging"
	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// previewAlphabet is the alphabet of PreviewImage's random prefix, as
// ComfyUI spells it ("p" twice, no "w").
const previewAlphabet = "abcdefghijklmnopqrstupvxyz"

func saveImageClass() *node.Class {
	return &node.Class{
		Info: info("SaveImage"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			prefix := "ComfyUI"
			if in.Has("filename_prefix") {
				prefix = in.String("filename_prefix")
			}
			return saveImages(ctx, env, in, prefix, "output", env.Time())
		},
	}
}

func previewImageClass() *node.Class {
	return &node.Class{
		Info: info("PreviewImage"),
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			var letters [5]byte
			for i := range letters {
				var k int
				if env.Rand != nil {
					k = env.Rand.IntN(len(previewAlphabet))
				} else {
					k = rand.IntN(len(previewAlphabet))
				}
				letters[i] = previewAlphabet[k]
			}
			return saveImages(ctx, env, in, "ComfyUI_temp_"+string(letters[:]), "temp", env.Time())
		},
	}
}

// saveImages is SaveImage.save_images: one PNG per image of the batch, named
// <prefix>_<counter:05>_.png with counters following the files already in
// the folder, into the folder of type typ ("output" or "temp").
func saveImages(ctx context.Context, env *node.Env, in node.Inputs, prefix, typ string, now time.Time) (*node.Result, error) {
	images, err := in.Image("images")
	if err != nil {
		return nil, err
	}
	if images.B == 0 {
		return nil, node.Errorf("IndexError", "index 0 is out of bounds for dimension 0 with size 0")
	}
	dir, err := env.Dir(typ)
	if err != nil {
		return nil, err
	}
	sp, err := saveImagePath(prefix, dir, images.W, images.H, now)
	if err != nil {
		return nil, err
	}
	var texts []imaging.PNGText
	if !env.DisableMetadata {
		texts = pngMetadata(env)
	}
	refs := make([]node.FileRef, 0, images.B)
	counter := sp.counter
	for b := 0; b < images.B; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s_%05d_.png", strings.ReplaceAll(sp.filename, "%batch_num%", strconv.Itoa(b)), counter)
		if err := writeImagePNG(filepath.Join(sp.folder, name), images, b, texts); err != nil {
			return nil, err
		}
		refs = append(refs, node.FileRef{Filename: name, Subfolder: sp.subfolder, Type: typ})
		counter++
	}
	return &node.Result{UI: map[string]any{"images": refs}}, nil
}

// pngMetadata returns the tEXt chunks SaveImage writes: "prompt" with the
// whole prompt (its keys in the client's order when env.PromptJSON has it),
// and one chunk per extra_pnginfo key (usually "workflow"), each as Python's
// json.dumps writes it. Keys Pillow could not write (non-Latin-1, longer than
// 79 bytes) are left out.
func pngMetadata(env *node.Env) []imaging.PNGText {
	var texts []imaging.PNGText
	if text, ok := promptText(env); ok {
		texts = append(texts, imaging.PNGText{Key: "prompt", Value: text})
	}
	keys := make([]string, 0, len(env.ExtraPNGInfo))
	for k := range env.ExtraPNGInfo {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		latin, ok := toLatin1(k)
		if !ok || len(latin) == 0 || len(latin) > 79 {
			continue
		}
		texts = append(texts, imaging.PNGText{Key: latin, Value: string(pyjson.Marshal(env.ExtraPNGInfo[k]))})
	}
	return texts
}

// promptText is json.dumps(prompt): from env.PromptJSON when it holds valid
// JSON, else from env.Prompt. ok is false when the node has no prompt.
func promptText(env *node.Env) (text string, ok bool) {
	if len(env.PromptJSON) > 0 {
		if v, err := pyjson.Parse(env.PromptJSON); err == nil {
			return string(pyjson.Marshal(v)), true
		}
	}
	if env.Prompt == nil {
		return "", false
	}
	return string(pyjson.Marshal(env.Prompt)), true
}

// toLatin1 encodes s as Latin-1 bytes, reporting whether it can be.
func toLatin1(s string) (string, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == 0 {
			return "", false
		}
		out = append(out, byte(r))
	}
	return string(out), true
}

// writeImagePNG converts image b of the batch to bytes the way SaveImage
// does (clip(255*x).astype(uint8)) and writes it as a PNG through a
// temporary file, so a failed write never leaves a partial image behind.
func writeImagePNG(dst string, im *node.Image, b int, texts []imaging.PNGText) error {
	if im.C < 2 || im.C > 4 {
		return node.Errorf("TypeError", "Cannot handle this data type: (1, 1, %d), |u1", im.C)
	}
	src := im.Frame(b)
	pix := make([]uint8, len(src))
	imaging.Parallel(im.H, im.W*im.C, func(lo, hi int) {
		for i := lo * im.W * im.C; i < hi*im.W*im.C; i++ {
			pix[i] = imaging.FloatToByte(src[i])
		}
	})
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".comfypod-*.png.tmp")
	if err != nil {
		return fmt.Errorf("save image: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<16)
	err = imaging.EncodePNG(w, pix, im.W, im.H, im.C, texts)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save image %s: %w", filepath.Base(dst), err)
	}
	return nil
}

// savePath is the result of saveImagePath.
type savePath struct {
	folder    string // the folder to write into (absolute)
	filename  string // the file name prefix, before "_<counter>_.png"
	counter   int    // the first counter to use
	subfolder string // the subfolder reported in the UI, slash-separated
}

// saveImagePath is folder_paths.get_save_image_path of ComfyUI 0.3.64:
// %width%, %height% and date variables are substituted, "/" in the prefix
// makes subfolders, a prefix that leaves the folder fails, and the counter is
// one more than the largest found among files named <prefix>_<N>_... .
func saveImagePath(prefix, outputDir string, width, height int, now time.Time) (*savePath, error) {
	if strings.Contains(prefix, "%") {
		prefix = computeVars(prefix, width, height, now)
	}
	norm := pyNormpath(prefix)
	subfolder, filename := pyDirname(norm), pyBasename(norm)

	outAbs, err := filepath.Abs(outputDir)
	if err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	outAbs = filepath.ToSlash(outAbs)
	full := subfolder
	if !strings.HasPrefix(subfolder, "/") {
		full = strings.TrimSuffix(outAbs, "/") + "/" + subfolder
	}
	fullAbs := pyNormpath(full)
	if common := pyCommonpath(outAbs, fullAbs); common != outAbs {
		return nil, node.Errorf("Exception", "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: %s\n         output_dir: %s\n         commonpath: %s", fullAbs, outAbs, common)
	}
	folder := filepath.FromSlash(fullAbs)

	entries, err := os.ReadDir(folder)
	counter := 1
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return nil, fmt.Errorf("create output folder: %w", err)
		}
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory") {
			return nil, node.Errorf("NotADirectoryError", "[Errno 20] Not a directory: '%s'", fullAbs)
		}
		return nil, fmt.Errorf("list output folder: %w", err)
	default:
		prefixLen := len([]rune(pyBasename(prefix)))
		best, found := 0, false
		for _, e := range entries {
			digits, head := mapFilename([]rune(e.Name()), prefixLen)
			if len(head) == 0 || head[len(head)-1] != '_' || string(head[:len(head)-1]) != filename {
				continue
			}
			if !found || digits > best {
				best, found = digits, true
			}
		}
		if found {
			counter = best + 1
		}
	}
	return &savePath{folder: folder, filename: filename, counter: counter, subfolder: subfolder}, nil
}

// mapFilename is get_save_image_path's map_filename: the counter after the
// prefix (0 when it does not parse) and the first prefixLen+1 characters.
func mapFilename(name []rune, prefixLen int) (int, []rune) {
	head := name[:min(prefixLen+1, len(name))]
	rest := ""
	if prefixLen+1 < len(name) {
		rest = string(name[prefixLen+1:])
	}
	field, _, _ := strings.Cut(rest, "_")
	return pyInt(field), head
}

// pyInt parses s like Python's int(s), returning 0 where int() would raise.
func pyInt(s string) int {
	s = strings.TrimFunc(s, unicode.IsSpace)
	neg := false
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0
	}
	v := 0
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return 0
		}
		d := unicodeDigit(r)
		if v > (1<<53)/10 {
			return 0
		}
		v = v*10 + d
	}
	if neg {
		v = -v
	}
	return v
}

// unicodeDigit returns the decimal value of a Unicode decimal digit. Decimal
// digits come in runs of whole blocks of ten, each starting at zero, so the
// value is the distance from the start of the run, modulo 10.
func unicodeDigit(r rune) int {
	k := 0
	for unicode.IsDigit(r - rune(k) - 1) {
		k++
	}
	return k % 10
}

// computeVars substitutes SaveImage's prefix variables.
func computeVars(s string, width, height int, now time.Time) string {
	two := func(v int) string { return fmt.Sprintf("%02d", v) }
	s = strings.ReplaceAll(s, "%width%", strconv.Itoa(width))
	s = strings.ReplaceAll(s, "%height%", strconv.Itoa(height))
	s = strings.ReplaceAll(s, "%year%", strconv.Itoa(now.Year()))
	s = strings.ReplaceAll(s, "%month%", two(int(now.Month())))
	s = strings.ReplaceAll(s, "%day%", two(now.Day()))
	s = strings.ReplaceAll(s, "%hour%", two(now.Hour()))
	s = strings.ReplaceAll(s, "%minute%", two(now.Minute()))
	s = strings.ReplaceAll(s, "%second%", two(now.Second()))
	return s
}

// pyNormpath is posixpath.normpath.
func pyNormpath(p string) string {
	if p == "" {
		return "."
	}
	initial := 0
	if strings.HasPrefix(p, "/") {
		initial = 1
		if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
			initial = 2
		}
	}
	var comps []string
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if c != ".." || (initial == 0 && len(comps) == 0) || (len(comps) > 0 && comps[len(comps)-1] == "..") {
			comps = append(comps, c)
		} else if len(comps) > 0 {
			comps = comps[:len(comps)-1]
		}
	}
	out := strings.Repeat("/", initial) + strings.Join(comps, "/")
	if out == "" {
		return "."
	}
	return out
}

// pyDirname is posixpath.dirname.
func pyDirname(p string) string {
	i := strings.LastIndex(p, "/") + 1
	head := p[:i]
	if head != "" && head != strings.Repeat("/", len(head)) {
		head = strings.TrimRight(head, "/")
	}
	return head
}

// pyBasename is posixpath.basename.
func pyBasename(p string) string {
	return p[strings.LastIndex(p, "/")+1:]
}

// pyCommonpath is posixpath.commonpath for two absolute, normalised paths.
func pyCommonpath(a, b string) string {
	split := func(p string) []string {
		var out []string
		for _, c := range strings.Split(p, "/") {
			if c != "" && c != "." {
				out = append(out, c)
			}
		}
		return out
	}
	as, bs := split(a), split(b)
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	return "/" + path.Join(as[:n]...)
}
