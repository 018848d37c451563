package corenodes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/testenv"
)

// Pixel tolerances of the conformance comparison, in 8-bit levels after
// SaveImage's truncation. A case is compared with the largest tolerance of
// its nodes; nodes not listed are compared exactly.
//
//   - Bicubic resampling (ImageScale/ImageScaleBy "bicubic") follows torch's
//     formula in float32, but the exact fusion of torch's multiply-adds is
//     not known: about 4% of samples land one level off. ImageBlend resizes
//     image2 with it when the shapes differ (not in these cases).
//
// Everything else is reproduced operation for operation and compared
// exactly: decoding (PNG, JPEG with libjpeg's integer IDCT and fancy
// upsampling, WEBP, GIF), nearest-exact, bilinear (torch's channels-last
// kernel), area, Pillow's 8-bit lanczos, blending, the blur and sharpen
// convolutions (torch's float32 kernel and summation order, oneDNN's
// multiply-add order), compositing, padding, and the mask nodes.
func pixelTolerance(pn promptNode) int {
	switch pn.ClassType {
	case "ImageScale", "ImageScaleBy":
		if pn.Inputs["upscale_method"] == "bicubic" {
			return 1
		}
	}
	return 0
}

type caseFile struct {
	Name   string `json:"name"`
	Expect string `json:"expect"`
	Runs   int    `json:"runs"`
}

type historyEntry struct {
	Prompt  []json.RawMessage                    `json:"prompt"`
	Outputs map[string]map[string][]node.FileRef `json:"outputs"`
}

// TestConformance evaluates every success and runtime-error case captured
// from ComfyUI 0.3.64 with the core classes and compares each output file's
// pixels, and each runtime error's exception type and message, with what the
// real server produced.
func TestConformance(t *testing.T) {
	root := filepath.Join(testenv.Conformance(t), "cases")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, d := range dirs {
		dir := filepath.Join(root, d.Name())
		var c caseFile
		readJSON(t, filepath.Join(dir, "case.json"), &c)
		if c.Expect != "success" && c.Expect != "runtime_error" {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) {
			t.Parallel()
			runCase(t, dir, c)
		})
	}
	if ran == 0 {
		t.Fatal("no conformance cases found")
	}
}

func runCase(t *testing.T, dir string, c caseFile) {
	var prompt map[string]promptNode
	readJSON(t, filepath.Join(dir, "workflow.json"), &prompt)
	var hist map[string]historyEntry
	readJSON(t, filepath.Join(dir, "expected", "history.json"), &hist)
	h := hist["PROMPT_ID"]
	var outputs []string
	if len(h.Prompt) < 5 {
		t.Fatal("history has no output list")
	}
	if err := json.Unmarshal(h.Prompt[4], &outputs); err != nil {
		t.Fatal(err)
	}

	base := t.TempDir()
	env := node.Env{
		InputDir:        filepath.Join(base, "input"),
		OutputDir:       filepath.Join(base, "output"),
		TempDir:         filepath.Join(base, "temp"),
		PromptID:        "PROMPT_ID",
		DisableMetadata: true,
		Rand:            rand.New(rand.NewPCG(1, 2)),
	}
	for _, p := range []string{env.InputDir, env.OutputDir, env.TempDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyTree(t, filepath.Join(dir, "inputs"), env.InputDir)
	anyPrompt := map[string]any{}
	for id, pn := range prompt {
		anyPrompt[id] = map[string]any{"class_type": pn.ClassType, "inputs": pn.Inputs}
	}
	env.Prompt = anyPrompt

	tol := 0
	for _, pn := range prompt {
		tol = max(tol, pixelTolerance(pn))
	}

	e := newEvaluator(env)
	runs := max(c.Runs, 1)
	for run := 1; run <= runs; run++ {
		results, _, fail := e.run(context.Background(), prompt, outputs)
		expDir := filepath.Join(dir, "expected")
		if run > 1 {
			expDir = filepath.Join(expDir, "run2")
		}
		if c.Expect == "runtime_error" {
			checkRuntimeError(t, expDir, env, fail)
			return
		}
		if fail != nil {
			t.Fatalf("run %d: node %s (%s) failed: %v", run, fail.NodeID, fail.NodeType, fail.Err)
		}
		readJSON(t, filepath.Join(expDir, "history.json"), &hist)
		compareOutputs(t, expDir, base, hist["PROMPT_ID"].Outputs, results, tol)
	}
}

var tempName = regexp.MustCompile(`^ComfyUI_temp_[abcdefghijklmnopqrstupvxyz]{5}_\d{5}_\.png$`)

// counterSuffix matches the _<counter>_.png tail of a saved file's name.
var counterSuffix = regexp.MustCompile(`_-?\d{5,}_\.png$`)

// compareOutputs checks every output node's UI files against the expected
// history: same types, subfolders and prefixes, the same set of output file
// names, and the same pixels.
func compareOutputs(t *testing.T, expDir, base string, want map[string]map[string][]node.FileRef, got map[string]*node.Result, tol int) {
	t.Helper()
	var wantNames, gotNames []string
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r, ok := got[id]
		if !ok || r.UI == nil {
			t.Errorf("node %s: no UI output", id)
			continue
		}
		gotRefs, _ := r.UI["images"].([]node.FileRef)
		wantRefs := want[id]["images"]
		if len(gotRefs) != len(wantRefs) {
			t.Errorf("node %s: %d images, want %d", id, len(gotRefs), len(wantRefs))
			continue
		}
		for i, w := range wantRefs {
			g := gotRefs[i]
			if g.Type != w.Type || g.Subfolder != w.Subfolder {
				t.Errorf("node %s image %d: type/subfolder %s/%q, want %s/%q", id, i, g.Type, g.Subfolder, w.Type, w.Subfolder)
				continue
			}
			switch w.Type {
			case "temp":
				if !tempName.MatchString(g.Filename) {
					t.Errorf("node %s: temp file name %q does not look like ComfyUI's", id, g.Filename)
				}
			default:
				if counterSuffix.ReplaceAllString(g.Filename, "") != counterSuffix.ReplaceAllString(w.Filename, "") {
					t.Errorf("node %s: file %q, want %q", id, g.Filename, w.Filename)
				}
				wantNames = append(wantNames, w.Subfolder+"/"+w.Filename)
				gotNames = append(gotNames, g.Subfolder+"/"+g.Filename)
			}
			wantImg := decodePNGFile(t, filepath.Join(expDir, w.Type, w.Subfolder, w.Filename))
			gotImg := decodePNGFile(t, filepath.Join(base, g.Type, g.Subfolder, g.Filename))
			comparePixels(t, "node "+id+" "+w.Filename, wantImg, gotImg, tol)
		}
	}
	sort.Strings(wantNames)
	sort.Strings(gotNames)
	if strings.Join(wantNames, ",") != strings.Join(gotNames, ",") {
		t.Errorf("output files %v, want %v", gotNames, wantNames)
	}
}

// decodedPNG is a PNG's pixels as 8-bit samples and its channel count.
type decodedPNG struct {
	w, h, c int
	pix     []uint8
}

func decodePNGFile(t *testing.T, path string) *decodedPNG {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	d := &decodedPNG{w: b.Dx(), h: b.Dy()}
	// Colour type from IHDR: 2 = RGB, 6 = RGBA, 0 = grey, 4 = grey+alpha.
	switch data[25] {
	case 0:
		d.c = 1
	case 2:
		d.c = 3
	case 4:
		d.c = 2
	case 6:
		d.c = 4
	default:
		t.Fatalf("%s: unexpected colour type %d", path, data[25])
	}
	d.pix = make([]uint8, 0, d.w*d.h*d.c)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var px [4]uint8
			switch m := img.(type) {
			case *image.NRGBA:
				copy(px[:], m.Pix[m.PixOffset(x, y):])
			case *image.RGBA:
				copy(px[:], m.Pix[m.PixOffset(x, y):])
			case *image.Gray:
				v := m.Pix[m.PixOffset(x, y)]
				px = [4]uint8{v, v, v, 255}
			default:
				t.Fatalf("%s: unexpected %T", path, img)
			}
			switch d.c {
			case 1:
				d.pix = append(d.pix, px[0])
			case 2:
				d.pix = append(d.pix, px[0], px[3])
			case 3:
				d.pix = append(d.pix, px[0], px[1], px[2])
			default:
				d.pix = append(d.pix, px[:]...)
			}
		}
	}
	return d
}

// comparePixels fails when sizes or channel counts differ or when a sample
// differs by more than tol levels.
func comparePixels(t *testing.T, what string, want, got *decodedPNG, tol int) {
	t.Helper()
	if want.w != got.w || want.h != got.h || want.c != got.c {
		t.Errorf("%s: got %dx%d with %d channels, want %dx%d with %d", what, got.w, got.h, got.c, want.w, want.h, want.c)
		return
	}
	worst, count, first := 0, 0, -1
	for i := range want.pix {
		d := int(want.pix[i]) - int(got.pix[i])
		if d < 0 {
			d = -d
		}
		if d > tol {
			count++
			if first < 0 {
				first = i
			}
		}
		worst = max(worst, d)
	}
	if count > 0 {
		px := first / want.c
		t.Errorf("%s: %d samples differ by more than %d (worst %d); first at x=%d y=%d channel %d: got %d, want %d",
			what, count, tol, worst, px%want.w, px/want.w, first%want.c, got.pix[first], want.pix[first])
	}
}

// checkRuntimeError compares a failure with the execution_error the real
// server sent: node, class, exception type and message (the server's output
// folder replaced by ours).
func checkRuntimeError(t *testing.T, expDir string, env node.Env, fail *evalFailure) {
	t.Helper()
	f, err := os.Open(filepath.Join(expDir, "ws.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want struct {
		NodeID, NodeType, ExceptionType, ExceptionMessage string
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var msg struct {
			Type string `json:"type"`
			Data struct {
				NodeID           string `json:"node_id"`
				NodeType         string `json:"node_type"`
				ExceptionType    string `json:"exception_type"`
				ExceptionMessage string `json:"exception_message"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type == "execution_error" {
			want.NodeID, want.NodeType = msg.Data.NodeID, msg.Data.NodeType
			want.ExceptionType, want.ExceptionMessage = msg.Data.ExceptionType, msg.Data.ExceptionMessage
		}
	}
	if want.NodeID == "" {
		t.Fatal("no execution_error in ws.jsonl")
	}
	if fail == nil {
		t.Fatalf("prompt succeeded; want %s in node %s: %q", want.ExceptionType, want.NodeID, want.ExceptionMessage)
	}
	if fail.NodeID != want.NodeID || fail.NodeType != want.NodeType {
		t.Errorf("failed in node %s (%s), want %s (%s)", fail.NodeID, fail.NodeType, want.NodeID, want.NodeType)
	}
	var ee *node.ExecError
	if !errors.As(fail.Err, &ee) {
		t.Fatalf("error %v is not a *node.ExecError", fail.Err)
	}
	out, _ := filepath.Abs(env.OutputDir)
	msg := strings.TrimSuffix(want.ExceptionMessage, "\n")
	msg = strings.ReplaceAll(msg, "/srv/ComfyUI/output", filepath.ToSlash(out))
	msg = strings.ReplaceAll(msg, "/srv/ComfyUI", filepath.ToSlash(filepath.Dir(out)))
	if ee.Type != want.ExceptionType || ee.Message != msg {
		t.Errorf("exception %s: %q\nwant %s: %q", ee.Type, ee.Message, want.ExceptionType, msg)
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// copyTree copies the files under src (if it exists) into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == src {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestObjectInfoMatchesCapture checks that every class's Info encodes to the
// /object_info entry the real server sent (LoadImage and LoadImageMask with
// the captured file list put back in place of the dynamic one).
func TestObjectInfoMatchesCapture(t *testing.T) {
	dir := filepath.Join(testenv.Conformance(t), "object_info")
	for _, c := range Classes() {
		data, err := os.ReadFile(filepath.Join(dir, c.Name()+".json"))
		if err != nil {
			t.Errorf("%s: %v", c.Name(), err)
			continue
		}
		var captured map[string]json.RawMessage
		if err := json.Unmarshal(data, &captured); err != nil {
			t.Fatal(err)
		}
		info := c.Info
		if c.DynamicOptions != nil {
			var full map[string]*node.Info
			if err := json.Unmarshal(data, &full); err != nil {
				t.Fatal(err)
			}
			in, _ := full[c.Name()].Input("image")
			if info, err = info.WithOptions(map[string][]string{"image": in.Options}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, captured[c.Name()]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: object_info differs:\n got %s\nwant %s", c.Name(), got, want.Bytes())
		}
	}
}

// TestValidationDetailsMatchCapture checks LoadImage's VALIDATE_INPUTS
// message against the node error of fail_missing_image_file: the server
// reports "<input> - <message>" for the input it validated.
func TestValidationDetailsMatchCapture(t *testing.T) {
	dir := filepath.Join(testenv.Conformance(t), "cases", "fail_missing_image_file")
	var resp struct {
		Body struct {
			NodeErrors map[string]struct {
				Errors []struct {
					Type    string `json:"type"`
					Details string `json:"details"`
				} `json:"errors"`
			} `json:"node_errors"`
		} `json:"body"`
	}
	readJSON(t, filepath.Join(dir, "expected", "prompt_response.json"), &resp)
	var prompt map[string]promptNode
	readJSON(t, filepath.Join(dir, "workflow.json"), &prompt)
	want := resp.Body.NodeErrors["1"].Errors[0]
	c := classMap()["LoadImage"]
	env := benchEnv(t, nil)
	err := c.ValidateInputs(env, node.Inputs{"image": prompt["1"].Inputs["image"]})
	if err == nil {
		t.Fatal("missing file validated")
	}
	if got := c.ValidateSkips[0] + " - " + err.Error(); want.Type != "custom_validation_failed" || got != want.Details {
		t.Errorf("details %q, want %q (%s)", got, want.Details, want.Type)
	}
}
