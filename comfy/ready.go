package comfy

import (
	"context"
	"fmt"
	"time"
)

// ReadyIntervalDefault is how often WaitReady polls.
const ReadyIntervalDefault = 250 * time.Millisecond

// ReadyOptions tune WaitReady.
type ReadyOptions struct {
	// Interval between polls (default ReadyIntervalDefault).
	Interval time.Duration
	// Alive, when set, is asked after every failed poll whether the server
	// process still runs; an error ends the wait at once (a crashed ComfyUI
	// fails fast instead of at the deadline).
	Alive func() error
}

// WaitReady polls GET /system_stats until the server answers 200, ctx ends
// (the error then says what the last poll saw), or opts.Alive reports the
// process gone (an error matching ErrNotReady).
func (c *Client) WaitReady(ctx context.Context, opts ReadyOptions) error {
	interval := opts.Interval
	if interval <= 0 {
		interval = ReadyIntervalDefault
	}
	var last error
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, max(interval*4, 2*time.Second))
		resp, err := c.send(pctx, request{method: "GET", path: "/system_stats"})
		if err == nil {
			err = checkResponse(resp)
			if err == nil {
				resp.Body.Close()
			}
		}
		cancel()
		if err == nil {
			if attempt > 1 {
				c.logger.Info("comfy: server ready", "polls", attempt)
			}
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return fmt.Errorf("ComfyUI at %s did not become ready: %w (last poll: %v)", c.BaseURL(), ctx.Err(), last)
		}
		if opts.Alive != nil {
			if aerr := opts.Alive(); aerr != nil {
				return fmt.Errorf("%w: the server process is gone (%v); last poll: %v", ErrNotReady, aerr, last)
			}
		}
		t := c.clock.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ComfyUI at %s did not become ready: %w (last poll: %v)", c.BaseURL(), ctx.Err(), last)
		case <-t.Chan():
		}
	}
}
