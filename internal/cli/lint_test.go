package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/internal/testenv"
)

var updateLint = flag.Bool("update-lint", false, "rewrite the comfypod lint golden files")

func lintFactory(env map[string]string) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	ios, _, out, errOut := TestIO()
	return &Factory{
		IO:         ios,
		Getenv:     func(k string) string { return env[k] },
		HTTPClient: &http.Client{},
		Now:        time.Now,
		logLevel:   "info",
		logFormat:  "text",
	}, out, errOut
}

// lintPackage returns a package folder of the hub fixtures, as a path
// relative to this package so outputs are the same on every machine.
func lintPackage(t testing.TB, name string) string {
	t.Helper()
	abs := filepath.Join(testenv.RepoRoot(t), "hub", "testdata", "packages", name)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}

func TestLintParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _ := lintFactory(nil)
	var got *LintOptions
	cmd := NewCmdLint(f, func(_ context.Context, o *LintOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"a", "b", "--format", "sarif", "--strict", "--fix", "--disable", "RP504,timeout-missing", "--disable", "RP604", "--color", "never", "--catalog", "c.json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || strings.Join(got.Dirs, ",") != "a,b" || got.Format != "sarif" || !got.Strict || !got.Fix ||
		strings.Join(got.Disable, ",") != "RP504,timeout-missing,RP604" || got.Color != "never" || got.Catalog != "c.json" {
		t.Errorf("options = %+v", got)
	}
	cmd = NewCmdLint(f, func(_ context.Context, o *LintOptions) error { got = o; return nil })
	cmd.SetArgs([]string{})
	if err := cmd.Execute(); err != nil || strings.Join(got.Dirs, ",") != "." || got.Format != "text" || got.Color != "auto" {
		t.Errorf("defaults: %+v, %v", got, err)
	}
	for _, args := range [][]string{{"lint", "--format", "xml"}, {"lint", "--color", "pink"}, {"lint", "--disable", "RP999", "."}, {"lint", "no/such/folder"}, {"lint", "--bogus"}} {
		f, _, errOut := lintFactory(nil)
		if code := Run(context.Background(), f, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %s)", args, code, ExitUsage, errOut)
		}
	}
}

func TestLintCleanPackageExits0(t *testing.T) {
	t.Parallel()
	f, out, errOut := lintFactory(nil)
	if code := Run(context.Background(), f, []string{"lint", lintPackage(t, "clean")}); code != ExitOK {
		t.Fatalf("exit %d; stdout %s; stderr %s", code, out, errOut)
	}
	if out.String() != "no problems in 1 package\n" {
		t.Errorf("stdout = %q", out)
	}
}

// TestLintOutputs runs comfypod lint on the seed guide's draft package in
// each format and compares with golden files.
func TestLintOutputs(t *testing.T) {
	t.Parallel()
	dir := lintPackage(t, "seed-draft")
	for _, tc := range []struct {
		golden string
		args   []string
		env    map[string]string
		tty    bool
		code   int
	}{
		{"text.golden", []string{"lint", dir}, nil, false, ExitFailed},
		{"text-color.golden", []string{"lint", dir}, nil, true, ExitFailed},
		{"text-no-color.golden", []string{"lint", dir}, map[string]string{"NO_COLOR": "1"}, true, ExitFailed},
		{"json.golden", []string{"lint", "--format", "json", dir}, nil, false, ExitFailed},
		{"sarif.golden", []string{"lint", "--format", "sarif", dir}, nil, false, ExitFailed},
		{"warnings.golden", []string{"lint", "--disable", "RP305,RP210,RP302,RP704", dir}, nil, false, ExitOK},
		{"warnings-strict.golden", []string{"lint", "--strict", "--disable", "RP305,RP210,RP302,RP704", dir}, nil, false, ExitFailed},
		{"rules.golden", []string{"lint", "--rules"}, nil, false, ExitOK},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			f, out, errOut := lintFactory(tc.env)
			f.IO.StdoutTTY = tc.tty
			if code := Run(context.Background(), f, tc.args); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			got := strings.ReplaceAll(out.String(), version(), "VERSION")
			compareLintGolden(t, filepath.Join("testdata", "lint", tc.golden), got)
			if strings.Contains(tc.golden, "json") || strings.Contains(tc.golden, "sarif") {
				if !json.Valid(out.Bytes()) {
					t.Error("output is not JSON")
				}
				if !strings.Contains(errOut.String(), "in 1 package") {
					t.Errorf("no summary on stderr: %s", errOut)
				}
			}
		})
	}
}

func TestLintFix(t *testing.T) {
	t.Parallel()
	src := filepath.Join(testenv.RepoRoot(t), "hub", "testdata", "packages", "seed-draft")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	f, out, errOut := lintFactory(nil)
	if code := Run(context.Background(), f, []string{"lint", "--fix", dir}); code != ExitFailed {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	if !strings.Contains(errOut.String(), "3 finding(s) fixed") {
		t.Errorf("stderr = %s", errOut)
	}
	for _, gone := range []string{"RP204", "RP410", "RP302"} {
		if strings.Contains(out.String(), gone) {
			t.Errorf("%s still reported after --fix:\n%s", gone, out)
		}
	}
	tests, _ := os.ReadFile(filepath.Join(dir, ".runpod", "tests.json"))
	if !strings.Contains(string(tests), `"input": {"image_url"`) || !strings.Contains(string(tests), `"allowedCudaVersions": ["12.8"]`) {
		t.Errorf("tests.json after --fix:\n%s", tests)
	}
	hub, _ := os.ReadFile(filepath.Join(dir, ".runpod", "hub.json"))
	if !strings.Contains(string(hub), `"gpuIds": "ADA_24,ADA_32_PRO"`) {
		t.Errorf("hub.json after --fix:\n%s", hub)
	}
}

func compareLintGolden(t *testing.T, file, got string) {
	t.Helper()
	if *updateLint {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run TestLint -update-lint)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestLintSkipsFilesAmongPackages runs the linter the way a shell expands
// "comfypod lint packages/*": the package folders are linted, the files beside
// them are skipped with a note, and a lone file is still an error.
func TestLintSkipsFilesAmongPackages(t *testing.T) {
	t.Parallel()
	root := filepath.Join(testenv.RepoRoot(t), "packages")
	matches, err := filepath.Glob(filepath.Join(root, "*"))
	if err != nil || len(matches) < 3 {
		t.Fatalf("glob packages/*: %v %v", matches, err)
	}
	f, out, errOut := lintFactory(nil)
	code := Run(context.Background(), f, append([]string{"lint"}, matches...))
	if code != ExitOK {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut.String(), "skipping "+filepath.Join(root, "packages.go")+": not a package folder") {
		t.Errorf("no note about packages.go on stderr:\n%s", errOut)
	}
	if !strings.Contains(out.String(), "2 packages") {
		t.Errorf("want both packages linted:\n%s", out)
	}

	f, out, errOut = lintFactory(nil)
	if code := Run(context.Background(), f, []string{"lint", filepath.Join(root, "packages.go")}); code != ExitFailed {
		t.Errorf("lint of a lone file: exit %d, want %d; stderr:\n%s%s", code, ExitFailed, out, errOut)
	}
}
