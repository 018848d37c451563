package node

import (
	"context"
	"fmt"
)

// Class is a node class: its schema and its behaviour.
type Class struct {
	// Info is the class's /object_info entry. Validation of prompts derives from
	// it (types, required inputs, min/max, legacy combo lists).
	Info *Info

	// Execute runs the node. in holds the node's inputs after validation:
	// constants coerced to their declared type (INT → int64, FLOAT → float64,
	// STRING and combos → string, BOOLEAN → bool) and links resolved to the
	// upstream output value (*Image, *Mask, or whatever the upstream class
	// returns). Optional inputs that were not given are absent. Execute must
	// return ctx.Err() promptly when ctx is cancelled (interrupt).
	Execute func(ctx context.Context, env *Env, in Inputs) (*Result, error)

	// IsChanged, when set, returns a value folded into the node's cache
	// signature, like ComfyUI's IS_CHANGED (LoadImage returns the file's
	// sha256). It sees constant inputs only.
	IsChanged func(env *Env, in Inputs) (string, error)

	// ValidateInputs, when set, is the class's VALIDATE_INPUTS: custom
	// validation of constant inputs after coercion. A non-nil error becomes a
	// custom_validation_failed node error whose details are err.Error().
	ValidateInputs func(env *Env, in Inputs) error
	// ValidateSkips names the inputs whose min/max and legacy-combo checks are
	// skipped because ValidateInputs takes them (ComfyUI skips the checks for
	// inputs named in VALIDATE_INPUTS's signature). SkipAll skips them for every
	// input (a VALIDATE_INPUTS taking **kwargs).
	ValidateSkips []string
	SkipAll       bool

	// NotIdempotent puts the node id into the cache signature, so the node
	// never shares a cached result with another node of the same class.
	NotIdempotent bool

	// DynamicOptions, when set, returns combo option lists computed at request
	// time (LoadImage's list of input files). The engine serves them in
	// /object_info in place of the lists in Info.
	DynamicOptions func(env *Env) (map[string][]string, error)
}

// Name returns the class name.
func (c *Class) Name() string { return c.Info.Name }

// Result is what Execute returns.
type Result struct {
	// Outputs holds one value per entry of Info.Output.
	Outputs []any
	// UI is the node's "ui" dict, reported in `executed` messages and history
	// outputs, e.g. {"images": [{"filename":…,"subfolder":…,"type":"output"}]}.
	// Nil for nodes without UI output.
	UI map[string]any
}

// FileRef is one file of a UI dict, as ComfyUI reports it.
type FileRef struct {
	Filename  string `json:"filename"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// Inputs are a node's inputs by name.
type Inputs map[string]any

// Has says whether input name was given (optional inputs may be absent).
func (in Inputs) Has(name string) bool { _, ok := in[name]; return ok }

// Int returns INT input name.
func (in Inputs) Int(name string) int64 {
	switch v := in[name].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}

// Float returns FLOAT input name.
func (in Inputs) Float(name string) float64 {
	switch v := in[name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return 0
}

// String returns STRING or combo input name.
func (in Inputs) String(name string) string {
	s, _ := in[name].(string)
	return s
}

// Bool returns BOOLEAN input name.
func (in Inputs) Bool(name string) bool {
	b, _ := in[name].(bool)
	return b
}

// Image returns IMAGE input name, or an error naming the input when the value
// is missing or of another type.
func (in Inputs) Image(name string) (*Image, error) {
	im, ok := in[name].(*Image)
	if !ok || im == nil {
		return nil, fmt.Errorf("input %q: want IMAGE, got %T", name, in[name])
	}
	return im, nil
}

// Mask returns MASK input name, or an error naming the input when the value is
// missing or of another type.
func (in Inputs) Mask(name string) (*Mask, error) {
	m, ok := in[name].(*Mask)
	if !ok || m == nil {
		return nil, fmt.Errorf("input %q: want MASK, got %T", name, in[name])
	}
	return m, nil
}

// ExecError is a node failure reported the way ComfyUI reports a Python
// exception: exception_type (e.g. "ValueError", "RuntimeError") and
// exception_message. Execute returns it to control both fields; any other error
// is reported as exception_type "RuntimeError" with its text.
type ExecError struct {
	Type    string
	Message string
}

func (e *ExecError) Error() string { return e.Message }

// Errorf returns an *ExecError of the given exception type.
func Errorf(excType, format string, args ...any) error {
	return &ExecError{Type: excType, Message: fmt.Sprintf(format, args...)}
}
