package comfy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"cmp"

	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/truncate"
)

// PromptRequest is a POST /prompt call.
type PromptRequest struct {
	// Workflow is the API-format workflow to run.
	Workflow *Workflow
	// ClientID routes the execution messages to that websocket client.
	// Without it nobody receives progress or completion messages.
	ClientID string
	// PromptID is the id to give the prompt; "" lets the server choose.
	// Choosing it lets a caller correlate messages before the answer.
	PromptID string
	// ExtraData is merged into extra_data (e.g. extra_pnginfo). Keys holding
	// credentials are the caller's to protect: they are never logged here.
	ExtraData map[string]any
	// Front queues the prompt ahead of the others.
	Front bool
	// PartialExecutionTargets restricts the run to these output nodes.
	PartialExecutionTargets []string
}

// QueuedPrompt is the server's answer to an accepted prompt.
type QueuedPrompt struct {
	// PromptID is the prompt's id.
	PromptID string
	// Number is the queue number.
	Number json.Number
	// NodeErrors lists output nodes that failed validation and will not run
	// while others do (a 200 answer with some outputs refused).
	NodeErrors []NodeError
}

// QueuePrompt queues a workflow. A refusal (400) is a *PromptError that says,
// per node, what is wrong. It is never retried: ComfyUI would queue the
// prompt twice.
func (c *Client) QueuePrompt(ctx context.Context, req PromptRequest) (*QueuedPrompt, error) {
	if req.Workflow == nil {
		return nil, errors.New("comfy: QueuePrompt: nil workflow")
	}
	wf, _ := req.Workflow.MarshalJSON()
	members := []member{{Key: "prompt", Value: wf}}
	if req.ClientID != "" {
		members = append(members, member{Key: "client_id", Value: appendString(nil, req.ClientID)})
	}
	if req.PromptID != "" {
		members = append(members, member{Key: "prompt_id", Value: appendString(nil, req.PromptID)})
	}
	if len(req.ExtraData) > 0 {
		raw, err := marshalValue(req.ExtraData)
		if err != nil {
			return nil, fmt.Errorf("comfy: QueuePrompt: extra data: %w", err)
		}
		members = append(members, member{Key: "extra_data", Value: raw})
	}
	if req.Front {
		members = append(members, member{Key: "front", Value: json.RawMessage("true")})
	}
	if len(req.PartialExecutionTargets) > 0 {
		raw, _ := marshalValue(req.PartialExecutionTargets)
		members = append(members, member{Key: "partial_execution_targets", Value: raw})
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, path: "/prompt", body: appendObject(nil, members)})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return nil, fmt.Errorf("ComfyUI POST /prompt: reading the answer: %s", redact.Error(err))
	}
	if resp.StatusCode == http.StatusBadRequest {
		pe, derr := DecodePromptError(resp.StatusCode, body)
		if derr != nil {
			return nil, &APIError{Method: http.MethodPost, Path: resp.Request.URL.Path, StatusCode: resp.StatusCode, Body: truncateBytes(body, MaxErrorBody)}
		}
		c.logger.Info("comfy: prompt refused", "type", pe.Type, "node_errors", len(pe.NodeErrors))
		return nil, pe
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &APIError{Method: http.MethodPost, Path: resp.Request.URL.Path, StatusCode: resp.StatusCode, Body: truncateBytes(body, MaxErrorBody)}
	}
	var ok struct {
		PromptID   string          `json:"prompt_id"`
		Number     json.Number     `json:"number"`
		NodeErrors json.RawMessage `json:"node_errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&ok); err != nil || ok.PromptID == "" {
		return nil, fmt.Errorf("ComfyUI POST /prompt: unexpected answer: %s", truncate.Runes(string(body), 200))
	}
	nes, err := decodeNodeErrors(ok.NodeErrors)
	if err != nil {
		return nil, fmt.Errorf("ComfyUI POST /prompt: %w", err)
	}
	return &QueuedPrompt{PromptID: ok.PromptID, Number: ok.Number, NodeErrors: nes}, nil
}

func truncateBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// QueueItem is a queued or running prompt.
type QueueItem struct {
	// Number is the queue number (lower runs first).
	Number json.Number
	// PromptID is the prompt's id.
	PromptID string
	// Prompt is the API workflow, raw.
	Prompt json.RawMessage
	// ExtraData is the stored extra_data, raw.
	ExtraData json.RawMessage
	// OutputsToExecute lists the output nodes to run.
	OutputsToExecute []string
}

// QueueState is GET /queue: the running prompt(s) and the pending ones,
// pending sorted by queue number (the order they will run).
type QueueState struct {
	// Running is the prompt being run (at most one on ComfyUI).
	Running []QueueItem
	// Pending are the prompts waiting, in run order.
	Pending []QueueItem
}

// Contains says whether prompt id is running or pending.
func (q *QueueState) Contains(promptID string) bool {
	for _, list := range [][]QueueItem{q.Running, q.Pending} {
		for _, it := range list {
			if it.PromptID == promptID {
				return true
			}
		}
	}
	return false
}

// DecodeQueue decodes a GET /queue answer, whose items are heterogeneous
// arrays [number, prompt_id, prompt, extra_data, outputs_to_execute].
func DecodeQueue(data []byte) (*QueueState, error) {
	var r struct {
		Running []json.RawMessage `json:"queue_running"`
		Pending []json.RawMessage `json:"queue_pending"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("queue: %v", err)
	}
	q := &QueueState{}
	for _, g := range []struct {
		in  []json.RawMessage
		out *[]QueueItem
	}{{r.Running, &q.Running}, {r.Pending, &q.Pending}} {
		for i, raw := range g.in {
			var parts []json.RawMessage
			if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 2 {
				return nil, fmt.Errorf("queue item %d: want [number, prompt_id, …]", i)
			}
			it := QueueItem{}
			if n, ok := Value(parts[0]).Number(); ok {
				it.Number = n
			}
			if err := json.Unmarshal(parts[1], &it.PromptID); err != nil {
				return nil, fmt.Errorf("queue item %d: prompt id: %v", i, err)
			}
			if len(parts) > 2 {
				it.Prompt = parts[2]
			}
			if len(parts) > 3 {
				it.ExtraData = parts[3]
			}
			if len(parts) > 4 {
				_ = json.Unmarshal(parts[4], &it.OutputsToExecute)
			}
			*g.out = append(*g.out, it)
		}
	}
	slices.SortStableFunc(q.Pending, func(a, b QueueItem) int {
		af, _ := strconv.ParseFloat(a.Number.String(), 64)
		bf, _ := strconv.ParseFloat(b.Number.String(), 64)
		return cmp.Or(cmp.Compare(af, bf), cmp.Compare(a.PromptID, b.PromptID))
	})
	return q, nil
}

// Queue returns the server's queue.
func (c *Client) Queue(ctx context.Context) (*QueueState, error) {
	var data []byte
	if err := c.getJSON(ctx, "/queue", nil, &data); err != nil {
		return nil, err
	}
	q, err := DecodeQueue(data)
	if err != nil {
		return nil, fmt.Errorf("ComfyUI /queue: %w", err)
	}
	return q, nil
}

// DeleteQueued removes pending prompts from the queue (running ones are
// stopped with InterruptPrompt).
func (c *Client) DeleteQueued(ctx context.Context, promptIDs ...string) error {
	if len(promptIDs) == 0 {
		return nil
	}
	body, _ := marshalValue(map[string]any{"delete": promptIDs})
	return c.postJSON(ctx, "/queue", body, nil)
}

// ClearQueue removes every pending prompt.
func (c *Client) ClearQueue(ctx context.Context) error {
	return c.postJSON(ctx, "/queue", []byte(`{"clear":true}`), nil)
}

// Interrupt stops whatever prompt is running.
func (c *Client) Interrupt(ctx context.Context) error {
	return c.postJSON(ctx, "/interrupt", []byte(`{}`), nil)
}

// InterruptPrompt stops prompt id if it is the one running; otherwise the
// server does nothing.
func (c *Client) InterruptPrompt(ctx context.Context, promptID string) error {
	if promptID == "" {
		return errors.New("comfy: InterruptPrompt: empty prompt id (use Interrupt to stop whatever runs)")
	}
	body, _ := marshalValue(map[string]string{"prompt_id": promptID})
	return c.postJSON(ctx, "/interrupt", body, nil)
}

// Cancel stops prompt id wherever it is: deleted if pending, interrupted if
// running.
func (c *Client) Cancel(ctx context.Context, promptID string) error {
	return errors.Join(c.DeleteQueued(ctx, promptID), c.InterruptPrompt(ctx, promptID))
}

// FreeOptions are the flags of POST /free.
type FreeOptions struct {
	// UnloadModels unloads every model from memory.
	UnloadModels bool `json:"unload_models"`
	// FreeMemory frees cached memory and resets the executor caches.
	FreeMemory bool `json:"free_memory"`
}

// Free asks the server to free memory after the current prompt.
func (c *Client) Free(ctx context.Context, opts FreeOptions) error {
	body, _ := marshalValue(opts)
	return c.postJSON(ctx, "/free", body, nil)
}

// QueueRemaining returns how many prompts are pending or running (GET
// /prompt), a cheap measure of how busy the server is.
func (c *Client) QueueRemaining(ctx context.Context) (int, error) {
	var r struct {
		ExecInfo struct {
			QueueRemaining *int `json:"queue_remaining"`
		} `json:"exec_info"`
	}
	if err := c.getJSON(ctx, "/prompt", nil, &r); err != nil {
		return 0, err
	}
	if r.ExecInfo.QueueRemaining == nil {
		return 0, errors.New("ComfyUI GET /prompt: the answer has no exec_info.queue_remaining")
	}
	return *r.ExecInfo.QueueRemaining, nil
}
