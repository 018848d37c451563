package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/hub"
	"github.com/comfypod/comfypod/serverless"
	"github.com/comfypod/comfypod/worker"
)

// Environment variables the worker reads besides RunPod's. The first group
// is worker-comfyui's, so its endpoints' settings keep working.
const (
	envReadyIntervalMS   = "COMFY_API_AVAILABLE_INTERVAL_MS"
	envReadyMaxRetries   = "COMFY_API_AVAILABLE_MAX_RETRIES"
	envReconnectAttempts = "WEBSOCKET_RECONNECT_ATTEMPTS"
	envReconnectDelayS   = "WEBSOCKET_RECONNECT_DELAY_S"
	envRefreshWorker     = "REFRESH_WORKER"
	envServeAPILocally   = "SERVE_API_LOCALLY"
	envComfyOrgAPIKey    = "COMFY_ORG_API_KEY"
	envBucketEndpoint    = "BUCKET_ENDPOINT_URL"
	envBucketAccessKey   = "BUCKET_ACCESS_KEY_ID"
	envBucketSecret      = "BUCKET_SECRET_ACCESS_KEY"

	envBucketName      = "BUCKET_NAME"
	envBucketRegion    = "BUCKET_REGION"
	envBucketPrefix    = "BUCKET_OBJECT_PREFIX"
	envBucketPublicURL = "BUCKET_PUBLIC_URL"
	envBucketURLExpiry = "BUCKET_URL_EXPIRY"

	envComfyURL   = "COMFYPOD_COMFY_URL"
	envComfyDir   = "COMFYPOD_COMFY_DIR"
	envManifest   = "COMFYPOD_MANIFEST"
	envPackage    = "COMFYPOD_PACKAGE"
	envWorkflow   = "COMFYPOD_WORKFLOW"
	envWarmup     = "COMFYPOD_WARMUP"
	envPIDFile    = "COMFYPOD_PID_FILE"
	envJobTimeout = "COMFYPOD_JOB_TIMEOUT"
)

// workerGCPercent is the worker's GOGC when the environment sets none. Its
// heap is mostly the current job's payload, copied a few times on the way
// in and out; collecting at 50 % growth instead of Go's 100 % keeps the
// peak near the payload (about 4 MB less for a 2 MB image in and out) for a
// few extra short collections per job.
const workerGCPercent = 50

// serveAPIAddrDefault is where SERVE_API_LOCALLY serves, as runpod-python's
// --rp_serve_api --rp_api_host 0.0.0.0 does in worker-comfyui.
const serveAPIAddrDefault = "0.0.0.0:8000"

// handlerFlags are the settings of the job handler that comfypod worker and
// comfypod dev share.
type handlerFlags struct {
	ComfyDir         string
	Manifest         string
	Package          string
	Workflow         string
	Warmup           string
	WarmupRequired   bool
	JobTimeout       time.Duration
	RandomizeSeeds   bool
	AllowServerFiles bool
	KeepFiles        bool
	MaxImageMB       float64
	MaxVideoMB       float64
	MaxInputMB       float64
	MaxImageSide     int
	MaxMegapixels    float64
	DecodeImages     bool
	NoURLInputs      bool
	AllowHTTPURLs    bool
	AllowPrivateURLs bool
	URLAllow         []string
	URLTimeout       time.Duration
}

func (hf *handlerFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&hf.ComfyDir, "comfy-dir", "", "ComfyUI's base folder (input/, output/, temp/) on this machine: each job's files are deleted after it (default $"+envComfyDir+")")
	fl.StringVar(&hf.Manifest, "manifest", "", "package manifest `FILE` (comfypod.json) naming the params jobs may set (default $"+envManifest+")")
	fl.StringVar(&hf.Package, "package", "", "package `DIR` holding comfypod.json (default $"+envPackage+")")
	fl.StringVar(&hf.Workflow, "workflow", "", "the manifest's workflow `NAME` jobs run by default (default: its first; $"+envWorkflow+")")
	fl.StringVar(&hf.Warmup, "warmup", "", "warm-up `FILE`: a job input or an API workflow run once before the first job (default $"+envWarmup+")")
	fl.BoolVar(&hf.WarmupRequired, "warmup-required", false, "do not serve jobs when the warm-up fails")
	fl.DurationVar(&hf.JobTimeout, "job-timeout", 0, "interrupt ComfyUI and fail a job that runs longer (0: RunPod's executionTimeout decides; $"+envJobTimeout+")")
	fl.BoolVar(&hf.RandomizeSeeds, "randomize-seeds", false, "give every seed input a fresh random value on each job (except params)")
	fl.BoolVar(&hf.AllowServerFiles, "allow-server-files", false, "let workflows load files already on the ComfyUI server, not only the job's own")
	fl.BoolVar(&hf.KeepFiles, "keep-files", false, "keep each job's inputs, outputs and history in ComfyUI (for debugging)")
	fl.Float64Var(&hf.MaxImageMB, "max-image-mb", float64(worker.MaxImageBytesDefault)/(1<<20), "largest input image in MB")
	fl.Float64Var(&hf.MaxVideoMB, "max-video-mb", float64(worker.MaxVideoBytesDefault)/(1<<20), "largest input video or audio file in MB, base64 or downloaded (ComfyUI's --max-upload-size is the ceiling)")
	fl.Float64Var(&hf.MaxInputMB, "max-input-mb", float64(worker.MaxInputBytesDefault)/(1<<20), "largest total of a job's input files in MB")
	fl.IntVar(&hf.MaxImageSide, "max-image-side", worker.MaxImageSideDefault, "largest input image width or height in pixels")
	fl.Float64Var(&hf.MaxMegapixels, "max-megapixels", float64(worker.MaxImagePixelsDefault)/1e6, "largest input image in megapixels")
	fl.BoolVar(&hf.DecodeImages, "decode-images", false, "decode every input image fully before the job runs (by default structure and header are checked)")
	fl.BoolVar(&hf.NoURLInputs, "no-url-inputs", false, "refuse input files (images, videos, audio) given as URLs")
	fl.BoolVar(&hf.AllowHTTPURLs, "allow-http-urls", false, "accept http:// input file URLs (only https:// by default)")
	fl.BoolVar(&hf.AllowPrivateURLs, "allow-private-urls", false, "accept input file URLs on loopback, private and link-local addresses")
	fl.StringSliceVar(&hf.URLAllow, "url-allow", nil, "addresses input file URLs may use although not public: IP prefixes or IP:port (repeatable)")
	fl.DurationVar(&hf.URLTimeout, "url-timeout", worker.URLTimeoutDefault, "time limit of one input file download (raise it for large videos)")
}

// config builds the handler's configuration from the flags and the
// environment.
func (hf *handlerFlags) config(getenv func(string) string) (*worker.Config, error) {
	env := func(v *string, key string) {
		if *v == "" {
			*v = strings.TrimSpace(getenv(key))
		}
	}
	env(&hf.ComfyDir, envComfyDir)
	env(&hf.Manifest, envManifest)
	env(&hf.Package, envPackage)
	env(&hf.Workflow, envWorkflow)
	env(&hf.Warmup, envWarmup)
	if hf.JobTimeout == 0 {
		if v := getenv(envJobTimeout); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, usageErrorf("%s=%q: want a duration such as 10m", envJobTimeout, v)
			}
			hf.JobTimeout = d
		}
	}
	switch {
	case hf.JobTimeout < 0:
		return nil, usageErrorf("--job-timeout %s: want a positive duration, or 0 for no limit", hf.JobTimeout)
	case hf.MaxImageMB <= 0 || hf.MaxVideoMB < 0 || hf.MaxInputMB <= 0 || hf.MaxImageSide <= 0 || hf.MaxMegapixels <= 0:
		return nil, usageErrorf("--max-image-mb, --max-video-mb, --max-input-mb, --max-image-side and --max-megapixels must be positive")
	case hf.URLTimeout <= 0:
		return nil, usageErrorf("--url-timeout %s: want a positive duration", hf.URLTimeout)
	case hf.Manifest != "" && hf.Package != "":
		return nil, usageErrorf("give --manifest or --package, not both")
	}
	cfg := &worker.Config{
		ComfyDir:         hf.ComfyDir,
		KeepFiles:        hf.KeepFiles,
		WarmupRequired:   hf.WarmupRequired,
		JobTimeout:       hf.JobTimeout,
		RandomizeSeeds:   hf.RandomizeSeeds,
		AllowServerFiles: hf.AllowServerFiles,
		ComfyOrgAPIKey:   strings.TrimSpace(getenv(envComfyOrgAPIKey)),
		Limits: worker.Limits{
			MaxImageBytes:  int64(hf.MaxImageMB * (1 << 20)),
			MaxVideoBytes:  int64(hf.MaxVideoMB * (1 << 20)),
			MaxInputBytes:  int64(hf.MaxInputMB * (1 << 20)),
			MaxImageSide:   hf.MaxImageSide,
			MaxImagePixels: int64(hf.MaxMegapixels * 1e6),
			DecodeImages:   hf.DecodeImages,
		},
		URLs: worker.URLPolicy{
			Disabled: hf.NoURLInputs, AllowHTTP: hf.AllowHTTPURLs, AllowPrivate: hf.AllowPrivateURLs,
			Allow: hf.URLAllow, Timeout: hf.URLTimeout,
		},
	}
	manifest := hf.Manifest
	if hf.Package != "" {
		manifest = filepath.Join(hf.Package, hub.ManifestFile)
	}
	if manifest != "" {
		data, err := os.ReadFile(manifest)
		if err != nil {
			return nil, fmt.Errorf("reading the manifest: %w", err)
		}
		m, err := comfy.ParseManifest(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", manifest, err)
		}
		wfs, err := m.LoadWorkflows(os.DirFS(filepath.Dir(manifest)), ".")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", manifest, err)
		}
		if hf.Workflow != "" {
			if _, ok := wfs[hf.Workflow]; !ok {
				return nil, usageErrorf("--workflow %q: %s has workflows %s", hf.Workflow, manifest, strings.Join(m.Workflows(), ", "))
			}
		}
		cfg.Manifest, cfg.Workflows, cfg.Workflow = m, wfs, hf.Workflow
	} else if hf.Workflow != "" {
		return nil, usageErrorf("--workflow %q needs a package: give --manifest or --package", hf.Workflow)
	}
	if hf.Warmup != "" {
		data, err := os.ReadFile(hf.Warmup)
		if err != nil {
			return nil, fmt.Errorf("reading the warm-up workflow: %w", err)
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("the warm-up file %s is not JSON", hf.Warmup)
		}
		cfg.Warmup = data
	}
	if err := readWorkerComfyEnv(getenv, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readWorkerComfyEnv reads worker-comfyui's variables into cfg.
func readWorkerComfyEnv(getenv func(string) string, cfg *worker.Config) error {
	var errs []string
	num := func(key string, set func(float64)) {
		v := strings.TrimSpace(getenv(key))
		if v == "" {
			return
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q: want a non-negative number", key, v))
			return
		}
		set(n)
	}
	num(envReadyIntervalMS, func(n float64) { cfg.ReadyInterval = time.Duration(n * float64(time.Millisecond)) })
	num(envReadyMaxRetries, func(n float64) { cfg.ReadyAttempts = int(n) })
	num(envReconnectAttempts, func(n float64) {
		cfg.ReconnectAttempts = int(n)
		if n == 0 {
			cfg.ReconnectAttempts = -1
		}
	})
	num(envReconnectDelayS, func(n float64) { cfg.ReconnectDelay = time.Duration(n * float64(time.Second)) })
	if ep := strings.TrimSpace(getenv(envBucketEndpoint)); ep != "" {
		s3 := &worker.S3Config{
			EndpointURL:     ep,
			AccessKeyID:     strings.TrimSpace(getenv(envBucketAccessKey)),
			SecretAccessKey: strings.TrimSpace(getenv(envBucketSecret)),
			Bucket:          strings.TrimSpace(getenv(envBucketName)),
			Region:          strings.TrimSpace(getenv(envBucketRegion)),
			Prefix:          strings.TrimSpace(getenv(envBucketPrefix)),
			PublicURL:       strings.TrimSpace(getenv(envBucketPublicURL)),
		}
		if v := strings.TrimSpace(getenv(envBucketURLExpiry)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a duration such as 24h (at most 168h)", envBucketURLExpiry, v))
			}
			s3.URLExpiry = d
		}
		if s3.AccessKeyID == "" || s3.SecretAccessKey == "" {
			errs = append(errs, fmt.Sprintf("%s is set but %s or %s is not: set all three to upload outputs to S3", envBucketEndpoint, envBucketAccessKey, envBucketSecret))
		}
		cfg.S3 = s3
	}
	if len(errs) > 0 {
		return usageErrorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// truthy reads a boolean environment value the way runpod-python does.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// WorkerOptions are the inputs of comfypod worker.
type WorkerOptions struct {
	// IO are the command's streams: logs on RunPod go to Out, as RunPod's
	// console reads it; in the local modes the result does.
	IO *IOStreams
	// Getenv reads RunPod's and worker-comfyui's variables.
	Getenv func(string) string
	// Signals delivers SIGTERM and SIGINT: the first stops taking jobs and
	// lets running ones finish, the second stops them at once. stop ends the
	// delivery.
	Signals func() (ch <-chan os.Signal, stop func())
	// Listen opens the --serve-api socket.
	Listen func(network, address string) (net.Listener, error)
	// Configure, when set, adjusts the handler's and the runtime's
	// configurations before they start (tests use it for clocks and
	// timeouts).
	Configure func(*worker.Config, *serverless.Config)

	// ComfyURL is the ComfyUI server.
	ComfyURL string
	// PIDFile holds ComfyUI's process id, written by the entrypoint.
	PIDFile string
	// TestInput runs one job from a file or inline JSON and exits.
	TestInput string
	// ServeAPI serves RunPod's job routes on this address instead of taking
	// jobs from RunPod.
	ServeAPI string

	// Handler holds the job handler's flags, shared with comfypod dev.
	Handler handlerFlags
}

// NewCmdWorker builds comfypod worker. runF replaces the command's action
// in tests; nil runs it.
func NewCmdWorker(f *Factory, runF func(context.Context, *WorkerOptions) error) *cobra.Command {
	opts := &WorkerOptions{IO: f.IO, Getenv: f.Getenv, Signals: notifySignals, Listen: net.Listen}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the RunPod Serverless worker that executes ComfyUI workflows",
		Long: `Run comfypod's RunPod Serverless worker: it takes jobs from RunPod and runs
them on a ComfyUI server, the Go counterpart of worker-comfyui's handler.py.
It is the entrypoint of the worker image (docker/worker.Dockerfile) and reads
RunPod's environment (RUNPOD_WEBHOOK_GET_JOB and friends).

A job's input is worker-comfyui's ({"workflow": …, "images": [{"name",
"image"}]}) plus named params of a package manifest, input files as URLs,
videos and audio (in images, or in "files": [{"name", "file"}]), and output
options; its output is {"images": [{"filename", "type", "data"}],
"videos": […], …} as base64 or S3 URLs. See docs/worker.md.

Before the first job the worker waits for ComfyUI (polling while the process
in --pid-file lives; worker-comfyui's COMFY_API_AVAILABLE_INTERVAL_MS and
COMFY_API_AVAILABLE_MAX_RETRIES otherwise), checks the package's bindings and
runs the --warmup workflow.

Also read: WEBSOCKET_RECONNECT_ATTEMPTS, WEBSOCKET_RECONNECT_DELAY_S,
REFRESH_WORKER, COMFY_ORG_API_KEY, BUCKET_ENDPOINT_URL,
BUCKET_ACCESS_KEY_ID, BUCKET_SECRET_ACCESS_KEY (and BUCKET_NAME,
BUCKET_REGION, BUCKET_OBJECT_PREFIX, BUCKET_PUBLIC_URL, BUCKET_URL_EXPIRY),
SERVE_API_LOCALLY.

Modes: with --test-input it runs one job, prints its result on standard
output and exits 0 (COMPLETED) or 1 (FAILED); with --serve-api (or
SERVE_API_LOCALLY=true) it serves RunPod's /run, /runsync and /status
routes locally. On SIGTERM it stops taking jobs and lets running ones finish
for the shutdown grace (RUNPOD's 5 s by default); a second signal stops them
at once.`,
		Example: `  # In the image (see docker/entrypoint.sh):
  comfypod worker --comfy-url http://127.0.0.1:8188 --comfy-dir /comfyui --pid-file /tmp/comfyui.pid

  # One job against a local ComfyUI:
  comfypod worker --test-input '{"input": {"workflow": {…}}}'
  comfypod worker --package packages/image-brush --test-input test_input.json

  # RunPod's job routes on port 8000:
  comfypod worker --serve-api 127.0.0.1:8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ComfyURL == "" {
				opts.ComfyURL = strings.TrimSpace(opts.Getenv(envComfyURL))
			}
			if opts.ComfyURL == "" {
				opts.ComfyURL = worker.ComfyURLDefault
			}
			if opts.PIDFile == "" {
				opts.PIDFile = strings.TrimSpace(opts.Getenv(envPIDFile))
			}
			if opts.ServeAPI == "" && truthy(opts.Getenv(envServeAPILocally)) {
				opts.ServeAPI = serveAPIAddrDefault
			}
			if opts.ServeAPI != "" {
				if _, _, err := net.SplitHostPort(opts.ServeAPI); err != nil {
					return usageErrorf("--serve-api %q: want host:port, like 127.0.0.1:8000", opts.ServeAPI)
				}
			}
			if opts.TestInput != "" && opts.ServeAPI != "" {
				return usageErrorf("give --test-input or --serve-api, not both")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWorker(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.ComfyURL, "comfy-url", "", "ComfyUI server `URL` (default $"+envComfyURL+" or "+worker.ComfyURLDefault+")")
	fl.StringVar(&opts.PIDFile, "pid-file", "", "`FILE` holding ComfyUI's process id: wait for it while it runs, fail fast when it dies (default $"+envPIDFile+")")
	fl.StringVar(&opts.TestInput, "test-input", "", "run one job from a `FILE` or inline JSON ({\"input\": …}), print its result and exit")
	fl.StringVar(&opts.ServeAPI, "serve-api", "", "serve RunPod's job routes on `ADDR` (host:port) instead of taking jobs from RunPod")
	opts.Handler.register(fl)
	return cmd
}

// notifySignals delivers SIGTERM and SIGINT.
func notifySignals() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	return ch, func() { signal.Stop(ch) }
}

// runWorker runs the worker in the mode the options and environment pick.
func runWorker(ctx context.Context, o *WorkerOptions) error {
	if o.Getenv("GOGC") == "" {
		debug.SetGCPercent(workerGCPercent)
	}
	sigs, stopSignals := o.Signals()
	defer stopSignals()
	wc, err := o.Handler.config(o.Getenv)
	if err != nil {
		return err
	}
	wc.ComfyURL, wc.PIDFile = o.ComfyURL, o.PIDFile
	sc, err := serverless.ConfigFromEnv(o.Getenv)
	if err != nil {
		return usageErrorf("%v", err)
	}
	sc.RefreshWorker = sc.RefreshWorker || truthy(o.Getenv(envRefreshWorker))

	// Logs: RunPod's console reads standard output; in the local modes the
	// result goes there, so logs go to standard error.
	logOut := o.IO.Out
	if o.TestInput != "" || o.ServeAPI != "" || sc.Local() {
		logOut = o.IO.ErrOut
	}
	secrets := []string{sc.APIKey, wc.ComfyOrgAPIKey}
	if wc.S3 != nil {
		secrets = append(secrets, wc.S3.SecretAccessKey)
	}
	logger := slog.New(serverless.NewLogHandler(logOut, &serverless.LogOptions{JSON: sc.EndpointID != "", Level: sc.LogLevel, Secrets: secrets}))
	wc.Logger, sc.Logger = logger, logger
	if o.Configure != nil {
		o.Configure(wc, sc)
	}
	h, err := worker.New(wc)
	if err != nil {
		return err
	}
	defer h.Close()
	sc.Handler = h.Handle

	switch {
	case o.TestInput != "":
		return runTestInput(ctx, o, h, sc)
	case o.ServeAPI != "":
		return serveLocalAPI(ctx, o, h, sc, logger)
	case sc.Local():
		// No RunPod: run test_input.json, as runpod-python does.
		if err := h.Start(ctx); err != nil {
			return err
		}
		if err := serverless.Start(ctx, h.Handle, sc); err != nil {
			if errors.Is(err, serverless.ErrJobFailed) {
				return &SilentError{Code: ExitFailed}
			}
			return err
		}
		return nil
	}
	return runRunPodWorker(ctx, h, sc, sigs, logger)
}

// runRunPodWorker takes jobs from RunPod until a signal: the first stops
// taking jobs and lets the running ones finish for the shutdown grace, the
// second (or the grace running out) cancels them. Signals are counted on
// sigs alone: ctx ends with the first one too, and must not count twice.
func runRunPodWorker(ctx context.Context, h *worker.Handler, sc *serverless.Config, sigs <-chan os.Signal, logger *slog.Logger) error {
	signals := 0
	// Readiness and warm-up run as a fitness check, so RunPod hears of a
	// ComfyUI that never comes up; a signal meanwhile ends the wait.
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	sc.FitnessChecks = append(sc.FitnessChecks, serverless.FitnessCheck{Name: "comfyui", Check: func(context.Context) error { return h.Start(startCtx) }})
	w, err := serverless.New(sc)
	if err != nil {
		return err
	}
	started := make(chan error, 1)
	// The worker's own context is not the command's: cancelling it would
	// hard-stop the running jobs at the first signal.
	go func() { started <- w.Start(context.WithoutCancel(ctx)) }()
	select {
	case err := <-started:
		if err != nil {
			return err
		}
	case <-sigs:
		signals++
		cancelStart()
	case <-ctx.Done():
		cancelStart()
	}
	if startCtx.Err() != nil {
		if err := <-started; err != nil {
			logger.Info("stopped before the first job", "err", err)
			return nil
		}
	}
	cancelStart()
	if signals == 0 {
		select {
		case <-w.Done():
			return nil // REFRESH_WORKER: drained after its job
		case <-sigs:
			signals++
		case <-ctx.Done():
		}
	}
	grace := sc.WithDefaults().ShutdownGrace
	logger.Info(fmt.Sprintf("stopping: running jobs get %s to finish; send the signal again to stop them now", grace))
	stopCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- w.Stop(stopCtx) }()
	for {
		select {
		case err := <-stopped:
			if err != nil {
				logger.Warn("jobs still running at the end of the shutdown grace were stopped", "err", err)
			}
			return nil
		case <-sigs:
			if signals++; signals >= 2 {
				logger.Info("second signal: stopping the running jobs now")
				cancel()
			}
		}
	}
}

// runTestInput runs one job and prints its result.
func runTestInput(ctx context.Context, o *WorkerOptions, h *worker.Handler, sc *serverless.Config) error {
	input, err := readTestInput(o.TestInput)
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	res, err := serverless.RunLocal(ctx, sc, input)
	if err != nil {
		return err
	}
	if err := writeJSON(o.IO.Out, res); err != nil {
		return err
	}
	if res.Failed() {
		return &SilentError{Code: ExitFailed}
	}
	return nil
}

// readTestInput reads --test-input: inline JSON or a file, with or without
// the {"input": …} wrapper.
func readTestInput(arg string) ([]byte, error) {
	data := []byte(arg)
	if t := strings.TrimSpace(arg); !strings.HasPrefix(t, "{") {
		var err error
		if data, err = os.ReadFile(arg); err != nil {
			return nil, usageErrorf("--test-input: %v (give a file or inline JSON)", err)
		}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, usageErrorf("--test-input is not a JSON object: %v", err)
	}
	if _, ok := top["input"]; !ok {
		data = append(append([]byte(`{"input":`), data...), '}')
	}
	return data, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// serveLocalAPI serves RunPod's job routes until ctx ends.
func serveLocalAPI(ctx context.Context, o *WorkerOptions, h *worker.Handler, sc *serverless.Config, logger *slog.Logger) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	api, err := serverless.NewLocalAPI(sc)
	if err != nil {
		return err
	}
	ln, err := o.Listen("tcp", o.ServeAPI)
	if err != nil {
		api.Close()
		return fmt.Errorf("listening on %s: %w", o.ServeAPI, err)
	}
	logger.Info("serving RunPod's job routes (/run, /runsync, /status/{id}) on http://" + ln.Addr().String())
	return api.Serve(ctx, ln)
}
