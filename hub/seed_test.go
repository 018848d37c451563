package hub

import (
	"strings"
	"testing"
	"testing/fstest"
)

// edit returns a copy of the clean package with replacements applied to
// files, failing if a text to replace is missing.
func edit(t *testing.T, edits map[string][][2]string) fstest.MapFS {
	t.Helper()
	m := readTree(t, cleanPackage)
	for file, reps := range edits {
		f, ok := m[file]
		if !ok {
			f = &fstest.MapFile{}
			m[file] = f
		}
		s := string(f.Data)
		for _, r := range reps {
			if r[0] == "" {
				s = r[1]
				continue
			}
			if !strings.Contains(s, r[0]) {
				t.Fatalf("%s: %q not found", file, r[0])
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		f.Data = []byte(s)
	}
	return m
}

// wantRule asserts that rule fired with a message holding each of words.
func wantRule(t *testing.T, res *Result, rule string, words ...string) {
	t.Helper()
	fs := findingsOf(res, rule)
	if len(fs) == 0 {
		t.Fatalf("%s did not fire; findings: %v", rule, res.Findings)
	}
	for _, w := range words {
		found := false
		for _, f := range fs {
			found = found || strings.Contains(f.Message, w)
		}
		if !found {
			t.Errorf("%s messages lack %q: %v", rule, w, fs)
		}
	}
}

// TestSeedTraps checks each trap of our Hub deployment notes (the Dance
// SCAIL package guide) against the rule that catches it.
func TestSeedTraps(t *testing.T) {
	t.Parallel()
	gpu := `"gpuIds": "ADA_24,AMPERE_24,-NVIDIA L4"`
	cuda := `"allowedCudaVersions": ["12.7", "12.6"]`
	t.Run("hub.json and tests.json GPU settings differ: tests hang with no log", func(t *testing.T) {
		t.Parallel()
		// The guide's own example: a pool id as the test GPU.
		res := lintFS(t, edit(t, map[string][][2]string{
			".runpod/hub.json":   {{gpu, `"gpuIds": "ADA_24,ADA_32_PRO"`}},
			".runpod/tests.json": {{`"gpuTypeId": "NVIDIA GeForce RTX 4090"`, `"gpuTypeId": "ADA_24"`}},
		}))
		wantRule(t, res, ruleTestGPUPool, "waits forever", "NVIDIA GeForce RTX 4090")
		res = lintFS(t, edit(t, map[string][][2]string{
			".runpod/tests.json": {{`"gpuTypeId": "NVIDIA GeForce RTX 4090"`, `"gpuTypeId": "NVIDIA H100 80GB HBM3"`}},
		}))
		wantRule(t, res, ruleTestGPUOutside, "waits forever with no log", "ADA_80_PRO")
	})
	t.Run("hub.json and tests.json CUDA versions differ", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{".runpod/tests.json": {{cuda, `"allowedCudaVersions": ["12.8", "12.7"]`}}}))
		wantRule(t, res, ruleCUDAMismatch, "waits forever", `["12.7", "12.6"]`)
	})
	t.Run("CUDA 12.8 is not available on the Hub", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{
			".runpod/hub.json":   {{cuda, `"allowedCudaVersions": ["12.8"]`}},
			".runpod/tests.json": {{cuda, `"allowedCudaVersions": ["12.8"]`}},
		}))
		wantRule(t, res, ruleCUDAOnlyNew, "at most 12.7", "directly")
		if n := len(findingsOf(res, ruleCUDAOnlyNew)); n != 2 {
			t.Errorf("want the trap reported in both files, got %d", n)
		}
	})
	t.Run("RTX 5090 needs CUDA 12.8: deploy it directly, not from the Hub", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{
			".runpod/hub.json":   {{gpu, `"gpuIds": "ADA_32_PRO"`}},
			".runpod/tests.json": {{`"gpuTypeId": "NVIDIA GeForce RTX 4090"`, `"gpuTypeId": "NVIDIA GeForce RTX 5090"`}},
		}))
		wantRule(t, res, ruleBlackwell, "needs CUDA 12.8", "direct serverless endpoint")
	})
	t.Run("tests.json is mandatory", func(t *testing.T) {
		t.Parallel()
		m := readTree(t, cleanPackage)
		delete(m, ".runpod/tests.json")
		wantRule(t, lintFS(t, m), ruleTestsMissing, "tests.json")
	})
	t.Run("a 14B model needs a 900000 ms timeout", func(t *testing.T) {
		t.Parallel()
		fourteen := map[string][][2]string{"Dockerfile": {{"stable-diffusion-v1-5/stable-diffusion-v1-5 \\", "Kijai/WanVideo_comfy/Wan21-14B-SCAIL-preview_fp8_e4m3fn_scaled_KJ.safetensors \\"}}}
		wantRule(t, lintFS(t, edit(t, fourteen)), ruleTimeoutShort, "14B", "900000")
		fourteen[".runpod/tests.json"] = [][2]string{{`"timeout": 300000`, `"timeout": 900000`}}
		if fs := findingsOf(lintFS(t, edit(t, fourteen)), ruleTimeoutShort); len(fs) > 0 {
			t.Errorf("the guide's 900000 ms is enough for 14B: %v", fs)
		}
	})
	t.Run("the handler's node ids must match the workflow", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{"handler.py": {{`prompt["3"]["inputs"]["seed"]`, `prompt["10"]["inputs"]["seed"]`}}}))
		wantRule(t, res, ruleNodeInput, `prompt["10"]["inputs"]["seed"]`, "node 10 in workflow_api.json is LoadImage, which has no input `seed`")
	})
	t.Run("Hugging Face tokens go through ARG, not ENV", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{"Dockerfile": {{"ARG HF_TOKEN", "ENV HF_TOKEN=hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}}))
		wantRule(t, res, ruleDockerSecret, "ARG HF_TOKEN", "--mount=type=secret")
	})
	t.Run("build with --platform linux/amd64", func(t *testing.T) {
		t.Parallel()
		res := lintFS(t, edit(t, map[string][][2]string{
			"Dockerfile": {{"FROM --platform=linux/amd64 ", "FROM "}},
			"README.md":  {{"--platform linux/amd64 ", ""}},
		}))
		wantRule(t, res, ruleDockerPlatform, "docker build --platform linux/amd64")
	})
}
