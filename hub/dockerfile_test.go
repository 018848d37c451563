package hub

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestCUDAInImage(t *testing.T) {
	t.Parallel()
	for image, want := range map[string]string{
		"nvidia/cuda:12.8.0-cudnn-devel-ubuntu22.04":                     "12.8",
		"nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04":                   "12.6",
		"runpod/pytorch:2.8.0-py3.11-cuda12.8.1-cudnn-devel-ubuntu22.04": "12.8",
		"pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime":                  "12.8",
		"runpod/pytorch:1.0.2-cu1281-torch271-ubuntu2204":                "12.8",
		"lmsysorg/sglang:v0.4.6-cu126":                                   "12.6",
		"vllm/vllm-openai:v0.18.0-cu130":                                 "13.0",
		"runpod/worker-comfyui:5.5.0-base-cuda12.8.1":                    "12.8",
		"nvidia/cuda:13.0.1-cudnn-devel-ubuntu24.04":                     "13.0",
		"ghcr.io/x/y:cuda-12.4":                                          "12.4",
		"python:3.11-slim":                                               "",
		"ubuntu:22.04":                                                   "",
		"rocm/pytorch:latest":                                            "",
	} {
		got, ok := cudaInImage(image)
		if got != want || ok != (want != "") {
			t.Errorf("cudaInImage(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
}

func TestDockerfileStages(t *testing.T) {
	t.Parallel()
	src := `ARG BASE=nvidia/cuda
ARG CUDA=12.4.1
FROM ${BASE}:${CUDA}-devel-ubuntu22.04 AS build
RUN make
FROM --platform=$BUILDPLATFORM build AS final
ARG CUDA=99
FROM final
`
	df, _, err := parseDockerfile("Dockerfile", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sts := df.stages()
	if len(sts) != 3 || sts[0].image != "nvidia/cuda:12.4.1-devel-ubuntu22.04" || sts[0].name != "build" || sts[1].platform != "$BUILDPLATFORM" {
		t.Fatalf("stages = %+v", sts)
	}
	base, ok := finalBase(sts)
	if !ok || base.image != "nvidia/cuda:12.4.1-devel-ubuntu22.04" {
		t.Errorf("final base = %+v", base)
	}
	if got := expandArgs("${X:-def}/$Y", map[string]string{"Y": "y"}); got != "def/y" {
		t.Errorf("expandArgs = %q", got)
	}
}

// TestDockerSecretsAreRedacted checks that a baked-in token is reported
// without printing it.
func TestDockerSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	const token = "hf_SECRETsecretSECRETsecret123456"
	m := readTree(t, cleanPackage)
	m["Dockerfile"] = &fstest.MapFile{Data: []byte("FROM --platform=linux/amd64 nvidia/cuda:12.6.3-runtime-ubuntu24.04\n" +
		"ENV HF_TOKEN=" + token + " OTHER=1\n" +
		"ARG GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123\n" +
		"ENV PUBLIC_KEY=ssh-ed25519AAAAC3NzaC1lZDI1NTE5AAAAI\n" +
		"ENV HF_TOKEN_PATH=/run/secrets/hf\n" +
		"ARG SCCACHE_S3_NO_CREDENTIALS=true\n" +
		"RUN curl -H 'Authorization: Bearer " + token + "' https://example.com\n")}
	res := lintFS(t, m)
	got := findingsOf(res, ruleDockerSecret)
	if len(got) != 3 {
		t.Fatalf("want 3 secret findings (ENV, ARG, RUN), got %v", got)
	}
	for _, f := range res.Findings {
		if strings.Contains(f.Message, "SECRETsecret") || strings.Contains(f.Message, "abcdefghijklmnop") {
			t.Errorf("finding leaks a secret: %s", f.Message)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"token hf_abcdefghijklmnop end":                        "token hf_…(redacted) end",
		"https://b.s3.amazonaws.com/x?X-Amz-Signature=abc&a=1": "https://b.s3.amazonaws.com/x?X-Amz-Signature=REDACTED&a=1",
		"plain text": "plain text",
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if !looksSecret("HF_TOKEN") || !looksSecret("OPENAI_API_KEY") || looksSecret("PUBLIC_KEY") || looksSecret("KEYBOARD_LAYOUT") {
		t.Error("looksSecret misjudges")
	}
}

// FuzzDockerfile runs the Dockerfile checks on arbitrary text: they must
// not crash, and findings must point inside the file.
func FuzzDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM nvidia/cuda:12.8.0-runtime\nENV HF_TOKEN=hf_abcdefghijklmnopqrst\n",
		"ARG B=x\nFROM ${B} AS a\nFROM a\nRUN --mount=type=secret,id=t cat /run/secrets/t\n",
		"FROM --platform=linux/arm64 ubuntu\n",
		"RUN <<EOF\nunterminated",
		"ENV A",
		"# only a comment\n",
		"FROM x\nCOPY extra_model_paths.yaml /\nRUN ln -s /runpod-volume/loras /comfyui/models/loras\n",
	} {
		f.Add([]byte(s))
	}
	full := readTree(f, cleanPackage)
	// Only what the Dockerfile checks read, so each run is quick.
	base := fstest.MapFS{".runpod/hub.json": full[".runpod/hub.json"], "README.md": full["README.md"], "extra_model_paths.yaml": full["extra_model_paths.yaml"]}
	l, err := New(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := cloneFS(base)
		m["Dockerfile"] = &fstest.MapFile{Data: data}
		res, err := l.LintFS(t.Context(), m, ".")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, f := range res.Findings {
			if f.File == "Dockerfile" && (f.Line < 0 || f.Line > lines+1) {
				t.Fatalf("finding outside the file: %s", f)
			}
		}
	})
}
