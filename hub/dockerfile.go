package hub

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/comfypod/comfypod/internal/truncate"
)

// dockerInstr is one Dockerfile instruction.
type dockerInstr struct {
	cmd      string   // lower case: from, run, env …
	args     []string // the parser's words
	flags    []string // --platform=…, --mount=…
	original string
	line     int
}

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	path   string
	instrs []dockerInstr
}

// parseDockerfile parses data with BuildKit's parser, the one docker build
// uses.
func parseDockerfile(path string, data []byte) (df *dockerfile, line int, err error) {
	defer func() {
		// The parser is robust, but a linter must never crash on a file.
		if r := recover(); r != nil {
			df, line, err = nil, 0, fmt.Errorf("the Dockerfile parser failed: %v", r)
		}
	}()
	res, err := dfparser.Parse(bytes.NewReader(data))
	if err != nil {
		var le *dfparser.LocationError
		if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			line = le.Locations[0][0].Start.Line
		}
		return nil, line, err
	}
	df = &dockerfile{path: path}
	for _, n := range res.AST.Children {
		in := dockerInstr{cmd: strings.ToLower(n.Value), flags: n.Flags, original: n.Original, line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		df.instrs = append(df.instrs, in)
	}
	return df, 0, nil
}

// stage is one FROM of a Dockerfile.
type stage struct {
	image    string // after ARG substitution
	name     string
	platform string
	line     int
}

// stages returns the build stages, with global ARG defaults substituted into
// the FROM lines.
func (df *dockerfile) stages() []stage {
	args := map[string]string{}
	var out []stage
	seenFrom := false
	for _, in := range df.instrs {
		switch in.cmd {
		case "arg":
			if seenFrom {
				continue
			}
			for _, a := range in.args {
				k, v, ok := strings.Cut(a, "=")
				if ok {
					args[k] = unquote(v)
				}
			}
		case "from":
			seenFrom = true
			if len(in.args) == 0 {
				continue
			}
			st := stage{image: expandArgs(in.args[0], args), line: in.line}
			if len(in.args) >= 3 && strings.EqualFold(in.args[1], "as") {
				st.name = in.args[2]
			}
			for _, f := range in.flags {
				if v, ok := strings.CutPrefix(f, "--platform="); ok {
					st.platform = expandArgs(v, args)
				}
			}
			out = append(out, st)
		}
	}
	return out
}

// finalBase returns the external image the last stage builds on, following
// FROM <earlier stage> chains.
func finalBase(sts []stage) (stage, bool) {
	if len(sts) == 0 {
		return stage{}, false
	}
	cur := sts[len(sts)-1]
	for range sts {
		found := false
		for _, s := range sts {
			if s.name != "" && strings.EqualFold(s.name, cur.image) && s.line < cur.line {
				cur, found = s, true
				break
			}
		}
		if !found {
			break
		}
	}
	return cur, true
}

var argRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expandArgs substitutes $VAR, ${VAR} and ${VAR:-default}.
func expandArgs(s string, args map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := argRef.FindStringSubmatch(m)
		name := sub[1] + sub[3]
		if v, ok := args[name]; ok && v != "" {
			return v
		}
		if strings.HasPrefix(m, "${") && strings.ContainsAny(m, "-+") {
			return sub[2] // ${VAR:-default}
		}
		return m // unknown here, e.g. $BUILDPLATFORM: leave it for docker build

	})
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// cudaInImage finds the CUDA version an image is built for:
// nvidia/cuda:12.8.0-…, …-cuda12.8.1-…, …cu128…, …cu1281….
var (
	cudaDotted  = regexp.MustCompile(`(?i)cuda[:\-_]?(\d{2})\.(\d{1,2})`)
	cudaCompact = regexp.MustCompile(`(?i)(?:^|[^a-z])cu(\d{2})(\d)(\d?)(?:[^0-9]|$)`)
)

func cudaInImage(image string) (string, bool) {
	if m := cudaDotted.FindStringSubmatch(image); m != nil {
		minor, _ := strconv.Atoi(m[2])
		return m[1] + "." + strconv.Itoa(minor), true
	}
	if m := cudaCompact.FindStringSubmatch(image); m != nil {
		return m[1] + "." + m[2], true
	}
	return "", false
}

// tokenInText finds tokens written into RUN lines.
var tokenInText = regexp.MustCompile(`\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16}|rpa_[A-Za-z0-9]{20,})\b`)

func (c *pkgCtx) checkDockerfile() {
	p := c.files
	if p.dockerData == nil {
		return
	}
	df, line, err := parseDockerfile(p.dockerPath, p.dockerData)
	if err != nil {
		c.atFile(p.dockerPath, line, 0, ruleDockerParse, "the Dockerfile does not parse (%s); docker build will fail the same way", scrub(err.Error()))
		return
	}
	c.checkDockerSecrets(df)
	sts := df.stages()
	c.checkDockerPlatform(df, sts)
	c.checkDockerCUDA(df, sts)
}

func (c *pkgCtx) checkDockerSecrets(df *dockerfile) {
	args := map[string]bool{} // ARGs that look like secrets
	advice := "pass it at build time instead: `ARG HF_TOKEN` and `RUN --mount=type=secret,id=hf_token HF_TOKEN=$(cat /run/secrets/hf_token) huggingface-cli download …`, built with `docker build --secret id=hf_token,env=HF_TOKEN`"
	for _, in := range df.instrs {
		switch in.cmd {
		case "arg":
			for _, a := range in.args {
				k, v, hasValue := strings.Cut(a, "=")
				v = unquote(v)
				if looksSecret(k) {
					args[k] = true
				}
				if hasValue && (looksSecret(k) && !placeholder(v) || looksLikeToken(v)) {
					c.atFile(df.path, in.line, 1, ruleDockerSecret, "ARG %s has a literal default (%s), which is saved in the Dockerfile and the image history; drop the default and %s", k, redact(v), advice)
				}
			}
		case "env":
			for i := 0; i+1 < len(in.args); i += 3 {
				k, v := in.args[i], unquote(in.args[i+1])
				refs := argRef.FindAllStringSubmatch(v, -1)
				switch {
				case (looksSecret(k) || looksLikeToken(v)) && len(refs) == 0 && !placeholder(v):
					c.atFile(df.path, in.line, 1, ruleDockerSecret, "ENV %s bakes a literal secret (%s) into every layer of the image, where anyone who pulls it can read it; remove it and %s", k, redact(v), advice)
				case len(refs) > 0 && (looksSecret(k) || anySecretRef(refs, args)):
					c.atFile(df.path, in.line, 1, ruleDockerSecretEnv, "ENV %s=%s copies a secret build argument into the image's environment, so it stays in the image; use the ARG only in the RUN that needs it, or better a secret mount: %s", k, v, advice)
				}
			}
		case "run":
			text := strings.Join(in.args, " ")
			if m := tokenInText.FindString(text); m != "" {
				c.atFile(df.path, in.line, 1, ruleDockerSecret, "RUN has a literal token (%s) that is saved in the image history; %s", redact(m), advice)
			}
		}
	}
}

func anySecretRef(refs [][]string, secretArgs map[string]bool) bool {
	for _, r := range refs {
		if secretArgs[r[1]+r[3]] {
			return true
		}
	}
	return false
}

// amd64Mentioned reports whether text asks for a linux/amd64 build.
func amd64Mentioned(text []byte) bool {
	low := bytes.ToLower(text)
	return bytes.Contains(low, []byte("linux/amd64")) || bytes.Contains(low, []byte("linux/x86_64"))
}

func (c *pkgCtx) checkDockerPlatform(df *dockerfile, sts []stage) {
	pinned := false
	for _, st := range sts {
		switch p := strings.ToLower(st.platform); {
		case p == "":
		case p == "linux/amd64" || p == "linux/x86_64":
			pinned = true
		case strings.Contains(p, "$"):
			// $BUILDPLATFORM / $TARGETPLATFORM: decided by the build command.
		default:
			f := c.atFile(df.path, st.line, 1, ruleDockerPlatform, "FROM --platform=%s builds an image RunPod cannot run: its machines are linux/amd64; use --platform=linux/amd64", st.platform)
			f.Severity = Error
			pinned = true
		}
	}
	if pinned || len(sts) == 0 {
		return
	}
	if amd64Mentioned(c.files.dockerData) || c.readmeMentionsAMD64() {
		return
	}
	c.atFile(df.path, sts[0].line, 1, ruleDockerPlatform, "nothing pins the image to linux/amd64: built on an ARM machine such as an Apple Silicon Mac, it will not start on RunPod. "+
		"Build with `docker build --platform linux/amd64 …` and say so in the README, or write `FROM --platform=linux/amd64 …`")
}

func (c *pkgCtx) readmeMentionsAMD64() bool {
	if c.files.readmePath == "" {
		return false
	}
	data, err := readFile(c.fsys, c.files.readmePath)
	return err == nil && amd64Mentioned(data)
}

func (c *pkgCtx) checkDockerCUDA(df *dockerfile, sts []stage) {
	base, ok := finalBase(sts)
	if !ok {
		return
	}
	img, ok := cudaInImage(base.image)
	if !ok {
		return
	}
	var allowed *cudaList
	if cfg := c.hubConfig(); cfg != nil && cfg.get("allowedCudaVersions").is(kArray) {
		allowed = &cudaList{node: cfg.get("allowedCudaVersions")}
		for _, e := range allowed.node.elems {
			if e.is(kString) {
				allowed.versions = append(allowed.versions, e.str)
			}
		}
	}
	image := scrub(truncate.Runes(base.image, 80))
	if allowed == nil || len(allowed.sorted()) == 0 {
		if compareCUDA(img, c.cat.HubMaxCUDA) > 0 {
			c.atFile(df.path, base.line, 1, ruleDockerCUDA, "the base image %s needs a CUDA %s driver, but hub.json sets no allowedCudaVersions, so workers and Hub tests may land on hosts with older drivers (the Hub's have at most %s) and fail at start; "+
				"build on a CUDA %s or older image for the Hub, or deploy directly with allowedCudaVersions from %s up", image, img, c.cat.HubMaxCUDA, c.cat.HubMaxCUDA, img)
		}
		return
	}
	low, high := allowed.lowest(), allowed.highest()
	switch {
	case compareCUDA(img, high) > 0:
		f := c.atFile(df.path, base.line, 1, ruleDockerCUDA, "the base image %s needs a CUDA %s driver, newer than every allowedCudaVersions value (%s): no worker can start it; "+
			"use a base image for CUDA %s or older, or allow %s", image, img, strings.Join(allowed.versions, ", "), high, img)
		f.Severity = Error
	case compareCUDA(img, low) > 0:
		c.atFile(df.path, base.line, 1, ruleDockerCUDA, "the base image %s needs a CUDA %s driver, but allowedCudaVersions goes down to %s: workers on those hosts fail at start with \"CUDA driver version is insufficient\"; "+
			"use a base image for CUDA %s, or drop the versions below %s", image, img, low, low, img)
	}
}

// checkVolumePaths finds ComfyUI model folders placed directly under
// /runpod-volume instead of /runpod-volume/models.
func (c *pkgCtx) checkVolumePaths() {
	if !c.usesComfy() {
		return
	}
	var folders []string
	for _, f := range c.cat.VolumeModelFolders {
		folders = append(folders, regexp.QuoteMeta(f))
	}
	re := regexp.MustCompile(`/runpod-volume/(` + strings.Join(folders, "|") + `)(?:[/"'\s:]|$)`)
	files := []string{}
	if c.files.dockerPath != "" {
		files = append(files, c.files.dockerPath)
	}
	for _, s := range c.files.scripts {
		if s != c.files.dockerPath {
			files = append(files, s)
		}
	}
	for _, name := range files {
		data := c.files.dockerData
		if name != c.files.dockerPath {
			var err error
			if data, err = readFile(c.fsys, name); err != nil || data == nil {
				continue
			}
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range re.FindAllStringSubmatchIndex(line, -1) {
				folder := line[m[2]:m[3]]
				c.atFile(name, i+1, len([]rune(line[:m[0]]))+1, ruleVolumePath, "/runpod-volume/%s: ComfyUI's worker looks for network-volume models under /runpod-volume/models/%s, so models here are silently missing; move them (and this path) to /runpod-volume/models/%s",
					folder, folder, folder)
			}
		}
	}
}

// usesComfy reports whether the package runs ComfyUI.
func (c *pkgCtx) usesComfy() bool {
	if bytes.Contains(bytes.ToLower(c.files.dockerData), []byte("comfy")) {
		return true
	}
	for _, wf := range c.workflows() {
		if wf.api != nil || wf.ui {
			return true
		}
	}
	return false
}
