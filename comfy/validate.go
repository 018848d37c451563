package comfy

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/truncate"
)

// Validate checks the workflow as far as it can before a server sees it and
// returns a *WorkflowError listing every problem, or nil.
//
// Without info (nil) it checks structure: links are well-formed, point to
// nodes that exist, and form no cycle. With a server's /object_info it also
// checks, as ComfyUI's validate_prompt does: every class is known, link output
// indices exist and their types fit, required inputs are present, numbers are
// numbers within min/max, combo values are among the options (file pickers
// such as LoadImage.image excepted: their list is the server's folder), and at
// least one output node exists.
func (w *Workflow) Validate(info ObjectInfo) error {
	probs := w.linkProblems()
	probs = append(probs, w.cycleProblems()...)
	if info != nil {
		probs = append(probs, w.classProblems(info)...)
	}
	if len(probs) > 0 {
		return &WorkflowError{Problems: probs}
	}
	return nil
}

// cycleProblems reports links that form a cycle; ComfyUI would refuse to run
// such a prompt only once it starts executing.
func (w *Workflow) cycleProblems() []Problem {
	const (
		unseen = iota
		active
		done
	)
	state := make(map[string]int, len(w.nodes))
	var probs []Problem
	var visit func(n *Node, path []string)
	visit = func(n *Node, path []string) {
		state[n.ID] = active
		path = append(path, n.ID)
		for _, il := range n.Links() {
			src, ok := w.byID[il.Link.Node]
			if !ok {
				continue
			}
			switch state[src.ID] {
			case active:
				i := slices.Index(path, src.ID)
				cycle := append(slices.Clone(path[i:]), src.ID)
				probs = append(probs, Problem{Node: n.ID, Class: n.ClassType, Input: il.Input,
					Message: "links form a cycle: " + strings.Join(cycle, " → ")})
			case unseen:
				visit(src, path)
			}
		}
		state[n.ID] = done
	}
	for _, n := range w.nodes {
		if state[n.ID] == unseen {
			visit(n, nil)
		}
	}
	return probs
}

func (w *Workflow) classProblems(info ObjectInfo) []Problem {
	var probs []Problem
	outputs := 0
	for _, n := range w.nodes {
		c, ok := info.Class(n.ClassType)
		if !ok {
			probs = append(probs, Problem{Node: n.ID, Class: n.ClassType,
				Message: fmt.Sprintf("class %q is not installed on the server (not in object_info); install the custom node that provides it or remove the node", n.ClassType)})
			continue
		}
		if c.OutputNode {
			outputs++
		}
		for _, spec := range c.Required {
			if !n.HasInput(spec.Name) {
				probs = append(probs, Problem{Node: n.ID, Class: n.ClassType, Input: spec.Name, Message: "required input is missing"})
			}
		}
		for _, in := range n.inputs {
			spec, declared := c.Input(in.Key)
			v := Value(in.Value)
			if v.IsLink() {
				l, ok := v.Link()
				if !ok {
					continue // reported by linkProblems
				}
				probs = append(probs, linkTypeProblems(w, info, n, in.Key, spec, l)...)
				continue
			}
			if !declared {
				continue // ComfyUI ignores unknown inputs
			}
			if knownFileKind(n.ClassType, in.Key) != "" {
				// A file loader's list is the server's input folder when
				// the list was made; the job's own uploads come later, and
				// the loader checks the file itself (VALIDATE_INPUTS).
				continue
			}
			if msg := constantProblem(spec, v); msg != "" {
				probs = append(probs, Problem{Node: n.ID, Class: n.ClassType, Input: in.Key, Message: msg})
			}
		}
	}
	if outputs == 0 && len(w.nodes) > 0 {
		probs = append(probs, Problem{Message: "the workflow has no output node (SaveImage, PreviewImage, VHS_VideoCombine, …), so ComfyUI would run nothing"})
	}
	return probs
}

func linkTypeProblems(w *Workflow, info ObjectInfo, n *Node, input string, spec *InputSpec, l Link) []Problem {
	src, ok := w.byID[l.Node]
	if !ok {
		return nil // reported by linkProblems
	}
	sc, ok := info.Class(src.ClassType)
	if !ok {
		return nil // reported for the source node
	}
	bad := func(format string, args ...any) []Problem {
		return []Problem{{Node: n.ID, Class: n.ClassType, Input: input, Message: fmt.Sprintf(format, args...)}}
	}
	if l.Output >= len(sc.Output) {
		if len(sc.Output) == 0 {
			return bad("links to output %d of node %s (%s), which has no outputs", l.Output, src.ID, src.ClassType)
		}
		return bad("links to output %d of node %s (%s), which has only outputs 0..%d (%s)", l.Output, src.ID, src.ClassType, len(sc.Output)-1, strings.Join(sc.Output, ", "))
	}
	if spec != nil && !typesCompatible(sc.Output[l.Output], spec.Type) {
		return bad("takes %s but is linked to output %d of node %s (%s), which is %s", spec.Type, l.Output, src.ID, src.ClassType, sc.Output[l.Output])
	}
	return nil
}

// constantProblem checks a constant against its declared spec the way ComfyUI
// coerces and bounds it; it returns "" when the value is acceptable.
func constantProblem(spec *InputSpec, v Value) string {
	switch spec.Type {
	case "INT", "FLOAT":
		num, ok := numericValue(v, spec.Type == "INT")
		if !ok {
			return fmt.Sprintf("want a number (%s), got %s", spec.Type, describeValue(v))
		}
		if spec.Min != "" {
			if min, ok := parseRat(spec.Min.String()); ok && num.Cmp(min) < 0 {
				return fmt.Sprintf("value %s is below the minimum %s", shortValue(v), spec.Min)
			}
		}
		if spec.Max != "" {
			if max, ok := parseRat(spec.Max.String()); ok && num.Cmp(max) > 0 {
				return fmt.Sprintf("value %s is above the maximum %s", shortValue(v), spec.Max)
			}
		}
	case "COMBO":
		if spec.Upload != "" || len(spec.Options) == 0 {
			return ""
		}
		s, ok := v.Text()
		if !ok {
			s = string(v)
		}
		if !slices.Contains(spec.Options, s) {
			return fmt.Sprintf("value %s is not one of the options %s", shortValue(v), optionList(spec.Options))
		}
	}
	return ""
}

// numericValue reads a number the way ComfyUI's int()/float() coercion would
// accept it: a JSON number, or a string holding one. For INT a fractional
// JSON number is truncated by Python's int(), so it is accepted too.
func numericValue(v Value, integer bool) (*big.Rat, bool) {
	if n, ok := v.Number(); ok {
		r, ok := parseRat(n.String())
		if ok && integer {
			r = new(big.Rat).SetInt(new(big.Int).Quo(r.Num(), r.Denom()))
		}
		return r, ok
	}
	s, ok := v.Text()
	if !ok {
		if b, isBool := v.Bool(); isBool {
			// Python's int(True) is 1.
			if b {
				return big.NewRat(1, 1), true
			}
			return new(big.Rat), true
		}
		return nil, false
	}
	s = strings.TrimSpace(s)
	if len(s) > maxNumberText {
		return nil, false
	}
	if integer {
		i, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, false
		}
		return new(big.Rat).SetInt(i), true
	}
	r, ok := parseRat(s)
	return r, ok
}

func describeValue(v Value) string {
	if s, ok := v.Text(); ok {
		return strconv.Quote(truncate.Runes(s, 40))
	}
	return kindOf(v.Raw())
}

func shortValue(v Value) string { return truncate.Runes(string(v), 60) }

func optionList(opts []string) string {
	const max = 20
	q := make([]string, 0, min(len(opts), max)+1)
	for i, o := range opts {
		if i == max {
			q = append(q, fmt.Sprintf("… (%d more)", len(opts)-max))
			break
		}
		q = append(q, strconv.Quote(o))
	}
	return "[" + strings.Join(q, ", ") + "]"
}
