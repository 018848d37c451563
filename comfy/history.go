package comfy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// FileRef names a file on the server the way /view and LoadImage do.
type FileRef struct {
	// Filename is the file's name.
	Filename string `json:"filename"`
	// Subfolder is the folder under Type's base ("" for the base itself).
	Subfolder string `json:"subfolder"`
	// Type is output, temp or input.
	Type string `json:"type"`
}

// OutputFile is one file a node reported in its UI output.
type OutputFile struct {
	FileRef
	// Node is the id of the node that wrote it; Key is the output family
	// ("images", "gifs", "audio", a custom key).
	Node, Key string
	// Format is the media type VHS reports for "gifs" ("video/h264-mp4"), or "".
	Format string
	// FrameRate is a video's frame rate, or 0.
	FrameRate float64
	// Fullpath is the server-local path VHS reports (not portable).
	Fullpath string
	// Raw is the entry as the server sent it.
	Raw json.RawMessage
}

// IsTemp says whether the file is a temporary preview (PreviewImage,
// save_output=false), which wrappers usually skip.
func (f OutputFile) IsTemp() bool { return f.Type == "temp" }

// NodeOutput is one node's UI output: its files by family, plus the
// non-file lists ComfyUI reports beside them.
type NodeOutput struct {
	// Node is the node's id.
	Node string
	// Files are every entry with a "filename", in order.
	Files []OutputFile
	// Animated is the "animated" list of animated savers (one boolean per
	// image entry; not files).
	Animated []bool
	// Text is the "text" list of text-preview nodes.
	Text []string
	// Raw is the UI dict as the server sent it.
	Raw json.RawMessage
}

func decodeNodeOutput(node string, raw json.RawMessage) (*NodeOutput, error) {
	ms, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("output of node %s: %v", node, err)
	}
	out := &NodeOutput{Node: node, Raw: raw}
	for _, m := range ms {
		if kindOf(m.Value) != "an array" {
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(m.Value, &items); err != nil {
			return nil, fmt.Errorf("output %s of node %s: %v", m.Key, node, err)
		}
		switch m.Key {
		case "animated":
			for _, it := range items {
				if b, ok := Value(it).Bool(); ok {
					out.Animated = append(out.Animated, b)
				}
			}
			continue
		case "text":
			for _, it := range items {
				if s, ok := Value(it).Text(); ok {
					out.Text = append(out.Text, s)
				}
			}
			continue
		}
		for _, it := range items {
			if kindOf(it) != "an object" {
				continue
			}
			var f struct {
				Filename  *string         `json:"filename"`
				Subfolder string          `json:"subfolder"`
				Type      string          `json:"type"`
				Format    string          `json:"format"`
				FrameRate json.RawMessage `json:"frame_rate"`
				Fullpath  string          `json:"fullpath"`
			}
			if err := json.Unmarshal(it, &f); err != nil || f.Filename == nil {
				continue // not a file entry
			}
			of := OutputFile{FileRef: FileRef{Filename: *f.Filename, Subfolder: f.Subfolder, Type: f.Type},
				Node: node, Key: m.Key, Format: f.Format, Fullpath: f.Fullpath, Raw: it}
			if of.Type == "" {
				of.Type = "output"
			}
			if n, ok := Value(f.FrameRate).Number(); ok {
				of.FrameRate, _ = strconv.ParseFloat(n.String(), 64)
			}
			out.Files = append(out.Files, of)
		}
	}
	return out, nil
}

// HistoryEntry is a finished prompt as GET /history reports it.
type HistoryEntry struct {
	// PromptID is the prompt's id.
	PromptID string
	// Number is the prompt's queue number.
	Number json.Number
	// Prompt is the API workflow as it ran, raw.
	Prompt json.RawMessage
	// ExtraData is the extra_data stored with it (client_id, …), raw.
	ExtraData json.RawMessage
	// OutputsToExecute are the output nodes the server ran.
	OutputsToExecute []string
	// Outputs are the UI outputs by node, in the server's order.
	Outputs []*NodeOutput
	// Status is the run's outcome.
	Status HistoryStatus
	// Meta is the per-node display metadata, raw.
	Meta json.RawMessage
}

// HistoryStatus is the status object of a history entry.
type HistoryStatus struct {
	// StatusStr is "success" or "error".
	StatusStr string `json:"status_str"`
	// Completed is true when the run went to the end.
	Completed bool `json:"completed"`
	// Messages are the run's execution messages, [type, data] pairs.
	Messages []StatusMessage `json:"-"`
}

// StatusMessage is one [type, data] pair of HistoryStatus.Messages.
type StatusMessage struct {
	// Type is the message type (execution_start, execution_error, …).
	Type string
	// Data is the message's data, raw.
	Data json.RawMessage
}

// Files returns every output file of every node, in order.
func (h *HistoryEntry) Files() []OutputFile {
	var out []OutputFile
	for _, o := range h.Outputs {
		out = append(out, o.Files...)
	}
	return out
}

// Output returns the output of node id.
func (h *HistoryEntry) Output(id string) (*NodeOutput, bool) {
	for _, o := range h.Outputs {
		if o.Node == id {
			return o, true
		}
	}
	return nil, false
}

// Err returns the run's failure: an *ExecutionError or an
// *ExecutionInterrupted taken from the status messages, or nil for success.
func (h *HistoryEntry) Err() error {
	for i := len(h.Status.Messages) - 1; i >= 0; i-- {
		m := h.Status.Messages[i]
		switch m.Type {
		case EventExecutionError:
			e := new(ExecutionError)
			if json.Unmarshal(m.Data, e) == nil {
				return e
			}
		case EventExecutionInterrupted:
			e := new(ExecutionInterrupted)
			if json.Unmarshal(m.Data, e) == nil {
				return e
			}
		}
	}
	if h.Status.StatusStr == "error" {
		return &ExecutionError{PromptID: h.PromptID, ExceptionMessage: "the server reports an error but sent no execution_error message"}
	}
	return nil
}

// DecodeHistory decodes a GET /history or /history/{id} answer: prompt id →
// entry, in the server's order. An empty object ({}) gives no entries.
func DecodeHistory(data []byte) ([]*HistoryEntry, error) {
	ms, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("history: %v", err)
	}
	out := make([]*HistoryEntry, 0, len(ms))
	for _, m := range ms {
		h, err := decodeHistoryEntry(m.Key, m.Value)
		if err != nil {
			return nil, fmt.Errorf("history %s: %w", m.Key, err)
		}
		out = append(out, h)
	}
	return out, nil
}

func decodeHistoryEntry(id string, raw json.RawMessage) (*HistoryEntry, error) {
	var r struct {
		Prompt  []json.RawMessage `json:"prompt"`
		Outputs json.RawMessage   `json:"outputs"`
		Status  *struct {
			StatusStr string              `json:"status_str"`
			Completed bool                `json:"completed"`
			Messages  [][]json.RawMessage `json:"messages"`
		} `json:"status"`
		Meta json.RawMessage `json:"meta"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	h := &HistoryEntry{PromptID: id, Meta: r.Meta}
	// prompt is [number, prompt_id, prompt, extra_data, outputs_to_execute].
	if len(r.Prompt) > 0 {
		if n, ok := Value(r.Prompt[0]).Number(); ok {
			h.Number = n
		}
	}
	if len(r.Prompt) > 2 {
		h.Prompt = r.Prompt[2]
	}
	if len(r.Prompt) > 3 {
		h.ExtraData = r.Prompt[3]
	}
	if len(r.Prompt) > 4 {
		_ = json.Unmarshal(r.Prompt[4], &h.OutputsToExecute)
	}
	if kindOf(r.Outputs) == "an object" {
		ms, err := decodeObject(r.Outputs)
		if err != nil {
			return nil, fmt.Errorf("outputs: %v", err)
		}
		for _, m := range ms {
			if kindOf(m.Value) != "an object" {
				continue
			}
			o, err := decodeNodeOutput(m.Key, m.Value)
			if err != nil {
				return nil, err
			}
			h.Outputs = append(h.Outputs, o)
		}
	}
	if r.Status != nil {
		h.Status.StatusStr, h.Status.Completed = r.Status.StatusStr, r.Status.Completed
		for _, pair := range r.Status.Messages {
			if len(pair) != 2 {
				continue
			}
			var typ string
			if json.Unmarshal(pair[0], &typ) != nil {
				continue
			}
			h.Status.Messages = append(h.Status.Messages, StatusMessage{Type: typ, Data: pair[1]})
		}
	}
	return h, nil
}

// History returns the history entry of prompt id. found is false while the
// prompt is queued or running (the server answers {} until the run has
// finished and its history is written) and for unknown ids.
func (c *Client) History(ctx context.Context, promptID string) (entry *HistoryEntry, found bool, err error) {
	if promptID == "" {
		return nil, false, errors.New("comfy: History: empty prompt id")
	}
	var data []byte
	if err := c.getJSON(ctx, "/history/"+url.PathEscape(promptID), nil, &data); err != nil {
		return nil, false, err
	}
	entries, err := DecodeHistory(data)
	if err != nil {
		return nil, false, fmt.Errorf("ComfyUI /history/%s: %w", promptID, err)
	}
	for _, e := range entries {
		if e.PromptID == promptID {
			return e, true, nil
		}
	}
	return nil, false, nil
}

// HistoryList returns up to maxItems of the newest history entries, oldest
// first (maxItems ≤ 0: all the server keeps).
func (c *Client) HistoryList(ctx context.Context, maxItems int) ([]*HistoryEntry, error) {
	var q url.Values
	if maxItems > 0 {
		q = url.Values{"max_items": {strconv.Itoa(maxItems)}}
	}
	var data []byte
	if err := c.getJSON(ctx, "/history", q, &data); err != nil {
		return nil, err
	}
	entries, err := DecodeHistory(data)
	if err != nil {
		return nil, fmt.Errorf("ComfyUI /history: %w", err)
	}
	return entries, nil
}

// DeleteHistory removes entries from the server's history.
func (c *Client) DeleteHistory(ctx context.Context, promptIDs ...string) error {
	body, _ := marshalValue(map[string]any{"delete": promptIDs})
	return c.postJSON(ctx, "/history", body, nil)
}
