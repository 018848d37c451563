// Package docker_test checks the worker image's build files without a
// Docker daemon: the Dockerfile through BuildKit's own parser, the
// entrypoint with bash -n, the model paths against ComfyUI's folders, and
// the package linter's Dockerfile rules.
package docker_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/comfypod/comfypod/hub"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// instr is one Dockerfile instruction as BuildKit's parser reads it.
type instr struct {
	cmd     string   // lower case
	flags   []string // --from=build, --mount=…
	args    []string
	heredoc string // the script of a RUN <<EOF
}

// flag returns the value of --name=value, or "".
func (in instr) flag(name string) string {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// kv returns an ARG's or ENV's name=value pairs (hasValue false for ARG
// without a default).
func (in instr) kv() (keys, values []string, hasValue []bool) {
	switch in.cmd {
	case "arg":
		for _, a := range in.args {
			k, v, ok := strings.Cut(a, "=")
			keys, values, hasValue = append(keys, k), append(values, strings.Trim(v, `"`)), append(hasValue, ok)
		}
	case "env":
		for i := 0; i+1 < len(in.args); i += 3 {
			keys, values, hasValue = append(keys, in.args[i]), append(values, in.args[i+1]), append(hasValue, true)
		}
	}
	return keys, values, hasValue
}

// stage is one FROM and what follows it.
type stage struct {
	name, base, platform string
	instrs               []instr
}

// parse returns the Dockerfile's global ARGs and its stages.
func parse(t *testing.T) (global []instr, stages []stage) {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, "worker.Dockerfile")))
	if err != nil {
		t.Fatalf("the Dockerfile does not parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	for _, n := range res.AST.Children {
		in := instr{cmd: strings.ToLower(n.Value), flags: n.Flags}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if len(n.Heredocs) > 0 {
			in.heredoc = n.Heredocs[0].Content
		}
		if in.cmd == "from" {
			st := stage{base: in.args[0], platform: in.flag("platform")}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				st.name = in.args[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			global = append(global, in)
			continue
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	return global, stages
}

func findStage(t *testing.T, stages []stage, name string) stage {
	t.Helper()
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return stage{}
}

func TestDockerfileStages(t *testing.T) {
	global, stages := parse(t)
	var names []string
	for _, s := range stages {
		names = append(names, s.name)
	}
	if want := []string{"build", "models", "comfyui", "final"}; !slices.Equal(names, want) {
		t.Fatalf("stages %q, want %q", names, want)
	}
	if last := stages[len(stages)-1]; last.base != "comfyui" {
		t.Errorf("the final stage is from %s, want comfyui", last.base)
	}

	// Every version is pinned by a global ARG with a default.
	pinned := map[string]string{}
	for _, in := range global {
		keys, values, has := in.kv()
		for i, k := range keys {
			if has[i] {
				pinned[k] = values[i]
			}
		}
	}
	for _, k := range []string{"GO_VERSION", "CUDA_IMAGE", "COMFYUI_VERSION", "TORCH_VERSION", "TORCH_INDEX_URL", "DOWNLOADER_IMAGE"} {
		if v := pinned[k]; v == "" || strings.Contains(v, "latest") {
			t.Errorf("ARG %s = %q: want a pinned default", k, v)
		}
	}
	if !strings.HasPrefix(pinned["CUDA_IMAGE"], "nvidia/cuda:12.") {
		t.Errorf("CUDA_IMAGE = %q", pinned["CUDA_IMAGE"])
	}

	// RunPod runs linux/amd64: the stages that ship are pinned to it; the Go
	// build cross-compiles from the builder's own platform.
	for _, name := range []string{"models", "comfyui"} {
		if p := findStage(t, stages, name).platform; p != "linux/amd64" {
			t.Errorf("stage %s platform %q, want linux/amd64", name, p)
		}
	}
	if p := findStage(t, stages, "build").platform; p != "$BUILDPLATFORM" {
		t.Errorf("build stage platform %q", p)
	}
}

func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	_, stages := parse(t)
	b := findStage(t, stages, "build")
	if !strings.HasPrefix(b.base, "golang:${GO_VERSION}") {
		t.Errorf("build stage from %q", b.base)
	}
	built := false
	for _, in := range b.instrs {
		if in.cmd != "run" || !strings.Contains(strings.Join(in.args, " "), "go build") {
			continue
		}
		built = true
		line := strings.Join(in.args, " ")
		for _, want := range []string{"CGO_ENABLED=0", "GOARCH=${TARGETARCH}", "-trimpath", "-o /out/comfypod", "./cmd/comfypod"} {
			if !strings.Contains(line, want) {
				t.Errorf("the build does not say %q: %s", want, line)
			}
		}
	}
	if !built {
		t.Error("no go build in the build stage")
	}
}

func TestDockerfileFinalStage(t *testing.T) {
	_, stages := parse(t)
	copies := map[string]string{} // destination → from:source
	var entrypoint []string
	env := map[string]string{}
	for _, in := range findStage(t, stages, "final").instrs {
		switch in.cmd {
		case "copy":
			copies[in.args[len(in.args)-1]] = in.flag("from") + ":" + strings.Join(in.args[:len(in.args)-1], ",")
		case "entrypoint":
			entrypoint = in.args
		case "env":
			keys, values, _ := in.kv()
			for i, k := range keys {
				env[k] = values[i]
			}
		}
	}
	for dest, want := range map[string]string{
		"/usr/local/bin/comfypod":         "build:/out/comfypod",
		"/comfyui/models/":                "models:/models/",
		"/comfyui/extra_model_paths.yaml": ":docker/extra_model_paths.yaml",
		"/entrypoint.sh":                  ":docker/entrypoint.sh",
		"/package/":                       ":${PACKAGE_DIR}",
	} {
		if copies[dest] != want {
			t.Errorf("COPY to %s: %q, want %q", dest, copies[dest], want)
		}
	}
	if !slices.Equal(entrypoint, []string{"/entrypoint.sh"}) {
		t.Errorf("ENTRYPOINT %q: want the exec form of /entrypoint.sh", entrypoint)
	}
	if env["COMFYPOD_COMFY_DIR"] != "/comfyui" || env["COMFYPOD_PID_FILE"] == "" {
		t.Errorf("ENV %v", env)
	}
	if st, err := os.Stat("no-package"); err != nil || !st.IsDir() {
		t.Errorf("the default PACKAGE_DIR docker/no-package is missing: %v", err)
	}
}

// No secret reaches an image layer: no ENV names or holds a token, only the
// downloader declares the HF_TOKEN argument (without a default), it reads a
// secret mount first, and the final stage takes only files from it.
func TestDockerfileKeepsSecretsOut(t *testing.T) {
	global, stages := parse(t)
	all := append([]stage{{name: "(global)", instrs: global}}, stages...)
	secretMount := false
	for _, s := range all {
		for _, in := range s.instrs {
			keys, values, has := in.kv()
			for i, k := range keys {
				up := strings.ToUpper(k + "=" + values[i])
				secretish := strings.Contains(up, "TOKEN") || strings.Contains(up, "SECRET") || strings.Contains(up, "PASSWORD")
				switch {
				case in.cmd == "env" && secretish:
					t.Errorf("stage %s: ENV %s=%s would be in every layer", s.name, k, values[i])
				case in.cmd == "arg" && secretish && has[i]:
					t.Errorf("stage %s: ARG %s has a default", s.name, k)
				case in.cmd == "arg" && secretish && s.name != "models":
					t.Errorf("stage %s declares ARG %s; only the downloader may", s.name, k)
				}
			}
			if in.cmd == "run" && s.name == "models" && strings.HasPrefix(in.flag("mount"), "type=secret,id=hf_token") {
				secretMount = true
				if !strings.Contains(in.heredoc, "/run/secrets/hf_token") {
					t.Error("the secret mount is not read")
				}
			}
		}
	}
	if !secretMount {
		t.Error("the downloader does not read the token from a secret mount")
	}
	for _, in := range findStage(t, stages, "final").instrs {
		if in.cmd == "copy" && in.flag("from") == "models" && !slices.Equal(in.args, []string{"/models/", "/comfyui/models/"}) {
			t.Errorf("COPY --from=models %q", in.args)
		}
	}
}

// The scripts in RUN heredocs are valid shell.
func TestDockerfileScripts(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	_, stages := parse(t)
	n := 0
	for _, s := range stages {
		for _, in := range s.instrs {
			if in.heredoc == "" {
				continue
			}
			n++
			cmd := exec.Command("sh", "-n")
			cmd.Stdin = strings.NewReader(in.heredoc)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("stage %s: sh -n: %v\n%s", s.name, err, out)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d heredoc scripts, want 2 (models, custom nodes)", n)
	}
}

func TestEntrypointScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if out, err := exec.Command("bash", "-n", "entrypoint.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	st, err := os.Stat("entrypoint.sh")
	if err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("entrypoint.sh is not executable: %v", err)
	}
	script := string(readFile(t, "entrypoint.sh"))
	for _, want := range []string{"--disable-auto-launch", "--disable-metadata", "--log-stdout", `> "$pid_file"`, "exec comfypod", "--pid-file", "set -euo pipefail"} {
		if !strings.Contains(script, want) {
			t.Errorf("entrypoint.sh does not say %q", want)
		}
	}
}

// comfyFolders are ComfyUI's model folders (folder_paths.py, 0.3.64 and
// later) plus the legacy names it still reads.
var comfyFolders = []string{
	"checkpoints", "clip", "clip_vision", "configs", "controlnet", "diffusers", "diffusion_models", "embeddings",
	"gligen", "hypernetworks", "loras", "photomaker", "style_models", "text_encoders", "unet", "upscale_models",
	"vae", "vae_approx", "model_patches", "audio_encoders", "classifiers", "latent_upscale_models",
}

func TestExtraModelPathsCoverEveryFolder(t *testing.T) {
	paths := map[string][]string{}
	base := ""
	var key string
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "extra_model_paths.yaml")))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "    "): // a block scalar line
			paths[key] = append(paths[key], trimmed)
		case strings.HasPrefix(line, "  "):
			k, v, _ := strings.Cut(trimmed, ":")
			v = strings.TrimSpace(v)
			key = k
			if k == "base_path" {
				base = v
			} else if v != "|" {
				paths[k] = append(paths[k], v)
			}
		}
	}
	if base != "/runpod-volume" {
		t.Errorf("base_path %q, want /runpod-volume", base)
	}
	for _, f := range comfyFolders {
		ps := paths[f]
		if len(ps) == 0 {
			t.Errorf("no path for %s", f)
			continue
		}
		if want := "models/" + f + "/"; ps[0] != want {
			t.Errorf("%s: %q, want %q first", f, ps, want)
		}
		for _, p := range ps {
			if !strings.HasPrefix(path.Clean(p), "models/") {
				t.Errorf("%s: %q is not under models/ on the volume", f, p)
			}
		}
	}
	if !slices.Contains(paths["text_encoders"], "models/clip/") || !slices.Contains(paths["diffusion_models"], "models/unet/") {
		t.Error("the legacy clip and unet folders are not read as text_encoders and diffusion_models")
	}
}

// The package linter's Dockerfile rules find nothing to say about the
// image.
func TestHubLintDockerfileRules(t *testing.T) {
	l, err := hub.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"Dockerfile":                    {Data: readFile(t, "worker.Dockerfile")},
		"docker/entrypoint.sh":          {Data: readFile(t, "entrypoint.sh")},
		"docker/extra_model_paths.yaml": {Data: readFile(t, "extra_model_paths.yaml")},
	}
	res, err := l.LintFS(context.Background(), fsys, "docker")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range res.Findings {
		if !strings.HasPrefix(f.Rule, "RP6") {
			continue // hub.json, tests.json and the like are the package's, not the image's
		}
		checked++
		t.Errorf("lint: %s", f)
	}
	t.Logf("%d findings in all, %d from Dockerfile rules", len(res.Findings), checked)
}
