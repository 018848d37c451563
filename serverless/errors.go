package serverless

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/comfypod/comfypod/internal/retryafter"
	"github.com/comfypod/comfypod/internal/truncate"
)

// Errors the control plane's answers map to, matched with errors.Is.
var (
	// ErrNotFound is a 404: on job-done it means RunPod no longer knows
	// the job (its TTL passed or it was cancelled), on job-stop that the
	// endpoint has no stop channel.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized is a 401 or 403: RUNPOD_AI_API_KEY was refused.
	ErrUnauthorized = errors.New("API key refused")
	// ErrTooManyRequests is a 429; APIError.RetryAfter says how long
	// to wait when the server said so.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrRejected is a 400 on a result post; RunPod answers that way to
	// a body over its size limit.
	ErrRejected = errors.New("rejected as a bad request")
)

// Causes of a job context's cancellation, read with context.Cause, and the
// errors Job.Progress and a stream's emit function return once a job is over.
var (
	// ErrJobCancelled is the cause when RunPod asked, on the job-stop
	// channel, to stop the job (the client cancelled it or it timed out).
	// No result is posted for such a job.
	ErrJobCancelled = errors.New("serverless: RunPod stopped the job")
	// ErrWorkerShutdown is the cause when the worker was hard-stopped
	// while the job ran; the job is reported FAILED.
	ErrWorkerShutdown = errors.New("serverless: worker shut down before the job finished")
	// ErrJobFinished is returned by Job.Progress and emit after the job's
	// final result was posted or the job was stopped.
	ErrJobFinished = errors.New("serverless: the job is already finished")
)

// APIError is an unexpected answer from the RunPod control plane.
type APIError struct {
	// Op is the protocol call: "job-take", "job-done", "job-stream",
	// "job-stop" or "ping".
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's "error" field, or the start of the body.
	Message string
	// Body is the start of the response body (at most maxErrorBody bytes).
	Body []byte
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
}

// Error describes the failed call.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Op, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Is matches the sentinel that goes with the status code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrRejected:
		return e.StatusCode == http.StatusBadRequest
	}
	return false
}

// temporary says whether the same request may succeed later.
func (e *APIError) temporary() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 4 << 10

// checkResponse returns nil for a 2xx answer and an *APIError otherwise. It
// reads at most maxErrorBody bytes of an error body; the caller still closes
// the body.
func checkResponse(op string, resp *http.Response, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Op: op, StatusCode: resp.StatusCode, Body: body}
	e.Message = errorMessage(body)
	e.RetryAfter, _ = retryafter.Parse(resp.Header.Get("Retry-After"), now)
	return e
}

// errorMessage pulls {"error": "..."} out of an error body, or returns its
// first line, shortened.
func errorMessage(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err == nil && v.Error != "" {
		return truncate.Bytes(v.Error, 200)
	}
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return truncate.Bytes(s, 200)
}
