package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
	"math/big"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// The engine caches like ComfyUI's default CLASSIC mode: a node's outputs
// and UI are stored under its input signature, a digest of its class_type,
// its IS_CHANGED value, its constant inputs and (recursively) the
// signatures of the nodes its links come from, plus the node id for
// NotIdempotent classes and classes with a hidden UNIQUE_ID input. Before
// each prompt, entries whose signature belongs to no node of that prompt are
// dropped, so only the latest prompt's nodes stay cached.
//
// ComfyUI lists a node's ancestors with their positions; the engine hashes
// them (a Merkle digest). The two agree except that the engine also treats
// two identical but distinct ancestor nodes like one shared node, which
// computes the same values.

type sigKey [sha256.Size]byte

// uiEntry is a node's cached UI dict with the metadata history shows.
type uiEntry struct {
	meta   *pyjson.Object
	output any
}

type caches struct {
	outputs map[sigKey][]any
	ui      map[sigKey]*uiEntry
}

func newCaches() *caches {
	return &caches{outputs: map[sigKey][]any{}, ui: map[sigKey]*uiEntry{}}
}

// clean drops entries not in keep (clean_unused).
func (c *caches) clean(keep map[sigKey]bool) {
	for k := range c.outputs {
		if !keep[k] {
			delete(c.outputs, k)
		}
	}
	for k := range c.ui {
		if !keep[k] {
			delete(c.ui, k)
		}
	}
}

// uncachable numbers signatures that must never match another (ComfyUI's
// NaN entries: a failed IS_CHANGED, a link to a missing node).
var uncachableSeq atomic.Uint64

func writeUncachable(h hash.Hash) {
	var b [9]byte
	b[0] = 'U'
	binary.BigEndian.PutUint64(b[1:], uncachableSeq.Add(1))
	h.Write(b[:])
}

// sigBuilder computes the signatures of a prompt's nodes.
type sigBuilder struct {
	prompt    *pyjson.Object
	reg       *registry
	isChanged func(id string, ce *classEntry, n *pyjson.Object) (value any, ok bool)
	memo      map[string]sigKey
}

func writeStr(h hash.Hash, tag byte, s string) {
	var b [9]byte
	b[0] = tag
	binary.BigEndian.PutUint64(b[1:], uint64(len(s)))
	h.Write(b[:])
	h.Write([]byte(s))
}

// writeCanon writes a value so that values Python considers equal (1, 1.0,
// True) hash alike, and dicts ignore key order (to_hashable sorts them).
func writeCanon(h hash.Hash, v any) {
	switch x := v.(type) {
	case nil:
		h.Write([]byte{'n'})
	case bool:
		if x {
			writeStr(h, 'i', "1")
		} else {
			writeStr(h, 'i', "0")
		}
	case int64:
		writeStr(h, 'i', strconv.FormatInt(x, 10))
	case *big.Int:
		writeStr(h, 'i', x.String())
	case float64:
		switch {
		case math.IsNaN(x):
			writeUncachable(h)
		case x == math.Trunc(x) && !math.IsInf(x, 0):
			bf, _ := big.NewFloat(x).Int(nil)
			writeStr(h, 'i', bf.String())
		default:
			writeStr(h, 'f', pyjson.FormatFloat(x))
		}
	case string:
		writeStr(h, 's', x)
	case *pyjson.Object:
		keys := slices.Clone(x.Keys())
		slices.Sort(keys)
		writeStr(h, 'd', strconv.Itoa(len(keys)))
		for _, k := range keys {
			writeStr(h, 'k', k)
			writeCanon(h, x.Value(k))
		}
	case []any:
		writeStr(h, 'l', strconv.Itoa(len(x)))
		for _, e := range x {
			writeCanon(h, e)
		}
	default:
		writeUncachable(h)
	}
}

// sig returns the signature of node id, computing ancestors first without
// recursion (prompts can be deep).
func (b *sigBuilder) sig(root string) sigKey {
	if k, ok := b.memo[root]; ok {
		return k
	}
	const visiting = 1
	state := map[string]int{}
	type frame struct{ id string }
	stack := []frame{{root}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if _, done := b.memo[f.id]; done {
			stack = stack[:len(stack)-1]
			continue
		}
		if state[f.id] != visiting {
			state[f.id] = visiting
			inputs := nodeInputs(b.prompt, f.id)
			for _, k := range inputs.Keys() {
				from, _, ok := linkOf(inputs.Value(k))
				if !ok || !b.prompt.Has(from) {
					continue
				}
				if _, done := b.memo[from]; !done && state[from] != visiting {
					stack = append(stack, frame{from})
				}
			}
			continue
		}
		// All ancestors are done (or on the current path: a cycle).
		stack = stack[:len(stack)-1]
		b.memo[f.id] = b.immediate(f.id, state)
		delete(state, f.id)
	}
	return b.memo[root]
}

func (b *sigBuilder) immediate(id string, state map[string]int) sigKey {
	h := sha256.New()
	n, ok := b.prompt.Value(id).(*pyjson.Object)
	var ce *classEntry
	var name string
	if ok {
		ct, _ := n.Get("class_type")
		name, _ = ct.(string)
		ce = b.reg.byName[name]
	}
	if ce == nil {
		writeUncachable(h)
		return sigKey(h.Sum(nil))
	}
	writeStr(h, 'c', name)
	if ce.class.IsChanged != nil {
		v, ok := b.isChanged(id, ce, n)
		if !ok {
			writeUncachable(h)
		} else {
			h.Write([]byte{'C'})
			writeCanon(h, v)
		}
	} else {
		h.Write([]byte{'F'})
	}
	if ce.class.NotIdempotent || ce.uniqueIDHidden {
		writeStr(h, 'u', id)
	}
	inputs := nodeInputs(b.prompt, id)
	keys := slices.Clone(inputs.Keys())
	slices.Sort(keys)
	for _, k := range keys {
		v := inputs.Value(k)
		writeStr(h, 'k', k)
		if from, socket, ok := linkOf(v); ok {
			h.Write([]byte{'L'})
			if anc, done := b.memo[from]; done && b.prompt.Has(from) {
				h.Write(anc[:])
			} else {
				writeUncachable(h) // missing node, or a cycle
			}
			writeCanon(h, socket)
			continue
		}
		h.Write([]byte{'V'})
		writeCanon(h, v)
	}
	return sigKey(h.Sum(nil))
}

// constantInputs returns a node's constant inputs converted for node code,
// for IsChanged (which, like IS_CHANGED, never sees linked values).
func constantInputs(ce *classEntry, n *pyjson.Object) node.Inputs {
	in := node.Inputs{}
	raw, _ := n.Get("inputs")
	inputs, ok := raw.(*pyjson.Object)
	if !ok {
		return in
	}
	for _, k := range inputs.Keys() {
		ie, declared := ce.byName[k]
		if !declared {
			continue
		}
		v := inputs.Value(k)
		if _, _, isLink := linkOf(v); isLink {
			continue
		}
		if _, isList := v.([]any); isList {
			continue
		}
		in[k] = goInput(ie, v)
	}
	return in
}
