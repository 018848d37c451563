package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// cancelTimeout bounds the calls that stop an abandoned prompt on the server.
const cancelTimeout = 5 * time.Second

// RunOptions tune Client.Run.
type RunOptions struct {
	// OnEvent receives every websocket event about the prompt (and queue
	// status broadcasts and previews), in order, on Run's goroutine. Keep it
	// quick: the socket is not read while it runs.
	OnEvent func(Event)
	// PromptID is the id to queue the prompt under ("" = a new UUID).
	PromptID string
	// ExtraData is merged into the prompt's extra_data.
	ExtraData map[string]any
	// Front queues the prompt ahead of the others.
	Front bool
	// PartialExecutionTargets restricts the run to these output nodes.
	PartialExecutionTargets []string
	// NoWebsocket skips the websocket and relies on polling /history alone.
	NoWebsocket bool
	// KeepOnCancel leaves the prompt on the server when ctx ends; by default
	// Run deletes it from the queue or interrupts it.
	KeepOnCancel bool
}

// Result is a finished prompt.
type Result struct {
	// PromptID is the prompt's id.
	PromptID string
	// Number is the queue number the server gave.
	Number json.Number
	// NodeErrors lists output nodes the server refused while running the
	// others (a partially valid prompt).
	NodeErrors []NodeError
	// History is the prompt's history entry: outputs and status.
	History *HistoryEntry
}

// Files returns every output file of the run, in order (see
// HistoryEntry.Files).
func (r *Result) Files() []OutputFile {
	if r == nil || r.History == nil {
		return nil
	}
	return r.History.Files()
}

// Run queues wf and waits until it has finished, then returns its history
// entry. It is the call a worker makes for a job:
//
//  1. open the websocket with a fresh client id;
//  2. queue the prompt with that client id and its own prompt id;
//  3. pass the prompt's events to opts.OnEvent until executing{node: null}
//     says the run is over and its history is written;
//  4. read /history/{id} and return it.
//
// If the websocket cannot be opened or drops, Run keeps going: it polls
// /history (and /queue, to notice a prompt deleted from the queue) and
// reconnects with a new client id, whose queue broadcasts trigger extra
// polls. A socket that stalls without closing is covered by a slow safety
// poll. A refused prompt is a *PromptError. A run that fails returns the
// Result (with the outputs of the nodes that did run) and an
// *ExecutionError or *ExecutionInterrupted. When ctx ends Run stops the
// prompt on the server (unless opts.KeepOnCancel) and returns ctx.Err().
func (c *Client) Run(ctx context.Context, wf *Workflow, opts RunOptions) (*Result, error) {
	if wf == nil {
		return nil, errors.New("comfy: Run: nil workflow")
	}
	promptID := opts.PromptID
	if promptID == "" {
		promptID = c.newID()
	}
	r := &run{c: c, opts: opts, promptID: promptID}
	defer r.closeConn()
	if !opts.NoWebsocket {
		conn, err := c.Connect(ctx, "")
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.logger.Warn("comfy: no websocket; following the prompt by polling /history", "err", err)
		}
		r.conn = conn
	}
	clientID := ""
	if r.conn != nil {
		clientID = r.conn.ClientID
	}
	q, err := c.QueuePrompt(ctx, PromptRequest{
		Workflow: wf, ClientID: clientID, PromptID: promptID, ExtraData: opts.ExtraData,
		Front: opts.Front, PartialExecutionTargets: opts.PartialExecutionTargets,
	})
	if err != nil {
		if ctx.Err() != nil {
			// The server may have queued the prompt before ctx ended; its id
			// is ours, so it can still be stopped.
			r.abandon(ctx)
			return nil, ctx.Err()
		}
		return nil, err
	}
	if q.PromptID != promptID {
		// A server that ignores prompt_id: follow the id it chose.
		r.promptID = q.PromptID
	}
	res := &Result{PromptID: r.promptID, Number: q.Number, NodeErrors: q.NodeErrors}
	if len(q.NodeErrors) > 0 {
		c.logger.Warn("comfy: some output nodes were refused; the others run", "prompt_id", r.promptID, "refused", len(q.NodeErrors))
	}
	return r.wait(ctx, res)
}

// run is the state of one Run call.
type run struct {
	c        *Client
	opts     RunOptions
	promptID string
	conn     *Conn

	ended      bool // the prompt reported its end (or executing null arrived)
	dropped    bool // the first socket is gone: events of the prompt are lost
	reconnects int
	missing    int // consecutive polls that found the prompt in neither queue nor history
	lastErr    *ExecutionError
}

func (r *run) closeConn() {
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// interval is how long to wait before the next /history poll.
func (r *run) interval() time.Duration {
	if r.conn != nil && !r.dropped && !r.ended {
		return r.c.safetyPollInterval
	}
	return r.c.pollInterval
}

func (r *run) wait(ctx context.Context, res *Result) (*Result, error) {
	c := r.c
	poll := c.clock.NewTimer(r.interval())
	defer poll.Stop()
	var reconnect clockwork.Timer
	defer func() {
		if reconnect != nil {
			reconnect.Stop()
		}
	}()
	resetPoll := func(d time.Duration) {
		poll.Stop()
		poll.Reset(d)
	}
	for {
		var events <-chan connMsg
		if r.conn != nil {
			events = r.conn.ch
		}
		var reconnectC <-chan time.Time
		if reconnect != nil {
			reconnectC = reconnect.Chan()
		}
		select {
		case <-ctx.Done():
			r.abandon(ctx)
			return nil, ctx.Err()

		case m := <-events:
			if m.err != nil {
				c.logger.Info("comfy: websocket dropped; polling /history and reconnecting", "prompt_id", r.promptID, "err", m.err)
				r.closeConn()
				r.dropped = true
				if r.reconnects < c.reconnectAttempts {
					reconnect = c.clock.NewTimer(r.backoff())
				}
				resetPoll(0)
				continue
			}
			ev := m.ev
			if ev.PromptID != "" && ev.PromptID != r.promptID {
				continue
			}
			if r.opts.OnEvent != nil {
				r.opts.OnEvent(ev)
			}
			switch {
			case ev.Executing != nil && ev.Executing.Done && ev.PromptID == r.promptID:
				// History is written before this message: read it now.
				r.ended = true
				resetPoll(0)
			case ev.Error != nil, ev.Interrupted != nil, ev.Success != nil:
				if ev.PromptID == r.promptID {
					r.lastErr = ev.Error
					r.ended = true
					resetPoll(r.interval())
				}
			case ev.Status != nil && r.dropped:
				// A new socket gets no events of the prompt, but queue
				// changes hint that it may have finished.
				resetPoll(0)
			}

		case <-poll.Chan():
			done, err := r.check(ctx, res)
			if done {
				return res, err
			}
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				c.logger.Warn("comfy: polling the prompt failed; will retry", "prompt_id", r.promptID, "err", err)
			}
			resetPoll(r.interval())

		case <-reconnectC:
			reconnect = nil
			r.reconnects++
			conn, err := c.Connect(ctx, "")
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				c.logger.Info("comfy: websocket reconnect failed", "attempt", r.reconnects, "err", err)
				if r.reconnects < c.reconnectAttempts {
					reconnect = c.clock.NewTimer(r.backoff())
				}
				continue
			}
			r.conn = conn
			resetPoll(0)
		}
	}
}

// backoff is the wait before the next reconnect attempt.
func (r *run) backoff() time.Duration {
	d := r.c.reconnectBackoff << min(r.reconnects, 6)
	return min(d, 30*time.Second)
}

// check polls /history and, while the prompt has not reported its end over
// the socket, /queue. done says the run is over; err is then its outcome.
func (r *run) check(ctx context.Context, res *Result) (done bool, err error) {
	h, found, err := r.c.History(ctx, r.promptID)
	if err != nil {
		return false, err
	}
	if found {
		res.History = h
		if herr := h.Err(); herr != nil {
			return true, herr
		}
		return true, nil
	}
	if r.conn != nil && !r.dropped && !r.ended {
		return false, nil // the socket will say when it ends
	}
	q, err := r.c.Queue(ctx)
	if err != nil {
		return false, err
	}
	if q.Contains(r.promptID) {
		r.missing = 0
		return false, nil
	}
	// Not queued, not in history. The server writes history and leaves the
	// queue in one step, so this means deleted; confirm once to be sure.
	r.missing++
	if r.missing < 2 {
		return false, nil
	}
	if r.lastErr != nil {
		return true, r.lastErr
	}
	return true, fmt.Errorf("prompt %s: %w", r.promptID, ErrPromptDeleted)
}

// abandon stops the prompt on the server after ctx ended.
func (r *run) abandon(ctx context.Context) {
	if r.opts.KeepOnCancel {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	if err := r.c.Cancel(cctx, r.promptID); err != nil {
		r.c.logger.Warn("comfy: could not stop the abandoned prompt", "prompt_id", r.promptID, "err", err)
	}
}
