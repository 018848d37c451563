package comfy

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/comfypod/comfypod/internal/truncate"
)

// PromptError is the server's refusal of a prompt (POST /prompt answered
// 400): the top-level error and, per node, what is wrong. Its Error text
// names node, class, input and message, one line per problem. It matches
// ErrInvalidPrompt.
type PromptError struct {
	// StatusCode is the HTTP status (400).
	StatusCode int `json:"-"`
	// Type is error.type: no_prompt, invalid_prompt, prompt_no_outputs,
	// prompt_outputs_failed_validation, …
	Type string `json:"type"`
	// Message is error.message.
	Message string `json:"message"`
	// Details is error.details.
	Details string `json:"details"`
	// ExtraInfo is error.extra_info, raw.
	ExtraInfo json.RawMessage `json:"extra_info,omitempty"`
	// NodeErrors are the per-node errors in the server's order.
	NodeErrors []NodeError `json:"node_errors"`
}

// NodeError is one entry of node_errors.
type NodeError struct {
	// NodeID is the node's id.
	NodeID string `json:"node_id"`
	// ClassType is the node's class.
	ClassType string `json:"class_type"`
	// Errors are the node's problems.
	Errors []ErrorDetail `json:"errors"`
	// DependentOutputs are output node ids the server reports with the error.
	DependentOutputs []string `json:"dependent_outputs"`
}

// ErrorDetail is one problem of a node, as ComfyUI reports it.
type ErrorDetail struct {
	// Type is the machine-readable kind: required_input_missing,
	// value_bigger_than_max, value_not_in_list, custom_validation_failed, …
	Type string `json:"type"`
	// Message is the human message ("Required input is missing").
	Message string `json:"message"`
	// Details adds specifics (often the input name, or "name: 'x' not in […]").
	Details string `json:"details"`
	// ExtraInfo is the raw extra_info object (input_name, input_config,
	// received_value, exception_message, traceback, …).
	ExtraInfo json.RawMessage `json:"extra_info,omitempty"`
}

// InputName returns extra_info.input_name, or "".
func (d ErrorDetail) InputName() string {
	var x struct {
		InputName string `json:"input_name"`
	}
	_ = json.Unmarshal(d.ExtraInfo, &x)
	return x.InputName
}

// describe renders the detail without the input name (the caller prints it).
func (d ErrorDetail) describe() string {
	var x struct {
		InputName        string          `json:"input_name"`
		ReceivedValue    json.RawMessage `json:"received_value"`
		ExceptionMessage string          `json:"exception_message"`
	}
	_ = json.Unmarshal(d.ExtraInfo, &x)
	msg := d.Message
	if msg == "" {
		msg = d.Type
	}
	switch {
	case d.Type == "invalid_input_type" && len(x.ReceivedValue) > 0:
		msg += fmt.Sprintf(", got %s", truncate.Runes(string(x.ReceivedValue), 60))
		if x.ExceptionMessage != "" {
			msg += " (" + x.ExceptionMessage + ")"
		}
	case d.Details != "" && d.Details != x.InputName:
		det := d.Details
		if x.InputName != "" {
			det = strings.TrimPrefix(det, x.InputName+" - ")
		}
		msg += ": " + truncate.Runes(det, 300)
	}
	return msg
}

// Error lists the refusal and every node problem, one per line.
func (e *PromptError) Error() string {
	var b strings.Builder
	b.WriteString("ComfyUI refused the prompt: ")
	head := e.Message
	if head == "" {
		head = e.Type
	}
	b.WriteString(strings.TrimRight(head, "."))
	if e.Type == "invalid_prompt" && e.Details != "" {
		b.WriteString(" (" + e.Details + ")")
	}
	for _, ne := range e.NodeErrors {
		for _, d := range ne.Errors {
			b.WriteString("\n  - node " + ne.NodeID)
			if ne.ClassType != "" {
				b.WriteString(" (" + ne.ClassType + ")")
			}
			if in := d.InputName(); in != "" {
				fmt.Fprintf(&b, " input %q", in)
			}
			b.WriteString(": " + d.describe())
		}
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidPrompt) true.
func (e *PromptError) Is(target error) bool { return target == ErrInvalidPrompt }

// DecodePromptError decodes a POST /prompt error answer
// ({"error": {…}, "node_errors": {…}}), keeping node_errors in server order.
func DecodePromptError(status int, body []byte) (*PromptError, error) {
	var raw struct {
		Error      json.RawMessage `json:"error"`
		NodeErrors json.RawMessage `json:"node_errors"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not a ComfyUI error answer: %v", err)
	}
	pe := &PromptError{StatusCode: status}
	switch kindOf(raw.Error) {
	case "an object":
		if err := json.Unmarshal(raw.Error, pe); err != nil {
			return nil, fmt.Errorf("error: %v", err)
		}
	case "a string":
		// Older servers and some proxies answer {"error": "text"}.
		_ = json.Unmarshal(raw.Error, &pe.Message)
	case "nothing", "null":
	default:
		return nil, fmt.Errorf("error: want an object, got %s", kindOf(raw.Error))
	}
	nes, err := decodeNodeErrors(raw.NodeErrors)
	if err != nil {
		return nil, err
	}
	pe.NodeErrors = nes
	return pe, nil
}

// decodeNodeErrors decodes a node_errors object in document order.
func decodeNodeErrors(raw json.RawMessage) ([]NodeError, error) {
	if len(raw) == 0 || string(raw) == "null" || string(compactRaw(raw)) == "[]" {
		return nil, nil
	}
	ms, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("node_errors: %v", err)
	}
	out := make([]NodeError, 0, len(ms))
	for _, m := range ms {
		ne := NodeError{NodeID: m.Key}
		if err := json.Unmarshal(m.Value, &ne); err != nil {
			return nil, fmt.Errorf("node_errors[%s]: %v", m.Key, err)
		}
		ne.NodeID = m.Key
		out = append(out, ne)
	}
	return out, nil
}

// ExecutionError is a node that failed while the prompt ran (the
// execution_error message). It matches ErrExecution.
type ExecutionError struct {
	// PromptID is the prompt that failed.
	PromptID string `json:"prompt_id"`
	// NodeID is the failing node.
	NodeID string `json:"node_id"`
	// NodeType is the failing node's class.
	NodeType string `json:"node_type"`
	// Executed are the nodes that had run before.
	Executed []string `json:"executed"`
	// ExceptionMessage is the exception's text.
	ExceptionMessage string `json:"exception_message"`
	// ExceptionType is the Python exception ("ValueError",
	// "torch.OutOfMemoryError").
	ExceptionType string `json:"exception_type"`
	// Traceback is the Python traceback, one frame per entry.
	Traceback []string `json:"traceback"`
	// CurrentInputs is the server's dump of the node's inputs, raw.
	CurrentInputs json.RawMessage `json:"current_inputs,omitempty"`
	// CurrentOutputs lists the nodes whose outputs were computed, raw.
	CurrentOutputs json.RawMessage `json:"current_outputs,omitempty"`
	// Timestamp is the server's time in milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// Error names the node, its class and the exception.
func (e *ExecutionError) Error() string {
	msg := strings.TrimSpace(e.ExceptionMessage)
	if e.ExceptionType != "" {
		msg = e.ExceptionType + ": " + msg
	}
	return fmt.Sprintf("ComfyUI node %s (%s) failed: %s", e.NodeID, e.NodeType, truncate.Runes(msg, 1000))
}

// Is makes errors.Is(err, ErrExecution) true.
func (e *ExecutionError) Is(target error) bool { return target == ErrExecution }

// ExecutionInterrupted is a prompt interrupted while it ran (the
// execution_interrupted message). It matches ErrInterrupted.
type ExecutionInterrupted struct {
	// PromptID is the interrupted prompt.
	PromptID string `json:"prompt_id"`
	// NodeID is the node that was running.
	NodeID string `json:"node_id"`
	// NodeType is that node's class.
	NodeType string `json:"node_type"`
	// Executed are the nodes that had run.
	Executed []string `json:"executed"`
	// Timestamp is the server's time in milliseconds.
	Timestamp int64 `json:"timestamp"`
}

// Error names the node that was running.
func (e *ExecutionInterrupted) Error() string {
	if e.NodeID == "" {
		return "ComfyUI interrupted the prompt"
	}
	return fmt.Sprintf("ComfyUI interrupted the prompt at node %s (%s)", e.NodeID, e.NodeType)
}

// Is makes errors.Is(err, ErrInterrupted) true.
func (e *ExecutionInterrupted) Is(target error) bool { return target == ErrInterrupted }
