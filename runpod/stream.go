package runpod

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"time"
)

// StreamChunk is one piece of a streaming job's output: one value its
// handler yielded.
type StreamChunk struct {
	// Output is the value the handler yielded.
	Output json.RawMessage
	// Raw is the whole chunk, including keys beside "output" such as vLLM's
	// "metrics".
	Raw json.RawMessage
}

// StreamResult is the answer of one /stream call.
type StreamResult struct {
	// State is the job's state.
	State State
	// Chunks are the chunks that are new since the previous call.
	Chunks []StreamChunk
}

// maxStreamAnswer caps one /stream answer (RunPod splits chunks at 1 MB).
const maxStreamAnswer = 64 << 20

// Stream fetches the chunks a streaming job produced since the previous call
// (GET /stream/{id}). Each call returns only new chunks, so a chunk whose
// answer is lost is lost; use Job.Stream to follow a job to its end.
func (c *Client) Stream(ctx context.Context, id string) (*StreamResult, error) {
	if err := checkJobID(id); err != nil {
		return nil, err
	}
	var res *StreamResult
	err := c.do(ctx, &call{method: http.MethodGet, path: jobPath("stream", id), jobID: id},
		func(resp *http.Response) error {
			r, err := decodeStream(io.LimitReader(resp.Body, maxStreamAnswer+1))
			res = r
			return err
		})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// decodeStream reads {"status": ..., "stream": [{"output": ...}, ...]}.
func decodeStream(r io.Reader) (*StreamResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(b) > maxStreamAnswer {
		return nil, fmt.Errorf("%w: a /stream answer over %d bytes", errTooLarge, maxStreamAnswer)
	}
	var wire struct {
		Status State             `json:"status"`
		Stream []json.RawMessage `json:"stream"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, fmt.Errorf("decode the /stream answer: %w", err)
	}
	res := &StreamResult{State: wire.Status}
	for _, raw := range wire.Stream {
		var ch struct {
			Output json.RawMessage `json:"output"`
		}
		if json.Unmarshal(raw, &ch) != nil {
			ch.Output = raw // a bare value rather than {"output": …}
		}
		res.Chunks = append(res.Chunks, StreamChunk{Output: ch.Output, Raw: raw})
	}
	return res, nil
}

// Stream follows a streaming job to its end, yielding each chunk once, in
// order. It polls /stream, at once while chunks keep coming and backing off
// to about a second while none do. When the job ends without completing it
// yields a *JobError last. Breaking out of the loop leaves the job running.
// As with Wait, the job's Limiter slot is given back when the job ends or
// RunPod refuses to say more about it (e.g. ErrJobNotFound).
func (j *Job) Stream(ctx context.Context) iter.Seq2[StreamChunk, error] {
	return func(yield func(StreamChunk, error) bool) {
		c := j.client
		interval := c.pollMin
		for {
			res, err := c.Stream(ctx, j.ID)
			if err != nil {
				if ctx.Err() == nil && !transient(err) {
					j.release() // the job is gone, or cannot be followed
				}
				yield(StreamChunk{}, err)
				return
			}
			for _, ch := range res.Chunks {
				if !yield(ch, nil) {
					return
				}
			}
			if res.State.Terminal() && len(res.Chunks) == 0 {
				if res.State != StateCompleted {
					yield(StreamChunk{}, j.endError(ctx, res.State))
				} else {
					j.release()
				}
				return
			}
			if len(res.Chunks) > 0 {
				interval = c.pollMin
				continue
			}
			if err := c.clock.Sleep(ctx, jitter(interval, c.rand)); err != nil {
				yield(StreamChunk{}, fmt.Errorf("runpod: streaming job %s: %w", j.ID, err))
				return
			}
			interval = min(interval*2, max(c.pollMin, time.Second))
		}
	}
}

// endError fetches the status of a job that ended without completing, for
// its error message.
func (j *Job) endError(ctx context.Context, state State) error {
	j.release()
	st, err := j.client.Status(ctx, j.ID)
	if err != nil || !st.State.Terminal() {
		return &JobError{JobID: j.ID, State: state}
	}
	defer st.Close()
	return st.Err()
}
