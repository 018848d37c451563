package hub

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/truncate"
)

// workflowFile is a JSON file of the package that may be a ComfyUI workflow.
type workflowFile struct {
	path string
	doc  *jsonDoc
	api  *comfy.Workflow // the parsed API-format workflow
	ui   bool            // a UI export
	err  error           // why it is not a usable API workflow
	// shaped says the JSON has a workflow's shape (nodes with class_type,
	// or nodes and links), so a failure to parse it is worth reporting.
	shaped bool
}

// workflows parses the package's workflow candidates once.
func (c *pkgCtx) workflows() []*workflowFile {
	if c.wfs != nil || c.files == nil {
		return c.wfs
	}
	c.wfs = []*workflowFile{}
	for _, name := range c.files.workflows {
		data, err := readFile(c.fsys, name)
		if err != nil || data == nil {
			continue
		}
		wf := &workflowFile{path: name, doc: parseJSON(name, data)}
		if usable(wf.doc) {
			wf.shaped = workflowShaped(wf.doc.root)
		}
		if !wf.doc.fatal() {
			wf.api, wf.err = comfy.ParseWorkflow(wf.doc.text)
			wf.ui = errors.Is(wf.err, comfy.ErrUIFormat)
		}
		c.wfs = append(c.wfs, wf)
	}
	return c.wfs
}

// workflowShaped reports whether a JSON value looks like a workflow in either
// format.
func workflowShaped(root *node) bool {
	if !root.is(kObject) {
		return false
	}
	if root.get("nodes").is(kArray) && root.get("links").is(kArray) {
		return true
	}
	if p := root.get("prompt"); p.is(kObject) {
		root = p
	}
	for _, m := range root.members {
		if m.value.get("class_type") != nil {
			return true
		}
	}
	return false
}

// referenced reports whether the handler or manifest mentions the file.
func (c *pkgCtx) referenced(file string) bool {
	base := []byte(path.Base(file))
	return bytes.Contains(c.files.handlerData, base) || bytes.Contains(c.files.manifestData, base) || bytes.Contains(c.files.dockerData, base)
}

func (c *pkgCtx) checkWorkflows() {
	var api []*workflowFile
	var ui []string
	for _, wf := range c.workflows() {
		switch {
		case wf.doc.fatal():
			if strings.Contains(strings.ToLower(wf.path), "workflow") || c.referenced(wf.path) {
				p := wf.doc.problems[len(wf.doc.problems)-1]
				c.atOffset(wf.doc, p.off, "", ruleWorkflowInvalid, "this workflow is not valid JSON (%s); export it again from ComfyUI", p.msg)
			}
		case wf.ui:
			f := c.atFile(wf.path, 0, 0, ruleWorkflowUI, "%s is a ComfyUI UI export (nodes and links), not the API format a worker submits to /prompt; "+
				"in ComfyUI use Workflow → Export (API) and ship that file", path.Base(wf.path))
			if !c.referenced(wf.path) {
				f.Severity = Info
				f.Message += " (nothing in the handler or Dockerfile names this file, so it may be there only for people to open)"
			}
			ui = append(ui, wf.path)
		case wf.err != nil:
			if wf.shaped {
				c.atFile(wf.path, 0, 0, ruleWorkflowInvalid, "%s", scrub(truncate.Runes(wf.err.Error(), 400)))
			}
		case wf.api != nil:
			api = append(api, wf)
		}
	}
	c.checkHandlerNodes(api, ui)
	c.checkManifest()
}

func (c *pkgCtx) checkHandlerNodes(api []*workflowFile, ui []string) {
	if c.files.handlerData == nil {
		return
	}
	writes := handlerWrites(c.files.handlerData)
	if len(writes) == 0 {
		return
	}
	file := c.files.handlerPath
	if len(api) == 0 {
		msg := fmt.Sprintf("handler.py writes %d node inputs (%s …) but the package ships no API-format workflow JSON to check the node ids against; ship the workflow the handler loads next to it",
			len(writes), writes[0].expr)
		if len(ui) > 0 {
			msg += fmt.Sprintf(" (%s is UI format: export it with Workflow → Export (API))", strings.Join(ui, ", "))
		}
		c.atFile(file, writes[0].line, writes[0].col, ruleNoWorkflow, "%s", msg)
		return
	}
	var names []string
	for _, wf := range api {
		names = append(names, wf.path)
	}
	type key struct {
		id, input string
		line      int
	}
	seen := map[key]bool{}
	for _, w := range writes {
		k := key{w.id, w.input, w.line}
		if seen[k] {
			continue
		}
		seen[k] = true
		var have []*workflowFile
		var node *comfy.Node
		for _, wf := range api {
			if n, ok := wf.api.Node(w.id); ok {
				have = append(have, wf)
				if node == nil {
					node = n
				}
			}
		}
		if len(have) == 0 {
			if w.guarded {
				continue
			}
			c.atFile(file, w.line, w.col, ruleNodeMissing, "%s writes node %s, which is in none of the shipped workflows (%s); the node id changed when the workflow was edited: "+
				"find the node in the exported API workflow and use its id", w.expr, w.id, strings.Join(names, ", "))
			continue
		}
		if slices.ContainsFunc(have, func(wf *workflowFile) bool {
			n, _ := wf.api.Node(w.id)
			return n.HasInput(w.input)
		}) {
			continue
		}
		where := have[0].path
		if len(have) > 1 {
			where = fmt.Sprintf("%s (and %d more)", where, len(have)-1)
		}
		inputs := node.InputNames()
		list := "no inputs"
		if len(inputs) > 0 {
			list = "inputs " + strings.Join(inputs, ", ")
		}
		c.atFile(file, w.line, w.col, ruleNodeInput, "%s writes input `%s`, but node %s in %s is %s, which has no input `%s` (it has %s); the handler and the workflow disagree about which node this is",
			w.expr, w.input, w.id, where, node.ClassType, w.input, truncate.Runes(list, 200))
	}
}

// checkManifest checks the package manifest's bindings against the
// workflows it names.
func (c *pkgCtx) checkManifest() {
	data := c.files.manifestData
	if data == nil {
		return
	}
	file := c.files.manifestPath
	doc := parseJSON(file, data)
	m, err := comfy.ParseManifest(data)
	if err != nil {
		var me *comfy.ManifestError
		if errors.As(err, &me) {
			for _, p := range me.Problems {
				c.atFile(file, 0, 0, ruleManifestInvalid, "%s", scrub(p))
			}
			return
		}
		c.atFile(file, 0, 0, ruleManifestInvalid, "%s", scrub(err.Error()))
		return
	}
	dir := path.Dir(file)
	for _, name := range m.Workflows() {
		wfFile, _ := m.WorkflowFile(name)
		p := path.Join(dir, wfFile)
		raw, err := readFile(c.fsys, p)
		if err != nil || raw == nil {
			c.atFile(file, 0, 0, ruleManifestInvalid, "workflow %q names %s, which is not in the package; add the file or fix the path", name, p)
			continue
		}
		wf, err := comfy.ParseWorkflow(raw)
		if err != nil {
			c.atFile(file, 0, 0, ruleManifestInvalid, "workflow %q (%s): %s", name, p, scrub(truncate.Runes(err.Error(), 300)))
			continue
		}
		err = m.Check(wf, name, nil)
		var pe *comfy.ParamsError
		if !errors.As(err, &pe) {
			if err != nil {
				c.atFile(file, 0, 0, ruleManifestBinding, "workflow %q: %s", name, scrub(err.Error()))
			}
			continue
		}
		for _, prob := range pe.Problems {
			line, col := bindingPosition(doc, prob)
			c.atFile(file, line, col, ruleManifestBinding, "workflow %q (%s): %s", name, p, scrub(prob.String()))
		}
	}
}

// bindingPosition finds the binding a problem is about in the manifest
// text, or returns 0, 0.
func bindingPosition(doc *jsonDoc, prob comfy.ParamProblem) (int, int) {
	if !usable(doc) {
		return 0, 0
	}
	params := doc.root.get("params")
	if !params.is(kArray) {
		return 0, 0
	}
	for _, p := range params.elems {
		if p.get("name").text() != prob.Param {
			continue
		}
		list := p.get("bind").get(prob.Workflow)
		if !list.is(kArray) {
			return doc.position(p.start)
		}
		for _, b := range list.elems {
			if scalarText(b.get("node")) == prob.Node && (prob.Input == "" || b.get("input").text() == prob.Input) {
				return doc.position(b.start)
			}
		}
		return doc.position(list.start)
	}
	return 0, 0
}
