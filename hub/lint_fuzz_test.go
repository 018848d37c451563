package hub

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

// fuzzLint puts data in place of one file of the clean package, lints it,
// and checks that nothing crashes, positions stay inside the file, and every
// fix offered applies and leaves valid JSON. keep names the other files of
// the clean package to include (fewer files, faster executions).
func fuzzLint(f *testing.F, file string, seeds []string, keep ...string) {
	full := readTree(f, cleanPackage)
	base := fstest.MapFS{file: full[file]}
	for _, k := range keep {
		base[k] = full[k]
	}
	f.Add(base[file].Data)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	l, err := New(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := cloneFS(base)
		m[file] = &fstest.MapFile{Data: data}
		res, err := l.LintFS(context.Background(), m, ".")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, fd := range res.Findings {
			if fd.Message == "" || fd.Rule == "" {
				t.Fatalf("empty finding %+v", fd)
			}
			if fd.File == file && (fd.Line < 0 || fd.Line > lines || fd.Column < 0) {
				t.Fatalf("finding outside %s (%d lines): %s", file, lines, fd)
			}
			if fd.Fix == nil {
				continue
			}
			for _, e := range fd.Fix.Edits {
				src := m[e.File].Data
				out, _, err := applyEdits(src, []Edit{e})
				if err != nil {
					t.Fatalf("fix %q does not apply: %v", fd.Fix.Description, err)
				}
				if d := parseJSON(e.File, out); len(d.problems) > 0 {
					t.Fatalf("fix %q leaves invalid JSON: %s", fd.Fix.Description, d.problems[0].msg)
				}
			}
		}
	})
}

func FuzzLintHubJSON(f *testing.F) {
	fuzzLint(f, ".runpod/hub.json", []string{
		`{"title": 1, "type": "pod", "category": "Image", "config": {"runsOn": "gpu", "gpuIds": " ADA_24 ,, -NVIDIA L4 ,BLACKWELL_24", "containerDiskInGb": "20"}}`,
		`{"config": {"runsOn": "GPU", "gpuIds": ["NVIDIA A40"], "allowedCudaVersions": [12.8, "11.7"], "env": [{"name": "A"}, {"key": "B", "input": {"type": "boolean", "default": "x", "options": [{"value": 1}]}}], "presets": [{"name": "p", "defaults": {"Z": [1]}}]}}`,
		"{\n  \"title\": \"x\",\n}",
		`[1, 2]`,
		"import runpod\n",
	}, ".runpod/tests.json")
}

func FuzzLintTestsJSON(f *testing.F) {
	fuzzLint(f, ".runpod/tests.json", []string{
		`{"tests": [{"name": "a", "input": {"input": {"x": 1}}, "timeout": 30}, {"name": "a"}], "config": {"gpuTypeId": "ADA_24", "allowedCudaVersions": ["12.8"]}}`,
		`[{"input": 1, "timeout": "x"}]`,
		`{"tests": [], "config": {"env": [{"name": "A", "value": 1}], "gpuTypeId": "NVIDIA GeForce RTX 5090"}}`,
		`{\n  \"tests\": []\n}`,
		"{\"config\": {\"gpuTypeId\": \"NVIDIA GeForce RTX 4090\", \"gpuCount\": 1}}",
	}, ".runpod/hub.json")
}

func FuzzLintHandler(f *testing.F) {
	fuzzLint(f, "handler.py", []string{
		"prompt[\"99\"][\"inputs\"][\"x\"] = 1\nprompt[\"3\"][\"inputs\"][\"image\"] = 2\n",
		"if \"99\" in p:\n    p[\"99\"][\"inputs\"][\"a\"] = 1\n",
	}, "workflow_api.json")
}
