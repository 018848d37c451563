package runpod

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/retryafter"
	"github.com/comfypod/comfypod/internal/truncate"
)

// Sentinel errors, matched with errors.Is. The typed errors below (APIError,
// RateLimitError, JobError, WaitError, SubmitError) match them and carry the
// details.
var (
	// ErrUnauthorized means RunPod refused the API key (HTTP 401 or 403).
	ErrUnauthorized = errors.New("runpod: unauthorized")
	// ErrEndpointNotFound means the endpoint id is unknown (HTTP 404).
	ErrEndpointNotFound = errors.New("runpod: endpoint not found")
	// ErrJobNotFound means RunPod does not know the job: it expired after its
	// retention period (30 min after /run, 1 min after /runsync) or its TTL,
	// or never existed.
	ErrJobNotFound = errors.New("runpod: job not found")
	// ErrRateLimited means RunPod answered 429 Too Many Requests and the
	// retry policy gave up.
	ErrRateLimited = errors.New("runpod: rate limited")
	// ErrPayloadTooLarge means a request is over RunPod's size limit
	// (10 MB for /run, 20 MB for /runsync).
	ErrPayloadTooLarge = errors.New("runpod: request too large")
	// ErrMaybeSubmitted means a submission's answer was lost: the job may
	// exist at RunPod, so it was not sent again.
	ErrMaybeSubmitted = errors.New("runpod: the job may have been submitted")
	// ErrTimeout means Wait's deadline passed before the job ended.
	ErrTimeout = errors.New("runpod: timed out waiting for the job")
	// ErrJobFailed, ErrJobCancelled and ErrJobTimedOut match a JobError by
	// the job's terminal state.
	ErrJobFailed    = errors.New("runpod: job failed")
	ErrJobCancelled = errors.New("runpod: job cancelled")
	ErrJobTimedOut  = errors.New("runpod: job timed out at RunPod")
)

// APIError is an HTTP error answer from RunPod.
type APIError struct {
	// Method and Path name the call, e.g. "GET" and "/status/JOB" (relative
	// to the endpoint, without query).
	Method string
	Path   string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message says what went wrong and, where we know, what to fix.
	Message string
	// Body is the start of the response body (at most 64 KiB), with the API
	// key removed.
	Body []byte

	kind error // a sentinel this error matches, or nil
}

func (e *APIError) Error() string {
	return fmt.Sprintf("runpod: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Is matches the sentinel that describes the error (ErrUnauthorized,
// ErrEndpointNotFound, ErrJobNotFound, ErrPayloadTooLarge, ErrRateLimited).
func (e *APIError) Is(target error) bool { return e.kind != nil && target == e.kind }

// RateLimitError is a 429 answer that the retry policy did not outlast.
type RateLimitError struct {
	*APIError
	// RetryAfter is how long RunPod asked us to wait, or 0 if it did not say.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s (retry after %s)", e.APIError.Error(), e.RetryAfter)
	}
	return e.APIError.Error()
}

// Unwrap gives access to the APIError.
func (e *RateLimitError) Unwrap() error { return e.APIError }

// SubmitError is a /run, /runsync or /retry whose answer was lost after the
// request may have reached RunPod (connection cut after sending, a truncated
// or unreadable answer, or a 5xx). The job may exist, so it was not sent
// again; look at the endpoint's jobs (or wait for the webhook) before
// submitting once more.
type SubmitError struct {
	// Path is the operation, e.g. "/run".
	Path string
	// Err is what went wrong.
	Err error
}

func (e *SubmitError) Error() string {
	return fmt.Sprintf("runpod: POST %s: the answer was lost (%v); the job may have been created, so it was not sent again: check the endpoint's jobs before submitting once more", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *SubmitError) Unwrap() error { return e.Err }

// Is matches ErrMaybeSubmitted.
func (e *SubmitError) Is(target error) bool { return target == ErrMaybeSubmitted }

// maxErrorBody caps the part of an error body we read and keep.
const maxErrorBody = 64 << 10

// checkResponse turns a non-2xx answer into a typed error. It reads at most
// maxErrorBody bytes of the body, drains a little more so the connection can
// be reused, and closes it. It is the one place HTTP errors are classified.
func (c *Client) checkResponse(resp *http.Response, cl *call) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	_ = resp.Body.Close()
	body = c.scrub(body)
	e := &APIError{
		Method:     cl.method,
		Path:       cl.path,
		StatusCode: resp.StatusCode,
		Body:       body,
		Message:    errorMessage(body),
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.kind = ErrUnauthorized
		e.Message = "RunPod refused the API key: check RUNPOD_API_KEY" + detail(e.Message)
	case code == http.StatusNotFound && cl.jobID != "":
		// Unknown endpoint or unknown job: do() asks /health to tell them apart.
		e.kind = ErrJobNotFound
		e.Message = fmt.Sprintf("job %s not found: it expired after its retention period or TTL, or never existed", cl.jobID) + detail(e.Message)
	case code == http.StatusNotFound:
		e.kind = ErrEndpointNotFound
		e.Message = c.endpointNotFound() + detail(e.Message)
	case code == http.StatusTooManyRequests:
		e.kind = ErrRateLimited
		return &RateLimitError{APIError: e, RetryAfter: c.retryAfter(resp.Header)}
	case code == http.StatusRequestEntityTooLarge || (code == http.StatusBadRequest && c.payloadError(cl, e.Message)):
		e.kind = ErrPayloadTooLarge
		e.Message = c.payloadMessage(cl) + detail(e.Message)
	}
	if e.Message == "" {
		e.Message = "no details in the response"
	}
	return e
}

func (c *Client) endpointNotFound() string {
	return fmt.Sprintf("endpoint %q not found at %s: check RUNPOD_ENDPOINT_ID and the base URL", c.endpointID, c.baseURL)
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return " (RunPod said: " + msg + ")"
}

// payloadError says whether a 400 is RunPod's payload size limit: the body
// talks about size ("max size is 2 MB", "too large", "larger than the 10 MB
// limit", "exceeds …"), or the request was over the documented limit.
func (c *Client) payloadError(cl *call, msg string) bool {
	if limit := c.payloadLimit(cl.path); limit > 0 && int64(len(cl.body)) > limit {
		return true
	}
	if cl.path != "/run" && cl.path != "/runsync" {
		return false
	}
	m := strings.ToLower(msg)
	for _, w := range []string{"size", "too large", "too big", "larger than", "exceed"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

func (c *Client) payloadMessage(cl *call) string {
	run, runSync := c.runLimit, c.runSyncLimit
	if run <= 0 {
		run = RunPayloadLimit
	}
	if runSync <= 0 {
		runSync = RunSyncPayloadLimit
	}
	return fmt.Sprintf("the request (%s) is over RunPod's payload limit for %s: /run accepts at most %s, /runsync at most %s; send large images as URLs or downscale them",
		bytesize.Binary(int64(len(cl.body))), cl.path, bytesize.Binary(run), bytesize.Binary(runSync))
}

// errorMessage finds the message in an error body: {"error": "..."},
// {"message": "..."}, {"error": {"message": "..."}}, or the text itself.
func errorMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		for _, k := range []string{"error", "message", "detail", "msg"} {
			raw, ok := obj[k]
			if !ok {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return oneLine(s, 500)
			}
			var inner struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(raw, &inner) == nil && inner.Message != "" {
				return oneLine(inner.Message, 500)
			}
		}
	}
	return oneLine(string(body), 300)
}

// oneLine squeezes whitespace and cuts s to about n bytes.
func oneLine(s string, n int) string {
	return truncate.Bytes(strings.Join(strings.Fields(s), " "), n)
}

// retryAfter is the wait a 429's Retry-After header asks for, at most
// maxRetryAfter; zero when the header is absent or unreadable.
func (c *Client) retryAfter(h http.Header) time.Duration {
	d, _ := retryafter.Parse(h.Get("Retry-After"), c.clock.Now())
	return min(d, maxRetryAfter)
}

// maxRetryAfter bounds the wait a server can ask for.
const maxRetryAfter = 10 * time.Minute

// scrub removes the API key from text that came from elsewhere.
func (c *Client) scrub(b []byte) []byte {
	if c.apiKey == "" || !bytes.Contains(b, []byte(c.apiKey)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(c.apiKey), []byte("REDACTED"))
}

