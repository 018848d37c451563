package engine

import (
	"container/list"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// history holds finished prompts in insertion order, like ComfyUI's history
// dict: re-using a prompt id replaces the entry in place, and once the size
// passes the capacity the oldest entry is dropped before a new one goes in
// (so it holds at most capacity+1 entries, as ComfyUI does). The caller
// (promptQueue) holds the lock.
type history struct {
	capacity int
	order    *list.List // of string ids
	entries  map[string]*historyEntry
}

type historyEntry struct {
	elem  *list.Element
	value *pyjson.Object
}

func newHistory(capacity int) *history {
	return &history{capacity: capacity, order: list.New(), entries: map[string]*historyEntry{}}
}

func (h *history) put(id string, v *pyjson.Object) {
	if e, ok := h.entries[id]; ok {
		e.value = v
		return
	}
	if len(h.entries) > h.capacity {
		if front := h.order.Front(); front != nil {
			h.remove(front.Value.(string))
		}
	}
	h.entries[id] = &historyEntry{elem: h.order.PushBack(id), value: v}
}

func (h *history) remove(id string) {
	e, ok := h.entries[id]
	if !ok {
		return
	}
	h.order.Remove(e.elem)
	delete(h.entries, id)
}

func (h *history) clear() {
	h.order.Init()
	h.entries = map[string]*historyEntry{}
}

func (h *history) get(id string) (*pyjson.Object, bool) {
	e, ok := h.entries[id]
	if !ok {
		return nil, false
	}
	return e.value, true
}

// page is get_history(max_items, offset): with offset < 0 and max_items set,
// the newest max_items entries; otherwise entries from offset on, at most
// max_items of them (ComfyUI's loop, quirks included: max_items=0 with an
// explicit offset still returns one entry).
func (h *history) page(maxItems *int, offset int) *pyjson.Object {
	out := pyjson.NewObject()
	if offset < 0 && maxItems != nil {
		offset = len(h.entries) - *maxItems
	}
	i := 0
	for el := h.order.Front(); el != nil; el = el.Next() {
		if i >= offset {
			id := el.Value.(string)
			out.Set(id, h.entries[id].value)
			if maxItems != nil && out.Len() >= *maxItems {
				break
			}
		}
		i++
	}
	return out
}
