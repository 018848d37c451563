package hub

import "strings"

// runsComfypodWorker reports whether the package's Dockerfile runs the
// comfypod worker, a handler in Go that reads the package manifest and its
// workflows: the final stage builds on a comfypod worker image, or its
// ENTRYPOINT or CMD starts `comfypod worker`. Such a package has no
// handler.py, and needs none.
func (c *pkgCtx) runsComfypodWorker() bool {
	if c.files.dockerData == nil {
		return false
	}
	df, _, err := parseDockerfile(c.files.dockerPath, c.files.dockerData)
	if err != nil {
		return false
	}
	sts := df.stages()
	if base, ok := finalBase(sts); ok && comfypodWorkerImage(base.image) {
		return true
	}
	// The last ENTRYPOINT or CMD of the final stage.
	last := 0
	if len(sts) > 0 {
		last = sts[len(sts)-1].line
	}
	for i := len(df.instrs) - 1; i >= 0; i-- {
		in := df.instrs[i]
		if in.line < last {
			break
		}
		if in.cmd == "entrypoint" || in.cmd == "cmd" {
			if startsComfypodWorker(in.args) {
				return true
			}
		}
	}
	return false
}

// comfypodWorkerImage reports whether an image reference names a comfypod
// worker image, e.g. ghcr.io/comfypod/worker:1.0.
func comfypodWorkerImage(image string) bool {
	repo := strings.ToLower(image)
	if i := strings.LastIndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	return strings.Contains(repo, "comfypod") && strings.Contains(repo[strings.LastIndexByte(repo, '/')+1:], "worker")
}

// startsComfypodWorker reports whether ENTRYPOINT or CMD words (exec or shell
// form) run `comfypod worker`.
func startsComfypodWorker(args []string) bool {
	words := strings.Fields(strings.Join(args, " "))
	for i := 0; i+1 < len(words); i++ {
		w := strings.Trim(words[i], `"'[],`)
		if (w == "comfypod" || strings.HasSuffix(w, "/comfypod")) && strings.Trim(words[i+1], `"'[],`) == "worker" {
			return true
		}
	}
	return false
}
