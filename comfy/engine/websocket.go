package engine

import (
	"context"
	"net/http"

	"github.com/coder/websocket"

	"github.com/comfypod/comfypod/internal/pyjson"
)

// handleWS is ComfyUI's /ws: the client's first message is status with its
// sid; a client reconnecting while its prompt runs also gets executing with
// the current node; a first text frame {"type": "feature_flags", …} is
// answered with the server's flags; other client frames are ignored.
//
// Unlike ComfyUI, closing a socket that was replaced by a reconnect with the
// same clientId does not unregister the new one.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	s.lifeMu.Lock()
	ctx := s.wsCtx
	if ctx.Err() != nil {
		s.lifeMu.Unlock()
		writeText(w, http.StatusServiceUnavailable, "the server is stopping")
		return
	}
	s.wsWG.Add(1)
	s.lifeMu.Unlock()
	defer s.wsWG.Done()

	sid := query(r).Get("clientId")
	if sid == "" {
		sid = newUUID(false)
	}
	// The client is registered before the upgrade completes, so that a
	// prompt posted the moment the handshake returns cannot run before its
	// messages have somewhere to go (ComfyUI registers the socket in the same
	// event-loop step as the handshake).
	c := &wsClient{sid: sid, notify: make(chan struct{}, 1), firstSeen: true}
	// The queue lock orders the first status after earlier status broadcasts
	// and before later ones.
	s.q.mu.Lock()
	remaining := len(s.q.pending) + len(s.q.running)
	ok := s.hub.register(c, func(node *string) []frame {
		fs := []frame{message("status", statusData(remaining, sid))}
		if node != nil {
			fs = append(fs, message("executing", pyjson.NewObject().Set("node", *node)))
		}
		return fs
	})
	s.q.mu.Unlock()
	if !ok {
		writeText(w, http.StatusServiceUnavailable, "the server is stopping")
		return
	}
	// The origin check is the middleware's (ComfyUI's rules, not the
	// library's same-origin rule).
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.hub.unregister(c)
		s.log.Info("websocket upgrade failed", "err", err)
		return
	}
	c.setConn(conn)
	s.log.Debug("websocket connected", "sid", sid)

	writerDone := make(chan struct{})
	wctx, cancelWriter := context.WithCancel(ctx)
	go func() {
		defer close(writerDone)
		c.writeLoop(wctx)
	}()
	defer func() {
		s.hub.unregister(c)
		cancelWriter()
		<-writerDone
		_ = conn.CloseNow()
		s.log.Debug("websocket closed", "sid", sid)
	}()

	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		v, err := pyjson.Parse(data)
		if err != nil {
			s.log.Warn("invalid JSON from websocket client", "sid", sid)
			continue
		}
		if c.firstSeen {
			c.firstSeen = false
			if o, ok := v.(*pyjson.Object); ok {
				if t, _ := o.Get("type"); t == "feature_flags" {
					c.enqueue(message("feature_flags", s.features()))
					s.log.Debug("feature flags negotiated", "sid", sid)
				}
			}
		}
	}
}
