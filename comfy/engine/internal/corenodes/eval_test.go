package corenodes

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// This file holds a small prompt evaluator for tests: it runs an API-format
// prompt with the core classes, in dependency order, with ComfyUI's input
// coercion and an output cache keyed by input signature (so two identical
// output nodes write one file, as on a real server). The engine's server
// runs the same prompts through HTTP and WebSocket; this evaluator exists so
// that the node semantics can be tested on their own.

// promptNode is one entry of an API-format prompt.
type promptNode struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
}

// evalFailure is a node that failed while running.
type evalFailure struct {
	NodeID, NodeType string
	Err              error
}

// evaluator runs prompts against a fixed environment, keeping its cache
// between runs like a server process does.
type evaluator struct {
	classes map[string]*node.Class
	env     node.Env
	cache   map[string]*node.Result
}

func newEvaluator(env node.Env) *evaluator {
	e := &evaluator{classes: map[string]*node.Class{}, env: env, cache: map[string]*node.Result{}}
	for _, c := range Classes() {
		e.classes[c.Name()] = c
	}
	return e
}

// run evaluates the given output nodes in order. It returns every executed
// node's result, which nodes were served from the cache, and the first
// failure.
func (e *evaluator) run(ctx context.Context, prompt map[string]promptNode, outputs []string) (map[string]*node.Result, map[string]bool, *evalFailure) {
	results := map[string]*node.Result{}
	cached := map[string]bool{}
	sigs := map[string]string{}
	var visit func(id string) *evalFailure
	visit = func(id string) *evalFailure {
		if _, ok := results[id]; ok {
			return nil
		}
		pn, ok := prompt[id]
		if !ok {
			return &evalFailure{NodeID: id, Err: fmt.Errorf("no node %q in the prompt", id)}
		}
		class, ok := e.classes[pn.ClassType]
		if !ok {
			return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: fmt.Errorf("unknown class %q", pn.ClassType)}
		}
		in := node.Inputs{}
		var sig strings.Builder
		sig.WriteString(pn.ClassType)
		names := make([]string, 0, len(pn.Inputs))
		for k := range pn.Inputs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			v := pn.Inputs[name]
			if link, ok := v.([]any); ok && len(link) == 2 {
				up, _ := link[0].(string)
				idx, _ := link[1].(float64)
				if f := visit(up); f != nil {
					return f
				}
				outs := results[up].Outputs
				if int(idx) >= len(outs) {
					return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: fmt.Errorf("link to output %d of %s", int(idx), up)}
				}
				in[name] = outs[int(idx)]
				fmt.Fprintf(&sig, "|%s=<%s:%d>", name, sigs[up], int(idx))
				continue
			}
			cv, err := coerce(class.Info, name, v)
			if err != nil {
				return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: err}
			}
			in[name] = cv
			data, _ := json.Marshal(cv)
			fmt.Fprintf(&sig, "|%s=%s", name, data)
		}
		env := e.env
		env.NodeID = id
		if class.IsChanged != nil {
			h, err := class.IsChanged(&env, in)
			if err != nil {
				return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: err}
			}
			fmt.Fprintf(&sig, "|is_changed=%s", h)
		}
		if class.NotIdempotent {
			fmt.Fprintf(&sig, "|id=%s", id)
		}
		sigs[id] = sig.String()
		if r, ok := e.cache[sigs[id]]; ok {
			results[id] = r
			cached[id] = true
			return nil
		}
		r, err := class.Execute(ctx, &env, in)
		if err != nil {
			return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: err}
		}
		if len(r.Outputs) != len(class.Info.Output) {
			return &evalFailure{NodeID: id, NodeType: pn.ClassType, Err: fmt.Errorf("%d outputs, want %d", len(r.Outputs), len(class.Info.Output))}
		}
		results[id] = r
		e.cache[sigs[id]] = r
		return nil
	}
	for _, id := range outputs {
		if f := visit(id); f != nil {
			return results, cached, f
		}
	}
	return results, cached, nil
}

// coerce converts a constant input to the Go type Execute receives.
func coerce(info *node.Info, name string, v any) (any, error) {
	spec, ok := info.Input(name)
	if !ok {
		return v, nil // extra inputs are ignored by ComfyUI
	}
	switch spec.Type {
	case "INT":
		switch x := v.(type) {
		case float64:
			return int64(x), nil
		case string:
			var n int64
			if _, err := fmt.Sscan(x, &n); err != nil {
				return nil, fmt.Errorf("input %s: %q is not an INT", name, x)
			}
			return n, nil
		}
	case "FLOAT":
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case "BOOLEAN":
		if x, ok := v.(bool); ok {
			return x, nil
		}
	default: // STRING, COMBO and legacy combos
		if x, ok := v.(string); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("input %s: cannot use %T(%v) as %s", name, v, v, spec.Type)
}

// mustRun evaluates prompt and fails the test on a node failure.
func mustRun(t testing.TB, e *evaluator, prompt map[string]promptNode, outputs ...string) map[string]*node.Result {
	t.Helper()
	res, _, f := e.run(context.Background(), prompt, outputs)
	if f != nil {
		t.Fatalf("node %s (%s) failed: %v", f.NodeID, f.NodeType, f.Err)
	}
	return res
}
