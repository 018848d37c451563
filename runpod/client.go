package runpod

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/comfypod/comfypod/internal/redact"
)

// Defaults of the client's options.
const (
	// BaseURLDefault is RunPod's serverless API.
	BaseURLDefault = "https://api.runpod.ai/v2"
	// BaseURLDev is RunPod's development API.
	BaseURLDev = "https://dev-api.runpod.ai/v2"
	// RequestTimeoutDefault bounds one HTTP call that is not a server-side wait.
	RequestTimeoutDefault = 60 * time.Second
	// LongPollDefault is how long one /status-sync call asks RunPod to hold
	// the answer while nothing happens.
	LongPollDefault = 10 * time.Second
	// PollMinDefault and PollMaxDefault bound the interval of /status polling,
	// used when /status-sync is not available: fast at first, backing off.
	PollMinDefault = 250 * time.Millisecond
	PollMaxDefault = 2 * time.Second
	// MemoryLimitDefault is the largest response kept in memory; larger ones
	// are spooled to a temporary file.
	MemoryLimitDefault = 8 << 20
	// MaxResponseSizeDefault is the largest response accepted at all.
	MaxResponseSizeDefault = 4 << 30
	// RunPayloadLimit and RunSyncPayloadLimit are RunPod's documented request
	// size limits (10 MB and 20 MB). Requests above them are refused before
	// they are sent.
	RunPayloadLimit     = 10 << 20
	RunSyncPayloadLimit = 20 << 20
)

// Internal timings.
const (
	requestSlack      = 30 * time.Second  // added to a server-side wait for the HTTP timeout
	cancelTimeout     = 15 * time.Second  // for the detached cancel of an abandoned job
	statusSyncMaxWait = 90 * time.Second  // RunPod's JS SDK clamps status-sync waits to this
	minServerWait     = 1 * time.Second   // smallest wait RunPod accepts
	maxServerWait     = 300 * time.Second // largest runsync wait RunPod accepts
)

// Client calls one RunPod Serverless endpoint. It is safe for concurrent use.
type Client struct {
	endpointID  string
	baseURL     string // without the endpoint id, no trailing slash
	endpointURL string // baseURL + "/" + endpointID
	apiKey      string
	hc          *http.Client
	log         *slog.Logger
	retry       RetryPolicy
	clock       Clock
	rand        func() float64
	limiter     *Limiter
	userAgent   string

	reqTimeout       time.Duration
	longPoll         time.Duration
	pollMin, pollMax time.Duration
	spool            spoolConfig
	runLimit         int64
	runSyncLimit     int64

	// noStatusSync remembers that this endpoint has no /status-sync route.
	noStatusSync atomic.Bool
}

// Option configures a Client.
type Option func(*Client) error

// WithAPIKey sets the API key sent as "Authorization: Bearer <key>".
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		key = strings.TrimSpace(key)
		if key == "" {
			return errors.New("runpod: empty API key: set RUNPOD_API_KEY")
		}
		c.apiKey = key
		return nil
	}
}

// WithBaseURL sets the API base, BaseURLDefault unless set: BaseURLDev, a
// local emulator's URL, or a proxy. The endpoint id is appended to it.
func WithBaseURL(base string) Option {
	return func(c *Client) error {
		u, err := url.Parse(strings.TrimSpace(base))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("runpod: base URL %q: want an absolute http(s) URL such as %s", base, BaseURLDefault)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("runpod: base URL %q: must not have a query or fragment", redact.URL(base))
		}
		if u.User != nil {
			return fmt.Errorf("runpod: base URL %q: must not carry credentials; use WithAPIKey", redact.URL(base))
		}
		c.baseURL = strings.TrimRight(u.String(), "/")
		return nil
	}
}

// WithHTTPClient sets the HTTP client; by default each Client has its own.
// Its Timeout, if any, bounds every call including long polls: leave it zero
// and use WithRequestTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("runpod: nil HTTP client")
		}
		c.hc = hc
		return nil
	}
}

// WithLogger sets the logger for retries, fallbacks and cold starts. By
// default the client logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// WithRetryPolicy replaces DefaultRetryPolicy; NoRetry() disables retries.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) error {
		if p == nil {
			return errors.New("runpod: nil retry policy")
		}
		c.retry = p
		return nil
	}
}

// WithClock sets the clock used for backoff, polling and deadlines.
func WithClock(clk Clock) Option {
	return func(c *Client) error {
		if clk == nil {
			return errors.New("runpod: nil clock")
		}
		c.clock = clk
		return nil
	}
}

// WithRand sets the source of randomness for polling jitter: a function
// returning numbers in [0, 1). The retry policy has its own (Backoff.Rand).
func WithRand(r func() float64) Option {
	return func(c *Client) error {
		if r == nil {
			return errors.New("runpod: nil random source")
		}
		c.rand = r
		return nil
	}
}

// WithLimiter bounds how many jobs are in flight at once: a slot is taken at
// submission and given back when the job is terminal. Share one Limiter
// between clients to bound them together.
func WithLimiter(l *Limiter) Option {
	return func(c *Client) error {
		c.limiter = l
		return nil
	}
}

// WithRequestTimeout bounds each HTTP call that is not a server-side wait
// (RequestTimeoutDefault unless set).
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("runpod: request timeout %s: want a positive duration", d)
		}
		c.reqTimeout = d
		return nil
	}
}

// WithLongPoll sets how long each /status-sync call asks RunPod to wait for
// news (1 s to 90 s; LongPollDefault unless set). 0 disables long polling:
// Wait then polls /status.
func WithLongPoll(wait time.Duration) Option {
	return func(c *Client) error {
		if wait != 0 && (wait < minServerWait || wait > statusSyncMaxWait) {
			return fmt.Errorf("runpod: long-poll wait %s: want 0 (off) or 1s to 90s", wait)
		}
		c.longPoll = wait
		return nil
	}
}

// WithPolling sets the /status polling interval range: the first poll comes
// after min, and the interval grows to max (PollMinDefault, PollMaxDefault).
func WithPolling(min, max time.Duration) Option {
	return func(c *Client) error {
		if min <= 0 || max < min {
			return fmt.Errorf("runpod: polling %s..%s: want 0 < min <= max", min, max)
		}
		c.pollMin, c.pollMax = min, max
		return nil
	}
}

// WithMemoryLimit sets the largest response kept in memory
// (MemoryLimitDefault unless set); larger ones, such as job outputs with big
// base64 files, are spooled to a temporary file.
func WithMemoryLimit(n int64) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("runpod: memory limit %d: want >= 0", n)
		}
		c.spool.memLimit = n
		return nil
	}
}

// WithMaxResponseSize sets the largest response accepted
// (MaxResponseSizeDefault unless set).
func WithMaxResponseSize(n int64) Option {
	return func(c *Client) error {
		if n <= 0 {
			return fmt.Errorf("runpod: max response size %d: want > 0", n)
		}
		c.spool.maxSize = n
		return nil
	}
}

// WithTempDir sets where large responses are spooled (the system's temporary
// directory unless set).
func WithTempDir(dir string) Option {
	return func(c *Client) error {
		c.spool.dir = dir
		return nil
	}
}

// WithPayloadLimits sets the request sizes checked before sending /run and
// /runsync (RunPayloadLimit, RunSyncPayloadLimit unless set); 0 turns a check
// off.
func WithPayloadLimits(run, runSync int64) Option {
	return func(c *Client) error {
		if run < 0 || runSync < 0 {
			return errors.New("runpod: payload limits must be >= 0")
		}
		c.runLimit, c.runSyncLimit = run, runSync
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// endpointIDPattern is what an endpoint id may look like; anything else is
// a typo or a pasted URL.
var endpointIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// New returns a client for the endpoint endpointID. WithAPIKey is required.
func New(endpointID string, opts ...Option) (*Client, error) {
	endpointID = strings.TrimSpace(endpointID)
	if endpointID == "" {
		return nil, errors.New("runpod: no endpoint id: set RUNPOD_ENDPOINT_ID")
	}
	if !endpointIDPattern.MatchString(endpointID) {
		return nil, fmt.Errorf("runpod: endpoint id %q: want letters, digits, '-' and '_' only (the id, not the URL)", endpointID)
	}
	c := &Client{
		endpointID:   endpointID,
		baseURL:      BaseURLDefault,
		hc:           &http.Client{},
		log:          slog.New(slog.DiscardHandler),
		retry:        DefaultRetryPolicy(),
		clock:        SystemClock{},
		rand:         rand.Float64,
		userAgent:    "comfypod-runpod-go",
		reqTimeout:   RequestTimeoutDefault,
		longPoll:     LongPollDefault,
		pollMin:      PollMinDefault,
		pollMax:      PollMaxDefault,
		spool:        spoolConfig{memLimit: MemoryLimitDefault, maxSize: MaxResponseSizeDefault},
		runLimit:     RunPayloadLimit,
		runSyncLimit: RunSyncPayloadLimit,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.apiKey == "" {
		return nil, errors.New("runpod: no API key: pass WithAPIKey (RUNPOD_API_KEY)")
	}
	c.endpointURL = c.baseURL + "/" + endpointID
	return c, nil
}

// EndpointID returns the endpoint the client calls.
func (c *Client) EndpointID() string { return c.endpointID }

// BaseURL returns the API base the client calls.
func (c *Client) BaseURL() string { return c.baseURL }

// call is one API operation.
type call struct {
	method string
	path   string // under the endpoint, e.g. "/status/JOB"
	query  url.Values
	body   []byte
	// submit marks a call that creates work (/run, /runsync, /retry): it is
	// sent again only when RunPod certainly did not take it.
	submit bool
	// jobID is the job the path names, to tell an unknown job from an
	// unknown endpoint on 404.
	jobID string
	// noProbe skips that check (status-sync, where Wait does it).
	noProbe bool
	// timeout bounds one attempt; 0 means the client's request timeout.
	timeout time.Duration
}

// do sends cl, retrying as the policy and the call's nature allow, and hands
// a 2xx response to handle, which reads what it needs. handle's errors are
// treated as a lost answer.
func (c *Client) do(ctx context.Context, cl *call, handle func(*http.Response) error) error {
	for attempt := 1; ; attempt++ {
		wait, retry, err := c.once(ctx, cl, handle)
		if err == nil {
			return nil
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		d, ok := c.retry.Backoff(attempt)
		if !ok {
			return err
		}
		d = max(d, wait)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err // sleeping would outlast the caller
		}
		c.log.LogAttrs(ctx, retryLevel(err), "runpod: retrying",
			slog.String("call", cl.method+" "+cl.path), slog.Int("attempt", attempt+1),
			slog.Duration("after", d), slog.String("reason", err.Error()))
		if c.clock.Sleep(ctx, d) != nil {
			return err
		}
	}
}

func retryLevel(err error) slog.Level {
	if errors.Is(err, ErrRateLimited) {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// once makes one attempt. It returns the error, whether the call may be
// retried, and how long RunPod asked us to wait first.
func (c *Client) once(ctx context.Context, cl *call, handle func(*http.Response) error) (time.Duration, bool, error) {
	timeout := cl.timeout
	if timeout <= 0 {
		timeout = c.reqTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u := c.endpointURL + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body) // a fresh reader per attempt: the body is rewound
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u, rd)
	if err != nil {
		return 0, false, fmt.Errorf("runpod: build request %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, rerr := c.hc.Do(req)
	if rerr != nil {
		err := c.transportError(ctx, cl, rerr)
		switch {
		case ctx.Err() != nil:
			return 0, false, err
		case cl.submit:
			if notSent(rerr) {
				return 0, !unknownHost(rerr), err
			}
			return 0, false, &SubmitError{Path: cl.path, Err: err}
		}
		return 0, !unknownHost(rerr), err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := c.checkResponse(resp, cl)
		var rl *RateLimitError
		if errors.As(err, &rl) {
			return rl.RetryAfter, true, err // RunPod refused it: safe to resend even a submission
		}
		var ae *APIError
		if errors.As(err, &ae) {
			if ae.StatusCode >= 500 {
				if cl.submit {
					return 0, false, &SubmitError{Path: cl.path, Err: err}
				}
				return 0, true, err
			}
			if ae.StatusCode == http.StatusNotFound && (cl.jobID != "" || cl.path == "/runsync") && !cl.noProbe {
				c.classify404(ctx, ae, cl)
			}
		}
		return 0, false, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if err := handle(resp); err != nil {
		if ctx.Err() != nil {
			return 0, false, fmt.Errorf("runpod: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		err = fmt.Errorf("runpod: %s %s: read the answer: %w", cl.method, cl.path, err)
		if cl.submit {
			return 0, false, &SubmitError{Path: cl.path, Err: err}
		}
		return 0, !errors.Is(err, errTooLarge), err
	}
	return 0, false, nil
}

// classify404 asks /health whether the endpoint exists, to tell an unknown
// endpoint from an unknown (or expired) job. A 404 from /runsync on an
// endpoint that exists means RunPod deleted the job (its ttl ran out) while
// it held the answer.
func (c *Client) classify404(ctx context.Context, ae *APIError, cl *call) {
	_, err := c.Health(ctx)
	switch {
	case errors.Is(err, ErrEndpointNotFound):
		ae.kind = ErrEndpointNotFound
		ae.Message = c.endpointNotFound()
	case err == nil && cl.jobID == "":
		ae.kind = ErrJobNotFound
		ae.Message = "the job was deleted before /runsync answered (its TTL ran out while RunPod held the answer)" + detail(errorMessage(ae.Body))
	}
}

// transportError describes a failed round trip without secrets.
func (c *Client) transportError(ctx context.Context, cl *call, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("runpod: %s %s: %w", cl.method, cl.path, ctx.Err())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is ours and holds no secret, but keep messages short
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("runpod: %s %s: no answer within the request timeout: %w", cl.method, cl.path, err)
	}
	return fmt.Errorf("runpod: %s %s: %w", cl.method, cl.path, err)
}

// notSent reports whether a transport error happened before the request could
// have reached the server: refused connections and name resolution failures.
func notSent(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var tlsErr *tls.RecordHeaderError
	return errors.As(err, &tlsErr)
}

// unknownHost reports a name that does not resolve: a typo in the base URL,
// not worth retrying.
func unknownHost(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
