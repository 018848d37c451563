package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/gateway"
	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/disk"
	"github.com/comfypod/comfypod/gateway/blob/s3"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/postgres"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/gateway/web"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/worker"
)

// Environment variables of comfypod serve and comfypod keys.
const (
	envDataDir   = "COMFYPOD_DATA_DIR"
	envDB        = "COMFYPOD_DB"
	envStorage   = "COMFYPOD_STORAGE"
	envPublicURL = "COMFYPOD_PUBLIC_URL"
	envReplicaID = "COMFYPOD_REPLICA_ID"
	// S3 credentials and endpoint, as the AWS tools name them.
	envS3Key      = "AWS_ACCESS_KEY_ID"
	envS3Secret   = "AWS_SECRET_ACCESS_KEY"
	envS3Session  = "AWS_SESSION_TOKEN"
	envS3Region   = "AWS_REGION"
	envS3Endpoint = "AWS_ENDPOINT_URL_S3"
	envS3Endpt2   = "AWS_ENDPOINT_URL"
)

// dataDirDefault is where the default database and outputs go.
const dataDirDefault = "comfypod-data"

// ServeOptions are the inputs of comfypod serve.
type ServeOptions struct {
	// IO are the command's streams: status on ErrOut.
	IO *IOStreams
	// Getenv reads the environment (RunPod, S3 and COMFYPOD_ variables).
	Getenv func(string) string
	// Logger makes the service's logger.
	Logger func() (*slog.Logger, error)
	// ClientLogger makes the logger of the RunPod client and the local stack:
	// quieter than the service's unless it is debug.
	ClientLogger func() (*slog.Logger, error)
	// StackLogger makes the local stack's logger: errors only unless the
	// level is debug (its workers would warn that the package's model
	// workflow cannot run on the built-in engine, which is why the stack runs
	// the preview).
	StackLogger func() (*slog.Logger, error)
	// Listen opens the listening socket (tests wrap it to learn the port).
	Listen func(network, address string) (net.Listener, error)
	// Hostname names the machine, for the default replica id.
	Hostname func() (string, error)
	// Ready, when set, is called with the service's address once it serves.
	Ready func(url string)

	// Addr is where the service listens.
	Addr string
	// DataDir holds the default database and outputs.
	DataDir string
	// DB is sqlite:PATH or a postgres:// URL ("" = SQLite in DataDir).
	DB string
	// Storage is a folder or s3://BUCKET/PREFIX ("" = DataDir/outputs).
	Storage string
	// Package is a package folder ("" = the built-in image-brush).
	Package string
	// Workflow is the manifest workflow jobs run ("" = preview on the local
	// stack, the manifest's default on RunPod).
	Workflow string
	// PublicURL is where RunPod reaches the service, for webhooks.
	PublicURL string
	// ReplicaID names this replica ("" = host name and address).
	ReplicaID string
	// Concurrency is how many jobs may be at RunPod at once.
	Concurrency int
	// Timeout bounds a job from acceptance to end.
	Timeout time.Duration
	// KeepWarm is the keep-warm interval (0: off).
	KeepWarm time.Duration
	// MaxSide downscales larger images (0: the package's max_side).
	MaxSide int
	// Workers is the number of workers of the local stack.
	Workers int
	// ColdStart makes the local stack a cold endpoint: its workers start on
	// the first job and load for this long before taking it (0: warm).
	ColdStart time.Duration
	// ColdStartAfter is how long a job waits in RunPod's queue before the
	// service checks for a cold start.
	ColdStartAfter time.Duration
	// Retention is how long ended jobs and their files are kept (0: for
	// ever).
	Retention time.Duration
	// Grace is how long work in progress may take to finish on Ctrl-C.
	Grace time.Duration
}

// NewCmdServe builds comfypod serve. runF replaces the command's action in
// tests; nil runs it.
func NewCmdServe(f *Factory, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IO, Getenv: f.Getenv, Logger: f.Logger, Listen: net.Listen, Hostname: os.Hostname,
		ClientLogger: func() (*slog.Logger, error) { return f.clientLogger(f.IO.ErrOut) },
		StackLogger: func() (*slog.Logger, error) {
			level := "error"
			if f.logLevel == "debug" {
				level = "debug"
			}
			return newLogger(f.IO.ErrOut, level, f.logFormat)
		}}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Image Brush service: the jobs API, its page, and the jobs on RunPod or a local stack",
		Long: `Run the Image Brush service: a page to paint a mask on an image, and the jobs
API behind it (POST /v1/jobs, events, outputs; described at /openapi.json).
Jobs run the image-brush package's workflow on a RunPod Serverless endpoint.

With RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID set (and RUNPOD_ENDPOINT_BASE_URL
optionally), jobs go to that endpoint. Without them, the service starts a
local stack in the same process — the RunPod emulator, --workers workers and
the built-in engine — running the package's model-free preview workflow: no
GPU, no key. The first line on standard error says which.

State lives in --db (SQLite by default, Postgres for several replicas) and
outputs in --storage (a folder by default, or an S3 bucket), both under
--data-dir unless given. With --public-url, RunPod reports the end of each job
to a per-job webhook and polling becomes a slow fallback.

API keys (comfypod keys create) protect the API. With no key, a service on a
loopback address runs open; on any other address it refuses to start.
Ctrl-C stops taking jobs, lets submissions in progress finish, and hands the
jobs in flight to the next start (or to another replica).`,
		Example: `  # Local: open http://127.0.0.1:8080, paint, get an image. No GPU, no key.
  comfypod serve

  # A RunPod endpoint, webhooks, Postgres and S3:
  export RUNPOD_API_KEY=… RUNPOD_ENDPOINT_ID=…
  export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…
  comfypod keys create --name web --db postgres://comfypod@db/comfypod
  comfypod serve --addr 0.0.0.0:8080 --public-url https://brush.example.com \
    --db postgres://comfypod@db/comfypod --storage 's3://my-bucket/outputs?region=eu-west-1'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.resolve(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	addDataFlags(cmd, &opts.DataDir, &opts.DB)
	fl.StringVar(&opts.Storage, "storage", "", "where outputs go: a `DIR` or s3://BUCKET/PREFIX[?endpoint=URL&region=R&path_style=true] (default $"+envStorage+" or DATA-DIR/outputs)")
	fl.StringVar(&opts.Package, "package", "", "package `DIR` holding comfypod.json and its workflows (default: the built-in image-brush)")
	fl.StringVar(&opts.Workflow, "workflow", "", "the manifest workflow `NAME` jobs run (default: preview on the local stack, the manifest's default on RunPod)")
	fl.StringVar(&opts.PublicURL, "public-url", "", "`URL` RunPod reaches this service at; enables webhooks (default $"+envPublicURL+"; on the local stack, the listening address)")
	fl.StringVar(&opts.ReplicaID, "replica-id", "", "this replica's stable `ID` among those sharing a database (default $"+envReplicaID+" or host name and address)")
	fl.IntVar(&opts.Concurrency, "concurrency", gateway.ConcurrencyDefault, "jobs at RunPod at once, over every replica")
	fl.DurationVar(&opts.Timeout, "timeout", gateway.TimeoutDefault, "how long a job may take from acceptance; then it is cancelled at RunPod")
	fl.DurationVar(&opts.KeepWarm, "keep-warm", 0, "check the endpoint this often and submit a small warm-up job when no worker is up (0: off; warm-ups cost GPU time)")
	fl.IntVar(&opts.MaxSide, "max-side", 0, "downscale images whose longer side is larger (0: the package's max_side)")
	fl.IntVar(&opts.Workers, "workers", 2, "workers of the local stack (without RunPod)")
	fl.DurationVar(&opts.ColdStart, "cold-start", 0, "make the local stack a cold endpoint: its workers start on the first job and load for this long before taking it (0: warm)")
	fl.DurationVar(&opts.ColdStartAfter, "cold-start-after", gateway.ColdStartAfterDefault, "how long a job waits in RunPod's queue before the service checks /health for a cold start")
	fl.DurationVar(&opts.Retention, "retention", gateway.RetentionDefault, "how long ended jobs are kept, with their images; then they are deleted (0: for ever)")
	fl.DurationVar(&opts.Grace, "shutdown-grace", 15*time.Second, "how long work in progress may take to finish on Ctrl-C")
	return cmd
}

// addDataFlags registers --data-dir and --db, shared with comfypod keys.
func addDataFlags(cmd *cobra.Command, dataDir, db *string) {
	fl := cmd.Flags()
	fl.StringVar(dataDir, "data-dir", "", "folder of the default database and outputs (default $"+envDataDir+" or ./"+dataDirDefault+")")
	fl.StringVar(db, "db", "", "the `database`: sqlite:PATH or postgres://user@host/db (default $"+envDB+" or sqlite:DATA-DIR/comfypod.db)")
}

// resolve fills defaults from the environment and checks the flags.
func (o *ServeOptions) resolve() error {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return usageErrorf("--addr %q: want host:port, like 127.0.0.1:8080", o.Addr)
	}
	o.DataDir, o.DB = dataDefaults(o.Getenv, o.DataDir, o.DB)
	if o.Storage == "" {
		o.Storage = o.Getenv(envStorage)
	}
	if o.Storage == "" {
		o.Storage = filepath.Join(o.DataDir, "outputs")
	}
	if o.PublicURL == "" {
		o.PublicURL = o.Getenv(envPublicURL)
	}
	if o.ReplicaID == "" {
		o.ReplicaID = o.Getenv(envReplicaID)
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return usageErrorf("--public-url %q: want http(s)://host[:port][/path], the address RunPod reaches this service at", o.PublicURL)
		}
	}
	switch {
	case o.Concurrency < 1:
		return usageErrorf("--concurrency %d: want at least 1", o.Concurrency)
	case o.Timeout < 10*time.Second:
		return usageErrorf("--timeout %s: want at least 10s (RunPod's shortest job lifetime)", o.Timeout)
	case o.KeepWarm < 0 || (o.KeepWarm > 0 && o.KeepWarm < 10*time.Second):
		return usageErrorf("--keep-warm %s: want 0 (off) or at least 10s", o.KeepWarm)
	case o.MaxSide < 0 || (o.MaxSide > 0 && o.MaxSide < 64):
		return usageErrorf("--max-side %d: want 0 (the package's) or at least 64", o.MaxSide)
	case o.Workers < 1 || o.Workers > 64:
		return usageErrorf("--workers %d: want 1 to 64", o.Workers)
	case o.Grace < 0:
		return usageErrorf("--shutdown-grace %s must not be negative", o.Grace)
	case o.ColdStart < 0:
		return usageErrorf("--cold-start %s must not be negative", o.ColdStart)
	case o.ColdStartAfter <= 0:
		return usageErrorf("--cold-start-after %s: want a positive duration", o.ColdStartAfter)
	case o.Retention < 0 || (o.Retention > 0 && o.Retention < time.Minute):
		return usageErrorf("--retention %s: want 0 (keep for ever) or at least 1m", o.Retention)
	}
	if _, err := parseDB(o.DB); err != nil {
		return err
	}
	return nil
}

// dataDefaults applies the environment and defaults to --data-dir and --db.
func dataDefaults(getenv func(string) string, dataDir, db string) (string, string) {
	if dataDir == "" {
		dataDir = getenv(envDataDir)
	}
	if dataDir == "" {
		dataDir = dataDirDefault
	}
	if db == "" {
		db = getenv(envDB)
	}
	if db == "" {
		db = "sqlite:" + filepath.Join(dataDir, "comfypod.db")
	}
	return dataDir, db
}

// dbSpec is a parsed --db.
type dbSpec struct {
	sqlite   string // path
	postgres string // DSN
}

func parseDB(spec string) (dbSpec, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(spec, "sqlite:"), "//")
		if p == "" {
			return dbSpec{}, usageErrorf("--db sqlite: needs a path, like sqlite:comfypod-data/comfypod.db")
		}
		return dbSpec{sqlite: p}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return dbSpec{postgres: spec}, nil
	}
	return dbSpec{}, usageErrorf("--db %q: want sqlite:PATH or postgres://user@host/database", redactDSN(spec))
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if i := strings.Index(dsn, "@"); i >= 0 {
			return "…" + dsn[i:]
		}
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.String()
}

// openDB opens the store --db names.
func openDB(ctx context.Context, spec string) (store.Store, string, error) {
	d, err := parseDB(spec)
	if err != nil {
		return nil, "", err
	}
	if d.sqlite != "" {
		st, err := sqlite.Open(ctx, d.sqlite, nil)
		if err != nil {
			return nil, "", err
		}
		return st, "SQLite " + d.sqlite, nil
	}
	st, err := postgres.Open(ctx, d.postgres, nil)
	if err != nil {
		return nil, "", err
	}
	return st, "Postgres " + redactDSN(d.postgres), nil
}

// openStorage opens the output store --storage names.
func openStorage(spec string, getenv func(string) string) (blob.Store, string, error) {
	if !strings.HasPrefix(spec, "s3://") {
		st, err := disk.New(spec)
		if err != nil {
			return nil, "", err
		}
		return st, "folder " + st.Dir(), nil
	}
	cfg, err := s3.ParseURL(spec)
	if err != nil {
		return nil, "", &UsageError{msg: "--storage: " + strings.TrimPrefix(err.Error(), "s3: ")}
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = getenv(envS3Endpoint)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = getenv(envS3Endpt2)
	}
	if cfg.Region == "" {
		cfg.Region = getenv(envS3Region)
	}
	if cfg.Endpoint == "" && cfg.Region != "" {
		cfg.Endpoint = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken = getenv(envS3Key), getenv(envS3Secret), getenv(envS3Session)
	st, err := s3.New(cfg)
	if err != nil {
		return nil, "", &UsageError{msg: "--storage: " + strings.TrimPrefix(err.Error(), "s3: ")}
	}
	return st, "S3 " + cfg.String(), nil
}

// isLoopback reports whether a listen address is reachable from this
// machine only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// servePackage returns the package's files and a name for it.
func servePackage(dir string) (fs.FS, string, error) {
	if dir == "" {
		return packages.ImageBrushFS(), "image-brush (built in)", nil
	}
	if st, err := os.Stat(filepath.Join(dir, gateway.ManifestFile)); err != nil || st.IsDir() {
		return nil, "", usageErrorf("--package %s: no %s there", dir, gateway.ManifestFile)
	}
	return os.DirFS(dir), dir, nil
}

// runServe serves until ctx ends.
func runServe(ctx context.Context, o *ServeOptions) error {
	logger, err := o.Logger()
	if err != nil {
		return err
	}
	quiet, err := o.ClientLogger()
	if err != nil {
		return err
	}
	say := func(format string, args ...any) {
		_, _ = fmt.Fprintf(o.IO.ErrOut, "comfypod serve: "+format+"\n", args...)
	}

	ln, err := o.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.Addr, err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	loopback := isLoopback(addr)

	st, storeDesc, err := openDB(ctx, o.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.CountActiveKeys(ctx)
	if err != nil {
		return fmt.Errorf("reading API keys: %w", err)
	}
	if keys == 0 && !loopback {
		return usageErrorf("no API key exists and %s is not a loopback address, so anyone could use the service.\n"+
			"Create a key first:  comfypod keys create --name NAME --db %s\n"+
			"(or listen on 127.0.0.1 to try it without one)", addr, redactDSN(o.DB))
	}
	outputs, outDesc, err := openStorage(o.Storage, o.Getenv)
	if err != nil {
		return err
	}
	pkgFS, pkgDesc, err := servePackage(o.Package)
	if err != nil {
		return err
	}

	conn := ConnectionOptions{}
	endpoint := strings.TrimSpace(o.Getenv(envEndpointID))
	apiKey := strings.TrimSpace(o.Getenv(envAPIKey))
	local := endpoint == "" && apiKey == ""
	switch {
	case endpoint != "" && apiKey == "":
		return usageErrorf("%s is set but %s is not: set both to use RunPod, or neither for the local stack", envEndpointID, envAPIKey)
	case endpoint == "" && apiKey != "":
		return usageErrorf("%s is set but %s is not: set both to use RunPod, or neither for the local stack", envAPIKey, envEndpointID)
	case !local && o.ColdStart > 0:
		return usageErrorf("--cold-start is for the local stack; a RunPod endpoint has cold starts of its own")
	}
	workflow := o.Workflow
	publicURL := o.PublicURL
	var stack *devstack.Stack
	if local {
		if workflow == "" {
			workflow = "preview"
		}
		say("==> backend: LOCAL STACK — RunPod emulator, %d worker(s), built-in engine; workflow %q of %s. No GPU, no RunPod key: results are the model-free preview.",
			o.Workers, workflow, pkgDesc)
		if o.ColdStart > 0 {
			say("cold start: the workers start on the first job and load for %s before taking it, as a RunPod endpoint scaled to zero does", o.ColdStart)
		}
		stackLog, err := o.StackLogger()
		if err != nil {
			return err
		}
		stack, err = startServeStack(ctx, pkgFS, workflow, o.Workers, o.ColdStart, stackLog)
		if err != nil {
			return fmt.Errorf("starting the local stack: %w", err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Grace)
			defer cancel()
			_ = stack.Close(cctx)
		}()
		conn = ConnectionOptions{Endpoint: stack.EndpointID(), APIKey: stack.APIKey(), BaseURL: stack.BaseURL()}
		if publicURL == "" {
			// The emulator runs here: it can always call back.
			publicURL = "http://" + loopbackOf(addr)
		}
	} else {
		conn.Endpoint, conn.APIKey = endpoint, apiKey
		if err := conn.resolve(o.Getenv); err != nil {
			return err
		}
	}
	client, err := conn.client(nil, quiet)
	if err != nil {
		return err
	}
	retention := o.Retention
	if retention == 0 {
		retention = -1 // kept for ever
	}
	replica := o.ReplicaID
	if replica == "" {
		host, herr := o.Hostname()
		if herr != nil || host == "" {
			host = "localhost"
		}
		replica = host + "/" + addr
	}
	svc, err := gateway.New(&gateway.Config{
		Store: st, Outputs: outputs, RunPod: client, Package: pkgFS, Workflow: workflow,
		PublicURL: publicURL, UIHandler: web.Handler(), Open: keys == 0 && loopback, ReplicaID: replica,
		Concurrency: o.Concurrency, Timeout: o.Timeout, KeepWarm: o.KeepWarm, MaxSide: o.MaxSide,
		ColdStartAfter: o.ColdStartAfter, Retention: retention, Logger: logger,
	})
	if err != nil {
		return err
	}
	if !local {
		wf := workflow
		if wf == "" {
			wf = "(the manifest's default)"
		}
		say("==> backend: RUNPOD endpoint %q at %s; workflow %s of %s. Jobs run on RunPod's GPUs.", endpoint, conn.BaseURL, wf, pkgDesc)
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           svc,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	serviceURL := "http://" + addr
	say("listening on %s (API: %s/openapi.json); replica %s", serviceURL, serviceURL, replica)
	say("store: %s; outputs: %s", storeDesc, outDesc)
	if o.Retention > 0 {
		say("retention: jobs and their images are deleted %s after they end (--retention; 0 keeps them)", durationText(o.Retention))
	} else {
		say("retention: off, jobs and their images are kept for ever (--retention)")
	}
	if publicURL != "" {
		say("webhooks: RunPod reports finished jobs to %s/v1/runpod/webhook/…; polling is the fallback", publicURL)
	} else {
		say("webhooks: off (no --public-url): jobs are followed by polling")
	}
	if keys == 0 {
		say("OPEN: no API key exists, so requests need none (the service listens on loopback only). Create one with: comfypod keys create")
	} else {
		say("API keys required (%d active)", keys)
	}
	if o.Ready != nil {
		o.Ready(serviceURL)
	}

	var runErr error
	select {
	case <-ctx.Done():
		say("stopping: no new jobs are taken; jobs in flight are handed to the next start")
	case err := <-serveErr:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Grace)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		logger.Warn("stopping the service", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("HTTP shutdown", "err", err)
	}
	if runErr == nil {
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("serving HTTP: %w", err)
		}
	}
	say("stopped")
	return runErr
}

// durationText writes a duration for people: whole days as days.
func durationText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > day && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// loopbackOf turns a listening address into one this machine can call:
// 0.0.0.0 and :: become 127.0.0.1.
func loopbackOf(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// startServeStack starts the local stack with the package loaded in the
// workers.
func startServeStack(ctx context.Context, pkgFS fs.FS, workflow string, workers int, coldStart time.Duration, logger *slog.Logger) (*devstack.Stack, error) {
	data, err := fs.ReadFile(pkgFS, gateway.ManifestFile)
	if err != nil {
		return nil, err
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	wfs, err := m.LoadWorkflows(pkgFS, ".")
	if err != nil {
		return nil, err
	}
	if _, ok := wfs[workflow]; !ok {
		return nil, usageErrorf("--workflow %q: the package has %s", workflow, strings.Join(m.Workflows(), ", "))
	}
	return devstack.Start(ctx, &devstack.Config{
		Workers: workers, Concurrency: 1, ColdStart: coldStart,
		Worker: worker.Config{Manifest: m, Workflows: wfs, Workflow: workflow},
		Logger: logger,
	})
}
