package corenodes

import (
	"bytes"
	"context"
	"encoding/binary"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

func saveRefs(t *testing.T, r *node.Result) []node.FileRef {
	t.Helper()
	refs, ok := r.UI["images"].([]node.FileRef)
	if !ok {
		t.Fatalf("UI %v", r.UI)
	}
	return refs
}

func TestSaveImageCountersAndSubfolders(t *testing.T) {
	env := benchEnv(t, nil)
	batch := &node.Image{B: 2, H: 1, W: 2, C: 3, Pix: []float32{0, 0.5, 1, 0.2, 0.4, 0.6, 1, 1, 1, 0, 0, 0}}
	save := func(prefix string) []node.FileRef {
		r, err := classMap()["SaveImage"].Execute(context.Background(), env, node.Inputs{"images": batch, "filename_prefix": prefix})
		if err != nil {
			t.Fatal(err)
		}
		return saveRefs(t, r)
	}
	refs := save("brush/out")
	if len(refs) != 2 || refs[0] != (node.FileRef{Filename: "out_00001_.png", Subfolder: "brush", Type: "output"}) || refs[1].Filename != "out_00002_.png" {
		t.Fatalf("refs %+v", refs)
	}
	// The counter follows the files already there; other prefixes that
	// merely start the same do not count.
	os.WriteFile(filepath.Join(env.OutputDir, "brush", "out_00041_.png"), nil, 0o644)
	os.WriteFile(filepath.Join(env.OutputDir, "brush", "outer_00090_.png"), nil, 0o644)
	if refs := save("brush/out"); refs[0].Filename != "out_00042_.png" {
		t.Errorf("next counter: %s", refs[0].Filename)
	}
	if refs := save("dims_%width%x%height%"); refs[0].Filename != "dims_2x1_00001_.png" || refs[0].Subfolder != "" {
		t.Errorf("substitution: %+v", refs[0])
	}
	// %batch_num% is replaced per image; such names never match the prefix
	// when counting, so the counter restarts at 1, as in ComfyUI.
	refs = save("b%batch_num%")
	if refs[0].Filename != "b0_00001_.png" || refs[1].Filename != "b1_00002_.png" {
		t.Errorf("batch_num: %+v", refs)
	}
	if refs := save("b%batch_num%"); refs[0].Filename != "b0_00001_.png" {
		t.Errorf("batch_num counter: %+v", refs)
	}
	// The written PNG holds SaveImage's bytes: clip(255*x) truncated.
	data, err := os.ReadFile(filepath.Join(env.OutputDir, "brush", "out_00001_.png"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, g, b, _ := m.At(0, 0).RGBA()
	if r>>8 != 0 || g>>8 != 127 || b>>8 != 255 {
		t.Errorf("pixel %d %d %d", r>>8, g>>8, b>>8)
	}
	_, err = classMap()["SaveImage"].Execute(context.Background(), env, node.Inputs{"images": batch, "filename_prefix": "../escape"})
	if ee := wantExecError(t, err, "Exception"); !strings.HasPrefix(ee.Message, "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: ") {
		t.Errorf("message %q", ee.Message)
	}
}

func TestSaveImageMetadataAndRGBA(t *testing.T) {
	env := benchEnv(t, nil)
	env.DisableMetadata = false
	env.Prompt = map[string]any{"1": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"x": 1.0}}}
	env.ExtraPNGInfo = map[string]any{"workflow": map[string]any{"nodes": []any{}}}
	rgba := &node.Image{B: 1, H: 1, W: 1, C: 4, Pix: []float32{1, 0, 0, 0.5}}
	r, err := classMap()["SaveImage"].Execute(context.Background(), env, node.Inputs{"images": rgba, "filename_prefix": "meta"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(env.OutputDir, saveRefs(t, r)[0].Filename))
	if err != nil {
		t.Fatal(err)
	}
	if data[25] != 6 {
		t.Errorf("colour type %d, want RGBA", data[25])
	}
	for _, want := range []string{
		`tEXtprompt` + "\x00" + `{"1": {"class_type": "SaveImage", "inputs": {"x": 1.0}}}`,
		`tEXtworkflow` + "\x00" + `{"nodes": []}`,
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("no chunk %q", want)
		}
	}
}

// The prompt chunk keeps the key order of the prompt as the client sent it
// (env.PromptJSON), not the sorted order of the Go map.
func TestSaveImagePromptKeepsKeyOrder(t *testing.T) {
	env := benchEnv(t, nil)
	env.DisableMetadata = false
	env.Prompt = map[string]any{"9": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"filename_prefix": "ordered", "images": []any{"8", 0}}}}
	env.PromptJSON = []byte(`{"9":{"inputs":{"images":["8",0],"filename_prefix":"ordered"},"class_type":"SaveImage"}}`)
	im := &node.Image{B: 1, H: 1, W: 1, C: 3, Pix: []float32{0, 0, 0}}
	chunk := func() string {
		t.Helper()
		r, err := classMap()["SaveImage"].Execute(context.Background(), env, node.Inputs{"images": im, "filename_prefix": "ordered"})
		if err != nil {
			t.Fatal(err)
		}
		refs := saveRefs(t, r)
		data, err := os.ReadFile(filepath.Join(env.OutputDir, refs[len(refs)-1].Filename))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, []byte("tEXtprompt\x00"))
		if i < 4 {
			t.Fatalf("no prompt chunk in %q", data)
		}
		n := int(binary.BigEndian.Uint32(data[i-4 : i]))
		return string(data[i+len("tEXtprompt\x00") : i+4+n])
	}
	if got, want := chunk(), `{"9": {"inputs": {"images": ["8", 0], "filename_prefix": "ordered"}, "class_type": "SaveImage"}}`; got != want {
		t.Errorf("prompt chunk\n got %s\nwant %s", got, want)
	}
	// Without PromptJSON (or with text that is not JSON) the map is written,
	// keys sorted.
	env.PromptJSON = []byte("not JSON")
	if got, want := chunk(), `{"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ordered", "images": ["8", 0]}}}`; got != want {
		t.Errorf("fallback prompt chunk\n got %s\nwant %s", got, want)
	}
}

// SaveImage's date variables read the environment's clock.
func TestSaveImageUsesEnvClock(t *testing.T) {
	env := benchEnv(t, nil)
	env.Now = func() time.Time { return time.Date(2031, 12, 24, 23, 58, 7, 0, time.Local) }
	im := &node.Image{B: 1, H: 1, W: 1, C: 3, Pix: []float32{0, 0, 0}}
	r, err := classMap()["SaveImage"].Execute(context.Background(), env, node.Inputs{"images": im, "filename_prefix": "%year%/%month%%day%-%hour%%minute%%second%"})
	if err != nil {
		t.Fatal(err)
	}
	if ref := saveRefs(t, r)[0]; ref.Subfolder != "2031" || ref.Filename != "1224-235807_00001_.png" {
		t.Errorf("ref %+v", ref)
	}
}

func TestPreviewImageNames(t *testing.T) {
	env := benchEnv(t, nil)
	env.Rand = rand.New(rand.NewPCG(5, 5))
	im := &node.Image{B: 1, H: 1, W: 1, C: 3, Pix: []float32{0, 0, 0}}
	r, err := classMap()["PreviewImage"].Execute(context.Background(), env, node.Inputs{"images": im})
	if err != nil {
		t.Fatal(err)
	}
	ref := saveRefs(t, r)[0]
	if !regexp.MustCompile(`^ComfyUI_temp_[abcdefghijklmnopqrstupvxyz]{5}_00001_\.png$`).MatchString(ref.Filename) || ref.Type != "temp" {
		t.Errorf("ref %+v", ref)
	}
	if _, err := os.Stat(filepath.Join(env.TempDir, ref.Filename)); err != nil {
		t.Error(err)
	}
}

func TestSaveImagePath(t *testing.T) {
	now := time.Date(2025, 3, 7, 9, 5, 2, 0, time.Local)
	out := t.TempDir()
	for _, c := range []struct {
		prefix, sub, name string
	}{
		{"ComfyUI", "", "ComfyUI"},
		{"a/b/c", "a/b", "c"},
		{"a/./b//c/", "a/b", "c"},
		{"x/../y", "", "y"},
		{"%year%-%month%-%day%_%hour%%minute%%second%", "", "2025-03-07_090502"},
		{"", "", "."},
	} {
		sp, err := saveImagePath(c.prefix, out, 8, 8, now)
		if err != nil {
			t.Fatalf("%q: %v", c.prefix, err)
		}
		if sp.subfolder != c.sub || sp.filename != c.name || sp.counter != 1 {
			t.Errorf("%q: subfolder %q name %q counter %d", c.prefix, sp.subfolder, sp.filename, sp.counter)
		}
	}
	for _, bad := range []string{"../x", "/etc/x", "a/../../x"} {
		if _, err := saveImagePath(bad, out, 1, 1, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPythonHelpers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "."}, {"a//b/", "a/b"}, {"/../a", "/a"}, {"../../a", "../../a"}, {"a/../..", ".."}, {"//a", "//a"}, {"///a", "/a"},
	} {
		if got := pyNormpath(c.in); got != c.want {
			t.Errorf("normpath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if pyDirname("/") != "/" || pyDirname("a/b") != "a" || pyDirname("b") != "" || pyBasename("a/b/") != "" {
		t.Error("dirname/basename")
	}
	if pyCommonpath("/srv/out", "/srv") != "/srv" || pyCommonpath("/a/b", "/a/b/c") != "/a/b" {
		t.Error("commonpath")
	}
	for _, c := range []struct {
		in   string
		want int
	}{{"00012", 12}, {" 7 ", 7}, {"-3", -3}, {"x1", 0}, {"", 0}, {"٣", 3}} {
		if got := pyInt(c.in); got != c.want {
			t.Errorf("int(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	digits, head := mapFilename([]rune("out_00005_.png"), 3)
	if digits != 5 || string(head) != "out_" {
		t.Errorf("map_filename: %d %q", digits, string(head))
	}
}
