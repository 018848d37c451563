package node

import (
	"encoding/json"
	"math/rand/v2"
	"time"
)

// Env is what a node may use of its surroundings while it runs.
type Env struct {
	// InputDir, OutputDir and TempDir are ComfyUI's input/, output/ and temp/
	// folders.
	InputDir, OutputDir, TempDir string

	// PromptID and NodeID identify the prompt and the node being run.
	PromptID, NodeID string

	// Prompt is the whole API-format prompt (hidden input PROMPT), and
	// ExtraPNGInfo is extra_data.extra_pnginfo (hidden input EXTRA_PNGINFO).
	Prompt       map[string]any
	ExtraPNGInfo map[string]any
	// PromptJSON is the same prompt as JSON text with its keys in the order
	// the client sent them, which Prompt (a Go map) loses. Savers write it
	// into their files, as ComfyUI writes json.dumps(prompt). When it is
	// empty they fall back to Prompt, keys sorted.
	PromptJSON json.RawMessage
	// DisableMetadata stops savers from writing prompt/workflow text chunks, like
	// ComfyUI's --disable-metadata.
	DisableMetadata bool

	// Progress reports progress of a long node (value out of max). May be nil.
	Progress func(value, max float64)
	// Text sends progress text for the node (binary TEXT frame). May be nil.
	Text func(text string)
	// Rand is the source of randomness a node may use (PreviewImage's random
	// prefix). The engine injects it so tests can fix it.
	Rand *rand.Rand
	// Now is the clock a node may read (SaveImage's %year%…%second% prefix
	// variables). The engine fills it from Config.Now; nil means time.Now.
	Now func() time.Time
}

// ReportProgress calls env.Progress when it is set.
func (env *Env) ReportProgress(value, max float64) {
	if env.Progress != nil {
		env.Progress(value, max)
	}
}

// Time returns the current time from env.Now, or time.Now when it is unset.
func (env *Env) Time() time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}
