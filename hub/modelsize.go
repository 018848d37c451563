package hub

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// sizePattern finds a parameter count in a model name: 14B, 1.5B, 350M.
var sizePattern = regexp.MustCompile(`(?i)(?:^|[^a-z0-9.])(\d{1,4}(?:\.\d{1,2})?)([bm])(?:[^a-z0-9]|$)`)

// modelExts are file extensions of model weights.
func modelExts() []string {
	return []string{".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".onnx", ".sft"}
}

// parseModelSize reads "14B", "1.5b", "350M" as billions of parameters.
func parseModelSize(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, false
	}
	unit := strings.ToUpper(s[len(s)-1:])
	v, err := strconv.ParseFloat(strings.TrimSpace(s[:len(s)-1]), 64)
	if err != nil || v <= 0 || v > 1e4 {
		return 0, false
	}
	switch unit {
	case "B":
		return v, true
	case "M":
		return v / 1000, true
	case "T":
		return v * 1000, true
	}
	return 0, false
}

func formatSize(b float64) string {
	if b < 1 {
		return fmt.Sprintf("%gM", b*1000)
	}
	return fmt.Sprintf("%gB", b)
}

// sizeIn returns the largest parameter count named in a model-like word.
// mOK allows millions (opt-350m), which only model ids use.
func sizeIn(word string, mOK bool) (float64, bool) {
	best, found := 0.0, false
	for _, m := range sizePattern.FindAllStringSubmatch(word, -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || v <= 0 {
			continue
		}
		if strings.EqualFold(m[2], "m") {
			if !mOK || v < 10 {
				continue
			}
			v /= 1000
		}
		if v > 2000 {
			continue
		}
		if v > best {
			best, found = v, true
		}
	}
	return best, found
}

// modelish reports whether a word looks like a model id or weights file,
// where a size suffix means parameters: Qwen/Qwen2.5-32B, wan2.1_14B.safetensors.
func modelish(w string) bool {
	low := strings.ToLower(w)
	for _, ext := range modelExts() {
		if strings.HasSuffix(low, ext) {
			return true
		}
	}
	return strings.Contains(w, "/") || strings.Count(w, "-")+strings.Count(w, "_") >= 1
}

// packageModelSize is the size of the model a package's tests load.
type packageModelSize struct {
	paramsB  float64
	evidence string // where the size was found, for messages
}

// sizeScan collects the largest size found in a set of sources.
type sizeScan struct {
	best packageModelSize
}

func (s *sizeScan) word(w, where string, mOK bool) {
	w = strings.Trim(w, "\"'`,;()[]{}<>")
	if w == "" || !modelish(w) {
		return
	}
	if v, ok := sizeIn(w, mOK); ok && v > s.best.paramsB {
		s.best = packageModelSize{paramsB: v, evidence: fmt.Sprintf("%s in %s", quoteShort(scrub(w), 60), where)}
	}
}

func (s *sizeScan) text(text, where string) {
	for i, line := range strings.Split(text, "\n") {
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' || r == '"' || r == '\'' || r == ',' }) {
			s.word(w, fmt.Sprintf("%s line %d", where, i+1), true)
		}
	}
}

// strings walks a JSON value and scans its strings.
func (s *sizeScan) json(n *node, where string) {
	if n == nil {
		return
	}
	switch n.kind {
	case kString:
		if encodedData(n.str) {
			return
		}
		for _, w := range strings.Fields(n.str) {
			s.word(w, where+" "+n.path, true)
		}
	case kArray:
		for _, e := range n.elems {
			s.json(e, where)
		}
	case kObject:
		for _, m := range n.members {
			if m.key == "options" {
				continue // a list of choices, not the model in use
			}
			s.json(m.value, where)
		}
	}
}

// encodedData reports whether s is inline file data — a data: URI or a long
// run of base64 — rather than text. Test inputs carry images as base64, whose
// letters can spell a size ("…+54B/…") that no model has.
func encodedData(s string) bool {
	if len(s) >= 5 && strings.EqualFold(s[:5], "data:") {
		return true
	}
	if len(s) < 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '+', c == '/', c == '=', c == '-', c == '_', c == '\n', c == '\r':
		default:
			return false
		}
	}
	return true
}

// modelSize finds the size of the model the tests load: a declared
// modelSize, else names in the tests' env and inputs, else names anywhere in
// the package (hub.json, Dockerfile, handler, workflows).
func (c *pkgCtx) modelSize() packageModelSize {
	if c.config != nil && c.config.modelSize > 0 {
		return packageModelSize{paramsB: c.config.modelSize, evidence: "declared in " + ConfigFile}
	}
	var tests sizeScan
	if root := c.testsRoot(); root != nil {
		tests.json(root.get("config").get("env"), c.tests.file)
		tests.json(root.get("tests"), c.tests.file)
	}
	if tests.best.paramsB > 0 {
		return tests.best
	}
	var pkg sizeScan
	if root := c.hubRoot(); root != nil {
		for _, k := range []string{"title", "description"} {
			for _, w := range strings.Fields(root.get(k).text()) {
				if v, ok := sizeIn(w, false); ok && strings.HasSuffix(strings.ToUpper(strings.Trim(w, ".,;:()")), "B") && v > pkg.best.paramsB {
					pkg.best = packageModelSize{paramsB: v, evidence: fmt.Sprintf("%s in hub.json %s", quoteShort(w, 40), k)}
				}
			}
		}
		if cfg := c.hubConfig(); cfg != nil {
			pkg.json(cfg.get("env"), c.hub.file)
			pkg.json(cfg.get("presets"), c.hub.file)
		}
	}
	if c.files.dockerData != nil {
		pkg.text(string(c.files.dockerData), c.files.dockerPath)
	}
	if c.files.handlerData != nil {
		pkg.text(string(c.files.handlerData), c.files.handlerPath)
	}
	for _, wf := range c.workflows() {
		if wf.doc != nil && usable(wf.doc) {
			pkg.json(wf.doc.root, wf.path)
		}
	}
	return pkg.best
}
