package engine

import (
	"fmt"
	"slices"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// classEntry is a registered node class with its schema prepared for
// validation: input specs decoded into the value model, so that error
// messages quote min/max exactly as the class declares them ("0.0", "16384").
type classEntry struct {
	class  *node.Class
	name   string
	inputs []*inputEntry // required, then optional, in declared order
	byName map[string]*inputEntry
	hidden []node.Hidden

	outputNode     bool
	returnTypes    []string
	uniqueIDHidden bool // a hidden UNIQUE_ID input puts the node id in the cache signature
	skips          map[string]bool
}

// inputEntry is one declared input.
type inputEntry struct {
	name     string
	required bool
	// typ is the declared type string ("INT", "IMAGE", "COMBO", …); for a
	// legacy list combo it is "" and options holds the list.
	typ     string
	options []string
	legacy  bool
	extra   *pyjson.Object // the options dict ({} when the class sends none)
	config  []any          // input_config as ComfyUI reports it: [type or list, extra]
}

// registry is the set of classes the engine serves, in /object_info order.
type registry struct {
	order  []string
	byName map[string]*classEntry
}

func newRegistry(core, extra []*node.Class) (*registry, error) {
	r := &registry{byName: map[string]*classEntry{}}
	seen := map[string]bool{}
	for _, c := range extra {
		if c == nil || c.Info == nil {
			return nil, fmt.Errorf("engine: Config.Classes holds a class without Info")
		}
		if seen[c.Info.Name] {
			return nil, fmt.Errorf("engine: Config.Classes names class %q twice", c.Info.Name)
		}
		seen[c.Info.Name] = true
	}
	add := func(c *node.Class) error {
		e, err := newClassEntry(c)
		if err != nil {
			return err
		}
		if _, ok := r.byName[e.name]; !ok {
			r.order = append(r.order, e.name)
		}
		r.byName[e.name] = e
		return nil
	}
	for _, c := range core {
		if c == nil || c.Info == nil || seen[c.Info.Name] {
			continue // an extra class of the same name replaces the core one
		}
		if err := add(c); err != nil {
			return nil, err
		}
	}
	for _, c := range extra {
		if err := add(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func newClassEntry(c *node.Class) (*classEntry, error) {
	info := c.Info
	if info.Name == "" {
		return nil, fmt.Errorf("engine: a node class has an empty name")
	}
	if c.Execute == nil {
		return nil, fmt.Errorf("engine: class %s has no Execute function", info.Name)
	}
	e := &classEntry{
		class:       c,
		name:        info.Name,
		byName:      map[string]*inputEntry{},
		hidden:      info.Hidden,
		outputNode:  info.OutputNode,
		returnTypes: info.Output,
		skips:       map[string]bool{},
	}
	for _, s := range c.ValidateSkips {
		e.skips[s] = true
	}
	for _, h := range info.Hidden {
		if h.Type == "UNIQUE_ID" {
			e.uniqueIDHidden = true
		}
	}
	for _, g := range []struct {
		inputs   []node.Input
		required bool
	}{{info.Required, true}, {info.Optional, false}} {
		for i := range g.inputs {
			in := &g.inputs[i]
			if _, dup := e.byName[in.Name]; dup {
				continue // required wins, as in get_input_info
			}
			ie := &inputEntry{name: in.Name, required: g.required, typ: in.Type, legacy: in.IsLegacyCombo(), extra: pyjson.NewObject()}
			if ie.legacy {
				ie.options = slices.Clone(in.Options)
			}
			if len(in.Spec) > 0 {
				v, err := pyjson.Parse(in.Spec)
				if err != nil {
					return nil, fmt.Errorf("engine: class %s input %q: options dict: %w", info.Name, in.Name, err)
				}
				o, ok := v.(*pyjson.Object)
				if !ok {
					return nil, fmt.Errorf("engine: class %s input %q: options are not a JSON object", info.Name, in.Name)
				}
				ie.extra = o
			}
			var typ any = ie.typ
			if ie.legacy {
				opts := make([]any, len(ie.options))
				for k, s := range ie.options {
					opts[k] = s
				}
				typ = opts
			}
			ie.config = []any{typ, ie.extra}
			e.inputs = append(e.inputs, ie)
			e.byName[in.Name] = ie
		}
	}
	return e, nil
}

// typeString returns the declared type as validate_node_input sees it; ok is
// false for legacy combos, whose type is a list.
func (ie *inputEntry) typeString() (string, bool) {
	if ie.legacy {
		return "", false
	}
	return ie.typ, true
}
