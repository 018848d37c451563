package runpodtest

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"github.com/jonboulle/clockwork"
)

// Defaults of Config. Limits and periods are RunPod's documented values
// (see doc.go); the others are what the emulator picks when left unset.
const (
	AddrDefault              = "127.0.0.1:0"
	EndpointIDDefault        = "local"
	MaxRunBytesDefault       = 10 << 20 // /run payload limit
	MaxRunsyncBytesDefault   = 20 << 20 // /runsync payload limit
	MaxResultBytesDefault    = 20 << 20 // job-done and job-stream body limit
	RunRetentionDefault      = 30 * time.Minute
	RunsyncRetentionDefault  = time.Minute
	ExecutionTimeoutDefault  = 600 * time.Second
	TTLDefault               = 24 * time.Hour
	WorkerPollWaitDefault    = 30 * time.Second
	PingIntervalDefault      = 10 * time.Second
	WebhookRetryDelayDefault = 10 * time.Second
	WebhookAttemptsDefault   = 3
	WebhookTimeoutDefault    = 10 * time.Second
	MaxBatchSizeDefault      = 100
	GPUNameDefault           = "NVIDIA GeForce RTX 4090"
	// PingTimeoutFactor multiplies PingInterval when PingTimeout is unset.
	PingTimeoutFactor = 6
)

// Bounds RunPod documents for policy values and the runsync wait.
const (
	MinExecutionTimeout = 5 * time.Second
	MaxExecutionTimeout = 7 * 24 * time.Hour
	MinTTL              = 10 * time.Second
	MaxTTL              = 7 * 24 * time.Hour
	MinRunsyncWait      = time.Second
	MaxRunsyncWait      = 300 * time.Second
	RunsyncWaitDefault  = 90 * time.Second
)

// Config configures a Server. The zero value is usable: every unset field
// takes its XxxDefault.
type Config struct {
	// Addr is where NewServer listens (AddrDefault: a free loopback port).
	Addr string
	// URL is the address clients reach a server made with New at, for servers
	// mounted in another http.Server; NewServer sets it from its listener.
	URL string
	// Endpoints are the endpoint ids the server serves (EndpointIDDefault when
	// empty); any other id answers 404. The first is the default endpoint.
	Endpoints []string
	// APIKey is the key clients and workers must send. When empty a random
	// rpa_… key is made; read it with Server.APIKey.
	APIKey string

	// Clock drives every time-dependent behaviour (the wall clock when nil):
	// with a *clockwork.FakeClock a test moves time by hand.
	Clock clockwork.Clock
	// Rand feeds job ids, generated keys and probabilistic faults; a seeded
	// source makes a sequential test repeatable. A source seeded from
	// crypto/rand when nil.
	Rand rand.Source
	// Logger receives request and job logs; nothing is logged when nil.
	Logger *slog.Logger
	// HTTPClient delivers webhooks; the server's own client when nil.
	HTTPClient *http.Client

	// MaxRunBytes, MaxRunsyncBytes and MaxResultBytes cap the bodies of /run,
	// /runsync and of job-done / job-stream posts.
	MaxRunBytes     int64
	MaxRunsyncBytes int64
	MaxResultBytes  int64

	// RunRetention and RunsyncRetention are how long a finished job stays
	// readable, for jobs made by /run and by /runsync.
	RunRetention     time.Duration
	RunsyncRetention time.Duration
	// ExecutionTimeout and TTL are the policy values of jobs that set none.
	ExecutionTimeout time.Duration
	TTL              time.Duration

	// WorkerPollWait is how long job-take, job-take-batch and job-stop hold a
	// request open before answering 204.
	WorkerPollWait time.Duration
	// PingInterval is the heartbeat period handed to workers
	// (RUNPOD_PING_INTERVAL).
	PingInterval time.Duration
	// PingTimeout is how long a worker may go without any request before it is
	// declared lost and its jobs are requeued or failed
	// (PingTimeoutFactor × PingInterval when zero).
	PingTimeout time.Duration
	// ColdStart is how long a worker stays initializing after its first
	// request (and after a refresh) before it is served jobs.
	ColdStart time.Duration
	// MaxBatchSize caps batch_size on job-take-batch.
	MaxBatchSize int

	// WebhookAttempts, WebhookRetryDelay and WebhookTimeout govern webhook
	// delivery: attempts in all, the pause between them, and the deadline of
	// one attempt.
	WebhookAttempts   int
	WebhookRetryDelay time.Duration
	WebhookTimeout    time.Duration

	// GPUName is the value of the ?gpu= query in the worker URL templates.
	GPUName string
}

// WithDefaults returns a copy of c with every unset field set to its default.
// A nil c is the zero Config.
func (c *Config) WithDefaults() *Config {
	out := &Config{}
	if c != nil {
		*out = *c
		out.Endpoints = append([]string(nil), c.Endpoints...)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int64, v int64) {
		if *d == 0 {
			*d = v
		}
	}
	if out.Addr == "" {
		out.Addr = AddrDefault
	}
	if len(out.Endpoints) == 0 {
		out.Endpoints = []string{EndpointIDDefault}
	}
	if out.Clock == nil {
		out.Clock = clockwork.NewRealClock()
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	defInt(&out.MaxRunBytes, MaxRunBytesDefault)
	defInt(&out.MaxRunsyncBytes, MaxRunsyncBytesDefault)
	defInt(&out.MaxResultBytes, MaxResultBytesDefault)
	def(&out.RunRetention, RunRetentionDefault)
	def(&out.RunsyncRetention, RunsyncRetentionDefault)
	def(&out.ExecutionTimeout, ExecutionTimeoutDefault)
	def(&out.TTL, TTLDefault)
	def(&out.WorkerPollWait, WorkerPollWaitDefault)
	def(&out.PingInterval, PingIntervalDefault)
	def(&out.PingTimeout, PingTimeoutFactor*out.PingInterval)
	def(&out.WebhookRetryDelay, WebhookRetryDelayDefault)
	def(&out.WebhookTimeout, WebhookTimeoutDefault)
	if out.MaxBatchSize == 0 {
		out.MaxBatchSize = MaxBatchSizeDefault
	}
	if out.WebhookAttempts == 0 {
		out.WebhookAttempts = WebhookAttemptsDefault
	}
	if out.GPUName == "" {
		out.GPUName = GPUNameDefault
	}
	return out
}

// idPattern is what RunPod's own tools accept as an endpoint, job or worker id.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validate reports the first field of a defaulted Config that cannot work.
func (c *Config) validate() error {
	seen := map[string]bool{}
	for _, ep := range c.Endpoints {
		if !idPattern.MatchString(ep) {
			return fmt.Errorf("runpodtest: endpoint id %q: use letters, digits, '-' and '_' only", ep)
		}
		if seen[ep] {
			return fmt.Errorf("runpodtest: endpoint id %q is listed twice", ep)
		}
		seen[ep] = true
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RunRetention", c.RunRetention}, {"RunsyncRetention", c.RunsyncRetention},
		{"ExecutionTimeout", c.ExecutionTimeout}, {"TTL", c.TTL},
		{"WorkerPollWait", c.WorkerPollWait}, {"PingInterval", c.PingInterval},
		{"PingTimeout", c.PingTimeout}, {"WebhookRetryDelay", c.WebhookRetryDelay},
		{"WebhookTimeout", c.WebhookTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("runpodtest: Config.%s is negative (%s)", d.name, d.v)
		}
	}
	if c.ColdStart < 0 {
		return fmt.Errorf("runpodtest: Config.ColdStart is negative (%s)", c.ColdStart)
	}
	if c.MaxRunBytes < 0 || c.MaxRunsyncBytes < 0 || c.MaxResultBytes < 0 {
		return errors.New("runpodtest: Config.MaxRunBytes, MaxRunsyncBytes and MaxResultBytes must not be negative")
	}
	if c.MaxBatchSize < 0 {
		return fmt.Errorf("runpodtest: Config.MaxBatchSize is negative (%d)", c.MaxBatchSize)
	}
	if c.WebhookAttempts < 0 {
		return fmt.Errorf("runpodtest: Config.WebhookAttempts is negative (%d)", c.WebhookAttempts)
	}
	return nil
}
