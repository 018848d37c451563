package scaffold

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/hub"
)

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "image-brush", "my_pkg2", "x-1-y"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "My Brush", "-a", "1abc", "a--b", "a-", "a/b", "../x", "ünï", strings.Repeat("a", MaxNameLength+1)} {
		err := ValidateName(name)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if err := ValidateName("My Brush"); err == nil || !strings.Contains(err.Error(), `"my-brush"`) {
		t.Errorf("no suggestion in %v", err)
	}
}

func TestNameFromDirAndTitle(t *testing.T) {
	t.Parallel()
	for dir, want := range map[string]string{
		"/tmp/My Brush":       "my-brush",
		"pkgs/dance_SCAIL v2": "dance-scail-v2",
		"/x/2024-release":     "release",
		"/x/日本":               "",
	} {
		if got := NameFromDir(dir); got != want {
			t.Errorf("NameFromDir(%q) = %q, want %q", dir, got, want)
		}
	}
	if got := TitleOf("club-dance_v2"); got != "Club Dance V2" {
		t.Errorf("TitleOf = %q", got)
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	for _, tm := range Templates() {
		got, err := Lookup(tm.Name)
		if err != nil || got.Name != tm.Name {
			t.Errorf("Lookup(%q) = %v, %v", tm.Name, got.Name, err)
		}
	}
	_, err := Lookup("vid")
	if !errors.Is(err, ErrUnknownTemplate) || !strings.Contains(err.Error(), "image-brush, video, blank") {
		t.Errorf("Lookup(vid) = %v", err)
	}
}

// TestTemplatesAreCleanPackages writes every template, under its own name
// and under another, and checks the result the way a user would before a
// release: no lint finding at all, and every manifest binding fits its
// workflow.
func TestTemplatesAreCleanPackages(t *testing.T) {
	t.Parallel()
	linter, err := hub.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range Templates() {
		for _, name := range []string{tm.Package, "club-" + tm.Package} {
			t.Run(tm.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(t.TempDir(), "pkg")
				res, err := Write(context.Background(), dir, Options{Template: tm.Name, Name: name})
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range []string{".runpod/hub.json", ".runpod/tests.json", "Dockerfile", "README.md", "comfypod.json", "test_input.json", "workflow_api.json"} {
					if !slices.Contains(res.Files, want) {
						t.Errorf("%s not written (files %v)", want, res.Files)
					}
				}
				lr, err := linter.Lint(context.Background(), dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range lr.Findings {
					t.Errorf("lint: %s", f)
				}
				checkManifest(t, dir, name)
				checkNamed(t, dir, tm, name, res.Title)
			})
		}
	}
}

// checkManifest checks every binding of the package's manifest against its
// workflows, as comfypod workflow check --manifest does.
func checkManifest(t *testing.T, dir, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "comfypod.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != name {
		t.Errorf("manifest name %q, want %q", m.Name, name)
	}
	wfs, err := m.LoadWorkflows(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Workflows() {
		if err := m.Check(wfs[w], w, nil); err != nil {
			t.Errorf("workflow %s: %v", w, err)
		}
		if err := wfs[w].Validate(nil); err != nil {
			t.Errorf("workflow %s: %v", w, err)
		}
	}
}

// checkNamed checks that the package carries its own name and title, and
// none of the template's when they differ.
func checkNamed(t *testing.T, dir string, tm Template, name, title string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ".runpod", "hub.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.ParseHub(data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Title != title {
		t.Errorf("hub.json title %q, want %q", h.Title, title)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(readme), "# "+title+"\n") {
		t.Errorf("README starts %q, want the heading # %s", firstLine(readme), title)
	}
	if name == tm.Package {
		return
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), tm.Package) && !strings.Contains(string(b), name) {
			t.Errorf("%s still names the template package %q", p, tm.Package)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

func TestWriteRefusesNonEmptyFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mine := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(mine, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(context.Background(), dir, Options{Template: TemplateBlank, Name: "pkg"})
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Write into a non-empty folder: %v", err)
	}
	if b, _ := os.ReadFile(readme); string(b) != "old" {
		t.Errorf("README.md changed to %q although Write refused", b)
	}
	if _, err := os.Stat(filepath.Join(dir, ".runpod")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".runpod written although Write refused: %v", err)
	}

	res, err := Write(context.Background(), dir, Options{Template: TemplateBlank, Name: "pkg", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Replaced, []string{"README.md"}) {
		t.Errorf("Replaced = %v, want [README.md]", res.Replaced)
	}
	if b, _ := os.ReadFile(mine); string(b) != "keep me" {
		t.Errorf("a file the template does not have changed: %q", b)
	}
	if b, _ := os.ReadFile(readme); !strings.HasPrefix(string(b), "# Pkg\n") {
		t.Errorf("README.md not replaced: %q", firstLine(b))
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestWriteIntoEmptyOrMissingFolder(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	empty := filepath.Join(parent, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), empty, Options{Template: TemplateBlank}); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(parent, "a", "b", "new-pkg")
	res, err := Write(context.Background(), deep, Options{Template: TemplateBlank})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != "new-pkg" || res.Title != "New Pkg" {
		t.Errorf("name %q title %q, want new-pkg, New Pkg (from the folder)", res.Name, res.Title)
	}
	for _, dir := range []string{empty, deep} {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v", dir, err, st.Mode())
		}
		var m struct{ Name string }
		data, err := os.ReadFile(filepath.Join(dir, "comfypod.json"))
		if err != nil || json.Unmarshal(data, &m) != nil {
			t.Fatalf("%s: comfypod.json: %v", dir, err)
		}
		if m.Name != filepath.Base(dir) {
			t.Errorf("%s: manifest name %q", dir, m.Name)
		}
	}
	// No temporary folder is left beside the package.
	es, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), file, Options{Name: "x"}); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("Write onto a file: %v", err)
	}
	if _, err := Write(context.Background(), filepath.Join(dir, "p"), Options{Template: "nope"}); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown template: %v", err)
	}
	if _, err := Write(context.Background(), filepath.Join(dir, "p"), Options{Name: "Bad Name"}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := Write(context.Background(), filepath.Join(dir, "日本"), Options{}); !errors.Is(err, ErrInvalidName) {
		t.Errorf("underivable name: %v", err)
	}
	// A folder where the template has a file is not clobbered.
	pkg := filepath.Join(dir, "clash")
	if err := os.MkdirAll(filepath.Join(pkg, "README.md"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), pkg, Options{Template: TemplateBlank, Force: true}); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("README.md folder: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, filepath.Join(dir, "cancelled"), Options{Template: TemplateBlank}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cancelled")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cancelled Write left the folder: %v", err)
	}
}

func TestForceReplacesSymlinkNotTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside.md")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "README.md")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := Write(context.Background(), dir, Options{Template: TemplateBlank, Name: "pkg", Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "outside" {
		t.Errorf("the link's target was written through: %q", b)
	}
	st, err := os.Lstat(filepath.Join(dir, "README.md"))
	if err != nil || !st.Mode().IsRegular() {
		t.Errorf("README.md is not a regular file now: %v %v", st.Mode(), err)
	}
}
