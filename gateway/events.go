package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// handleEvents streams a job's changes as Server-Sent Events until it ends:
// each event is the whole job (event "job", id its version), then "end".
// A client reconnecting with Last-Event-ID gets only what is newer. Changes
// made on this replica arrive at once, others' within EventsInterval.
func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e, aerr := s.job(ctx, r.PathValue("id"), true)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, internal(fmt.Errorf("the response writer cannot flush")))
		return
	}
	var last int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	}
	id := e.job.ID
	changes, unsubscribe := s.hub.subscribe(id)
	defer unsubscribe()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	fl.Flush()

	poll := s.clock.NewTicker(s.cfg.EventsInterval)
	defer poll.Stop()
	keepAlive := s.clock.NewTicker(s.cfg.KeepAlive)
	defer keepAlive.Stop()
	j := e.job
	for {
		if j.Version > last {
			b, err := json.Marshal(view(j, s.baseURL()))
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: job\ndata: %s\n\n", j.Version, b); err != nil {
				return
			}
			last = j.Version
			fl.Flush()
		}
		if j.State.Terminal() {
			_, _ = fmt.Fprint(w, "event: end\ndata: {}\n\n")
			fl.Flush()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.life.Done():
			return
		case <-keepAlive.Chan():
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
			continue
		case <-changes:
		case <-poll.Chan():
		}
		fresh, aerr := s.job(ctx, id, true)
		if aerr != nil {
			continue // the store is away: keep the stream and try again
		}
		j = fresh.job
	}
}
