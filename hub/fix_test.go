package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// TestFixKeepsTheRestOfTheFile applies all three fixes at once and checks
// that only the affected values changed.
func TestFixKeepsTheRestOfTheFile(t *testing.T) {
	t.Parallel()
	m := readTree(t, cleanPackage)
	hub := strings.Replace(string(m[".runpod/hub.json"].Data), `"ADA_24,AMPERE_24,-NVIDIA L4"`, `" ADA_24 , AMPERE_24,,- NVIDIA L4 "`, 1)
	hub = strings.ReplaceAll(hub, "\n", "\r\n") // CRLF must survive
	m[".runpod/hub.json"] = &fstest.MapFile{Data: []byte(hub)}
	tests := `{
  "tests": [
    {
      "name": "wrapped",
      "input": {
        "input": {
          "prompt": "a cat",
          "seed": 1
        }
      },
      "timeout": 300000
    }
  ],
  "config": {
    "gpuTypeId": "NVIDIA GeForce RTX 4090",
    "gpuCount": 1,
    "allowedCudaVersions": ["12.7"]
  }
}
`
	m[".runpod/tests.json"] = &fstest.MapFile{Data: []byte(tests)}
	dir := writeTree(t, m)
	l, _ := New(nil)
	res, err := l.Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Fixable(); n != 3 {
		t.Fatalf("fixable = %d, want 3: %v", n, res.Findings)
	}
	fr, err := ApplyFixes(context.Background(), dir, res.Findings)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Fixed != 3 || len(fr.Files) != 2 {
		t.Errorf("fix result %+v", fr)
	}
	gotHub, _ := os.ReadFile(filepath.Join(dir, ".runpod/hub.json"))
	wantHub := strings.Replace(hub, `" ADA_24 , AMPERE_24,,- NVIDIA L4 "`, `"ADA_24,AMPERE_24,-NVIDIA L4"`, 1)
	if string(gotHub) != wantHub {
		t.Errorf("hub.json after fix:\n%s", gotHub)
	}
	gotTests, _ := os.ReadFile(filepath.Join(dir, ".runpod/tests.json"))
	wantTests := `{
  "tests": [
    {
      "name": "wrapped",
      "input": {
        "prompt": "a cat",
        "seed": 1
      },
      "timeout": 300000
    }
  ],
  "config": {
    "gpuTypeId": "NVIDIA GeForce RTX 4090",
    "gpuCount": 1,
    "allowedCudaVersions": ["12.7", "12.6"]
  }
}
`
	if string(gotTests) != wantTests {
		t.Errorf("tests.json after fix:\n%s\nwant:\n%s", gotTests, wantTests)
	}
	after, err := l.Lint(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Findings) != 0 {
		t.Errorf("findings left after --fix: %v", after.Findings)
	}
}

func TestFixInsertsMissingCUDAOnCRLF(t *testing.T) {
	t.Parallel()
	m := readTree(t, cleanPackage)
	tests := strings.Replace(string(m[".runpod/tests.json"].Data), ",\n    \"allowedCudaVersions\": [\"12.7\", \"12.6\"]", "", 1)
	tests = strings.ReplaceAll(tests, "\n", "\r\n")
	m[".runpod/tests.json"] = &fstest.MapFile{Data: []byte(tests)}
	dir := writeTree(t, m)
	l, _ := New(nil)
	res, _ := l.Lint(context.Background(), dir)
	if _, err := ApplyFixes(context.Background(), dir, res.Findings); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, ".runpod/tests.json"))
	if !strings.Contains(string(got), "}],\r\n    \"allowedCudaVersions\": [\"12.7\", \"12.6\"]\r\n  }") {
		t.Errorf("inserted member not in place:\n%q", got)
	}
}

func TestFixRefusesChangedFile(t *testing.T) {
	t.Parallel()
	m := readTree(t, cleanPackage)
	m[".runpod/tests.json"].Data = []byte(strings.Replace(string(m[".runpod/tests.json"].Data), `["12.7", "12.6"]`, `["12.7"]`, 1))
	dir := writeTree(t, m)
	l, _ := New(nil)
	res, _ := l.Lint(context.Background(), dir)
	path := filepath.Join(dir, ".runpod/tests.json")
	edited := append(m[".runpod/tests.json"].Data, ' ')
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ApplyFixes(context.Background(), dir, res.Findings)
	if !errors.Is(err, ErrFileChanged) {
		t.Fatalf("err = %v, want ErrFileChanged", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(edited) {
		t.Error("a changed file was rewritten")
	}
}

// TestNoFixForBrokenJSON checks that files that do not parse cleanly get no
// fixes: rewriting a file the linter could only partly read is unsafe.
func TestNoFixForBrokenJSON(t *testing.T) {
	t.Parallel()
	m := readTree(t, cleanPackage)
	m[".runpod/tests.json"].Data = []byte(strings.Replace(string(m[".runpod/tests.json"].Data), `["12.7", "12.6"]`, `["12.7",]`, 1))
	res := lintFS(t, m)
	if len(findingsOf(res, ruleCUDASubset)) == 0 {
		t.Fatal("subset not reported")
	}
	if res.Fixable() != 0 {
		t.Errorf("fixes offered for a file with a syntax error: %v", res.Findings)
	}
}

func TestApplyEditsSkipsOverlaps(t *testing.T) {
	t.Parallel()
	out, skipped, err := applyEdits([]byte("abcdef"), []Edit{{Start: 1, End: 3, Text: "X"}, {Start: 2, End: 4, Text: "Y"}, {Start: 5, End: 5, Text: "Z"}})
	if err != nil || string(out) != "aXdeZf" || skipped != 1 {
		t.Errorf("applyEdits = %q, %d, %v", out, skipped, err)
	}
	if _, _, err := applyEdits([]byte("ab"), []Edit{{Start: 1, End: 9}}); err == nil {
		t.Error("edit past the end accepted")
	}
}
