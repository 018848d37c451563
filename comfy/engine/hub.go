package engine

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// hub is the set of websocket clients and the single ordered path every
// message takes to them (ComfyUI's send_sync and its asyncio message queue).
// Each client has its own FIFO drained by its writer goroutine, and all
// enqueueing happens under hub.mu, so every client sees messages in the order
// they were produced.
type hub struct {
	log *slog.Logger

	mu      sync.Mutex
	clients map[string]*wsClient   // by sid; a reconnect replaces the entry
	live    map[*wsClient]struct{} // every open connection, replaced ones too
	closed  bool

	// What the executor is doing, for a client reconnecting mid-prompt.
	curClient    string
	curHasClient bool
	lastNode     *string
}

// maxQueuedFrames bounds a client's backlog; a client that falls further
// behind is disconnected rather than growing the server's memory.
const maxQueuedFrames = 8192

// wsWriteTimeout bounds one frame write to a stalled client.
const wsWriteTimeout = 30 * time.Second

type frame struct {
	binary bool
	data   []byte
}

type wsClient struct {
	sid string

	mu     sync.Mutex
	conn   *websocket.Conn // set once the upgrade is done
	queue  []frame
	notify chan struct{}
	gone   bool

	// firstSeen is true until the client's first JSON text frame; only that
	// frame can negotiate feature flags.
	firstSeen bool
}

func newHub(log *slog.Logger) *hub {
	return &hub{log: log, clients: map[string]*wsClient{}, live: map[*wsClient]struct{}{}}
}

// enqueue appends f to the client's backlog; it reports false when the
// client is gone or too far behind (and then drops it).
func (c *wsClient) enqueue(f frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return false
	}
	if len(c.queue) >= maxQueuedFrames {
		c.gone = true
		if c.conn != nil {
			_ = c.conn.CloseNow() // a client that does not read gets no close handshake
		}
		return false
	}
	c.queue = append(c.queue, f)
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return true
}

func (c *wsClient) take() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}

func (c *wsClient) setConn(conn *websocket.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
}

func (c *wsClient) getConn() *websocket.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// writeLoop sends the client's frames until ctx is done or a write fails.
// It starts once the connection is set.
func (c *wsClient) writeLoop(ctx context.Context) {
	conn := c.getConn()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.notify:
		}
		for _, f := range c.take() {
			wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			typ := websocket.MessageText
			if f.binary {
				typ = websocket.MessageBinary
			}
			err := conn.Write(wctx, typ, f.data)
			cancel()
			if err != nil {
				c.mu.Lock()
				c.gone = true
				c.mu.Unlock()
				_ = conn.CloseNow()
				return
			}
		}
	}
}

// target names the recipients of a message: one sid, or everybody.
type target struct {
	all bool
	sid string
}

var broadcast = target{all: true}

func to(sid string) target { return target{sid: sid} }

// message encodes {"type": event, "data": data}.
func message(event string, data any) frame {
	return frame{data: pyjson.Marshal(pyjson.NewObject().Set("type", event).Set("data", data))}
}

// binaryFrame encodes a binary event: a big-endian uint32 type, then data.
func binaryFrame(event uint32, data []byte) frame {
	b := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(b, event)
	copy(b[4:], data)
	return frame{binary: true, data: b}
}

func (h *hub) send(t target, f frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(t, f)
}

func (h *hub) sendLocked(t target, f frame) {
	if t.all {
		for _, c := range h.clients {
			c.enqueue(f)
		}
		return
	}
	if c, ok := h.clients[t.sid]; ok {
		c.enqueue(f)
	}
}

// register adds a connected client under its sid, replacing an earlier socket
// with the same sid, and queues its first messages before anything else can
// reach it. It reports false once the hub is closed.
func (h *hub) register(c *wsClient, first func(reconnectNode *string) []frame) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c.sid] = c
	h.live[c] = struct{}{}
	var node *string
	if h.curHasClient && h.curClient == c.sid && h.lastNode != nil {
		node = h.lastNode
	}
	for _, f := range first(node) {
		c.enqueue(f)
	}
	return true
}

func (h *hub) unregister(c *wsClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients[c.sid] == c {
		delete(h.clients, c.sid)
	}
	delete(h.live, c)
}

// setRunning records the client of the prompt being run (or none).
func (h *hub) setRunning(sid string, has bool) {
	h.mu.Lock()
	h.curClient, h.curHasClient, h.lastNode = sid, has, nil
	h.mu.Unlock()
}

// sendExecuting sends `executing` for node and remembers it for reconnects.
func (h *hub) sendExecuting(sid string, nodeID string, f frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := nodeID
	h.lastNode = &n
	h.sendLocked(to(sid), f)
}

func (h *hub) clearLastNode() {
	h.mu.Lock()
	h.lastNode = nil
	h.mu.Unlock()
}

// closeAll closes every connection and refuses new ones.
func (h *hub) closeAll() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsClient, 0, len(h.live))
	for c := range h.live {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		conn := c.getConn()
		if conn == nil {
			continue // still upgrading; its handler sees the hub closed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = conn.Close(websocket.StatusGoingAway, "server stopping")
		}()
	}
	wg.Wait()
}

// reopen lets clients connect again after a Stop/Start cycle.
func (h *hub) reopen() {
	h.mu.Lock()
	h.closed = false
	h.mu.Unlock()
}
