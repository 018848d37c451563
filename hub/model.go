package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Hub is .runpod/hub.json: how the RunPod Hub lists and deploys a package.
// Marshalled with encoding/json it gives the file's format; ParseHub reads
// one. Field names follow RunPod's publishing guide.
type Hub struct {
	// Title is the listing's name.
	Title string `json:"title"`
	// Description is the listing's one-paragraph summary.
	Description string `json:"description"`
	// Type is always "serverless" for a Hub serverless package.
	Type string `json:"type"`
	// Category is one of audio, embedding, language, video, image.
	Category string `json:"category"`
	// IconURL is the listing's icon.
	IconURL string `json:"iconUrl,omitempty"`
	// Config is the endpoint the Hub deploys.
	Config HubConfig `json:"config"`
}

// HubConfig is hub.json's config: the endpoint the Hub deploys.
type HubConfig struct {
	// RunsOn is "GPU" or "CPU".
	RunsOn string `json:"runsOn"`
	// EndpointType is "" (a queue endpoint) or "LB" (load balancing).
	EndpointType string `json:"endpointType,omitempty"`
	// ContainerDiskInGb is the container disk size in GB.
	ContainerDiskInGb int `json:"containerDiskInGb"`
	// CPUFlavor is set for CPU packages, e.g. "cpu3c".
	CPUFlavor string `json:"cpuFlavor,omitempty"`
	// GPUCount is the number of GPUs per worker.
	GPUCount int `json:"gpuCount,omitempty"`
	// GPUIDs is a comma-separated list of pool ids, optionally followed by
	// excluded GPU type ids: "ADA_24,AMPERE_24,-NVIDIA L4".
	GPUIDs string `json:"gpuIds,omitempty"`
	// AllowedCUDAVersions restricts workers to hosts with these CUDA
	// versions ("12.7").
	AllowedCUDAVersions []string `json:"allowedCudaVersions,omitempty"`
	// Presets name sets of env defaults.
	Presets []Preset `json:"presets,omitempty"`
	// Env are the endpoint's environment variables.
	Env []EnvEntry `json:"env,omitempty"`
}

// Preset is a named set of env defaults a user can pick when deploying.
type Preset struct {
	// Name labels the preset in the deploy form.
	Name string `json:"name"`
	// Defaults map env keys to values (string, number or boolean).
	Defaults map[string]json.RawMessage `json:"defaults"`
}

// EnvEntry is one environment variable: a fixed Value, or an Input the user
// fills in when deploying.
type EnvEntry struct {
	// Key is the variable's name.
	Key string
	// Value is a fixed value, used when Input is nil.
	Value string
	// Input makes the variable a field of the deploy form.
	Input *EnvInput
}

// MarshalJSON writes {"key","value"} or {"key","input"}.
func (e EnvEntry) MarshalJSON() ([]byte, error) {
	if e.Input != nil {
		return json.Marshal(struct {
			Key   string    `json:"key"`
			Input *EnvInput `json:"input"`
		}{e.Key, e.Input})
	}
	return json.Marshal(struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}{e.Key, e.Value})
}

// UnmarshalJSON reads either form.
func (e *EnvEntry) UnmarshalJSON(data []byte) error {
	var raw struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
		Input *EnvInput       `json:"input"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*e = EnvEntry{Key: raw.Key, Input: raw.Input}
	if raw.Value != nil {
		// Static values are strings, but numbers and booleans are common.
		var s string
		if json.Unmarshal(raw.Value, &s) != nil {
			s = string(bytes.TrimSpace(raw.Value))
		}
		e.Value = s
	}
	if raw.Input == nil && raw.Value == nil {
		return fmt.Errorf("env entry %q has neither value nor input", raw.Key)
	}
	return nil
}

// EnvInput describes an env variable the user sets when deploying.
type EnvInput struct {
	// Name is the label shown to the user.
	Name string `json:"name,omitempty"`
	// Type is string, number, boolean or huggingface.
	Type string `json:"type"`
	// Description helps the user fill the field.
	Description string `json:"description,omitempty"`
	// Default is the initial value (any JSON value).
	Default json.RawMessage `json:"default,omitempty"`
	// Required refuses a deploy without a value.
	Required bool `json:"required,omitempty"`
	// Advanced hides the input by default.
	Advanced bool `json:"advanced,omitempty"`
	// Options make a string input a select.
	Options []Option `json:"options,omitempty"`
	// Min and Max bound a number input.
	Min *json.Number `json:"min,omitempty"`
	Max *json.Number `json:"max,omitempty"`
	// TrueValue and FalseValue are what a boolean is written as.
	TrueValue  string `json:"trueValue,omitempty"`
	FalseValue string `json:"falseValue,omitempty"`
}

// Option is one choice of a select input.
type Option struct {
	// Label is what the user sees.
	Label string `json:"label"`
	// Value is what the variable is set to (any JSON value).
	Value json.RawMessage `json:"value"`
}

// Tests is .runpod/tests.json: the jobs the Hub runs on each release, and the
// machine it runs them on.
type Tests struct {
	// Tests are the jobs, run in order.
	Tests []Test `json:"tests"`
	// Config is the test machine.
	Config TestsConfig `json:"config"`
}

// Test is one Hub test job.
type Test struct {
	// Name labels the test in the release checks.
	Name string `json:"name"`
	// Input is the handler input itself (not wrapped in {"input": …}).
	Input json.RawMessage `json:"input"`
	// TimeoutMs is the test's timeout in milliseconds.
	TimeoutMs int `json:"timeout,omitempty"`
}

// TestsConfig is the machine Hub tests run on.
type TestsConfig struct {
	// GPUTypeID is one GPU type id (not a pool), e.g. "NVIDIA GeForce RTX 4090".
	GPUTypeID string `json:"gpuTypeId,omitempty"`
	// GPUCount is the number of GPUs of the test machine.
	GPUCount int `json:"gpuCount,omitempty"`
	// CPUFlavor is the test machine of a CPU package.
	CPUFlavor string `json:"cpuFlavor,omitempty"`
	// Env are fixed variables of the test machine.
	Env []EnvVar `json:"env,omitempty"`
	// AllowedCUDAVersions should equal hub.json's.
	AllowedCUDAVersions []string `json:"allowedCudaVersions,omitempty"`
}

// EnvVar is a fixed environment variable of the test machine.
type EnvVar struct {
	// Key is the variable's name.
	Key string `json:"key"`
	// Value is its value.
	Value string `json:"value"`
}

// SyntaxError is a hub.json or tests.json that is not valid JSON, with the
// position of the first problem.
type SyntaxError struct {
	// Line and Column locate the problem (1-based; columns count characters).
	Line, Column int
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error formats the error as "line L column C: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d column %d: %s", e.Line, e.Column, e.Msg)
}

// ParseHub reads a hub.json strictly: invalid JSON is a *SyntaxError at the
// first problem; a field of the wrong type is an error naming the field. Use
// the Linter to find everything else that is wrong with it.
func ParseHub(data []byte) (*Hub, error) {
	var h Hub
	if err := decodeStrict(data, &h); err != nil {
		return nil, fmt.Errorf("hub.json: %w", err)
	}
	return &h, nil
}

// ParseTests reads a tests.json strictly, as ParseHub does.
func ParseTests(data []byte) (*Tests, error) {
	var t Tests
	if err := decodeStrict(data, &t); err != nil {
		return nil, fmt.Errorf("tests.json: %w", err)
	}
	return &t, nil
}

func decodeStrict(data []byte, v any) error {
	d := parseJSON("", data)
	if len(d.problems) > 0 {
		p := d.problems[0]
		line, col := d.position(p.off)
		return &SyntaxError{Line: line, Column: col, Msg: p.msg}
	}
	if !d.root.is(kObject) {
		return fmt.Errorf("want a JSON object, got %s", d.root.kind)
	}
	err := json.Unmarshal(d.text[d.root.start:d.root.end], v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: want %s, got %s", te.Field, te.Type, te.Value)
	}
	return err
}

// Encode returns the file's text as comfypod writes it: two-space indent and
// a final newline.
func (h *Hub) Encode() ([]byte, error) { return encodeIndent(h) }

// Encode returns the file's text as comfypod writes it.
func (t *Tests) Encode() ([]byte, error) { return encodeIndent(t) }

func encodeIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
