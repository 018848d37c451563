package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/comfy/engine"
)

// EngineOptions are the inputs of comfypod engine.
type EngineOptions struct {
	IO     *IOStreams
	Logger func() (*slog.Logger, error)
	// Listen opens the listening socket (net.Listen; tests wrap it to learn
	// the port).
	Listen func(network, address string) (net.Listener, error)

	// Addr is the host:port to serve on.
	Addr string
	// Dir is the base folder holding input/, output/ and temp/.
	Dir string
	// DisableMetadata keeps the prompt and workflow out of saved files.
	DisableMetadata bool
	// MaxUploadSizeMB is the largest request body, in megabytes.
	MaxUploadSizeMB float64
	// CORSOrigin enables CORS headers with this origin ("*" for any).
	CORSOrigin string
	// Grace is how long a running prompt may take to finish on shutdown
	// before it is interrupted.
	Grace time.Duration
}

// engineDirEnv names the environment variable that gives --dir a default.
const engineDirEnv = "COMFYPOD_ENGINE_DIR"

func newCmdEngine(f *Factory, runF func(context.Context, *EngineOptions) error) *cobra.Command {
	opts := &EngineOptions{IO: f.IO, Logger: f.Logger, Listen: net.Listen}
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Run a ComfyUI-compatible server that executes model-free image and mask nodes",
		Long: `Run the comfypod engine: a server that speaks ComfyUI's HTTP and websocket API
(the routes and messages of ComfyUI ` + engine.ComfyUIVersion + `) and executes the model-free core
image and mask nodes in Go, with no GPU and no Python. Clients of ComfyUI, such
as worker-comfyui or comfypod worker, work against it unchanged. Workflows that
need models (KSampler, CLIPTextEncode, …) are refused with ComfyUI's
invalid_prompt error.

--dir is laid out like ComfyUI's base folder: input/, output/ and temp/ (and
models/ for /models listings). It is created if missing; temp/ is emptied at
start, as ComfyUI does. SaveImage numbers files after those already in output/.

Logs go to standard error. Ctrl-C stops the server: the running prompt gets a
few seconds to finish, then it is interrupted.`,
		Example: `  comfypod engine --dir ./comfyui
  comfypod engine --addr 0.0.0.0:8188 --dir /data/comfyui --disable-metadata
  COMFYPOD_ENGINE_DIR=/data/comfyui comfypod engine --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Dir == "" {
				opts.Dir = f.Getenv(engineDirEnv)
			}
			if opts.Dir == "" {
				return usageErrorf("--dir is required: the base folder for input/, output/ and temp/ (created if missing); or set %s", engineDirEnv)
			}
			if opts.MaxUploadSizeMB <= 0 {
				return usageErrorf("--max-upload-size %v: want a positive number of megabytes", opts.MaxUploadSizeMB)
			}
			if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
				return usageErrorf("--addr %q: want host:port, like 127.0.0.1:8188", opts.Addr)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runEngine(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8188", "address to listen on (host:port)")
	fl.StringVar(&opts.Dir, "dir", "", "base folder with input/, output/ and temp/ (default $"+engineDirEnv+")")
	fl.BoolVar(&opts.DisableMetadata, "disable-metadata", false, "do not write the prompt and workflow into saved images")
	fl.Float64Var(&opts.MaxUploadSizeMB, "max-upload-size", float64(engine.MaxUploadSizeDefault)/(1<<20), "largest request body in MB")
	fl.StringVar(&opts.CORSOrigin, "enable-cors-header", "", "send CORS headers allowing this origin (\"*\" for any)")
	fl.DurationVar(&opts.Grace, "shutdown-grace", 5*time.Second, "how long a running prompt may take to finish on shutdown")
	return cmd
}

// runEngine serves the engine until ctx is cancelled.
func runEngine(ctx context.Context, opts *EngineOptions) error {
	logger, err := opts.Logger()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return fmt.Errorf("--dir %s: %w", opts.Dir, err)
	}
	eng, err := engine.New(&engine.Config{
		Dir:             dir,
		Logger:          logger,
		DisableMetadata: opts.DisableMetadata,
		MaxUploadSize:   int64(opts.MaxUploadSizeMB * (1 << 20)),
		CORSOrigin:      opts.CORSOrigin,
	})
	if err != nil {
		return err
	}
	ln, err := opts.Listen("tcp", opts.Addr)
	if err != nil {
		_ = eng.Stop(context.Background())
		return fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	// The executor outlives ctx: on Ctrl-C it gets the grace period below.
	if err := eng.Start(context.WithoutCancel(ctx)); err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           eng,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	_, _ = fmt.Fprintf(opts.IO.ErrOut, "comfypod engine (ComfyUI %s API) listening on http://%s\nbase folder: %s\n", engine.ComfyUIVersion, ln.Addr(), dir)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.Grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("HTTP shutdown", "err", err)
	}
	if err := eng.Stop(shutdownCtx); err != nil {
		logger.Warn("the running prompt was interrupted at shutdown", "err", err)
	}
	if runErr == nil {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("serving HTTP: %w", err)
		}
	}
	_, _ = fmt.Fprintln(opts.IO.ErrOut, "comfypod engine stopped")
	return runErr
}
