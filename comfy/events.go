package comfy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Websocket message types (the "type" of a text frame), plus the names this
// package gives binary frames.
const (
	EventStatus               = "status"
	EventExecutionStart       = "execution_start"
	EventExecutionCached      = "execution_cached"
	EventExecuting            = "executing"
	EventProgress             = "progress"
	EventProgressState        = "progress_state"
	EventExecuted             = "executed"
	EventExecutionSuccess     = "execution_success"
	EventExecutionError       = "execution_error"
	EventExecutionInterrupted = "execution_interrupted"
	EventFeatureFlags         = "feature_flags"
	EventLogs                 = "logs"
	// EventPreview is a binary preview image frame (types 1 and 4).
	EventPreview = "preview"
	// EventProgressText is a binary progress-text frame (type 3).
	EventProgressText = "progress_text"
)

// Event is one websocket message. Type says which of the typed fields is
// set; unknown types (custom nodes' messages) carry only Type and Data, so
// they can be passed through. Data is the message's "data", raw, for text
// frames.
type Event struct {
	// Type is the message type: one of the Event… constants, or a custom
	// node's own type.
	Type string
	// PromptID is the prompt the message is about, or "" (status, previews,
	// an executing message re-sent on reconnect).
	PromptID string
	// Data is the message's data object, raw (nil for binary frames).
	Data json.RawMessage

	// Status is set for status messages.
	Status *Status
	// Start is set for execution_start.
	Start *ExecutionStart
	// Cached is set for execution_cached.
	Cached *ExecutionCached
	// Executing is set for executing.
	Executing *Executing
	// Progress is set for progress.
	Progress *Progress
	// ProgressState is set for progress_state.
	ProgressState *ProgressState
	// Executed is set for executed.
	Executed *Executed
	// Success is set for execution_success.
	Success *ExecutionSuccess
	// Error is set for execution_error.
	Error *ExecutionError
	// Interrupted is set for execution_interrupted.
	Interrupted *ExecutionInterrupted
	// FeatureFlags is set for feature_flags: flag name → raw value.
	FeatureFlags map[string]json.RawMessage
	// Logs is set for logs.
	Logs *Logs
	// Preview is set for binary preview frames.
	Preview *Preview
	// Text is set for binary progress-text frames.
	Text *ProgressText
}

// Status is a queue status broadcast.
type Status struct {
	// QueueRemaining counts pending plus running prompts.
	QueueRemaining int
	// SID is the client id the server assigned (first message only).
	SID string
}

// ExecutionStart says a prompt started running.
type ExecutionStart struct {
	// PromptID is the prompt that started.
	PromptID string `json:"prompt_id"`
	// Timestamp is the server's time in milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// ExecutionCached lists the nodes served from the cache.
type ExecutionCached struct {
	// PromptID is the prompt the message is about.
	PromptID string `json:"prompt_id"`
	// Nodes are the ids of the cached nodes.
	Nodes []string `json:"nodes"`
	// Timestamp is the server's time in milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// Executing says which node runs now; Done (node null) means the prompt has
// finished, whatever the outcome, and its history is written.
type Executing struct {
	// PromptID is the running prompt ("" when re-sent on reconnect).
	PromptID string
	// Node is the node that runs now ("" when Done).
	Node string
	// DisplayNode is the node the UI highlights (Node unless expanded).
	DisplayNode string
	// Done is true for executing{node: null}: the prompt is over.
	Done bool
}

// Progress is a node's step progress (sampler steps, video frames).
type Progress struct {
	// PromptID and Node say whose progress it is.
	PromptID string `json:"prompt_id"`
	// Node is the node reporting progress.
	Node string `json:"node"`
	// Value out of Max steps are done.
	Value float64 `json:"value"`
	// Max is the number of steps.
	Max float64 `json:"max"`
}

// ProgressState is the state of every node started so far.
type ProgressState struct {
	// PromptID is the running prompt.
	PromptID string `json:"prompt_id"`
	// Nodes are the started nodes by id.
	Nodes map[string]NodeProgress `json:"nodes"`
}

// NodeProgress is one node's entry in ProgressState.
type NodeProgress struct {
	// Value out of Max steps are done.
	Value float64 `json:"value"`
	// Max is the number of steps (1 for nodes without steps).
	Max float64 `json:"max"`
	// State is running, finished or error.
	State string `json:"state"`
	// NodeID is the node's id.
	NodeID string `json:"node_id"`
	// DisplayNodeID is the node the UI shows for it.
	DisplayNodeID string `json:"display_node_id"`
	// ParentNodeID is the expanding node of a node created at run time, or nil.
	ParentNodeID *string `json:"parent_node_id"`
	// RealNodeID is the id in the submitted workflow.
	RealNodeID string `json:"real_node_id"`
}

// Executed carries a node's UI output (the files it saved), as history will.
type Executed struct {
	// PromptID is the running prompt.
	PromptID string
	// Node is the node that produced the output.
	Node string
	// DisplayNode is the node the UI shows it on.
	DisplayNode string
	// Output is the node's UI dict; nil when the server sent null.
	Output *NodeOutput
}

// ExecutionSuccess says the prompt ran to the end.
type ExecutionSuccess struct {
	// PromptID is the prompt that succeeded.
	PromptID string `json:"prompt_id"`
	// Timestamp is the server's time in milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// Logs are server log lines (after /internal/logs/subscribe).
type Logs struct {
	// Entries are the new log lines.
	Entries []LogEntry `json:"entries"`
	// Size is the server terminal's size, raw.
	Size json.RawMessage `json:"size,omitempty"`
}

// LogEntry is one log line.
type LogEntry struct {
	// Time is the server's timestamp of the line.
	Time string `json:"t"`
	// Message is the line, newline included.
	Message string `json:"m"`
}

// Preview is a preview image sent while a node runs.
type Preview struct {
	// MediaType is image/jpeg or image/png.
	MediaType string
	// Image is the encoded image.
	Image []byte
	// NodeID, DisplayNodeID and PromptID come with type-4 frames only.
	NodeID, DisplayNodeID, PromptID string
}

// ProgressText is a node's progress text (binary type 3).
type ProgressText struct {
	// NodeID is the node the text is about.
	NodeID string
	// Text is the progress text.
	Text string
}

// DecodeEvent decodes a websocket text frame {"type": …, "data": …}.
// Unknown types are returned with Type and Data only; a malformed known type
// is an error.
func DecodeEvent(frame []byte) (Event, error) {
	var m struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(frame, &m); err != nil {
		return Event{}, fmt.Errorf("websocket message: %v", err)
	}
	if m.Type == "" {
		return Event{}, errors.New(`websocket message: no "type"`)
	}
	e := Event{Type: m.Type, Data: m.Data}
	var pid struct {
		PromptID string `json:"prompt_id"`
	}
	if kindOf(m.Data) == "an object" {
		_ = json.Unmarshal(m.Data, &pid)
	}
	e.PromptID = pid.PromptID
	bad := func(err error) (Event, error) {
		return Event{}, fmt.Errorf("websocket %s message: %v", m.Type, err)
	}
	if m.Type != EventStatus && m.Type != EventFeatureFlags && m.Type != EventLogs && !isKnown(m.Type) {
		return e, nil
	}
	if kindOf(m.Data) != "an object" {
		return bad(fmt.Errorf("data is %s, want an object", kindOf(m.Data)))
	}
	switch m.Type {
	case EventStatus:
		var s struct {
			Status struct {
				ExecInfo struct {
					QueueRemaining int `json:"queue_remaining"`
				} `json:"exec_info"`
			} `json:"status"`
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(m.Data, &s); err != nil {
			return bad(err)
		}
		e.Status = &Status{QueueRemaining: s.Status.ExecInfo.QueueRemaining, SID: s.SID}
	case EventExecutionStart:
		e.Start = new(ExecutionStart)
		if err := json.Unmarshal(m.Data, e.Start); err != nil {
			return bad(err)
		}
	case EventExecutionCached:
		e.Cached = new(ExecutionCached)
		if err := json.Unmarshal(m.Data, e.Cached); err != nil {
			return bad(err)
		}
	case EventExecuting:
		var x struct {
			Node        *string `json:"node"`
			DisplayNode *string `json:"display_node"`
			PromptID    string  `json:"prompt_id"`
		}
		if err := json.Unmarshal(m.Data, &x); err != nil {
			return bad(err)
		}
		e.Executing = &Executing{PromptID: x.PromptID, Done: x.Node == nil}
		if x.Node != nil {
			e.Executing.Node = *x.Node
		}
		if x.DisplayNode != nil {
			e.Executing.DisplayNode = *x.DisplayNode
		}
	case EventProgress:
		e.Progress = new(Progress)
		if err := json.Unmarshal(m.Data, e.Progress); err != nil {
			return bad(err)
		}
	case EventProgressState:
		e.ProgressState = new(ProgressState)
		if err := json.Unmarshal(m.Data, e.ProgressState); err != nil {
			return bad(err)
		}
	case EventExecuted:
		var x struct {
			Node        string          `json:"node"`
			DisplayNode string          `json:"display_node"`
			Output      json.RawMessage `json:"output"`
			PromptID    string          `json:"prompt_id"`
		}
		if err := json.Unmarshal(m.Data, &x); err != nil {
			return bad(err)
		}
		e.Executed = &Executed{PromptID: x.PromptID, Node: x.Node, DisplayNode: x.DisplayNode}
		if kindOf(x.Output) == "an object" {
			out, err := decodeNodeOutput(x.Node, x.Output)
			if err != nil {
				return bad(err)
			}
			e.Executed.Output = out
		}
	case EventExecutionSuccess:
		e.Success = new(ExecutionSuccess)
		if err := json.Unmarshal(m.Data, e.Success); err != nil {
			return bad(err)
		}
	case EventExecutionError:
		e.Error = new(ExecutionError)
		if err := json.Unmarshal(m.Data, e.Error); err != nil {
			return bad(err)
		}
	case EventExecutionInterrupted:
		e.Interrupted = new(ExecutionInterrupted)
		if err := json.Unmarshal(m.Data, e.Interrupted); err != nil {
			return bad(err)
		}
	case EventFeatureFlags:
		if err := json.Unmarshal(m.Data, &e.FeatureFlags); err != nil {
			return bad(err)
		}
	case EventLogs:
		e.Logs = new(Logs)
		if err := json.Unmarshal(m.Data, e.Logs); err != nil {
			return bad(err)
		}
	}
	return e, nil
}

func isKnown(t string) bool {
	switch t {
	case EventExecutionStart, EventExecutionCached, EventExecuting, EventProgress, EventProgressState,
		EventExecuted, EventExecutionSuccess, EventExecutionError, EventExecutionInterrupted:
		return true
	}
	return false
}

// Binary frame types (ComfyUI protocol.py).
const (
	binaryPreviewImage             = 1
	binaryText                     = 3
	binaryPreviewImageWithMetadata = 4
)

// DecodeBinaryEvent decodes a binary websocket frame: a preview image (type
// 1, or type 4 with metadata) or a node's progress text (type 3). Other
// types are returned as an Event with Type "binary_<n>" and no fields.
func DecodeBinaryEvent(frame []byte) (Event, error) {
	if len(frame) < 4 {
		return Event{}, fmt.Errorf("binary websocket frame of %d bytes, want at least 4", len(frame))
	}
	typ := binary.BigEndian.Uint32(frame)
	rest := frame[4:]
	switch typ {
	case binaryPreviewImage:
		if len(rest) < 4 {
			return Event{}, errors.New("preview frame without an image format")
		}
		mt := "image/jpeg"
		if binary.BigEndian.Uint32(rest) == 2 {
			mt = "image/png"
		}
		return Event{Type: EventPreview, Preview: &Preview{MediaType: mt, Image: bytes.Clone(rest[4:])}}, nil
	case binaryText:
		if len(rest) < 4 {
			return Event{}, errors.New("text frame without a node id length")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return Event{}, fmt.Errorf("text frame: node id length %d exceeds the frame", n)
		}
		return Event{Type: EventProgressText, Text: &ProgressText{NodeID: string(rest[4 : 4+n]), Text: string(rest[4+n:])}}, nil
	case binaryPreviewImageWithMetadata:
		if len(rest) < 4 {
			return Event{}, errors.New("preview frame without a metadata length")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return Event{}, fmt.Errorf("preview frame: metadata length %d exceeds the frame", n)
		}
		var meta struct {
			NodeID        string `json:"node_id"`
			DisplayNodeID string `json:"display_node_id"`
			PromptID      string `json:"prompt_id"`
			ImageType     string `json:"image_type"`
		}
		if err := json.Unmarshal(rest[4:4+n], &meta); err != nil {
			return Event{}, fmt.Errorf("preview frame metadata: %v", err)
		}
		p := &Preview{MediaType: meta.ImageType, Image: bytes.Clone(rest[4+n:]), NodeID: meta.NodeID, DisplayNodeID: meta.DisplayNodeID, PromptID: meta.PromptID}
		if p.MediaType == "" {
			p.MediaType = "image/jpeg"
		}
		return Event{Type: EventPreview, PromptID: meta.PromptID, Preview: p}, nil
	}
	return Event{Type: fmt.Sprintf("binary_%d", typ)}, nil
}
