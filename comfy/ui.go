package comfy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ConversionError says why a UI workflow could not be turned into the API
// format, and how to get the API format instead. It matches ErrUIFormat.
type ConversionError struct {
	// Node and Class locate the problem ("" when it is about the whole file).
	Node, Class string
	// Reason says what stopped the conversion.
	Reason string
}

// Error says what stopped the conversion and how to export the API format.
func (e *ConversionError) Error() string {
	where := ""
	if e.Node != "" {
		where = "node " + e.Node
		if e.Class != "" {
			where += " (" + e.Class + ")"
		}
		where += ": "
	}
	return fmt.Sprintf("cannot convert this UI workflow to the API format: %s%s; %s", where, e.Reason, exportHint)
}

// Is makes errors.Is(err, ErrUIFormat) true.
func (e *ConversionError) Is(target error) bool { return target == ErrUIFormat }

// frontendOnly are UI classes that never reach the server.
var frontendOnly = map[string]bool{
	"Note": true, "MarkdownNote": true, "Reroute": true, "PrimitiveNode": true,
	"Label (rgthree)": true, "Bookmark (rgthree)": true, "Fast Groups Muter (rgthree)": true,
	"Fast Groups Bypasser (rgthree)": true, "Fast Muter (rgthree)": true, "Fast Bypasser (rgthree)": true,
}

// Node modes of the UI format.
const (
	modeNever  = 2 // muted: dropped
	modeBypass = 4 // bypassed: dropped, its inputs passed through by type
)

// controlValues are the values of the UI's control_after_generate widget.
var controlValues = []string{"fixed", "increment", "decrement", "randomize"}

type uiWorkflow struct {
	Nodes       []uiNode          `json:"nodes"`
	Links       []json.RawMessage `json:"links"`
	Definitions struct {
		Subgraphs []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"subgraphs"`
	} `json:"definitions"`
	Extra struct {
		GroupNodes map[string]json.RawMessage `json:"groupNodes"`
	} `json:"extra"`
}

type uiNode struct {
	ID            json.RawMessage `json:"id"`
	Type          string          `json:"type"`
	Mode          int             `json:"mode"`
	Order         *int            `json:"order"`
	Title         string          `json:"title"`
	Inputs        []uiSlot        `json:"inputs"`
	Outputs       []uiSlot        `json:"outputs"`
	WidgetsValues json.RawMessage `json:"widgets_values"`

	id string
}

type uiSlot struct {
	Name string          `json:"name"`
	Type json.RawMessage `json:"type"`
	Link *int64          `json:"link"`
}

func (s uiSlot) typ() string {
	var t string
	if json.Unmarshal(s.Type, &t) == nil {
		return t
	}
	return string(s.Type)
}

type uiLink struct {
	ID         int64
	Origin     string
	OriginSlot int
	Target     string
	TargetSlot int
	Type       string
}

// ConvertUI converts a UI ("workflow") export into the API format, using the
// server's /object_info to know which widget value is which input. It follows
// what the ComfyUI frontend does when it queues a prompt: inputs in
// input_order, linked inputs become links, the extra control_after_generate
// value after seeds and the upload widget value of LoadImage are skipped,
// muted nodes are dropped, bypassed nodes are dropped with their inputs passed
// through by type, Reroutes are followed, PrimitiveNode values are copied into
// their targets, notes are dropped, and dict-style widgets_values (VHS) are
// read by name.
//
// It returns a *ConversionError when the file uses what it cannot convert
// (subgraphs, group nodes, classes missing from info). Validate the result
// with Workflow.Validate(info).
func ConvertUI(data []byte, info ObjectInfo) (*Workflow, error) {
	if info == nil {
		return nil, &ConversionError{Reason: "the server's /object_info is needed to read widget values (pass --object-info FILE|URL)"}
	}
	var ui uiWorkflow
	if err := json.Unmarshal(bytes.TrimSpace(data), &ui); err != nil {
		return nil, &ConversionError{Reason: "not a readable UI workflow: " + err.Error()}
	}
	if ui.Nodes == nil {
		return nil, &ConversionError{Reason: `the file has no "nodes" list`}
	}
	if len(ui.Extra.GroupNodes) > 0 {
		return nil, &ConversionError{Reason: "it uses group nodes, which only the ComfyUI frontend can expand"}
	}
	subgraphs := map[string]string{}
	for _, sg := range ui.Definitions.Subgraphs {
		subgraphs[sg.ID] = sg.Name
	}
	nodes := make(map[string]*uiNode, len(ui.Nodes))
	for i := range ui.Nodes {
		n := &ui.Nodes[i]
		id, err := uiID(n.ID)
		if err != nil {
			return nil, &ConversionError{Reason: fmt.Sprintf("nodes[%d]: %v", i, err)}
		}
		n.id = id
		if _, dup := nodes[id]; dup {
			return nil, &ConversionError{Node: id, Reason: "the node id appears twice"}
		}
		nodes[id] = n
		if name, ok := subgraphs[n.Type]; ok {
			return nil, &ConversionError{Node: id, Class: name, Reason: "it is a subgraph, which only the ComfyUI frontend can expand"}
		}
		if strings.HasPrefix(n.Type, "workflow>") || strings.HasPrefix(n.Type, "workflow/") {
			return nil, &ConversionError{Node: id, Class: n.Type, Reason: "it is a group node, which only the ComfyUI frontend can expand"}
		}
		if n.Type == "" {
			return nil, &ConversionError{Node: id, Reason: "the node has no type"}
		}
	}
	links := make(map[int64]uiLink, len(ui.Links))
	for i, raw := range ui.Links {
		l, err := parseUILink(raw)
		if err != nil {
			return nil, &ConversionError{Reason: fmt.Sprintf("links[%d]: %v", i, err)}
		}
		links[l.ID] = l
	}
	c := &uiConverter{nodes: nodes, links: links, info: info}

	order := make([]*uiNode, 0, len(ui.Nodes))
	for i := range ui.Nodes {
		order = append(order, &ui.Nodes[i])
	}
	slices.SortStableFunc(order, func(a, b *uiNode) int {
		if a.Order != nil && b.Order != nil && *a.Order != *b.Order {
			return cmp.Compare(*a.Order, *b.Order)
		}
		return compareIDs(a.id, b.id)
	})
	wf := NewWorkflow()
	for _, n := range order {
		if n.Mode == modeNever || n.Mode == modeBypass || frontendOnly[n.Type] {
			continue
		}
		if err := c.convertNode(wf, n); err != nil {
			return nil, err
		}
	}
	if wf.Len() == 0 {
		return nil, &ConversionError{Reason: "no node is left after dropping notes, muted and bypassed nodes"}
	}
	return wf, nil
}

// ParseOrConvert parses an API-format workflow, or converts a UI export when
// info is given. converted says which happened. Like DecodeWorkflow it checks
// only node structure: call Validate(info) on the result.
func ParseOrConvert(data []byte, info ObjectInfo) (wf *Workflow, converted bool, err error) {
	wf, err = DecodeWorkflow(data)
	if err == nil || !errors.Is(err, ErrUIFormat) {
		return wf, false, err
	}
	d := bytes.TrimSpace(data)
	if len(d) > 0 && d[0] == '"' {
		var inner string
		if json.Unmarshal(d, &inner) == nil {
			d = []byte(inner)
		}
	}
	wf, err = ConvertUI(d, info)
	return wf, err == nil, err
}

func uiID(raw json.RawMessage) (string, error) {
	if n, ok := Value(raw).Number(); ok {
		return n.String(), nil
	}
	if s, ok := Value(raw).Text(); ok && s != "" {
		return s, nil
	}
	return "", fmt.Errorf("a node id must be a number or a string, got %s", kindOf(raw))
}

func compareIDs(a, b string) int {
	ai, errA := strconv.ParseInt(a, 10, 64)
	bi, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(ai, bi)
	}
	return cmp.Compare(a, b)
}

func parseUILink(raw json.RawMessage) (uiLink, error) {
	var l uiLink
	switch kindOf(raw) {
	case "an array":
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 5 {
			return l, errors.New("want [id, origin_id, origin_slot, target_id, target_slot, type]")
		}
		var err error
		if l.ID, err = strconv.ParseInt(string(parts[0]), 10, 64); err != nil {
			return l, fmt.Errorf("link id %s is not an integer", parts[0])
		}
		if l.Origin, err = uiID(parts[1]); err != nil {
			return l, err
		}
		if l.OriginSlot, err = strconv.Atoi(string(parts[2])); err != nil || l.OriginSlot < 0 {
			return l, fmt.Errorf("origin slot %s is not a non-negative integer", parts[2])
		}
		if l.Target, err = uiID(parts[3]); err != nil {
			return l, err
		}
		if l.TargetSlot, err = strconv.Atoi(string(parts[4])); err != nil {
			return l, fmt.Errorf("target slot %s is not an integer", parts[4])
		}
		if len(parts) > 5 {
			_ = json.Unmarshal(parts[5], &l.Type)
		}
		return l, nil
	case "an object":
		var o struct {
			ID         int64           `json:"id"`
			OriginID   json.RawMessage `json:"origin_id"`
			OriginSlot int             `json:"origin_slot"`
			TargetID   json.RawMessage `json:"target_id"`
			TargetSlot int             `json:"target_slot"`
			Type       json.RawMessage `json:"type"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return l, fmt.Errorf("want {id, origin_id, origin_slot, target_id, target_slot, type}: %v", err)
		}
		var err error
		if l.Origin, err = uiID(o.OriginID); err != nil {
			return l, err
		}
		if l.Target, err = uiID(o.TargetID); err != nil {
			return l, err
		}
		if o.OriginSlot < 0 {
			return l, fmt.Errorf("origin slot %d is negative", o.OriginSlot)
		}
		l.ID, l.OriginSlot, l.TargetSlot = o.ID, o.OriginSlot, o.TargetSlot
		_ = json.Unmarshal(o.Type, &l.Type)
		return l, nil
	}
	return l, fmt.Errorf("want an array or an object, got %s", kindOf(raw))
}

type uiConverter struct {
	nodes map[string]*uiNode
	links map[int64]uiLink
	info  ObjectInfo
}

// source is what a resolved link carries into an input.
type source struct {
	link     *Link
	constant json.RawMessage
}

// resolve follows a link id through Reroutes, bypassed nodes and primitive
// nodes. A nil source means the input ends up unconnected (muted source).
func (c *uiConverter) resolve(linkID int64, depth int) (*source, error) {
	if depth > 256 {
		return nil, &ConversionError{Reason: "links through Reroute/bypassed nodes form a loop"}
	}
	l, ok := c.links[linkID]
	if !ok {
		return nil, &ConversionError{Reason: fmt.Sprintf("link %d is used by a node but missing from the links list", linkID)}
	}
	o, ok := c.nodes[l.Origin]
	if !ok {
		return nil, &ConversionError{Reason: fmt.Sprintf("link %d comes from node %s, which is not in the file", linkID, l.Origin)}
	}
	switch {
	case o.Mode == modeNever:
		return nil, nil
	case o.Type == "Reroute":
		for _, in := range o.Inputs {
			if in.Link != nil {
				return c.resolve(*in.Link, depth+1)
			}
		}
		return nil, nil
	case o.Type == "PrimitiveNode":
		vals, err := widgetList(o)
		if err != nil || len(vals) == 0 {
			return nil, &ConversionError{Node: o.id, Class: o.Type, Reason: "the primitive node has no value"}
		}
		return &source{constant: wrapList(vals[0])}, nil
	case o.Mode == modeBypass:
		want := l.Type
		if l.OriginSlot < len(o.Outputs) {
			want = o.Outputs[l.OriginSlot].typ()
		}
		// The frontend passes through the input at the same slot when its
		// type matches, else the first input of that type.
		if l.OriginSlot < len(o.Inputs) && o.Inputs[l.OriginSlot].Link != nil && sameUIType(o.Inputs[l.OriginSlot].typ(), want) {
			return c.resolve(*o.Inputs[l.OriginSlot].Link, depth+1)
		}
		for _, in := range o.Inputs {
			if in.Link != nil && sameUIType(in.typ(), want) {
				return c.resolve(*in.Link, depth+1)
			}
		}
		return nil, nil
	case frontendOnly[o.Type]:
		return nil, nil
	}
	return &source{link: &Link{Node: o.id, Output: l.OriginSlot}}, nil
}

func sameUIType(a, b string) bool {
	return a == b || a == "*" || b == "*" || typesCompatible(a, b)
}

// wrapList wraps a literal list so ComfyUI does not read it as a link.
func wrapList(v json.RawMessage) json.RawMessage {
	if kindOf(v) == "an array" {
		return append(append(json.RawMessage(`{"__value__":`), v...), '}')
	}
	return v
}

func widgetList(n *uiNode) ([]json.RawMessage, error) {
	if len(n.WidgetsValues) == 0 || string(n.WidgetsValues) == "null" {
		return nil, nil
	}
	var vals []json.RawMessage
	if err := json.Unmarshal(n.WidgetsValues, &vals); err != nil {
		return nil, err
	}
	return vals, nil
}

func (c *uiConverter) convertNode(wf *Workflow, n *uiNode) error {
	ci, ok := c.info.Class(n.Type)
	if !ok {
		return &ConversionError{Node: n.id, Class: n.Type, Reason: fmt.Sprintf("class %q is not in the server's object_info (a missing custom node, or an object_info from another server)", n.Type)}
	}
	out, err := wf.AddNode(n.id, n.Type)
	if err != nil {
		return &ConversionError{Node: n.id, Class: n.Type, Reason: err.Error()}
	}
	sockets := map[string]uiSlot{}
	for _, s := range n.Inputs {
		sockets[s.Name] = s
	}
	var (
		list    []json.RawMessage
		dict    map[string]json.RawMessage
		isDict  = kindOf(n.WidgetsValues) == "an object"
		next    = 0
		present = func() bool { return next < len(list) }
	)
	if isDict {
		if err := json.Unmarshal(n.WidgetsValues, &dict); err != nil {
			return &ConversionError{Node: n.id, Class: n.Type, Reason: "widgets_values: " + err.Error()}
		}
	} else if list, err = widgetList(n); err != nil {
		return &ConversionError{Node: n.id, Class: n.Type, Reason: "widgets_values must be a list or an object"}
	}
	set := func(name string, v json.RawMessage) error {
		if err := out.SetInput(name, json.RawMessage(v)); err != nil {
			return &ConversionError{Node: n.id, Class: n.Type, Reason: err.Error()}
		}
		return nil
	}
	setLinked := func(name string, sock uiSlot) error {
		src, err := c.resolve(*sock.Link, 0)
		if err != nil || src == nil {
			return err
		}
		if src.link != nil {
			return out.SetInput(name, *src.link)
		}
		return set(name, src.constant)
	}
	for _, spec := range ci.Inputs() {
		sock, hasSock := sockets[spec.Name]
		linked := hasSock && sock.Link != nil
		if !spec.IsWidget() {
			if linked {
				if err := setLinked(spec.Name, sock); err != nil {
					return err
				}
			}
			continue
		}
		var wv json.RawMessage
		if isDict {
			wv = dict[spec.Name]
		} else if present() {
			wv = list[next]
			next++
			if spec.ControlAfterGenerate || (spec.Type == "INT" && (spec.Name == "seed" || spec.Name == "noise_seed")) {
				if present() && isOneOf(list[next], controlValues) {
					next++
				}
			}
			if spec.Upload != "" && present() && (isOneOf(list[next], []string{"image", "video", "audio", spec.Upload}) || string(list[next]) == "null") {
				next++
			}
		}
		switch {
		case linked:
			if err := setLinked(spec.Name, sock); err != nil {
				return err
			}
		case wv != nil:
			if err := set(spec.Name, wrapList(wv)); err != nil {
				return err
			}
		case ci.IsRequired(spec.Name):
			return &ConversionError{Node: n.id, Class: n.Type, Reason: fmt.Sprintf(
				"widgets_values has %d values but the server's %s takes more widgets (no value for %q); the workflow was saved with another version of the node", len(list), n.Type, spec.Name)}
		}
	}
	if isDict {
		// Dynamic widgets (VHS format options) are not in object_info: copy by name.
		keys := make([]string, 0, len(dict))
		for k := range dict {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if _, declared := ci.Input(k); declared || k == "videopreview" || out.HasInput(k) {
				continue
			}
			if err := set(k, wrapList(dict[k])); err != nil {
				return err
			}
		}
	}
	title := n.Title
	if title == "" {
		title = cmp.Or(ci.DisplayName, n.Type)
	}
	out.SetTitle(title)
	return nil
}

func isOneOf(raw json.RawMessage, set []string) bool {
	s, ok := Value(raw).Text()
	return ok && slices.Contains(set, s)
}
