package comfy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/internal/suggest"
)

// ParamProblem is one reason a param cannot be applied: a bad value, or a
// binding that does not fit the workflow.
type ParamProblem struct {
	// Param is the param name ("" for a problem of the call as a whole).
	Param string `json:"param,omitempty"`
	// Workflow is the workflow name, for binding problems.
	Workflow string `json:"workflow,omitempty"`
	// Node locates a binding problem.
	Node string `json:"node,omitempty"`
	// Input is the bound input of a binding problem.
	Input string `json:"input,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats the problem as "param `seed`: node 689 has no input `seed`".
func (p ParamProblem) String() string {
	if p.Param == "" {
		return p.Message
	}
	return fmt.Sprintf("param `%s`: %s", p.Param, p.Message)
}

// ParamsError lists every problem found while checking or applying params.
// It matches ErrInvalidParams.
type ParamsError struct {
	// Problems are every problem found, bindings first.
	Problems []ParamProblem
}

// Error lists the problems, one per line.
func (e *ParamsError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problems with params:\n  - %s", len(e.Problems), strings.Join(lines, "\n  - "))
}

// Is makes errors.Is(err, ErrInvalidParams) true.
func (e *ParamsError) Is(target error) bool { return target == ErrInvalidParams }

// BoundInput is one resolved binding: where a param's value goes and what the
// workflow holds there now.
type BoundInput struct {
	// Param is the param name.
	Param string `json:"param"`
	// Workflow is the workflow name.
	Workflow string `json:"workflow"`
	// Binding is where the value goes.
	Binding
	// Current is the input's value in the workflow.
	Current Value `json:"current,omitempty"`
}

// Check verifies every binding of workflow name against wf and returns a
// *ParamsError listing each mismatch, or nil. It is what Apply runs first, and
// what a linter, a worker at start-up and a request handler call on their own.
//
// Checked: the node exists, has the class the manifest names, has the input,
// and the input holds a constant (a param would cut a link). With info (may be
// nil) the input's declared type must fit the param type, and the param's
// limits and options must fit the server's.
func (m *Manifest) Check(wf *Workflow, name string, info ObjectInfo) error {
	var probs []ParamProblem
	if _, ok := m.workflowFile(name); !ok {
		return &ParamsError{Problems: []ParamProblem{{Workflow: name,
			Message: fmt.Sprintf("the manifest has no workflow %q; it has %s", name, strings.Join(m.Workflows(), ", "))}}}
	}
	for _, prm := range m.params {
		for _, b := range prm.Bindings[name] {
			if msg := bindingProblem(wf, prm, b, info); msg != "" {
				probs = append(probs, ParamProblem{Param: prm.Name, Workflow: name, Node: b.Node, Input: b.Input, Message: msg})
			}
		}
	}
	if len(probs) > 0 {
		return &ParamsError{Problems: probs}
	}
	return nil
}

func bindingProblem(wf *Workflow, prm *Param, b Binding, info ObjectInfo) string {
	n, ok := wf.Node(b.Node)
	if !ok {
		return fmt.Sprintf("node %s is not in the workflow (expected a %s there)", b.Node, b.ClassType)
	}
	if n.ClassType != b.ClassType {
		return fmt.Sprintf("node %s is %s, expected %s", b.Node, n.ClassType, b.ClassType)
	}
	v, ok := n.Input(b.Input)
	if !ok {
		return fmt.Sprintf("node %s has no input `%s` (it has %s)", b.Node, b.Input, quoteList(n.InputNames()))
	}
	if l, isLink := v.Link(); isLink {
		return fmt.Sprintf("node %s input `%s` is linked to node %s; a param would cut that link (bind the source node instead)", b.Node, b.Input, l.Node)
	}
	c, ok := info.Class(b.ClassType)
	if !ok {
		if kind := knownFileKind(b.ClassType, b.Input); kind != "" && prm.IsFile() && !kindFits(prm, kind) {
			return fmt.Sprintf("node %s input `%s` loads %s files (%s), which %s param cannot fill", b.Node, b.Input, kind, b.ClassType, withArticle(string(prm.Type)))
		}
		return ""
	}
	spec, ok := c.Input(b.Input)
	if !ok {
		return fmt.Sprintf("class %s on the server declares no input `%s`", b.ClassType, b.Input)
	}
	if kind := knownFileKind(b.ClassType, b.Input); kind != "" && spec.Upload == "" && prm.IsFile() && !kindFits(prm, kind) {
		return fmt.Sprintf("node %s input `%s` loads %s files (%s), which %s param cannot fill", b.Node, b.Input, kind, b.ClassType, withArticle(string(prm.Type)))
	}
	if !paramFits(prm, spec) {
		return fmt.Sprintf("node %s input `%s` is %s on the server, which %s param cannot fill", b.Node, b.Input, specType(spec), withArticle(string(prm.Type)))
	}
	switch prm.Type {
	case ParamInt, ParamFloat:
		if spec.Min != "" && (prm.Min == "" || ratOf(prm.Min).Cmp(ratOf(spec.Min)) < 0) {
			return fmt.Sprintf("the server's min for %s.%s is %s; set \"min\" to at least that", b.ClassType, b.Input, spec.Min)
		}
		if spec.Max != "" && (prm.Max == "" || ratOf(prm.Max).Cmp(ratOf(spec.Max)) > 0) {
			return fmt.Sprintf("the server's max for %s.%s is %s; set \"max\" to at most that", b.ClassType, b.Input, spec.Max)
		}
	case ParamEnum:
		if len(spec.Options) > 0 {
			var missing []string
			for _, o := range prm.Options {
				if !slices.Contains(spec.Options, o) {
					missing = append(missing, o)
				}
			}
			if len(missing) > 0 {
				return fmt.Sprintf("options %s are not accepted by %s.%s on the server (it takes %s)", optionList(missing), b.ClassType, b.Input, optionList(spec.Options))
			}
		}
	}
	return ""
}

// withArticle puts "a" or "an" before a param type's name.
func withArticle(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

func specType(s *InputSpec) string {
	if s.Upload != "" {
		return s.Upload + " upload"
	}
	return s.Type
}

// paramFits says whether a param can fill an input declared as spec.
func paramFits(prm *Param, spec *InputSpec) bool {
	if prm.IsFile() && spec.Upload != "" {
		return kindFits(prm, spec.Upload)
	}
	switch prm.Type {
	case ParamInt:
		return spec.Type == "INT" || spec.Type == "FLOAT"
	case ParamFloat:
		return spec.Type == "FLOAT"
	case ParamBool:
		return spec.Type == "BOOLEAN"
	case ParamString:
		return spec.Type == "STRING"
	case ParamEnum:
		return spec.Type == "COMBO" || spec.Type == "STRING"
	case ParamImage, ParamMask, ParamVideo, ParamAudio, ParamFile:
		return spec.Type == "STRING" || spec.Type == "COMBO"
	}
	return false
}

// kindFits says whether a file param can fill a file input that loads
// files of kind ("image", "video", "audio"). A video param may fill an
// image input too: LoadImage reads an animated GIF as a batch of frames,
// and the worker checks that the file sent there is one.
func kindFits(prm *Param, kind string) bool {
	for _, k := range prm.Accepts() {
		if k == kind || k == MediaVideo && kind == MediaImage {
			return true
		}
	}
	return false
}

// ApplyOptions tune Manifest.Apply.
type ApplyOptions struct {
	// Rand draws values for "random" params. Required when one is drawn.
	Rand *rand.Rand
	// Info, when set, is used for the extra binding checks of Check.
	Info ObjectInfo
}

// Applied reports what Apply wrote.
type Applied struct {
	// Values are the final value of every param that was written, by name,
	// including defaults and drawn random values (echo them to the caller so a
	// result can be reproduced).
	Values map[string]Value
	// Inputs are the node inputs written, in manifest order.
	Inputs []BoundInput
}

// Apply writes params into wf, which must be workflow name of the manifest.
//
// It first checks every binding (as Check does) and every value: unknown
// names, missing required params, wrong types, values out of range, too long,
// not among the options. All problems are collected into one *ParamsError and
// wf is left untouched. Otherwise each given param, or its default when
// omitted, is written to all its bindings; a param with neither keeps the
// workflow's value.
//
// Values may be json.RawMessage (decode requests with UseNumber or keep them
// raw so big seeds stay exact), json.Number, Go numbers, strings or bools. An
// image or mask value is the name the uploaded file got on the server.
func (m *Manifest) Apply(wf *Workflow, name string, params map[string]any, opts ApplyOptions) (*Applied, error) {
	if err := m.Check(wf, name, opts.Info); err != nil {
		// Binding problems first; value problems are added below.
		pe, _ := err.(*ParamsError)
		if pe == nil {
			return nil, err
		}
		pe.Problems = append(pe.Problems, m.valueProblems(params)...)
		return nil, pe
	}
	if probs := m.valueProblems(params); len(probs) > 0 {
		return nil, &ParamsError{Problems: probs}
	}
	var next func(lo, hi uint64) uint64
	if opts.Rand != nil {
		next = func(lo, hi uint64) uint64 { return lo + opts.Rand.Uint64N(hi-lo+1) }
	}
	out := &Applied{Values: map[string]Value{}}
	for _, prm := range m.params {
		v, given := params[prm.Name]
		if !given {
			if prm.Default == nil {
				continue
			}
			v = prm.Default
		}
		if prm.Random && isRandom(v) && next == nil {
			return nil, &ParamsError{Problems: []ParamProblem{{Param: prm.Name, Message: "a random value was asked for but ApplyOptions.Rand is nil"}}}
		}
		val, err := prm.value(v, next)
		if err != nil {
			return nil, &ParamsError{Problems: []ParamProblem{{Param: prm.Name, Message: err.Error()}}}
		}
		out.Values[prm.Name] = val
		for _, b := range prm.Bindings[name] {
			n, _ := wf.Node(b.Node)
			cur, _ := n.Input(b.Input)
			if err := n.SetInput(b.Input, val); err != nil {
				return nil, fmt.Errorf("param `%s`: %w", prm.Name, err)
			}
			out.Inputs = append(out.Inputs, BoundInput{Param: prm.Name, Workflow: name, Binding: b, Current: cur})
		}
	}
	return out, nil
}

func isRandom(v any) bool {
	raw, err := normalize(v)
	if err != nil {
		return false
	}
	s, ok := Value(raw).Text()
	return ok && s == RandomValue
}

// CheckParams checks a call's values without a workflow: unknown names,
// missing required params and bad values. It returns a *ParamsError or nil.
func (m *Manifest) CheckParams(params map[string]any) error {
	if probs := m.valueProblems(params); len(probs) > 0 {
		return &ParamsError{Problems: probs}
	}
	return nil
}

func (m *Manifest) valueProblems(params map[string]any) []ParamProblem {
	var probs []ParamProblem
	known := make([]string, len(m.params))
	for i, p := range m.params {
		known[i] = p.Name
	}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if _, ok := m.Param(name); ok {
			continue
		}
		msg := fmt.Sprintf("unknown param `%s`", name)
		if c := suggest.Closest(name, known, 2); c != "" {
			msg += fmt.Sprintf(" (did you mean `%s`?)", c)
		}
		if len(known) > 0 {
			msg += "; known params: " + strings.Join(known, ", ")
		} else {
			msg += "; this package takes no params"
		}
		probs = append(probs, ParamProblem{Message: msg})
	}
	for _, prm := range m.params {
		v, given := params[prm.Name]
		if !given {
			if prm.Required {
				probs = append(probs, ParamProblem{Param: prm.Name, Message: "is required" + describeParam(prm)})
			}
			continue
		}
		if _, err := prm.value(v, nil); err != nil {
			probs = append(probs, ParamProblem{Param: prm.Name, Message: err.Error()})
		}
	}
	return probs
}

// describeParam adds the param's description to a "required" message.
func describeParam(p *Param) string {
	if p.Description == "" {
		return fmt.Sprintf(" (%s)", p.Type)
	}
	return fmt.Sprintf(" (%s: %s)", p.Type, p.Description)
}

// Bindings lists every binding of workflow name with the value the workflow
// holds there now, in manifest order; bindings to missing nodes or inputs are
// listed with an empty Current.
func (m *Manifest) Bindings(wf *Workflow, name string) []BoundInput {
	var out []BoundInput
	for _, prm := range m.params {
		for _, b := range prm.Bindings[name] {
			bi := BoundInput{Param: prm.Name, Workflow: name, Binding: b}
			if n, ok := wf.Node(b.Node); ok {
				bi.Current, _ = n.Input(b.Input)
			}
			out = append(out, bi)
		}
	}
	return out
}

// MarshalJSON encodes the bound input flat: {param, workflow, node, input,
// class_type, current}.
func (b BoundInput) MarshalJSON() ([]byte, error) {
	type flat struct {
		Param     string          `json:"param"`
		Workflow  string          `json:"workflow"`
		Node      string          `json:"node"`
		Input     string          `json:"input"`
		ClassType string          `json:"class_type"`
		Current   json.RawMessage `json:"current,omitempty"`
	}
	return marshalValue(flat{b.Param, b.Workflow, b.Node, b.Input, b.ClassType, json.RawMessage(b.Current)})
}
