package gateway

import (
	"sync"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// Cache lifetimes. A job that has not ended may change on another replica,
// so it is re-read after cacheTTLLive; an ended job never changes.
const (
	cacheTTLLive  = 500 * time.Millisecond
	cacheTTLFinal = 10 * time.Minute
	cacheMax      = 20000
)

// jobCache keeps recently read jobs and their encoded answer, so that clients
// polling GET /v1/jobs/{id} cost a map lookup. Changes this replica makes go
// into it at once; changes of other replicas show within cacheTTLLive.
type jobCache struct {
	mu sync.Mutex
	m  map[string]*cached
}

type cached struct {
	job  *store.Job
	at   time.Time
	once sync.Once
	body []byte // the GET answer, made on first use
}

func newJobCache() *jobCache { return &jobCache{m: map[string]*cached{}} }

func (c *jobCache) get(id string, now time.Time) (*cached, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	ttl := cacheTTLLive
	if e.job.State.Terminal() {
		ttl = cacheTTLFinal
	}
	if now.Sub(e.at) >= ttl {
		return nil, false
	}
	return e, true
}

// put stores j unless a newer version is cached.
func (c *jobCache) put(j *store.Job, now time.Time) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[j.ID]; ok && e.job.Version > j.Version {
		return e
	}
	if len(c.m) >= cacheMax {
		// Drop about half, oldest reads first being as good as any here.
		n := 0
		for id := range c.m {
			delete(c.m, id)
			if n++; n >= cacheMax/2 {
				break
			}
		}
	}
	e := &cached{job: j, at: now}
	c.m[j.ID] = e
	return e
}

// outdated forgets job id if the cached copy is older than version, and
// reports whether it was (or none was cached): news of a change made
// elsewhere.
func (c *jobCache) outdated(id string, version int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if ok && e.job.Version >= version {
		return false
	}
	delete(c.m, id)
	return true
}

// drop forgets job id (deleted from the store).
func (c *jobCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

func (c *jobCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// hub tells event streams that a job changed on this replica.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

func (h *hub) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
