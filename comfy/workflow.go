package comfy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Workflow is a ComfyUI workflow in the API format ("prompt"): node id →
// {class_type, inputs, _meta}. It keeps the document's key order, unknown
// fields and the exact text of every value, so MarshalJSON gives back what was
// parsed plus the edits made through its methods.
//
// A Workflow is not safe for concurrent use; Clone it per job.
type Workflow struct {
	nodes []*Node
	byID  map[string]*Node
}

// Node is one node of an API-format workflow.
type Node struct {
	// ID is the node's id: "9", or "12:5" for a node inside a subgraph.
	ID string
	// ClassType is the node's class, e.g. "KSampler".
	ClassType string

	inputs []member
	// fields are the node object's members in document order; the values of
	// class_type and inputs are regenerated on encoding.
	fields []member
}

// Errors that classify a workflow that cannot be parsed. Match them with
// errors.Is; the error text says what to fix.
var (
	// ErrUIFormat means the document is a UI ("workflow") export, not the API
	// format. ConvertUI turns it into the API format given /object_info data.
	ErrUIFormat = errors.New("this is a ComfyUI UI workflow (nodes/links), not the API format")
	// ErrInvalidWorkflow is matched by every structural error of a workflow.
	ErrInvalidWorkflow = errors.New("invalid workflow")
)

// exportHint tells a user how to get the API format out of ComfyUI.
const exportHint = `in ComfyUI, open the workflow and use Workflow → Export (API) (older menus: "Save (API Format)", shown after enabling Dev mode in the settings)`

// ParseWorkflow parses an API-format workflow from a JSON object, or from a
// JSON string that holds one (clients often send JSON.stringify(workflow)). A
// POST /prompt body ({"prompt": {...}, "client_id": ...}) is accepted too and
// its prompt taken. It checks the structure that needs no knowledge of node
// classes, as Validate(nil) does, and returns an error matching
// ErrInvalidWorkflow or ErrUIFormat that says what is wrong.
func ParseWorkflow(data []byte) (*Workflow, error) {
	w, err := DecodeWorkflow(data)
	if err != nil {
		return nil, err
	}
	if err := w.Validate(nil); err != nil {
		return nil, err
	}
	return w, nil
}

// DecodeWorkflow is ParseWorkflow without the link and cycle checks: it fails
// only when nodes themselves are malformed. Use it with Validate(info) to
// report every problem of a workflow at once.
func DecodeWorkflow(data []byte) (*Workflow, error) {
	data = bytes.TrimSpace(data)
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: the workflow is empty", ErrInvalidWorkflow)
	}
	if data[0] == '"' {
		var inner string
		if err := json.Unmarshal(data, &inner); err != nil {
			return nil, fmt.Errorf("%w: the workflow is a JSON string but not a valid one: %v", ErrInvalidWorkflow, jsonSyntaxError(data, err))
		}
		data = bytes.TrimSpace([]byte(inner))
		if len(data) == 0 || data[0] != '{' {
			return nil, fmt.Errorf("%w: the workflow string does not hold a JSON object", ErrInvalidWorkflow)
		}
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("%w: a workflow must be a JSON object of nodes, got %s", ErrInvalidWorkflow, kindOf(data))
	}
	ms, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidWorkflow, err)
	}
	if isUIFormat(ms) {
		return nil, fmt.Errorf("%w; %s, or convert it with the server's /object_info (comfypod workflow check --object-info)", ErrUIFormat, exportHint)
	}
	if inner, ok := promptBody(ms); ok {
		if ms, err = decodeObject(inner); err != nil {
			return nil, fmt.Errorf("%w: prompt: %v", ErrInvalidWorkflow, err)
		}
	}
	return workflowFromMembers(ms)
}

// isUIFormat says whether the top-level members look like a UI export.
func isUIFormat(ms []member) bool {
	var nodes, links bool
	for _, m := range ms {
		switch m.Key {
		case "nodes":
			nodes = kindOf(m.Value) == "an array"
		case "links":
			links = kindOf(m.Value) == "an array"
		}
	}
	return nodes && links
}

// promptBody recognises a POST /prompt body and returns its prompt.
func promptBody(ms []member) (json.RawMessage, bool) {
	var prompt json.RawMessage
	for _, m := range ms {
		switch m.Key {
		case "prompt":
			prompt = m.Value
		case "client_id", "prompt_id", "extra_data", "number", "front", "partial_execution_targets":
		default:
			return nil, false
		}
	}
	if len(prompt) == 0 || prompt[0] != '{' {
		return nil, false
	}
	// A node called "prompt" has a class_type; a prompt body's value does not.
	var probe struct {
		ClassType json.RawMessage `json:"class_type"`
	}
	if json.Unmarshal(prompt, &probe) == nil && probe.ClassType != nil {
		return nil, false
	}
	return prompt, true
}

func workflowFromMembers(ms []member) (*Workflow, error) {
	w := &Workflow{byID: make(map[string]*Node, len(ms))}
	var errs []Problem
	for _, m := range ms {
		if _, dup := w.byID[m.Key]; dup {
			errs = append(errs, Problem{Node: m.Key, Message: "this node id appears more than once"})
			continue
		}
		n, err := parseNode(m.Key, m.Value)
		if err != nil {
			errs = append(errs, *err)
			continue
		}
		w.nodes = append(w.nodes, n)
		w.byID[n.ID] = n
	}
	if len(ms) == 0 {
		errs = append(errs, Problem{Message: "the workflow has no nodes"})
	}
	if len(errs) > 0 {
		return nil, &WorkflowError{Problems: errs}
	}
	return w, nil
}

func parseNode(id string, raw json.RawMessage) (*Node, *Problem) {
	bad := func(format string, args ...any) *Problem {
		return &Problem{Node: id, Message: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(id) == "" {
		return nil, bad("a node has an empty id")
	}
	if kindOf(raw) != "an object" {
		return nil, bad("want an object {class_type, inputs}, got %s", kindOf(raw))
	}
	fields, err := decodeObject(raw)
	if err != nil {
		return nil, bad("%v", err)
	}
	n := &Node{ID: id, fields: fields}
	var haveClass, haveInputs bool
	for _, f := range fields {
		switch f.Key {
		case "class_type":
			if haveClass {
				return nil, bad("class_type appears twice")
			}
			haveClass = true
			if err := json.Unmarshal(f.Value, &n.ClassType); err != nil {
				return nil, bad("class_type must be a string, got %s", kindOf(f.Value))
			}
		case "inputs":
			if haveInputs {
				return nil, bad("inputs appears twice")
			}
			haveInputs = true
			if kindOf(f.Value) != "an object" {
				return nil, bad("inputs must be an object, got %s", kindOf(f.Value))
			}
			ins, err := decodeObject(f.Value)
			if err != nil {
				return nil, bad("inputs: %v", err)
			}
			seen := make(map[string]bool, len(ins))
			for _, in := range ins {
				if seen[in.Key] {
					return nil, &Problem{Node: id, Input: in.Key, Message: "this input appears twice"}
				}
				seen[in.Key] = true
			}
			n.inputs = ins
		}
	}
	switch {
	case !haveClass:
		return nil, bad("class_type is missing")
	case strings.TrimSpace(n.ClassType) == "":
		return nil, bad("class_type is empty")
	case !haveInputs:
		return nil, &Problem{Node: id, Class: n.ClassType, Message: `inputs is missing (write "inputs": {} for a node without inputs)`}
	}
	return n, nil
}

// linkProblems reports links that are malformed or point to missing nodes.
func (w *Workflow) linkProblems() []Problem {
	var errs []Problem
	for _, n := range w.nodes {
		for _, in := range n.inputs {
			if !Value(in.Value).IsLink() {
				continue
			}
			l, err := parseLink(in.Value)
			if err != nil {
				errs = append(errs, Problem{Node: n.ID, Class: n.ClassType, Input: in.Key, Message: err.Error()})
				continue
			}
			if _, ok := w.byID[l.Node]; !ok {
				errs = append(errs, Problem{Node: n.ID, Class: n.ClassType, Input: in.Key,
					Message: fmt.Sprintf("links to node %s, which is not in the workflow", l.Node)})
			}
		}
	}
	return errs
}

// Problem is one thing wrong with a workflow, located as precisely as known.
type Problem struct {
	// Node is the node id ("" for a problem of the whole workflow).
	Node string `json:"node,omitempty"`
	// Class is the node's class_type, when known.
	Class string `json:"class_type,omitempty"`
	// Input is the input name, when the problem is about one input.
	Input string `json:"input,omitempty"`
	// Message says what is wrong and, where it can, how to fix it.
	Message string `json:"message"`
}

// String formats the problem as `node 7 (ImageInvert) input "image": …`.
func (p Problem) String() string {
	var b strings.Builder
	if p.Node != "" {
		b.WriteString("node " + p.Node)
		if p.Class != "" {
			b.WriteString(" (" + p.Class + ")")
		}
		if p.Input != "" {
			fmt.Fprintf(&b, " input %q", p.Input)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// WorkflowError lists every problem found in a workflow. It matches
// ErrInvalidWorkflow.
type WorkflowError struct {
	// Problems are every problem found, in document order.
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *WorkflowError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid workflow: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("invalid workflow (%d problems):\n  - %s", len(e.Problems), strings.Join(lines, "\n  - "))
}

// Is makes errors.Is(err, ErrInvalidWorkflow) true.
func (e *WorkflowError) Is(target error) bool { return target == ErrInvalidWorkflow }

// NewWorkflow returns an empty workflow to build with AddNode.
func NewWorkflow() *Workflow { return &Workflow{byID: map[string]*Node{}} }

// AddNode adds a node with the given id and class and no inputs. It fails if
// the id is empty or taken.
func (w *Workflow) AddNode(id, classType string) (*Node, error) {
	if strings.TrimSpace(id) == "" {
		return nil, errors.New("node id is empty")
	}
	if classType == "" {
		return nil, fmt.Errorf("node %s: class_type is empty", id)
	}
	if _, ok := w.byID[id]; ok {
		return nil, fmt.Errorf("node %s already exists", id)
	}
	n := &Node{ID: id, ClassType: classType, fields: []member{{Key: "inputs"}, {Key: "class_type"}}}
	w.nodes = append(w.nodes, n)
	w.byID[id] = n
	return n, nil
}

// Node returns the node with the given id.
func (w *Workflow) Node(id string) (*Node, bool) {
	n, ok := w.byID[id]
	return n, ok
}

// Nodes returns the nodes in document order.
func (w *Workflow) Nodes() []*Node { return slices.Clone(w.nodes) }

// Len returns the number of nodes.
func (w *Workflow) Len() int { return len(w.nodes) }

// Clone returns a deep copy, so a shared template can be edited per job.
func (w *Workflow) Clone() *Workflow {
	c := &Workflow{nodes: make([]*Node, len(w.nodes)), byID: make(map[string]*Node, len(w.nodes))}
	for i, n := range w.nodes {
		cn := &Node{ID: n.ID, ClassType: n.ClassType, inputs: cloneMembers(n.inputs), fields: cloneMembers(n.fields)}
		c.nodes[i] = cn
		c.byID[cn.ID] = cn
	}
	return c
}

func cloneMembers(ms []member) []member {
	if ms == nil {
		return nil
	}
	out := make([]member, len(ms))
	for i, m := range ms {
		out[i] = member{Key: m.Key, Value: append(json.RawMessage(nil), m.Value...)}
	}
	return out
}

// MarshalJSON encodes the workflow in the API format, keeping the order of
// nodes, fields and inputs, unknown fields and the exact text of values.
// (json.Marshal escapes <, > and & in its result to \u003c etc.: the same
// JSON, other bytes. Call MarshalJSON directly, or use a json.Encoder with
// SetEscapeHTML(false), for the bytes as written.)
func (w *Workflow) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, n := range w.nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, n.ID)
		b = append(b, ':')
		b = n.appendJSON(b)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON parses an API-format workflow as ParseWorkflow does.
func (w *Workflow) UnmarshalJSON(data []byte) error {
	p, err := ParseWorkflow(data)
	if err != nil {
		return err
	}
	*w = *p
	return nil
}

func (n *Node) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, f := range n.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Key)
		b = append(b, ':')
		switch f.Key {
		case "class_type":
			b = appendString(b, n.ClassType)
		case "inputs":
			b = appendObject(b, n.inputs)
		default:
			b = append(b, f.Value...)
		}
	}
	return append(b, '}')
}

// MarshalJSON encodes the node object {class_type, inputs, ...}.
func (n *Node) MarshalJSON() ([]byte, error) { return n.appendJSON(nil), nil }

// Title returns _meta.title, or "" when the node has none.
func (n *Node) Title() string {
	for _, f := range n.fields {
		if f.Key == "_meta" {
			var m struct {
				Title string `json:"title"`
			}
			if json.Unmarshal(f.Value, &m) == nil {
				return m.Title
			}
		}
	}
	return ""
}

// SetTitle sets _meta.title, keeping the other _meta fields.
func (n *Node) SetTitle(title string) {
	for i, f := range n.fields {
		if f.Key != "_meta" {
			continue
		}
		ms, err := decodeObject(f.Value)
		if err != nil {
			break
		}
		t := appendString(nil, title)
		replaced := false
		for k := range ms {
			if ms[k].Key == "title" {
				ms[k].Value, replaced = t, true
			}
		}
		if !replaced {
			ms = append(ms, member{Key: "title", Value: t})
		}
		n.fields[i].Value = appendObject(nil, ms)
		return
	}
	meta := appendObject(nil, []member{{Key: "title", Value: appendString(nil, title)}})
	n.fields = slices.DeleteFunc(n.fields, func(f member) bool { return f.Key == "_meta" })
	n.fields = append(n.fields, member{Key: "_meta", Value: meta})
}

// InputNames returns the node's input names in document order.
func (n *Node) InputNames() []string {
	names := make([]string, len(n.inputs))
	for i, in := range n.inputs {
		names[i] = in.Key
	}
	return names
}

// Input returns the value of input name.
func (n *Node) Input(name string) (Value, bool) {
	for _, in := range n.inputs {
		if in.Key == name {
			return Value(in.Value), true
		}
	}
	return nil, false
}

// HasInput says whether the node has input name.
func (n *Node) HasInput(name string) bool {
	_, ok := n.Input(name)
	return ok
}

// SetInput sets input name to v, adding the input if the node lacks it. v is
// encoded as JSON: a Link becomes a link, a Value or json.RawMessage is used
// as is, any other list is wrapped as {"__value__": [...]}; json.Number keeps
// its exact text.
func (n *Node) SetInput(name string, v any) error {
	if name == "" {
		return fmt.Errorf("node %s: input name is empty", n.ID)
	}
	val, err := valueOf(v)
	if err != nil {
		return fmt.Errorf("node %s input %q: cannot encode %T: %w", n.ID, name, v, err)
	}
	for i := range n.inputs {
		if n.inputs[i].Key == name {
			n.inputs[i].Value = json.RawMessage(val)
			return nil
		}
	}
	n.inputs = append(n.inputs, member{Key: name, Value: json.RawMessage(val)})
	return nil
}

// DeleteInput removes input name; it reports whether it was there.
func (n *Node) DeleteInput(name string) bool {
	before := len(n.inputs)
	n.inputs = slices.DeleteFunc(n.inputs, func(m member) bool { return m.Key == name })
	return len(n.inputs) != before
}

// Links returns the node's inputs that are well-formed links, by input name,
// in document order.
func (n *Node) Links() []InputLink {
	var out []InputLink
	for _, in := range n.inputs {
		if l, ok := Value(in.Value).Link(); ok {
			out = append(out, InputLink{Input: in.Key, Link: l})
		}
	}
	return out
}

// InputLink is a node input fed by a link.
type InputLink struct {
	// Input is the input's name.
	Input string
	// Link is where its value comes from.
	Link Link
}

// Set sets input of node id to v (see Node.SetInput for the encoding). Unlike
// Node.SetInput it refuses to create inputs: a node or input that is not in
// the workflow is an error naming what exists, which catches ids and names
// that drifted after the workflow was edited.
func (w *Workflow) Set(id, input string, v any) error {
	n, ok := w.byID[id]
	if !ok {
		return fmt.Errorf("node %s is not in the workflow", id)
	}
	if !n.HasInput(input) {
		return fmt.Errorf("node %s (%s) has no input %q; it has %s", id, n.ClassType, input, quoteList(n.InputNames()))
	}
	return n.SetInput(input, v)
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "no inputs"
	}
	q := make([]string, len(names))
	for i, s := range names {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
