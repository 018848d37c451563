package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// DevOptions are the inputs of comfypod dev.
type DevOptions struct {
	// IO gets the client's variables on Out and status on ErrOut.
	IO *IOStreams
	// Getenv reads the handler's variables (BUCKET_*, COMFYPOD_*, …).
	Getenv func(string) string
	// Logger makes the logger every part of the stack writes to.
	Logger func() (*slog.Logger, error)
	// Configure, when set, adjusts the stack's configuration before it
	// starts (tests add engine node classes).
	Configure func(*devstack.Config)

	// Workers is the number of workers.
	Workers int
	// ComfyURL is a ComfyUI to drive instead of the built-in engine.
	ComfyURL string
	// Dir is the engine's base folder (a temporary one when empty).
	Dir string
	// Addr and EngineAddr are where the control plane and the engine
	// listen.
	Addr       string
	EngineAddr string
	// EndpointID and APIKey are the endpoint's id and key.
	EndpointID string
	APIKey     string
	// Grace is how long running jobs may take to finish on Ctrl-C.
	Grace time.Duration

	// Handler holds the job handler's flags, shared with comfypod worker.
	Handler handlerFlags
}

// devEnvOrder is the order the client variables are printed in.
var devEnvOrder = []string{runpodtest.EnvBaseURL, runpodtest.EnvEndpointID, runpodtest.EnvAPIKey}

// NewCmdDev builds comfypod dev. runF replaces the command's action in
// tests; nil runs it.
func NewCmdDev(f *Factory, runF func(context.Context, *DevOptions) error) *cobra.Command {
	opts := &DevOptions{IO: f.IO, Getenv: f.Getenv, Logger: f.Logger}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run RunPod, workers and ComfyUI locally: the whole trip on one machine",
		Long: `Run the whole trip locally, in one process: the RunPod control plane
(the runpod-emulator), --workers serverless workers running comfypod's ComfyUI
job handler, and the built-in engine (comfypod engine) in a temporary folder
or --dir, or the ComfyUI at --comfy-url. No GPU, no RunPod account.

Standard output gets, at once, the variables a RunPod client needs:
RUNPOD_ENDPOINT_BASE_URL, RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY as KEY=VALUE
lines, so that comfypod run and the official Python client
(runpod.endpoint_url_base = RUNPOD_ENDPOINT_BASE_URL) work against it. Logs
go to standard error. Ctrl-C stops everything: running jobs get --grace to
finish.

The handler flags are those of comfypod worker: --package or --manifest load
a package's named params and default workflow, --warmup runs a workflow
before the first job, and so on.`,
		Example: `  comfypod dev > dev.env &
  until [ -s dev.env ]; do sleep 0.1; done
  set -a; . ./dev.env; set +a
  comfypod run --workflow invert.json --image input.png=cat.png --out ./out

  comfypod dev --package packages/image-brush --workflow preview --workers 2
  comfypod dev --comfy-url http://127.0.0.1:8188 --comfy-dir ~/ComfyUI`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Workers < 1 || opts.Workers > 64 {
				return usageErrorf("--workers %d: want 1 to 64", opts.Workers)
			}
			for _, a := range []struct{ flag, v string }{{"--addr", opts.Addr}, {"--engine-addr", opts.EngineAddr}} {
				if _, _, err := net.SplitHostPort(a.v); err != nil {
					return usageErrorf("%s %q: want host:port, like 127.0.0.1:0 (port 0 picks a free one)", a.flag, a.v)
				}
			}
			if opts.ComfyURL != "" && opts.Dir != "" {
				return usageErrorf("--dir is the built-in engine's folder; with --comfy-url give ComfyUI's folder as --comfy-dir")
			}
			if opts.EndpointID != "" && !emulatorIDPattern.MatchString(opts.EndpointID) {
				return usageErrorf("--endpoint-id %q: use letters, digits, '-' and '_' only", opts.EndpointID)
			}
			if opts.Grace < 0 {
				return usageErrorf("--grace %s must not be negative", opts.Grace)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDev(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Workers, "workers", devstack.WorkersDefault, "number of workers")
	fl.StringVar(&opts.ComfyURL, "comfy-url", "", "drive the ComfyUI at `URL` instead of the built-in engine")
	fl.StringVar(&opts.Dir, "dir", "", "the built-in engine's base folder (default: a temporary folder, removed on exit)")
	fl.StringVar(&opts.Addr, "addr", devstack.AddrDefault, "address of the RunPod control plane (host:port; port 0 picks a free one)")
	fl.StringVar(&opts.EngineAddr, "engine-addr", devstack.AddrDefault, "address of the built-in engine")
	fl.StringVar(&opts.EndpointID, "endpoint-id", "", "endpoint id (default \""+runpodtest.EndpointIDDefault+"\")")
	fl.StringVar(&opts.APIKey, "api-key", "", "API key clients must send (default: a random rpa_… key)")
	fl.DurationVar(&opts.Grace, "grace", 10*time.Second, "how long running jobs may take to finish on Ctrl-C")
	opts.Handler.register(fl)
	return cmd
}

// runDev serves the stack until ctx ends.
func runDev(ctx context.Context, o *DevOptions) error {
	logger, err := o.Logger()
	if err != nil {
		return err
	}
	wc, err := o.Handler.config(o.Getenv)
	if err != nil {
		return err
	}
	cfg := &devstack.Config{
		Workers: o.Workers, ComfyURL: o.ComfyURL, ComfyDir: wc.ComfyDir, EngineDir: o.Dir, EngineAddr: o.EngineAddr,
		Addr: o.Addr, EndpointID: o.EndpointID, APIKey: o.APIKey, Worker: *wc, Logger: logger,
	}
	if o.Configure != nil {
		o.Configure(cfg)
	}
	st, err := devstack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	env := st.Env()
	var b strings.Builder
	for _, k := range devEnvOrder {
		fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(env[k]))
	}
	if _, err := io.WriteString(o.IO.Out, b.String()); err != nil {
		_ = st.Close(context.Background())
		return fmt.Errorf("writing the environment: %w", err)
	}
	comfy := st.ComfyURL()
	if st.Engine() != nil {
		comfy += " (built-in engine, folder " + st.ComfyDir() + ")"
	}
	_, _ = fmt.Fprintf(o.IO.ErrOut, "comfypod dev: RunPod endpoint %q at %s, %d worker(s), ComfyUI %s\n", st.EndpointID(), st.BaseURL(), o.Workers, comfy)
	<-ctx.Done()
	_, _ = fmt.Fprintln(o.IO.ErrOut, "comfypod dev: stopping")
	cctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	err = st.Close(cctx)
	_, _ = fmt.Fprintln(o.IO.ErrOut, "comfypod dev stopped")
	return err
}
