package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/runpod"
)

// Defaults of Config.
const (
	// ConcurrencyDefault is how many jobs may be at RunPod (queued or
	// running there) at once, over every replica.
	ConcurrencyDefault = 4
	// TimeoutDefault is how long a job may take from the moment it is
	// accepted until it ends; then it is cancelled at RunPod. Six minutes
	// covers a cold start and a long run, as the Image Brush integration
	// found.
	TimeoutDefault = 6 * time.Minute
	// ColdStartAfterDefault is how long a job may wait in RunPod's queue
	// before the gateway asks /health whether a worker is starting.
	ColdStartAfterDefault = runpod.ColdStartAfterDefault
	// LeaseTTLDefault is how long a replica holds the jobs it watches without
	// renewing; a dead replica's jobs move to another one after it.
	LeaseTTLDefault = 30 * time.Second
	// PollersDefault is how many status calls are in flight at once.
	PollersDefault = 16
	// SubmittersDefault is how many /run calls are in flight at once.
	SubmittersDefault = 8
	// PollRateDefault caps the status calls a replica makes per second,
	// whatever the number of jobs (RunPod allows 200 per second per
	// endpoint).
	PollRateDefault = 100
	// PollMinDefault and PollMaxDefault bound how often one job's status is
	// checked: soon after a change, backing off to the seed's 2 s.
	PollMinDefault = time.Second
	PollMaxDefault = 2 * time.Second
	// WebhookPollMaxDefault is the slower polling used as a fallback when
	// RunPod reports the end of jobs by webhook.
	WebhookPollMaxDefault = 15 * time.Second
	// DispatchIntervalDefault is how often the queue is checked without
	// being woken (for jobs and free slots of other replicas).
	DispatchIntervalDefault = time.Second
	// EventsIntervalDefault is how often an event stream re-reads its job,
	// for changes made by other replicas.
	EventsIntervalDefault = time.Second
	// KeepAliveDefault is the interval of keep-alive comments on an event
	// stream.
	KeepAliveDefault = 15 * time.Second
	// MaxImageBytesDefault caps one uploaded image.
	MaxImageBytesDefault = 20 << 20
	// MaxRequestBytesDefault caps a whole POST /v1/jobs body.
	MaxRequestBytesDefault = 64 << 20
	// MaxPixelsDefault caps an image's width × height before it is decoded.
	MaxPixelsDefault = 64 << 20
	// MaxOutputBytesDefault caps one output file copied into the output
	// store.
	MaxOutputBytesDefault = 1 << 30
	// RetentionDefault is how long a job is kept after it ends, with its
	// inputs, outputs and thumbnails: a week, long enough to come back to a
	// result, short enough that the output store does not grow for ever.
	RetentionDefault = 7 * 24 * time.Hour
	// PruneIntervalDefault is how often jobs past their retention are
	// deleted (a quarter of Retention when that is shorter).
	PruneIntervalDefault = time.Hour
	// UnknownGraceDefault is how long after its deadline a job whose
	// submission answer was lost waits for RunPod's webhook before it is
	// failed as unknown.
	UnknownGraceDefault = 2 * time.Minute
)

// Config configures a Service. Store, Outputs, RunPod and Package are
// required; every other field has a default.
type Config struct {
	// Store keeps jobs and keys (sqlite or postgres).
	Store store.Store
	// Outputs keeps the files jobs produce (disk or S3).
	Outputs blob.Store
	// RunPod is the client of the endpoint jobs run on. The gateway bounds
	// concurrency itself: give the client no Limiter.
	RunPod *runpod.Client
	// Package is the package folder: comfypod.json and its workflows.
	Package fs.FS
	// Workflow names the manifest workflow jobs run ("" = the manifest's
	// default).
	Workflow string

	// PublicURL is the address RunPod reaches this service at
	// (https://brush.example.com). When set, jobs are submitted with a
	// per-job webhook and polling becomes a slow fallback.
	PublicURL string
	// UI holds the page's files, served at "/" (index.html) and beside it.
	// With neither UI nor UIHandler, "/" is a placeholder page with a plain
	// form.
	UI fs.FS
	// UIHandler, when set, serves "/" and the page's assets instead of UI
	// (such as gateway/web's Handler, with its own caching and security
	// headers).
	UIHandler http.Handler
	// Open lets callers without an API key in while no key exists. Only
	// for a service listening on loopback: the command line refuses it on
	// any other address.
	Open bool
	// ReplicaID names this replica in leases. Give each replica sharing a
	// database its own stable id; a replica restarting under its id takes
	// its jobs back at once. Random when empty.
	ReplicaID string

	// Concurrency is how many jobs may be at RunPod at once, counted over
	// every replica (ConcurrencyDefault).
	Concurrency int
	// Timeout bounds a job from acceptance to end (TimeoutDefault).
	Timeout time.Duration
	// ColdStartAfter is how long a job waits in RunPod's queue before a cold
	// start is suspected (ColdStartAfterDefault; negative: never).
	ColdStartAfter time.Duration
	// KeepWarm, when > 0, checks the endpoint's health that often and
	// submits a small warm-up job whenever no worker is up and nothing is
	// queued, so users do not wait for a cold start. Warm-ups cost GPU time.
	KeepWarm time.Duration

	// LeaseTTL is how long a replica holds a job it watches without renewing
	// (LeaseTTLDefault); it renews every third of it.
	LeaseTTL time.Duration
	// Pollers is how many status calls may be in flight (PollersDefault).
	Pollers int
	// Submitters is how many /run calls may be in flight (SubmittersDefault).
	Submitters int
	// PollRate caps status calls per second (PollRateDefault).
	PollRate float64
	// PollMin is a job's polling interval right after a change (PollMinDefault).
	PollMin time.Duration
	// PollMax is the interval polling backs off to while nothing changes
	// (PollMaxDefault).
	PollMax time.Duration
	// WebhookPollMax replaces PollMax for jobs submitted with a webhook
	// (WebhookPollMaxDefault).
	WebhookPollMax time.Duration
	// DispatchInterval is how often the queue is looked at without a wake-up
	// (DispatchIntervalDefault).
	DispatchInterval time.Duration
	// EventsInterval is how often an event stream re-reads its job
	// (EventsIntervalDefault).
	EventsInterval time.Duration
	// KeepAlive is the interval of an event stream's keep-alive comments
	// (KeepAliveDefault).
	KeepAlive time.Duration
	// UnknownGrace is how long after its deadline a job whose submission
	// answer was lost waits for its webhook (UnknownGraceDefault).
	UnknownGrace time.Duration
	// Retention is how long a job is kept after it ends; then it is deleted
	// with its files (RetentionDefault; negative: kept for ever).
	Retention time.Duration
	// PruneInterval is how often jobs past Retention are looked for
	// (PruneIntervalDefault, or a quarter of Retention when shorter).
	PruneInterval time.Duration

	// MaxImageBytes caps one uploaded image (MaxImageBytesDefault).
	MaxImageBytes int64
	// MaxRequestBytes caps a POST /v1/jobs body (MaxRequestBytesDefault).
	MaxRequestBytes int64
	// MaxPixels caps an image's width × height (MaxPixelsDefault).
	MaxPixels int64
	// MaxOutputBytes caps one output file (MaxOutputBytesDefault).
	MaxOutputBytes int64
	// MaxSide, when > 0, downscales images whose longer side is larger,
	// below the package's own max_side (the seed advises 512 to 1024).
	MaxSide int

	// Logger receives the service's logs (nothing is logged when nil).
	Logger *slog.Logger
	// Clock drives every timer (the wall clock when nil).
	Clock clockwork.Clock
	// Registry receives the service's metrics and is what /metrics serves
	// (a registry of the service's own, with Go and process metrics, when
	// nil).
	Registry *prometheus.Registry
}

// WithDefaults returns a copy of c with every unset field set to its default.
func (c *Config) WithDefaults() *Config {
	out := *c
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setI64 := func(p *int64, d int64) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&out.Concurrency, ConcurrencyDefault)
	setInt(&out.Pollers, PollersDefault)
	setInt(&out.Submitters, SubmittersDefault)
	if out.PollRate == 0 {
		out.PollRate = PollRateDefault
	}
	setDur(&out.Timeout, TimeoutDefault)
	setDur(&out.ColdStartAfter, ColdStartAfterDefault)
	setDur(&out.LeaseTTL, LeaseTTLDefault)
	setDur(&out.PollMin, PollMinDefault)
	setDur(&out.PollMax, PollMaxDefault)
	setDur(&out.WebhookPollMax, WebhookPollMaxDefault)
	setDur(&out.DispatchInterval, DispatchIntervalDefault)
	setDur(&out.EventsInterval, EventsIntervalDefault)
	setDur(&out.KeepAlive, KeepAliveDefault)
	setDur(&out.UnknownGrace, UnknownGraceDefault)
	setDur(&out.Retention, RetentionDefault)
	if out.PruneInterval == 0 && out.Retention > 0 {
		out.PruneInterval = min(PruneIntervalDefault, max(out.Retention/4, time.Millisecond))
	}
	setI64(&out.MaxImageBytes, MaxImageBytesDefault)
	setI64(&out.MaxRequestBytes, MaxRequestBytesDefault)
	setI64(&out.MaxPixels, MaxPixelsDefault)
	setI64(&out.MaxOutputBytes, MaxOutputBytesDefault)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Clock == nil {
		out.Clock = clockwork.NewRealClock()
	}
	out.PublicURL = strings.TrimRight(out.PublicURL, "/")
	return &out
}

func (c *Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if c.Outputs == nil {
		errs = append(errs, errors.New("Outputs is required"))
	}
	if c.RunPod == nil {
		errs = append(errs, errors.New("RunPod is required"))
	}
	if c.Package == nil {
		errs = append(errs, errors.New("Package is required"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("PublicURL %q: want http(s)://host[:port][/path]", c.PublicURL))
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Concurrency", int64(c.Concurrency)}, {"Pollers", int64(c.Pollers)}, {"Submitters", int64(c.Submitters)},
		{"Timeout", int64(c.Timeout)}, {"LeaseTTL", int64(c.LeaseTTL)}, {"PollMin", int64(c.PollMin)},
		{"PollMax", int64(c.PollMax)}, {"WebhookPollMax", int64(c.WebhookPollMax)},
		{"DispatchInterval", int64(c.DispatchInterval)}, {"EventsInterval", int64(c.EventsInterval)},
		{"KeepAlive", int64(c.KeepAlive)}, {"UnknownGrace", int64(c.UnknownGrace)},
		{"MaxImageBytes", c.MaxImageBytes}, {"MaxRequestBytes", c.MaxRequestBytes}, {"MaxPixels", c.MaxPixels},
		{"MaxOutputBytes", c.MaxOutputBytes},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", f.name))
		}
	}
	if c.PollRate <= 0 {
		errs = append(errs, errors.New("PollRate must be positive"))
	}
	if c.PollMax < c.PollMin {
		errs = append(errs, fmt.Errorf("PollMax %s is below PollMin %s", c.PollMax, c.PollMin))
	}
	if c.Retention > 0 && c.PruneInterval <= 0 {
		errs = append(errs, errors.New("PruneInterval must be positive"))
	}
	if c.MaxSide < 0 || c.KeepWarm < 0 {
		errs = append(errs, errors.New("MaxSide and KeepWarm must not be negative"))
	}
	if c.LeaseTTL < 3*time.Millisecond {
		errs = append(errs, fmt.Errorf("LeaseTTL %s is too short", c.LeaseTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}
