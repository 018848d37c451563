package comfy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/coder/websocket"

	"github.com/comfypod/comfypod/internal/redact"
)

// wsReadLimit bounds one websocket frame: execution_error messages carry
// tracebacks and tensor dumps, and full-size previews are images.
const wsReadLimit = 64 << 20

// Conn is an open websocket to the server (/ws?clientId=…). Events arrive in
// the server's order; Next returns them one by one. A Conn is owned by one
// goroutine; Close it to release the reader goroutine it runs.
type Conn struct {
	// ClientID is the id the socket registered with; pass it as
	// PromptRequest.ClientID to receive a prompt's execution messages.
	ClientID string

	ws     *websocket.Conn
	ch     chan connMsg
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

type connMsg struct {
	ev  Event
	err error
}

// Connect opens the websocket with clientID ("" = a new random id). Use one
// id per live connection: ComfyUI keeps one socket per id, and a late close
// of an old socket with the same id can unregister the new one.
func (c *Client) Connect(ctx context.Context, clientID string) (*Conn, error) {
	if clientID == "" {
		clientID = c.newID()
	}
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = c.base.Path + "/ws"
	u.RawQuery = url.Values{"clientId": {clientID}}.Encode()
	ws, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: c.header.Clone()})
	if err != nil {
		status := ""
		if resp != nil {
			status = fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
			resp.Body.Close()
		}
		return nil, fmt.Errorf("ComfyUI websocket /ws%s: %s", status, redact.Error(err))
	}
	ws.SetReadLimit(wsReadLimit)
	// Ask for type-4 previews, which carry the prompt and node ids. Servers
	// that do not know the handshake ignore it.
	hello := []byte(`{"type":"feature_flags","data":{"supports_preview_metadata":true}}`)
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("ComfyUI websocket /ws: %s", redact.Error(err))
	}
	rctx, cancel := context.WithCancel(context.Background())
	conn := &Conn{ClientID: clientID, ws: ws, ch: make(chan connMsg), cancel: cancel, done: make(chan struct{})}
	go conn.read(rctx, c)
	return conn, nil
}

// read forwards frames until the socket fails or the Conn is closed; the
// last message it sends carries the error.
func (conn *Conn) read(ctx context.Context, c *Client) {
	defer close(conn.done)
	for {
		typ, data, err := conn.ws.Read(ctx)
		var m connMsg
		switch {
		case err != nil:
			m.err = fmt.Errorf("ComfyUI websocket closed: %s", redact.Error(err))
		case typ == websocket.MessageBinary:
			ev, derr := DecodeBinaryEvent(data)
			if derr != nil {
				c.logger.Warn("comfy: skipping a malformed binary websocket frame", "err", derr)
				continue
			}
			m.ev = ev
		default:
			ev, derr := DecodeEvent(data)
			if derr != nil {
				c.logger.Warn("comfy: skipping a malformed websocket message", "err", derr)
				continue
			}
			m.ev = ev
		}
		select {
		case conn.ch <- m:
		case <-ctx.Done():
			return
		}
		if m.err != nil {
			return
		}
	}
}

// Next returns the next event. After the socket fails it returns the error
// (every later call returns ErrConnClosed).
func (conn *Conn) Next(ctx context.Context) (Event, error) {
	select {
	case m, ok := <-conn.ch:
		if !ok {
			return Event{}, ErrConnClosed
		}
		return m.ev, m.err
	case <-conn.done:
		// The reader stopped; drain a message it may have left.
		select {
		case m := <-conn.ch:
			return m.ev, m.err
		default:
		}
		return Event{}, ErrConnClosed
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// ErrConnClosed is returned by Conn.Next once the socket is closed.
var ErrConnClosed = errors.New("ComfyUI websocket is closed")

// Close closes the socket and waits for the reader goroutine. It is safe to
// call more than once.
func (conn *Conn) Close() error {
	conn.once.Do(func() {
		conn.cancel()
		conn.ws.CloseNow()
		<-conn.done
	})
	return nil
}
