package node

import (
	"fmt"
	"path/filepath"
	"strings"
)

// SplitAnnotated splits a file name annotated the way ComfyUI accepts in
// LoadImage and /view ("name.png [output]", "[input]", "[temp]") into the bare
// name and the folder type; typ is def when there is no annotation.
func SplitAnnotated(name, def string) (bare, typ string) {
	for _, t := range []string{"output", "input", "temp"} {
		if suffix := " [" + t + "]"; strings.HasSuffix(name, suffix) {
			return strings.TrimSuffix(name, suffix), t
		}
	}
	return name, def
}

// Dir returns the folder of the given type ("input", "output" or "temp").
func (env *Env) Dir(typ string) (string, error) {
	switch typ {
	case "input":
		return env.InputDir, nil
	case "output":
		return env.OutputDir, nil
	case "temp":
		return env.TempDir, nil
	}
	return "", fmt.Errorf("unknown folder type %q", typ)
}

// SafeJoin joins base and the slash-separated relative path rel, and fails
// when the result would leave base (an absolute rel, or one climbing out with
// "..").
func SafeJoin(base, rel string) (string, error) {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "/") {
		return "", fmt.Errorf("path %q is absolute", rel)
	}
	p := filepath.Join(base, filepath.FromSlash(rel))
	r, err := filepath.Rel(base, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("path %q leaves %s", rel, base)
	}
	return p, nil
}

// InputPath resolves a LoadImage-style name ("sub/x.png", "x.png [output]")
// to a path under the matching folder.
func (env *Env) InputPath(name string) (string, error) {
	bare, typ := SplitAnnotated(name, "input")
	dir, err := env.Dir(typ)
	if err != nil {
		return "", err
	}
	return SafeJoin(dir, bare)
}
