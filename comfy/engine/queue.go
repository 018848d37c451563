package engine

import (
	"container/heap"
	"context"
	"sync"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// queueItem is ComfyUI's queue tuple (number, prompt_id, prompt, extra_data,
// outputs_to_execute, sensitive).
type queueItem struct {
	number    any // int64 from the server counter, float64 when the caller chose it
	seq       uint64
	id        string
	prompt    *pyjson.Object
	extra     *pyjson.Object
	outputs   []string
	sensitive *pyjson.Object
}

// tuple returns the item as /queue and history show it: the first five
// members of the tuple.
func (it *queueItem) tuple() []any {
	outs := make([]any, len(it.outputs))
	for i, o := range it.outputs {
		outs[i] = o
	}
	return []any{it.number, it.id, it.prompt, it.extra, outs}
}

// less orders items like Python's tuple comparison on (number, prompt_id),
// then by arrival.
func (it *queueItem) less(o *queueItem) bool {
	if c, ok, _ := pyCompare("<", it.number, o.number); ok && c != 0 {
		return c < 0
	}
	if it.id != o.id {
		return it.id < o.id
	}
	return it.seq < o.seq
}

type itemHeap []*queueItem

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(*queueItem)) }
func (h *itemHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// promptQueue is ComfyUI's PromptQueue: a min-heap of pending prompts, the
// running one, the history, and the /free flags, under one mutex. Every
// change broadcasts a status message (queue_updated) while the mutex is held,
// so clients see queue changes in the order they happened.
type promptQueue struct {
	mu          sync.Mutex
	pending     itemHeap
	running     map[int]*queueItem
	taskCounter int
	number      int64 // the server's prompt counter
	seq         uint64
	history     *history
	freeFlags   freeFlags
	wake        chan struct{}
	onUpdate    func(remaining int) // called with mu held
}

// freeFlags are POST /free's requests, applied between prompts.
type freeFlags struct {
	unloadModels, freeMemory bool
	set                      bool
}

func newPromptQueue(historySize int, onUpdate func(int)) *promptQueue {
	return &promptQueue{
		running:  map[int]*queueItem{},
		history:  newHistory(historySize),
		wake:     make(chan struct{}, 1),
		onUpdate: onUpdate,
	}
}

func (q *promptQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *promptQueue) updatedLocked() {
	if q.onUpdate != nil {
		q.onUpdate(len(q.pending) + len(q.running))
	}
}

// nextNumber returns the number of a prompt posted without one and advances
// the counter; front makes it negative, so the prompt runs first.
func (q *promptQueue) nextNumber(front bool) any {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.number
	q.number++
	if front {
		n = -n
	}
	return n
}

func (q *promptQueue) put(it *queueItem) {
	q.mu.Lock()
	q.seq++
	it.seq = q.seq
	heap.Push(&q.pending, it)
	q.updatedLocked()
	q.mu.Unlock()
	q.signal()
}

// get pops the first pending prompt and marks it running; ok is false when
// nothing is pending.
func (q *promptQueue) get() (it *queueItem, taskID int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil, 0, false
	}
	it = heap.Pop(&q.pending).(*queueItem)
	taskID = q.taskCounter
	q.taskCounter++
	q.running[taskID] = it
	q.updatedLocked()
	return it, taskID, true
}

// taskDone writes the history entry of a finished prompt and removes it from
// the running set.
func (q *promptQueue) taskDone(taskID int, entry *pyjson.Object) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.running[taskID]
	delete(q.running, taskID)
	if it != nil {
		q.history.put(it.id, entry)
	}
	q.updatedLocked()
}

// wait blocks until something may be pending or flagged, or ctx is done.
func (q *promptQueue) wait(ctx context.Context) error {
	select {
	case <-q.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *promptQueue) remaining() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + len(q.running)
}

// snapshot returns the running and pending tuples for GET /queue. Pending
// items are listed in heap order, as ComfyUI does.
func (q *promptQueue) snapshot() (running, pending []any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	running = []any{}
	for id := 0; id < q.taskCounter; id++ {
		if it, ok := q.running[id]; ok {
			running = append(running, it.tuple())
		}
	}
	pending = make([]any, 0, len(q.pending))
	for _, it := range q.pending {
		pending = append(pending, it.tuple())
	}
	return running, pending
}

func (q *promptQueue) wipe() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wipeLocked()
}

func (q *promptQueue) wipeLocked() {
	q.pending = nil
	q.updatedLocked()
}

// deleteItem removes the first pending prompt with the given id.
func (q *promptQueue) deleteItem(id any) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, it := range q.pending {
		if !pyEqual(it.id, id) {
			continue
		}
		if len(q.pending) == 1 {
			q.wipeLocked()
		} else {
			heap.Remove(&q.pending, i)
		}
		q.updatedLocked()
		return true
	}
	return false
}

func (q *promptQueue) setFlags(unload, free bool) {
	q.mu.Lock()
	if unload {
		q.freeFlags.unloadModels = true
		q.freeFlags.set = true
	}
	if free {
		q.freeFlags.freeMemory = true
		q.freeFlags.set = true
	}
	q.mu.Unlock()
	q.signal()
}

func (q *promptQueue) takeFlags() freeFlags {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.freeFlags
	q.freeFlags = freeFlags{}
	return f
}
