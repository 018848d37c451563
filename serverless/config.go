package serverless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"
)

// Defaults applied by Config.WithDefaults. They follow runpod-python 1.12.0
// where it has a value, and RunPod's documented limits elsewhere.
const (
	// TakeTimeoutDefault bounds one job-take long-poll (Python's
	// jobs_fetcher_timeout).
	TakeTimeoutDefault = 90 * time.Second
	// TakeGraceDefault is how long a soft stop lets a job-take already
	// under way wait for its answer. RunPod may have handed that take a job
	// the moment the stop came: cancelling the take would leave the job
	// IN_PROGRESS with no one running it until RunPod misses the worker's
	// pings. A second covers an answer already on the wire.
	TakeGraceDefault = time.Second
	// StopPollTimeoutDefault bounds one job-stop long-poll.
	StopPollTimeoutDefault = 90 * time.Second
	// StopPollIntervalDefault is the pause after an empty or failed
	// job-stop answer.
	StopPollIntervalDefault = time.Second
	// PingIntervalDefault is the heartbeat period (RUNPOD_PING_INTERVAL).
	PingIntervalDefault = 10 * time.Second
	// RateLimitDelayDefault is the pause after a 429 on job-take when the
	// server gives no Retry-After.
	RateLimitDelayDefault = 5 * time.Second
	// ErrorBackoffDefault is the first pause after a failed job-take; it
	// doubles on each further failure up to ErrorBackoffMaxDefault.
	ErrorBackoffDefault = time.Second
	// ErrorBackoffMaxDefault caps the pause between failing job-takes.
	ErrorBackoffMaxDefault = 30 * time.Second
	// RecheckIntervalDefault is how often a worker whose slots are all
	// busy asks the concurrency modifier again.
	RecheckIntervalDefault = time.Second
	// ConcurrencyDefault is the number of jobs run at once.
	ConcurrencyDefault = 1
	// ConcurrencyLimit caps what Concurrency or a modifier may ask for.
	ConcurrencyLimit = 1024
	// MaxResultBytesDefault is the largest job-done body posted. RunPod
	// has answered 400 to bodies near 20 MB (worker-comfyui#129), and its
	// SDK warns at 20 MB.
	MaxResultBytesDefault = 20_000_000
	// ResultTimeoutDefault bounds one attempt of a result post.
	ResultTimeoutDefault = 60 * time.Second
	// ProgressTimeoutDefault bounds one progress or stream-chunk post.
	ProgressTimeoutDefault = 15 * time.Second
	// ShutdownGraceDefault is how long Start lets in-flight jobs finish
	// after its context ends, before cancelling them. It leaves room,
	// inside Docker's 10 s stop window, to post their FAILED results.
	ShutdownGraceDefault = 5 * time.Second
	// CancelGraceDefault is how long a hard stop waits for cancelled
	// handlers to return before posting their FAILED result itself and
	// abandoning them.
	CancelGraceDefault = 2 * time.Second
	// RunpodVersionDefault is the runpod_version the worker reports: the
	// runpod-python release whose protocol this package speaks.
	RunpodVersionDefault = "1.12.0"
	// UserAgentDefault is sent on every control-plane call.
	UserAgentDefault = "comfypod-serverless (runpod-python/" + RunpodVersionDefault + " protocol)"
	// TestInputFileDefault is the file local mode reads its job from.
	TestInputFileDefault = "test_input.json"
	// LocalJobIDDefault is the id of a local test job that has none.
	LocalJobIDDefault = "local_test"
)

// The default RetryPolicy of result posts: 5 tries, waiting 0.5 s, 1 s,
// 2 s and 4 s (less jitter) between them.
const (
	// ResultAttemptsDefault is RetryPolicy.Attempts.
	ResultAttemptsDefault = 5
	// ResultBackoffDefault is RetryPolicy.Backoff.
	ResultBackoffDefault = 500 * time.Millisecond
	// ResultMaxBackoffDefault is RetryPolicy.MaxBackoff.
	ResultMaxBackoffDefault = 10 * time.Second
)

// RetryPolicy says how often and how far apart a failed result post is
// tried again. Only answers that may succeed later are retried (a dropped
// connection, 408, 429, 5xx); a Retry-After from the server replaces the
// computed wait, up to MaxBackoff.
type RetryPolicy struct {
	// Attempts is the total number of tries, at least 1.
	Attempts int
	// Backoff is the wait before the second try; it doubles each time,
	// with up to 25% jitter.
	Backoff time.Duration
	// MaxBackoff caps one wait.
	MaxBackoff time.Duration
}

// delay is the wait before try number attempt+1 (attempt counts from 1).
func (p RetryPolicy) delay(attempt int, jitter float64, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, p.MaxBackoff)
	}
	d := p.Backoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d - time.Duration(float64(d)*0.25*jitter)
}

// FitnessCheck is a startup check run before the first job-take, like
// runpod-python's @register_fitness_check. A failure is reported to RunPod
// as an unhealthy ping and Worker.Start returns it.
type FitnessCheck struct {
	// Name identifies the check in the unhealthy ping and the error.
	Name string
	// Check returns nil when the machine is fit to take jobs.
	Check func(ctx context.Context) error
}

// Config configures a Worker. Build it with ConfigFromEnv on RunPod, or by
// hand in tests; zero fields take the XxxDefault values.
type Config struct {
	// Handler runs a job and returns its result (see Handler). Exactly one
	// of Handler and StreamHandler is set.
	Handler Handler
	// StreamHandler runs a job that yields its output in chunks.
	StreamHandler StreamHandler
	// ReturnAggregateStream makes a stream job's final result the list of
	// all chunks instead of an empty list, so /status shows them too.
	ReturnAggregateStream bool
	// RefreshWorker asks RunPod to replace the worker after every job
	// (stopPod on every result); the worker stops taking jobs after the
	// first one finishes and exits once drained.
	RefreshWorker bool

	// Concurrency is the number of jobs run at once when there is no
	// ConcurrencyModifier (RUNPOD_MAX_CONCURRENCY).
	Concurrency int
	// ConcurrencyModifier, when set, is asked before every job-take for
	// the number of jobs to run at once, given the current number. Values
	// below 1 count as 1, above ConcurrencyLimit as ConcurrencyLimit; a
	// panic keeps the current value.
	ConcurrencyModifier func(current int) int

	// TakeURL is the job-take URL template (RUNPOD_WEBHOOK_GET_JOB). Empty
	// means local mode: Start runs TestInput once instead of polling.
	TakeURL string
	// DoneURL is the job-done URL template (RUNPOD_WEBHOOK_POST_OUTPUT).
	DoneURL string
	// StreamURL is the job-stream URL template (RUNPOD_WEBHOOK_POST_STREAM),
	// needed by a StreamHandler.
	StreamURL string
	// PingURL is the heartbeat URL template (RUNPOD_WEBHOOK_PING); empty
	// turns the heartbeat off.
	PingURL string
	// APIKey is sent verbatim as Authorization on every control-plane call
	// (RUNPOD_AI_API_KEY). It is removed from every log line and error.
	APIKey string
	// WorkerID is this worker's id (RUNPOD_POD_ID); a random one when empty.
	WorkerID string
	// Hostname goes into error reports (RUNPOD_POD_HOSTNAME).
	Hostname string
	// EndpointID is the endpoint's id (RUNPOD_ENDPOINT_ID); when set,
	// NewLogger writes the JSON lines RunPod's console parses.
	EndpointID string

	// PingInterval is the heartbeat period; each ping may take up to twice
	// that.
	PingInterval time.Duration
	// TakeTimeout bounds one job-take long-poll.
	TakeTimeout time.Duration
	// TakeGrace is how long a soft stop lets a job-take under way wait for
	// its answer before cancelling it; a job that answer carries is run
	// like the others in flight. A hard stop cancels a take still waiting
	// at once and gives one whose answer is being read CancelGrace, after
	// which its jobs are cancelled and reported FAILED. Both are measured
	// in real time: they bound a network call, as TakeTimeout does.
	TakeGrace time.Duration
	// StopPollTimeout bounds one job-stop long-poll.
	StopPollTimeout time.Duration
	// StopPollInterval is the pause after an empty or failed job-stop poll.
	StopPollInterval time.Duration
	// RateLimitDelay is the pause after a 429 without Retry-After.
	RateLimitDelay time.Duration
	// ErrorBackoff and ErrorBackoffMax bound the pause after a failed take.
	ErrorBackoff    time.Duration
	ErrorBackoffMax time.Duration
	// RecheckInterval is how often a full worker re-asks the modifier.
	RecheckInterval time.Duration
	// MaxResultBytes is the largest job-done body posted; a larger result
	// fails the job with an error that says to upload outputs to S3.
	MaxResultBytes int64
	// ResultRetry says how failed result posts are retried; zero fields
	// take the ResultXxxDefault values.
	ResultRetry RetryPolicy
	// ResultTimeout bounds one attempt of a result post.
	ResultTimeout time.Duration
	// ProgressTimeout bounds one progress update or stream-chunk post.
	ProgressTimeout time.Duration
	// ShutdownGrace is how long Start lets jobs finish after its context
	// ends before cancelling them.
	ShutdownGrace time.Duration
	// CancelGrace is how long a hard stop waits for cancelled handlers.
	CancelGrace time.Duration

	// FitnessChecks run, in order, before the first job-take.
	FitnessChecks []FitnessCheck

	// TestInput is the job Start runs in local mode: {"input": …, "id"?: …}.
	// When empty, Start reads TestInputFile. (To run test input even with a
	// job-take URL set, as --test_input does, call RunLocal.)
	TestInput []byte
	// TestInputFile is read by Start in local mode when TestInput is empty.
	TestInputFile string

	// LogLevel is the level NewLogger logs at (RUNPOD_LOG_LEVEL).
	LogLevel slog.Level
	// RunpodVersion is reported as runpod_version on pings and in errors.
	RunpodVersion string
	// UserAgent is sent on every control-plane call.
	UserAgent string

	// HTTPClient makes the take, done and stream calls. The heartbeat and
	// the job-stop long-poll always use clients of their own, so neither a
	// busy pool nor a held long-poll can delay them or be delayed by them.
	HTTPClient *http.Client
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// Clock drives intervals, backoffs and grace periods. Network timeouts,
	// and the 50 ms gap kept between empty job-takes from a server that does
	// not long-poll, use real time.
	Clock clockwork.Clock
	// Rand drives jitter and generated ids; calls to it are serialized.
	Rand rand.Source
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c *Config) WithDefaults() *Config {
	out := *c
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	if out.Concurrency == 0 {
		out.Concurrency = ConcurrencyDefault
	}
	setDur(&out.PingInterval, PingIntervalDefault)
	setDur(&out.TakeTimeout, TakeTimeoutDefault)
	setDur(&out.TakeGrace, TakeGraceDefault)
	setDur(&out.StopPollTimeout, StopPollTimeoutDefault)
	setDur(&out.StopPollInterval, StopPollIntervalDefault)
	setDur(&out.RateLimitDelay, RateLimitDelayDefault)
	setDur(&out.ErrorBackoff, ErrorBackoffDefault)
	setDur(&out.ErrorBackoffMax, ErrorBackoffMaxDefault)
	setDur(&out.RecheckInterval, RecheckIntervalDefault)
	setDur(&out.ResultTimeout, ResultTimeoutDefault)
	setDur(&out.ProgressTimeout, ProgressTimeoutDefault)
	setDur(&out.ShutdownGrace, ShutdownGraceDefault)
	setDur(&out.CancelGrace, CancelGraceDefault)
	if out.MaxResultBytes == 0 {
		out.MaxResultBytes = MaxResultBytesDefault
	}
	if out.ResultRetry.Attempts == 0 {
		out.ResultRetry.Attempts = ResultAttemptsDefault
	}
	if out.ResultRetry.Backoff == 0 {
		out.ResultRetry.Backoff = ResultBackoffDefault
	}
	if out.ResultRetry.MaxBackoff == 0 {
		out.ResultRetry.MaxBackoff = max(out.ResultRetry.Backoff, ResultMaxBackoffDefault)
	}
	if out.TestInputFile == "" {
		out.TestInputFile = TestInputFileDefault
	}
	if out.RunpodVersion == "" {
		out.RunpodVersion = RunpodVersionDefault
	}
	if out.UserAgent == "" {
		out.UserAgent = UserAgentDefault
	}
	if out.Clock == nil {
		out.Clock = clockwork.NewRealClock()
	}
	if out.Rand == nil {
		out.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	out.Rand = newLockedSource(out.Rand)
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.HTTPClient == nil {
		out.HTTPClient = &http.Client{Transport: newTransport()}
	}
	if out.WorkerID == "" {
		out.WorkerID = newUUID(out.Rand)
	}
	return &out
}

// Local reports whether c describes local mode: no job-take URL, so jobs
// come from TestInput or the local API rather than RunPod.
func (c *Config) Local() bool { return c.TakeURL == "" }

// validate reports every field that cannot work, saying what to set. It
// expects defaults applied.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.Handler == nil && c.StreamHandler == nil:
		add("no handler: set Config.Handler or Config.StreamHandler")
	case c.Handler != nil && c.StreamHandler != nil:
		add("both Config.Handler and Config.StreamHandler are set; a worker runs one kind of handler")
	}
	if c.Concurrency < 1 || c.Concurrency > ConcurrencyLimit {
		add("Concurrency %d is out of range 1..%d (RUNPOD_MAX_CONCURRENCY)", c.Concurrency, ConcurrencyLimit)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"PingInterval", c.PingInterval}, {"TakeTimeout", c.TakeTimeout}, {"TakeGrace", c.TakeGrace},
		{"StopPollTimeout", c.StopPollTimeout}, {"StopPollInterval", c.StopPollInterval},
		{"RateLimitDelay", c.RateLimitDelay}, {"ErrorBackoff", c.ErrorBackoff},
		{"ErrorBackoffMax", c.ErrorBackoffMax}, {"RecheckInterval", c.RecheckInterval},
		{"ResultTimeout", c.ResultTimeout}, {"ProgressTimeout", c.ProgressTimeout},
		{"ShutdownGrace", c.ShutdownGrace}, {"CancelGrace", c.CancelGrace},
	} {
		if d.v < 0 {
			add("%s is negative (%v); use a positive duration or 0 for the default", d.name, d.v)
		}
	}
	if c.MaxResultBytes < 1 {
		add("MaxResultBytes %d must be positive", c.MaxResultBytes)
	}
	if c.ResultRetry.Attempts < 1 || c.ResultRetry.Backoff < 0 || c.ResultRetry.MaxBackoff < 0 {
		add("ResultRetry %+v: Attempts must be at least 1 and the backoffs not negative", c.ResultRetry)
	}
	for i, fc := range c.FitnessChecks {
		if fc.Check == nil {
			add("FitnessChecks[%d] (%q) has no Check function", i, fc.Name)
		}
	}
	if !c.Local() {
		if _, err := newEndpoints(c); err != nil {
			errs = append(errs, err)
		}
		if c.StreamHandler != nil && c.StreamURL == "" {
			add("a StreamHandler needs RUNPOD_WEBHOOK_POST_STREAM (Config.StreamURL) to post its chunks")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("serverless: invalid config: %w", errors.Join(errs...))
}

// NewLogger returns a logger for the worker's process as RunPod expects it:
// JSON lines {"requestId","message","level"} when EndpointID is set (on
// RunPod), readable "LEVEL  | job | message" lines otherwise, at LogLevel,
// with the API key removed. The command that runs the worker calls it with
// its standard output.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	return slog.New(NewLogHandler(w, &LogOptions{
		JSON:    c.EndpointID != "",
		Level:   c.LogLevel,
		Secrets: []string{c.APIKey},
	}))
}
