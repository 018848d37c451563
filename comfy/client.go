package comfy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/retryafter"
	"github.com/comfypod/comfypod/internal/truncate"
)

// Client defaults.
const (
	// PollIntervalDefault is how often Run polls /history while it has no
	// websocket, or after the prompt reported its end.
	PollIntervalDefault = time.Second
	// SafetyPollIntervalDefault is how often Run polls /history while the
	// websocket is up, in case the socket stalls without closing.
	SafetyPollIntervalDefault = 10 * time.Second
	// ReconnectAttemptsDefault bounds websocket reconnects per Run; after
	// that Run keeps polling.
	ReconnectAttemptsDefault = 5
	// ReconnectBackoffDefault is the first wait before a reconnect; it
	// doubles per attempt up to 30 s.
	ReconnectBackoffDefault = 500 * time.Millisecond
	// RetryAttemptsDefault is how many times an idempotent GET is tried when
	// the connection fails or the server answers 502, 503 or 504.
	RetryAttemptsDefault = 3
	// MaxErrorBody caps how much of an error answer is read.
	MaxErrorBody = 64 << 10
	// maxJSONBody caps a JSON answer (object_info of a server with many
	// custom nodes runs to tens of MB).
	maxJSONBody = 256 << 20
)

// Client talks to one ComfyUI server (or comfy/engine). It is safe for
// concurrent use.
type Client struct {
	base   *url.URL
	hc     *http.Client
	logger *slog.Logger
	header http.Header
	clock  clockwork.Clock
	newID  func() string

	pollInterval       time.Duration
	safetyPollInterval time.Duration
	reconnectAttempts  int
	reconnectBackoff   time.Duration
	retryAttempts      int
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (timeouts belong in ctx, not here: a
// client Timeout would cut a long /view download).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.hc = hc
		return nil
	}
}

// WithLogger sets the logger for reconnects, fallbacks and retries.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithHeader adds a header to every request and to the websocket handshake,
// e.g. the credentials of a proxy in front of ComfyUI. Header values are
// never logged.
func WithHeader(key, value string) Option {
	return func(c *Client) error {
		c.header.Add(key, value)
		return nil
	}
}

// WithClock sets the clock used for polling, backoff and readiness waits.
func WithClock(clock clockwork.Clock) Option {
	return func(c *Client) error {
		if clock == nil {
			return errors.New("WithClock: nil clock")
		}
		c.clock = clock
		return nil
	}
}

// WithIDGenerator sets how client and prompt ids are made (default: random
// UUIDs), so tests can fix them.
func WithIDGenerator(newID func() string) Option {
	return func(c *Client) error {
		if newID == nil {
			return errors.New("WithIDGenerator: nil function")
		}
		c.newID = newID
		return nil
	}
}

// WithPolling sets the /history poll intervals: interval while the
// websocket is down or after the prompt ended, safety while it is up.
func WithPolling(interval, safety time.Duration) Option {
	return func(c *Client) error {
		if interval <= 0 || safety <= 0 {
			return errors.New("WithPolling: intervals must be positive")
		}
		c.pollInterval, c.safetyPollInterval = interval, safety
		return nil
	}
}

// WithReconnect sets how many times Run reconnects a dropped websocket and
// the first backoff (doubling, capped at 30 s). attempts 0 disables
// reconnecting: Run then relies on polling alone.
func WithReconnect(attempts int, backoff time.Duration) Option {
	return func(c *Client) error {
		if attempts < 0 || backoff <= 0 {
			return errors.New("WithReconnect: attempts must be ≥ 0 and backoff positive")
		}
		c.reconnectAttempts, c.reconnectBackoff = attempts, backoff
		return nil
	}
}

// WithRetries sets how many times an idempotent GET is tried on a
// connection error or a 502/503/504 answer (1 = no retry). POSTs are never
// retried: ComfyUI would queue a prompt twice.
func WithRetries(attempts int) Option {
	return func(c *Client) error {
		if attempts < 1 {
			return errors.New("WithRetries: attempts must be ≥ 1")
		}
		c.retryAttempts = attempts
		return nil
	}
}

// NewClient returns a client for the ComfyUI server at baseURL
// ("http://127.0.0.1:8188", or a URL with a path prefix behind a proxy).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("comfy: base URL %s: %w", redact.URL(baseURL), errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("comfy: base URL %s: want http:// or https://", redact.URL(baseURL))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("comfy: base URL %s has no host", redact.URL(baseURL))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base:               u,
		hc:                 &http.Client{},
		logger:             slog.New(slog.DiscardHandler),
		header:             http.Header{},
		clock:              clockwork.NewRealClock(),
		newID:              NewID,
		pollInterval:       PollIntervalDefault,
		safetyPollInterval: SafetyPollIntervalDefault,
		reconnectAttempts:  ReconnectAttemptsDefault,
		reconnectBackoff:   ReconnectBackoffDefault,
		retryAttempts:      RetryAttemptsDefault,
	}
	if u.User != nil {
		// Credentials in the URL become a basic-auth header, never part of
		// a logged URL.
		pw, _ := u.User.Password()
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(u.User.Username(), pw)
		c.header.Set("Authorization", req.Header.Get("Authorization"))
		u.User = nil
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("comfy: %w", err)
		}
	}
	return c, nil
}

// BaseURL returns the server's URL (without credentials).
func (c *Client) BaseURL() string { return c.base.String() }

// NewID returns a random UUID (version 4), the form ComfyUI uses for client
// and prompt ids.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("comfy: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// endpoint returns the URL of path (which starts with "/") with query q.
func (c *Client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Errors matched with errors.Is on what the client returns.
var (
	// ErrNotFound: the server answered 404 (a missing /view file, an
	// unknown model folder).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: the server refused the request as malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrServer: the server failed (5xx).
	ErrServer = errors.New("server error")
	// ErrInvalidPrompt matches *PromptError: the server refused a prompt.
	ErrInvalidPrompt = errors.New("prompt refused")
	// ErrExecution matches *ExecutionError: a node failed while running.
	ErrExecution = errors.New("execution failed")
	// ErrInterrupted matches *ExecutionInterrupted: the prompt was interrupted.
	ErrInterrupted = errors.New("execution interrupted")
	// ErrPromptDeleted: the prompt left the queue without running (deleted
	// with POST /queue, or the queue was cleared).
	ErrPromptDeleted = errors.New("prompt was removed from the queue without running")
	// ErrNotReady: WaitReady gave up because the server process died.
	ErrNotReady = errors.New("ComfyUI is not ready")
)

// APIError is an unexpected HTTP answer from the server.
type APIError struct {
	// Method and Path say which call failed (no host, no query).
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the answer (at most MaxErrorBody bytes).
	Body []byte
}

// Error names the call, the status and the start of the answer.
func (e *APIError) Error() string {
	msg := strings.TrimSpace(string(e.Body))
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("ComfyUI %s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, truncate.Runes(msg, 300))
}

// Is maps the status to ErrNotFound, ErrBadRequest or ErrServer.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrServer:
		return e.StatusCode >= 500
	}
	return false
}

// checkResponse turns a non-2xx answer into an *APIError, reading at most
// MaxErrorBody bytes of it, and closes the body.
func checkResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	return &APIError{Method: resp.Request.Method, Path: resp.Request.URL.Path, StatusCode: resp.StatusCode, Body: body}
}

// request is one HTTP call.
type request struct {
	method string
	path   string
	query  url.Values
	body   []byte // JSON body, nil for none
	// contentType overrides application/json (multipart).
	contentType string
	bodyReader  io.Reader
}

// do sends req and returns the answer when it is 2xx. GETs are retried on
// connection errors and 502/503/504, waiting as Retry-After says (capped at
// maxRetryAfter) or with a doubling backoff; never after ctx ends.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	attempts := 1
	if req.method == http.MethodGet {
		attempts = c.retryAttempts
	}
	backoff := 200 * time.Millisecond
	var (
		lastErr error
		wait    time.Duration
	)
	for i := 0; i < attempts; i++ {
		if i > 0 {
			c.logger.Info("comfy: retrying", "method", req.method, "path", req.path, "attempt", i+1, "wait", wait, "err", lastErr)
			t := c.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("ComfyUI %s %s: %w (last attempt: %v)", req.method, req.path, ctx.Err(), lastErr)
			case <-t.Chan():
			}
		}
		wait = backoff
		backoff *= 2
		resp, err := c.send(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if d, ok := retryafter.Parse(resp.Header.Get("Retry-After"), c.clock.Now()); ok {
				wait = min(d, maxRetryAfter)
			}
			lastErr = checkResponse(resp)
			continue
		}
		if err := checkResponse(resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	return nil, lastErr
}

// maxRetryAfter caps how long a Retry-After header makes a GET wait.
const maxRetryAfter = 30 * time.Second

func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	var body io.Reader
	switch {
	case req.bodyReader != nil:
		body = req.bodyReader
	case req.body != nil:
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.endpoint(req.path, req.query), body)
	if err != nil {
		return nil, fmt.Errorf("ComfyUI %s %s: %w", req.method, req.path, err)
	}
	for k, vs := range c.header {
		hr.Header[k] = vs
	}
	switch {
	case req.contentType != "":
		hr.Header.Set("Content-Type", req.contentType)
	case req.body != nil:
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ComfyUI %s %s: %w", req.method, req.path, ctx.Err())
		}
		return nil, fmt.Errorf("ComfyUI %s %s: %s", req.method, req.path, redact.Error(err))
	}
	return resp, nil
}

// getJSON GETs path and decodes the JSON answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return err
	}
	return decodeBody(resp, path, v)
}

// postJSON POSTs body (already JSON) and decodes a JSON answer into v (nil:
// the answer is drained).
func (c *Client) postJSON(ctx context.Context, path string, body []byte, v any) error {
	resp, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body})
	if err != nil {
		return err
	}
	if v == nil {
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxErrorBody))
		return nil
	}
	return decodeBody(resp, path, v)
}

func decodeBody(resp *http.Response, path string, v any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return fmt.Errorf("ComfyUI %s: reading the answer: %s", path, redact.Error(err))
	}
	if raw, ok := v.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("ComfyUI %s: unexpected answer (%v): %s", path, err, truncate.Runes(string(data), 200))
	}
	return nil
}
