package hub

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/tools/txtar"
)

// The rule fixtures live in testdata/rules/<ID>-<name>.txtar. Each builds
// two packages from testdata/packages/clean, a package with no findings:
// "fail/" files make the rule fire, "pass/" files are the near miss that
// must not (without them, the clean package is the passing case). A file
// section is one of
//
//	-- fail/<path> --           the file's new content
//	-- fail/<path>.replace --   lines "old => new": replace the first old
//	                            (which must be there) with new; \n is a
//	                            line break
//	-- fail/<path>.delete --    remove the file
//	-- fail/<path>.symlink --   a symbolic link to the content
//	-- fail/<path>.move --      rename the file to the content
//
// The comment holds the description and lines "want: file:line:col" the
// rule must report in the fail package.

const cleanPackage = "testdata/packages/clean"

// readTree reads a folder into a MapFS.
func readTree(t testing.TB, dir string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fixture is one parsed rule fixture.
type fixture struct {
	name       string
	desc       string
	wants      []string
	fail, pass fstest.MapFS
}

func loadFixture(t testing.TB, file string) *fixture {
	t.Helper()
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{name: strings.TrimSuffix(filepath.Base(file), ".txtar")}
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		if w, ok := strings.CutPrefix(line, "want: "); ok {
			fx.wants = append(fx.wants, strings.TrimSpace(w))
		} else if strings.TrimSpace(line) != "" {
			fx.desc += line + " "
		}
	}
	base := readTree(t, cleanPackage)
	fx.fail, fx.pass = cloneFS(base), cloneFS(base)
	for _, f := range ar.Files {
		variant, name, ok := strings.Cut(f.Name, "/")
		var dst fstest.MapFS
		switch {
		case ok && variant == "fail":
			dst = fx.fail
		case ok && variant == "pass":
			dst = fx.pass
		default:
			t.Fatalf("%s: section %q must start with fail/ or pass/", file, f.Name)
		}
		applySection(t, file, dst, name, f.Data)
	}
	return fx
}

func cloneFS(m fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range m {
		c := *v
		c.Data = append([]byte(nil), v.Data...)
		out[k] = &c
	}
	return out
}

func applySection(t testing.TB, file string, dst fstest.MapFS, name string, data []byte) {
	t.Helper()
	switch {
	case strings.HasSuffix(name, ".delete"):
		target := strings.TrimSuffix(name, ".delete")
		if _, ok := dst[target]; !ok {
			t.Fatalf("%s: cannot delete %s: not in the package", file, target)
		}
		delete(dst, target)
	case strings.HasSuffix(name, ".move"):
		from, to := strings.TrimSuffix(name, ".move"), strings.TrimSpace(string(data))
		f, ok := dst[from]
		if !ok {
			t.Fatalf("%s: cannot move %s: not in the package", file, from)
		}
		delete(dst, from)
		dst[to] = f
	case strings.HasSuffix(name, ".symlink"):
		dst[strings.TrimSuffix(name, ".symlink")] = &fstest.MapFile{Data: []byte(strings.TrimSpace(string(data))), Mode: fs.ModeSymlink | 0o777}
	case strings.HasSuffix(name, ".replace"):
		target := strings.TrimSuffix(name, ".replace")
		f, ok := dst[target]
		if !ok {
			t.Fatalf("%s: cannot edit %s: not in the package", file, target)
		}
		text := string(f.Data)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			old, repl, ok := strings.Cut(line, " => ")
			if !ok && strings.HasSuffix(line, " =>") {
				old, repl, ok = strings.TrimSuffix(line, " =>"), "", true
			}
			if !ok {
				t.Fatalf("%s: %s: want `old => new`, got %q", file, name, line)
			}
			old, repl = unescapeFixture(old), unescapeFixture(repl)
			if !strings.Contains(text, old) {
				t.Fatalf("%s: %s: %q is not in %s", file, name, old, target)
			}
			text = strings.Replace(text, old, repl, 1)
		}
		dst[target] = &fstest.MapFile{Data: []byte(text), Mode: 0o644}
	default:
		dst[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
}

func unescapeFixture(s string) string {
	return strings.NewReplacer(`\n`, "\n", `\r`, "\r", `\t`, "\t", `\u200b`, "\u200b", `\ufeff`, "\ufeff").Replace(s)
}

// lintFS lints a package held in memory.
func lintFS(t testing.TB, fsys fs.FS) *Result {
	t.Helper()
	l, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.LintFS(context.Background(), fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writeTree writes a MapFS to a fresh folder, for tests that need real files.
func writeTree(t testing.TB, m fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range m {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Mode&fs.ModeSymlink != 0 {
			if err := os.Symlink(string(f.Data), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func findingsOf(res *Result, rule string) []Finding {
	var out []Finding
	for _, f := range res.Findings {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

func locations(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("%s:%d:%d", path.Clean(f.File), f.Line, f.Column)
		if f.File == "" {
			out[i] = "(package)"
		}
	}
	return out
}
