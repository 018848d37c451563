package engine

import "github.com/comfypod/comfypod/internal/pyjson"

// execList is ComfyUI's ExecutionList (comfy_execution/graph.py): a
// topological dissolve of the graph from the output nodes, which picks the
// next ready node the way ux_friendly_pick_node does (an output node first,
// then a node that unblocks an output, then one two steps from an output,
// else the first ready node). Pending nodes keep insertion order, which is
// what makes the order of independent branches deterministic.
type execList struct {
	prompt   *pyjson.Object
	isCached func(id string) bool
	isOutput func(id string) bool

	pending    []string // insertion order; removed nodes are tombstoned
	pendingIdx map[string]int
	live       int
	blockCount map[string]int
	blocking   map[string]*orderedSet // from → nodes it blocks
}

type orderedSet struct {
	keys []string
	has  map[string]bool
}

func (s *orderedSet) add(k string) bool {
	if s.has[k] {
		return false
	}
	s.has[k] = true
	s.keys = append(s.keys, k)
	return true
}

func newExecList(prompt *pyjson.Object, isCached, isOutput func(string) bool) *execList {
	return &execList{
		prompt:     prompt,
		isCached:   isCached,
		isOutput:   isOutput,
		pendingIdx: map[string]int{},
		blockCount: map[string]int{},
		blocking:   map[string]*orderedSet{},
	}
}

// linkOf reports whether v is a link (comfy_execution.graph_utils.is_link: a
// two-element list of a string node id and a numeric output index).
func linkOf(v any) (from string, socket any, ok bool) {
	l, isList := v.([]any)
	if !isList || len(l) != 2 {
		return "", nil, false
	}
	s, isStr := l[0].(string)
	if !isStr {
		return "", nil, false
	}
	switch l[1].(type) {
	case int64, float64, bool:
	default:
		return "", nil, false
	}
	return s, l[1], true
}

func nodeInputs(prompt *pyjson.Object, id string) *pyjson.Object {
	n, ok := prompt.Value(id).(*pyjson.Object)
	if !ok {
		return pyjson.NewObject()
	}
	in, _ := n.Get("inputs")
	if o, ok := in.(*pyjson.Object); ok {
		return o
	}
	return pyjson.NewObject()
}

// addNode adds id and its uncached ancestors (add_node).
func (l *execList) addNode(id string) {
	stack := []string{id}
	type link struct{ from, to string }
	var links []link
	for len(stack) > 0 {
		uid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := l.pendingIdx[uid]; ok {
			continue
		}
		l.pendingIdx[uid] = len(l.pending)
		l.pending = append(l.pending, uid)
		l.live++
		l.blockCount[uid] = 0
		l.blocking[uid] = &orderedSet{has: map[string]bool{}}
		inputs := nodeInputs(l.prompt, uid)
		for _, k := range inputs.Keys() {
			from, _, ok := linkOf(inputs.Value(k))
			if !ok || !l.prompt.Has(from) {
				continue
			}
			if !l.isCached(from) {
				stack = append(stack, from)
				links = append(links, link{from, uid})
			}
		}
	}
	for _, lk := range links {
		l.addStrongLink(lk.from, lk.to)
	}
}

func (l *execList) addStrongLink(from, to string) {
	if l.isCached(from) {
		return
	}
	l.addNode(from)
	if l.blocking[from].add(to) {
		l.blockCount[to]++
	}
}

func (l *execList) empty() bool { return l.live == 0 }

func (l *execList) ready() []string {
	var out []string
	for _, id := range l.pending {
		if id != "" && l.blockCount[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// next stages the node to run next; ok is false when nothing is ready while
// nodes are still pending (a cycle).
func (l *execList) next() (string, bool) {
	avail := l.ready()
	if len(avail) == 0 {
		return "", false
	}
	for _, id := range avail {
		if l.isOutput(id) {
			return id, true
		}
	}
	for _, id := range avail {
		for _, b := range l.blocking[id].keys {
			if l.isOutput(b) {
				return id, true
			}
		}
	}
	for _, id := range avail {
		for _, b := range l.blocking[id].keys {
			if bs, ok := l.blocking[b]; ok {
				for _, b1 := range bs.keys {
					if l.isOutput(b1) {
						return id, true
					}
				}
			}
		}
	}
	return avail[0], true
}

// complete removes a finished node and unblocks its consumers (pop_node).
func (l *execList) complete(id string) {
	i, ok := l.pendingIdx[id]
	if !ok {
		return
	}
	l.pending[i] = ""
	delete(l.pendingIdx, id)
	l.live--
	for _, b := range l.blocking[id].keys {
		l.blockCount[b]--
	}
	delete(l.blocking, id)
	// Compact now and then so ready() stays proportional to what is left.
	if len(l.pending) > 64 && l.live < len(l.pending)/2 {
		kept := l.pending[:0]
		for _, p := range l.pending {
			if p != "" {
				l.pendingIdx[p] = len(kept)
				kept = append(kept, p)
			}
		}
		l.pending = kept
	}
}

// cycleNodes returns the pending nodes that are part of a cycle.
func (l *execList) cycleNodes() []string {
	var out []string
	for _, id := range l.pending {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}
