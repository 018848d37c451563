package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Factory carries what commands take from the outside world, so that a test can
// run any command with in-memory streams, a fixed environment and its own HTTP
// client (gh's cmdutil.Factory).
type Factory struct {
	IO *IOStreams
	// Getenv reads an environment variable; commands never call os.Getenv.
	Getenv func(string) string
	// HTTPClient is the client commands use for outgoing calls.
	HTTPClient *http.Client
	// Now is the clock commands use for elapsed times.
	Now func() time.Time

	// logLevel and logFormat are set by the root command's persistent flags.
	logLevel  string
	logFormat string
}

// NewFactory returns a Factory wired to the process: system streams, the real
// environment and http.DefaultClient's transport.
func NewFactory() *Factory {
	return &Factory{
		IO:         SystemIO(),
		Getenv:     os.Getenv,
		HTTPClient: &http.Client{},
		Now:        time.Now,
		logLevel:   "info",
		logFormat:  "text",
	}
}

// Env returns the value of the environment variable key, or def when it is unset
// or empty.
func (f *Factory) Env(key, def string) string {
	if v := f.Getenv(key); v != "" {
		return v
	}
	return def
}

// Logger returns a logger that writes to ErrOut at the level and in the format
// chosen by --log-level and --log-format.
func (f *Factory) Logger() (*slog.Logger, error) {
	return newLogger(f.IO.ErrOut, f.logLevel, f.logFormat)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usageErrorf("--log-format %q: want text or json", format)
	}
}

// printf writes status text to ErrOut. Write errors on the status stream are
// not actionable and are ignored.
func (f *Factory) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(f.IO.ErrOut, format, args...)
}
