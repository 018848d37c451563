package worker

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a job fails with, matched with errors.Is on an *Error.
var (
	// ErrInvalidInput: the job's input is malformed or breaks a limit (bad
	// JSON, names, images, params, URLs, output options, s3Config). Nothing
	// was sent to ComfyUI.
	ErrInvalidInput = errors.New("invalid job input")
	// ErrInvalidWorkflow: the workflow does not fit this ComfyUI (unknown
	// classes, bad links, values out of range), found by the worker or by
	// ComfyUI's own validation.
	ErrInvalidWorkflow = errors.New("invalid workflow")
	// ErrExecution: a node failed while the workflow ran.
	ErrExecution = errors.New("the workflow failed in ComfyUI")
	// ErrTimeout: the job ran longer than Config.JobTimeout and ComfyUI was
	// interrupted.
	ErrTimeout = errors.New("the job timed out")
	// ErrOutput: the outputs could not be delivered (too large for a job
	// result without S3, an upload that failed, a file ComfyUI did not serve).
	ErrOutput = errors.New("the outputs could not be delivered")
	// ErrComfyUnavailable: ComfyUI did not answer, or its process is gone.
	ErrComfyUnavailable = errors.New("ComfyUI is unavailable")
)

// Problem is one thing wrong with a job, located as precisely as the worker
// knows: an input field, or a node and its input.
type Problem struct {
	// Field is where in the job input the problem is ("images[1].image",
	// "params.seed", "output.format"), or "" when it is about a node.
	Field string `json:"field,omitempty"`
	// Node, ClassType and Input locate a problem in the workflow.
	Node      string `json:"node,omitempty"`
	ClassType string `json:"class_type,omitempty"`
	Input     string `json:"input,omitempty"`
	// Message says what is wrong and, where it can, how to fix it.
	Message string `json:"message"`
	// Traceback is the end of ComfyUI's traceback of a failed node.
	Traceback []string `json:"traceback,omitempty"`
}

// String formats the problem on one line: `images[1].image: not base64` or
// `node 9 (SaveImage) input "images": Required input is missing`.
func (p Problem) String() string {
	var b strings.Builder
	if p.Node != "" {
		b.WriteString("node " + p.Node)
		if p.ClassType != "" {
			b.WriteString(" (" + p.ClassType + ")")
		}
		if p.Input != "" {
			fmt.Fprintf(&b, " input %q", p.Input)
		}
	} else {
		b.WriteString(p.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is why a job failed, in the form its client reads: a headline, then
// every problem found. The handler posts Error() as the job's error and the
// problems as its details.
type Error struct {
	// Kind is one of the ErrXxx sentinels.
	Kind error
	// Message is the headline; Kind's text when empty.
	Message string
	// Problems are the individual problems, in the order found.
	Problems []Problem

	// replace asks RunPod to replace the worker (ComfyUI's process died).
	replace bool
}

// Error returns the headline and the problems: one problem on the same line,
// several as an indented list.
func (e *Error) Error() string {
	head := e.Message
	if head == "" && e.Kind != nil {
		head = e.Kind.Error()
	}
	switch len(e.Problems) {
	case 0:
		return head
	case 1:
		return head + ": " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", head, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.String())
	}
	return b.String()
}

// Is matches the error's Kind.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// problems collects the problems of a job before it fails.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err(kind error) error {
	if len(ps) == 0 {
		return nil
	}
	return &Error{Kind: kind, Problems: ps}
}
