package engine

import (
	"math"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// progressState is ComfyUI's ProgressRegistry for one prompt: the state of
// every node seen so far, sent whole in each progress_state message. Values
// keep Python's number forms: a node that starts gets 0.0/1.0 (floats), a
// node that is only ever finished (served from the cache) gets 1/1 (ints).
type progressState struct {
	promptID string
	order    []string
	nodes    map[string]*nodeProgress
}

type nodeProgress struct {
	state      string // pending, running, finished
	value, max any    // int64 or float64
}

func newProgressState(promptID string) *progressState {
	return &progressState{promptID: promptID, nodes: map[string]*nodeProgress{}}
}

func (p *progressState) ensure(id string) *nodeProgress {
	n, ok := p.nodes[id]
	if !ok {
		n = &nodeProgress{state: "pending", value: int64(0), max: int64(1)}
		p.nodes[id] = n
		p.order = append(p.order, id)
	}
	return n
}

func (p *progressState) start(id string) {
	n := p.ensure(id)
	n.state, n.value, n.max = "running", 0.0, 1.0
}

func (p *progressState) update(id string, value, max float64) {
	n := p.ensure(id)
	n.state, n.value, n.max = "running", progressNumber(value), progressNumber(max)
}

func (p *progressState) finish(id string) {
	n := p.ensure(id)
	n.state, n.value = "finished", n.max
}

// progressNumber gives whole progress values the int form Python nodes
// usually report (ProgressBar counts steps).
func progressNumber(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

// message returns the progress_state payload: every node that is not pending.
func (p *progressState) message() *pyjson.Object {
	nodes := pyjson.NewObject()
	for _, id := range p.order {
		n := p.nodes[id]
		if n.state == "pending" {
			continue
		}
		nodes.Set(id, pyjson.NewObject().
			Set("value", n.value).
			Set("max", n.max).
			Set("state", n.state).
			Set("node_id", id).
			Set("prompt_id", p.promptID).
			Set("display_node_id", id).
			Set("parent_node_id", nil).
			Set("real_node_id", id))
	}
	return pyjson.NewObject().Set("prompt_id", p.promptID).Set("nodes", nodes)
}
