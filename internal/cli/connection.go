package cli

import (
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/runpod"
)

// Environment variables of the RunPod connection flags.
const (
	envEndpointID = "RUNPOD_ENDPOINT_ID"
	envAPIKey     = "RUNPOD_API_KEY"
	envBaseURL    = "RUNPOD_ENDPOINT_BASE_URL"
)

// ConnectionOptions say which RunPod endpoint a job command talks to. Each
// flag falls back to its environment variable when not given.
type ConnectionOptions struct {
	// Endpoint is the endpoint id (--endpoint, RUNPOD_ENDPOINT_ID).
	Endpoint string
	// APIKey is the API key (--api-key, RUNPOD_API_KEY).
	APIKey string
	// BaseURL is the API base (--base-url, RUNPOD_ENDPOINT_BASE_URL).
	BaseURL string
}

// addConnectionFlags registers --endpoint, --api-key and --base-url. Their
// defaults stay empty so that --help never shows a key from the environment.
func addConnectionFlags(cmd *cobra.Command, o *ConnectionOptions) {
	fl := cmd.Flags()
	fl.StringVar(&o.Endpoint, "endpoint", "", "endpoint id (default $"+envEndpointID+")")
	fl.StringVar(&o.APIKey, "api-key", "", "RunPod API key (default $"+envAPIKey+"; prefer the variable: flags show in ps)")
	fl.StringVar(&o.BaseURL, "base-url", "", "API base URL (default $"+envBaseURL+" or "+runpod.BaseURLDefault+")")
}

// resolve fills unset options from the environment and checks that an
// endpoint and a key are known.
func (o *ConnectionOptions) resolve(getenv func(string) string) error {
	if o.Endpoint == "" {
		o.Endpoint = strings.TrimSpace(getenv(envEndpointID))
	}
	if o.APIKey == "" {
		o.APIKey = strings.TrimSpace(getenv(envAPIKey))
	}
	if o.BaseURL == "" {
		o.BaseURL = strings.TrimSpace(getenv(envBaseURL))
	}
	if o.BaseURL == "" {
		o.BaseURL = runpod.BaseURLDefault
	}
	switch {
	case o.Endpoint == "":
		return usageErrorf("no endpoint: pass --endpoint or set %s", envEndpointID)
	case o.APIKey == "":
		return usageErrorf("no API key: set %s (or pass --api-key)", envAPIKey)
	}
	return nil
}

// client builds the RunPod client. The library's own log lines go to log at
// warning level and above, unless the user asked for debug: the commands
// report progress themselves.
func (o *ConnectionOptions) client(hc *http.Client, log *slog.Logger, extra ...runpod.Option) (*runpod.Client, error) {
	opts := []runpod.Option{
		runpod.WithAPIKey(o.APIKey),
		runpod.WithBaseURL(o.BaseURL),
		runpod.WithLogger(log),
		runpod.WithUserAgent("comfypod/" + version()),
	}
	if hc != nil {
		opts = append(opts, runpod.WithHTTPClient(hc))
	}
	c, err := runpod.New(o.Endpoint, append(opts, extra...)...)
	if err != nil {
		// Bad --endpoint or --base-url values: the user's to fix.
		return nil, &UsageError{msg: strings.TrimPrefix(err.Error(), "runpod: ")}
	}
	return c, nil
}

// clientLogger is the logger for the RunPod client: the user's format, and
// the user's level but no chattier than warnings unless it is debug.
func (f *Factory) clientLogger(w io.Writer) (*slog.Logger, error) {
	level := f.logLevel
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err == nil && lv > slog.LevelDebug && lv < slog.LevelWarn {
		level = "warn"
	}
	return newLogger(w, level, f.logFormat)
}
