package hub

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files from the current output")

// corpusPackages lists the package folders of the shared Hub corpus: one per
// repository, and the historical versions under _history/.
func corpusPackages(t testing.TB) (root string, dirs []string) {
	t.Helper()
	root = filepath.Join(testenv.SharedDir(t), "corpus", "runpod-hub")
	for _, pattern := range []string{"*", "_history/*"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.IsDir() && filepath.Base(m) != "_history" {
				dirs = append(dirs, m)
			}
		}
	}
	sort.Strings(dirs)
	return root, dirs
}

// TestCorpusGolden lints every package of the public Hub corpus (other
// people's files, read in place) and compares the findings with
// testdata/corpus.golden, which records our reviewed findings. Run with
// -update to rewrite it; testdata/corpus-review.md explains the review.
func TestCorpusGolden(t *testing.T) {
	root, dirs := corpusPackages(t)
	if len(dirs) < 68 {
		t.Fatalf("found %d corpus packages in %s, want 68 + _history", len(dirs), root)
	}
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# comfypod lint over ../shared/corpus/runpod-hub (%d packages). Regenerate: go test ./hub -run TestCorpusGolden -update\n", len(dirs))
	for _, dir := range dirs {
		res, err := l.Lint(context.Background(), dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		rel, _ := filepath.Rel(root, dir)
		fmt.Fprintf(&out, "\n== %s (%d errors, %d warnings, %d infos)\n", filepath.ToSlash(rel), res.Count(Error), res.Count(Warning), res.Count(Info))
		for _, f := range res.Findings {
			checkPosition(t, dir, f)
			fmt.Fprintln(&out, f.String())
		}
	}
	compareGolden(t, "testdata/corpus.golden", out.Bytes())
}

// checkPosition verifies that a finding's line exists in its file.
func checkPosition(t *testing.T, dir string, f Finding) {
	t.Helper()
	if f.File == "" || f.Line == 0 {
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.File)))
	if err != nil {
		t.Errorf("%s: finding in unreadable file: %s", dir, f)
		return
	}
	lines := bytes.Split(data, []byte("\n"))
	if f.Line > len(lines) || f.Column < 0 || f.Column > len([]rune(string(lines[f.Line-1])))+1 {
		t.Errorf("%s: position outside the file: %s", dir, f)
	}
}

func compareGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test ./hub -run %s -update after reviewing the change)", file, i+1, g, w, t.Name())
			}
		}
	}
}
