package cli

import (
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/hub"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/internal/scaffold"
	"github.com/comfypod/comfypod/worker"
)

func TestInitParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _ := lintFactory(nil)
	var got *InitOptions
	cmd := NewCmdInit(f, func(_ context.Context, o *InitOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"pkgs/brush", "--template", "image-brush", "--name", "my-brush", "--force"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Dir != "pkgs/brush" || got.Template != "image-brush" || got.Name != "my-brush" || !got.Force || got.List {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdInit(f, func(_ context.Context, o *InitOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"x", "-t", "video"})
	if err := cmd.Execute(); err != nil || got.Template != "video" || got.Force || got.Name != "" {
		t.Errorf("short flag: %+v, %v", got, err)
	}
	cmd = NewCmdInit(f, func(_ context.Context, o *InitOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"x"})
	if err := cmd.Execute(); err != nil || got.Template != scaffold.TemplateDefault {
		t.Errorf("default template: %+v, %v", got, err)
	}
	for _, args := range [][]string{
		{"init"},
		{"init", "a", "b"},
		{"init", "x", "--template", "vidoe"},
		{"init", "x", "--name", "My Brush"},
		{"init", "--list", "x"},
		{"init", "x", "--bogus"},
	} {
		f, _, errOut := lintFactory(nil)
		if code := Run(context.Background(), f, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, ExitUsage, errOut)
		}
	}
	f, _, errOut := lintFactory(nil)
	Run(context.Background(), f, []string{"init", "x", "--template", "vidoe"})
	if !strings.Contains(errOut.String(), "image-brush, video, blank") {
		t.Errorf("a bad template does not list the templates: %s", errOut)
	}
}

func TestInitList(t *testing.T) {
	t.Parallel()
	f, out, errOut := lintFactory(nil)
	if code := Run(context.Background(), f, []string{"init", "--list"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	compareLintGolden(t, filepath.Join("testdata", "init", "list.golden"), out.String())
}

func TestInitRefusesNonEmptyFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, out, errOut := lintFactory(nil)
	if code := Run(context.Background(), f, []string{"init", dir, "--name", "pkg"}); code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	if !strings.Contains(errOut.String(), "not empty") || !strings.Contains(errOut.String(), "--force") || out.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "README.md")); string(b) != "mine" {
		t.Error("README.md was overwritten without --force")
	}
	f, out, errOut = lintFactory(nil)
	if code := Run(context.Background(), f, []string{"init", dir, "--name", "pkg", "--force"}); code != ExitOK {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut.String(), "1 of them overwritten") || !strings.Contains(out.String(), filepath.ToSlash(filepath.Join(dir, "README.md"))) {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
	f, _, errOut = lintFactory(nil)
	if code := Run(context.Background(), f, []string{"init", filepath.Join(t.TempDir(), "日本")}); code != ExitUsage || !strings.Contains(errOut.String(), "--name") {
		t.Errorf("an underivable name: exit %d, stderr %s", code, errOut)
	}
}

// TestInitTemplatesRun writes each template with comfypod init, then does
// what its README says before a release: comfypod lint (no finding at all),
// comfypod workflow check --manifest on every workflow, and a run of
// test_input.json with comfypod run against the local stack — the RunPod
// control plane, a worker running the package, the comfypod engine.
func TestInitTemplatesRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		template string
		check    func(t *testing.T, dir string, outs []string)
	}{
		{scaffold.TemplateImageBrush, checkBrushOutput},
		{scaffold.TemplateVideo, checkVideoPreviewOutput},
		{scaffold.TemplateBlank, checkBlankOutput},
	} {
		t.Run(tc.template, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "club-"+tc.template)
			f, out, errOut := lintFactory(nil)
			if code := Run(context.Background(), f, []string{"init", dir, "--template", tc.template}); code != ExitOK {
				t.Fatalf("init: exit %d: %s", code, errOut)
			}
			for _, want := range []string{".runpod/hub.json", ".runpod/tests.json", "Dockerfile", "README.md", "comfypod.json", "workflow_api.json", "test_input.json"} {
				if !strings.Contains(out.String(), filepath.ToSlash(filepath.Join(dir, want))+"\n") {
					t.Errorf("init did not list %s: %s", want, out)
				}
			}

			f, out, errOut = lintFactory(nil)
			if code := Run(context.Background(), f, []string{"lint", "--strict", dir}); code != ExitOK || out.String() != "no problems in 1 package\n" {
				t.Errorf("lint: exit %d\n%s%s", code, out, errOut)
			}

			m, wfs := loadPackage(t, dir)
			for _, w := range m.Workflows() {
				file, _ := m.WorkflowFile(w)
				f, out, errOut = lintFactory(nil)
				args := []string{"workflow", "check", filepath.Join(dir, file), "--manifest", filepath.Join(dir, "comfypod.json"), "--workflow", w}
				if code := Run(context.Background(), f, args); code != ExitOK || !strings.Contains(out.String(), "bindings of") {
					t.Errorf("workflow check %s: exit %d\n%s%s", w, code, out, errOut)
				}
			}

			tc.check(t, dir, runPackageTestInput(t, dir, m, wfs))
		})
	}
}

// loadPackage reads a package's manifest and workflows, as a worker does.
func loadPackage(t testing.TB, dir string) (*comfy.Manifest, map[string]*comfy.Workflow) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, hub.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := m.LoadWorkflows(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	return m, wfs
}

// runPackageTestInput starts the local stack with the package's worker and
// sends the input of its test_input.json with comfypod run; it returns the
// files run saved.
func runPackageTestInput(t *testing.T, dir string, m *comfy.Manifest, wfs map[string]*comfy.Workflow) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Config{Worker: worker.Config{Manifest: m, Workflows: wfs}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	data, err := os.ReadFile(filepath.Join(dir, "test_input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ti struct {
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(data, &ti); err != nil || len(ti.Input) == 0 {
		t.Fatalf("test_input.json: want {\"input\": {…}}: %v", err)
	}
	job := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(job, ti.Input, 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	f, out, errOut := lintFactory(st.Env())
	if code := Run(ctx, f, []string{"run", "--input", job, "--out", outDir, "--timeout", "1m"}); code != ExitOK {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" {
			files = append(files, line)
		}
	}
	slices.Sort(files)
	return files
}

func decodePNG(t testing.TB, file string) image.Image {
	t.Helper()
	r, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, err := png.Decode(r)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return img
}

// inputPNG decodes an image of the package's test_input.json.
func inputPNG(t testing.TB, dir, name string) image.Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "test_input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ti struct {
		Input struct {
			Images []struct {
				Name  string `json:"name"`
				Image []byte `json:"image"`
			} `json:"images"`
		} `json:"input"`
	}
	if err := json.Unmarshal(data, &ti); err != nil {
		t.Fatal(err)
	}
	for _, im := range ti.Input.Images {
		if im.Name == name {
			img, _, err := image.Decode(strings.NewReader(string(im.Image)))
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no image %s in test_input.json", name)
	return nil
}

func rgbAt(img image.Image, x, y int) [3]uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint32{r >> 8, g >> 8, b >> 8}
}

// checkBrushOutput: the preview returns one PNG of the target's size that
// equals the target wherever the mask's reach (grown 8 px, feathered 4 px)
// does not extend, and differs inside the mask.
func checkBrushOutput(t *testing.T, dir string, outs []string) {
	if len(outs) != 1 {
		t.Fatalf("outputs %v, want one image", outs)
	}
	out, target, mask := decodePNG(t, outs[0]), inputPNG(t, dir, "input-1.png"), inputPNG(t, dir, "mask.png")
	if out.Bounds() != target.Bounds() {
		t.Fatalf("output %v, target %v", out.Bounds(), target.Bounds())
	}
	b := out.Bounds()
	reach := image.NewAlpha(b) // 255 within the mask's reach
	inside, changed := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := mask.At(x, y).RGBA(); a != 0 {
				continue
			}
			inside++
			if rgbAt(out, x, y) != rgbAt(target, x, y) {
				changed++
			}
			for dy := -13; dy <= 13; dy++ {
				for dx := -13; dx <= 13; dx++ {
					if p := image.Pt(x+dx, y+dy); p.In(b) {
						reach.Pix[reach.PixOffset(p.X, p.Y)] = 255
					}
				}
			}
		}
	}
	kept := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if reach.AlphaAt(x, y).A != 0 {
				continue
			}
			kept++
			if rgbAt(out, x, y) != rgbAt(target, x, y) {
				t.Fatalf("pixel (%d,%d) outside the mask is %v, the target's %v", x, y, rgbAt(out, x, y), rgbAt(target, x, y))
			}
		}
	}
	if inside == 0 || kept == 0 || changed < inside/2 {
		t.Errorf("%d masked pixels, %d changed; %d pixels outside the mask's reach", inside, changed, kept)
	}
}

// checkVideoPreviewOutput: one half-size PNG frame per requested frame.
func checkVideoPreviewOutput(t *testing.T, dir string, outs []string) {
	var ti struct {
		Input struct {
			Params struct {
				Frames int `json:"frames"`
			} `json:"params"`
		} `json:"input"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "test_input.json"))
	if err != nil || json.Unmarshal(data, &ti) != nil {
		t.Fatal("test_input.json", err)
	}
	if ti.Input.Params.Frames == 0 || len(outs) != ti.Input.Params.Frames {
		t.Fatalf("%d frames, want %d", len(outs), ti.Input.Params.Frames)
	}
	for _, o := range outs {
		if img := decodePNG(t, o); img.Bounds() != image.Rect(0, 0, 256, 448) {
			t.Errorf("%s is %v, want 256x448", o, img.Bounds())
		}
	}
}

// checkBlankOutput: the image scaled by the test input's factor.
func checkBlankOutput(t *testing.T, dir string, outs []string) {
	if len(outs) != 1 {
		t.Fatalf("outputs %v, want one image", outs)
	}
	in := inputPNG(t, dir, "input.png").Bounds()
	got := decodePNG(t, outs[0]).Bounds()
	if got.Dx() != in.Dx()/2 || got.Dy() != in.Dy()/2 {
		t.Errorf("output %v, want half of %v", got, in)
	}
}
