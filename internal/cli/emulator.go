package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// EmulatorOptions are the inputs of comfypod runpod-emulator.
type EmulatorOptions struct {
	IO     *IOStreams
	Logger func() (*slog.Logger, error)

	// Addr is the host:port to listen on; port 0 picks a free one.
	Addr string
	// EndpointIDs are the endpoints served; the first is the one printed.
	EndpointIDs []string
	// APIKey is the key clients and workers must send; random when empty.
	APIKey string
	// WorkerID is the worker id (RUNPOD_POD_ID) the printed worker variables
	// are made for.
	WorkerID string
	// GPUName fills the ?gpu= query of the worker URL templates.
	GPUName string
	// PingInterval is handed to workers; PingTimeout (6 × PingInterval when
	// zero) is the silence after which a worker loses its jobs.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// ColdStart is how long a new worker stays initializing before it is
	// served jobs.
	ColdStart time.Duration
}

// emulatorEnvOrder is the order the variables are printed in: the client's,
// then the worker's.
var emulatorEnvOrder = []string{
	runpodtest.EnvBaseURL, runpodtest.EnvEndpointID, runpodtest.EnvAPIKey,
	runpodtest.EnvGetJob, runpodtest.EnvPostOutput, runpodtest.EnvPostStream, runpodtest.EnvPing,
	runpodtest.EnvWorkerAPIKey, runpodtest.EnvPodID, runpodtest.EnvPingInterval,
}

var emulatorIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func newCmdRunpodEmulator(f *Factory, runF func(context.Context, *EmulatorOptions) error) *cobra.Command {
	opts := &EmulatorOptions{IO: f.IO, Logger: f.Logger}
	cmd := &cobra.Command{
		Use:   "runpod-emulator",
		Short: "Run a local RunPod Serverless control plane (client API and worker protocol)",
		Long: `Run a local RunPod Serverless control plane: the client API of a queue-based
endpoint (/v2/{endpoint_id}/run, runsync, status, stream, cancel, retry,
purge-queue, health) and the worker job protocol (job-take, job-done,
job-stream, ping, job-stop), in memory, with no GPU and no RunPod account.
RunPod clients and workers, comfypod's and runpod-python's, work against it
unchanged. Test routes live under /_emulator/ (see the runpodtest package).

Standard output gets KEY='VALUE' lines, flushed at once: the client's variables
(RUNPOD_ENDPOINT_BASE_URL, RUNPOD_ENDPOINT_ID, RUNPOD_API_KEY) and a worker's
(RUNPOD_WEBHOOK_GET_JOB and friends, RUNPOD_AI_API_KEY, RUNPOD_POD_ID,
RUNPOD_PING_INTERVAL). Values are single-quoted for the shell, since the URL
templates hold the $ID placeholders a worker fills in. Logs go to standard
error. Ctrl-C stops the server.`,
		Example: `  # Serve in the background and load the variables into this shell:
  comfypod runpod-emulator > emulator.env &
  until [ -s emulator.env ]; do sleep 0.1; done
  set -a; . ./emulator.env; set +a
  comfypod run --input '{"prompt":"a cat"}'

  comfypod runpod-emulator --addr 127.0.0.1:8765 --endpoint-id ep1 --api-key rpa_LOCAL
  comfypod runpod-emulator --ping-interval 2s --cold-start 20s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
				return usageErrorf("--addr %q: want host:port, like 127.0.0.1:8765 (port 0 picks a free one)", opts.Addr)
			}
			if len(opts.EndpointIDs) == 0 {
				return usageErrorf("--endpoint-id: give at least one endpoint id")
			}
			for _, id := range append([]string{opts.WorkerID}, opts.EndpointIDs...) {
				if !emulatorIDPattern.MatchString(id) {
					return usageErrorf("id %q: use letters, digits, '-' and '_' only", id)
				}
			}
			if opts.PingInterval <= 0 {
				return usageErrorf("--ping-interval %s: want a positive duration such as 10s", opts.PingInterval)
			}
			if opts.PingTimeout < 0 || opts.ColdStart < 0 {
				return usageErrorf("--ping-timeout and --cold-start must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRunpodEmulator(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "address to listen on (host:port; port 0 picks a free one)")
	fl.StringSliceVar(&opts.EndpointIDs, "endpoint-id", []string{runpodtest.EndpointIDDefault}, "endpoint id to serve (repeat or comma-separate for several)")
	fl.StringVar(&opts.APIKey, "api-key", "", "API key clients and workers must send (default: a random rpa_… key)")
	fl.StringVar(&opts.WorkerID, "worker-id", "local-worker", "worker id (RUNPOD_POD_ID) of the printed worker variables")
	fl.StringVar(&opts.GPUName, "gpu", runpodtest.GPUNameDefault, "GPU name in the ?gpu= query of the worker URLs")
	fl.DurationVar(&opts.PingInterval, "ping-interval", runpodtest.PingIntervalDefault, "heartbeat interval handed to workers")
	fl.DurationVar(&opts.PingTimeout, "ping-timeout", 0, "silence after which a worker loses its jobs (default 6 × --ping-interval)")
	fl.DurationVar(&opts.ColdStart, "cold-start", 0, "how long a new worker stays initializing before it is served jobs")
	return cmd
}

// runRunpodEmulator serves the control plane until ctx is cancelled.
func runRunpodEmulator(ctx context.Context, opts *EmulatorOptions) error {
	logger, err := opts.Logger()
	if err != nil {
		return err
	}
	srv, err := runpodtest.NewServer(&runpodtest.Config{
		Addr:         opts.Addr,
		Endpoints:    opts.EndpointIDs,
		APIKey:       opts.APIKey,
		Logger:       logger,
		GPUName:      opts.GPUName,
		PingInterval: opts.PingInterval,
		PingTimeout:  opts.PingTimeout,
		ColdStart:    opts.ColdStart,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	env := srv.WorkerEnv(opts.WorkerID)
	var b strings.Builder
	for _, k := range emulatorEnvOrder {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(env[k]))
	}
	if _, err := io.WriteString(opts.IO.Out, b.String()); err != nil {
		return fmt.Errorf("writing the environment: %w", err)
	}
	_, _ = fmt.Fprintf(opts.IO.ErrOut, "comfypod runpod-emulator listening on %s (endpoints %s)\n", srv.URL, strings.Join(srv.Endpoints(), ", "))
	<-ctx.Done()
	srv.Close()
	_, _ = fmt.Fprintln(opts.IO.ErrOut, "comfypod runpod-emulator stopped")
	return nil
}

// shellQuote quotes v for a POSIX shell when it holds anything but plain
// characters.
func shellQuote(v string) string {
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:,+@%=", r)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
