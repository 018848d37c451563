package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"time"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// Defaults of Config.
const (
	// MaxUploadSizeDefault is ComfyUI's default --max-upload-size (100 MB):
	// the largest request body the server reads.
	MaxUploadSizeDefault = 100 << 20
	// HistorySizeDefault is ComfyUI's MAXIMUM_HISTORY_SIZE.
	HistorySizeDefault = 10000
)

// ComfyUIVersion is the ComfyUI release whose API and behaviour the engine
// reproduces; /system_stats reports it as comfyui_version.
const ComfyUIVersion = "0.3.64"

// Config configures a Server. The zero value is not usable: Dir is required.
type Config struct {
	// Dir is the base directory, laid out like ComfyUI's: input/, output/,
	// temp/ and models/ below it. It is created if missing. temp/ is emptied
	// when the server is created, as ComfyUI does at start.
	Dir string
	// InputDir, OutputDir and TempDir override the folders under Dir, like
	// ComfyUI's --input-directory, --output-directory and --temp-directory.
	InputDir, OutputDir, TempDir string

	// Logger receives the server's logs. Nil discards them.
	Logger *slog.Logger

	// Classes are node classes served in addition to the core set (for
	// example test doubles, or a stand-in for a custom node). A class with the
	// name of a core class replaces it.
	Classes []*node.Class

	// DisableMetadata stops savers from writing the prompt and workflow into
	// the files they save, like ComfyUI's --disable-metadata.
	DisableMetadata bool

	// MaxUploadSize is the largest request body in bytes (uploads and JSON
	// alike); /features reports it. Zero means MaxUploadSizeDefault.
	MaxUploadSize int64

	// HistorySize is how many finished prompts /history keeps. Zero means
	// HistorySizeDefault.
	HistorySize int

	// Now is the clock used for message timestamps. Nil means time.Now.
	Now func() time.Time
	// Rand is the randomness node classes use (PreviewImage's file prefix).
	// Nil means a source seeded from the operating system. Only the
	// executor goroutine uses it.
	Rand *rand.Rand

	// CORSOrigin, when set, adds Access-Control-Allow-Origin with this value
	// to every answer and accepts OPTIONS preflights, like ComfyUI's
	// --enable-cors-header. When empty, the server refuses cross-origin
	// requests to a loopback Host, as ComfyUI does.
	CORSOrigin string
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c *Config) WithDefaults() *Config {
	out := *c
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if out.MaxUploadSize == 0 {
		out.MaxUploadSize = MaxUploadSizeDefault
	}
	if out.HistorySize == 0 {
		out.HistorySize = HistorySizeDefault
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Rand == nil {
		out.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if out.Dir != "" {
		if out.InputDir == "" {
			out.InputDir = filepath.Join(out.Dir, "input")
		}
		if out.OutputDir == "" {
			out.OutputDir = filepath.Join(out.Dir, "output")
		}
		if out.TempDir == "" {
			out.TempDir = filepath.Join(out.Dir, "temp")
		}
	}
	return &out
}

func (c *Config) validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required: the base directory holding input/, output/ and temp/"))
	}
	if c.MaxUploadSize < 0 {
		errs = append(errs, fmt.Errorf("MaxUploadSize is %d; want a positive number of bytes", c.MaxUploadSize))
	}
	if c.HistorySize < 0 {
		errs = append(errs, fmt.Errorf("HistorySize is %d; want a positive number", c.HistorySize))
	}
	if c.CORSOrigin != "" && c.CORSOrigin != "*" {
		if u, err := url.Parse(c.CORSOrigin); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("CORSOrigin %q is neither \"*\" nor an origin like https://example.com", c.CORSOrigin))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("engine: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
