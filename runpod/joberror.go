package runpod

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// JobError is a job that ended without an output: FAILED, CANCELLED or
// TIMED_OUT. For a FAILED job it carries the error the worker reported,
// decoded from either form RunPod passes on: a plain string, or the JSON
// object the Python worker encodes into the string when a handler raises
// (error_type, error_message, error_traceback, hostname, worker_id).
type JobError struct {
	// JobID is the job's id.
	JobID string
	// State is the terminal state: StateFailed, StateCancelled or StateTimedOut.
	State State
	// Message is the worker's error message (error_message, or the whole
	// string when it is not JSON).
	Message string
	// Type is the exception class, e.g. "ValueError", when the worker says.
	Type string
	// Traceback is the worker's stack trace, when it sent one.
	Traceback string
	// Hostname and WorkerID say where the job ran, when the worker says.
	Hostname string
	WorkerID string
	// RunpodVersion is the version of the worker's runpod SDK, when given.
	RunpodVersion string
	// Raw is the error exactly as RunPod returned it.
	Raw string
	// Details holds extra information a worker returned beside the error
	// (worker-comfyui's "details"), as JSON, when small enough to keep.
	Details json.RawMessage
}

func (e *JobError) Error() string {
	switch e.State {
	case StateCancelled:
		return fmt.Sprintf("runpod: job %s was cancelled", e.JobID)
	case StateTimedOut:
		msg := fmt.Sprintf("runpod: job %s timed out at RunPod: it expired in the queue or ran past its execution timeout (raise policy.executionTimeout or the endpoint's)", e.JobID)
		if e.Message != "" {
			msg += ": " + e.Message
		}
		return msg
	}
	var b strings.Builder
	fmt.Fprintf(&b, "runpod: job %s failed", e.JobID)
	switch {
	case e.Type != "" && e.Message != "":
		fmt.Fprintf(&b, ": %s: %s", e.Type, e.Message)
	case e.Message != "":
		fmt.Fprintf(&b, ": %s", e.Message)
	case e.Type != "":
		fmt.Fprintf(&b, ": %s", e.Type)
	default:
		b.WriteString(" without an error message")
	}
	if e.WorkerID != "" {
		fmt.Fprintf(&b, " (worker %s)", e.WorkerID)
	}
	return b.String()
}

// Is matches ErrJobFailed, ErrJobCancelled or ErrJobTimedOut by State.
func (e *JobError) Is(target error) bool {
	switch target {
	case ErrJobFailed:
		return e.State == StateFailed
	case ErrJobCancelled:
		return e.State == StateCancelled
	case ErrJobTimedOut:
		return e.State == StateTimedOut
	}
	return false
}

// Err returns the JobError for a status that ended without success, or nil
// for any other status.
func (s *Status) Err() error {
	switch s.State {
	case StateFailed, StateCancelled, StateTimedOut:
	default:
		return nil
	}
	e := ParseJobError(s.Error)
	e.JobID, e.State = s.ID, s.State
	if e.WorkerID == "" {
		e.WorkerID = s.WorkerID
	}
	if s.Output != nil && len(s.Output) <= maxDetails {
		var out struct {
			Details json.RawMessage `json:"details"`
		}
		if json.Unmarshal(s.Output, &out) == nil && len(out.Details) > 0 && string(out.Details) != "null" {
			e.Details = out.Details
		}
	}
	return e
}

const maxDetails = 64 << 10

// ParseJobError decodes the error string of a FAILED job. It understands the
// JSON-in-a-string form of the Python worker, the "handler: … traceback: …"
// form of its generator handlers, objects with "error"/"message" keys, and
// plain text. It never fails: text it does not understand becomes Message.
func ParseJobError(raw string) *JobError {
	e := &JobError{Raw: raw, State: StateFailed}
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(s, "{") {
		var info map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &info) == nil {
			e.Type = exceptionName(jsonText(info["error_type"]))
			e.Message = jsonText(info["error_message"])
			e.Traceback = jsonText(info["error_traceback"])
			e.Hostname = jsonText(info["hostname"])
			e.WorkerID = jsonText(info["worker_id"])
			e.RunpodVersion = jsonText(info["runpod_version"])
			if e.Message == "" {
				for _, k := range []string{"error", "message", "msg", "detail"} {
					if m := jsonText(info[k]); m != "" {
						e.Message = m
						break
					}
				}
			}
			if e.Message == "" && e.Type == "" {
				e.Message = oneLine(s, 2000)
			}
			if e.Hostname == "unknown" {
				e.Hostname = ""
			}
			if e.WorkerID == "unknown" {
				e.WorkerID = ""
			}
			return e
		}
	}
	// The generator-handler form: "handler: <msg> \ntraceback: <tb>".
	if rest, ok := strings.CutPrefix(s, "handler: "); ok {
		if msg, tb, ok := strings.Cut(rest, "\ntraceback: "); ok && strings.TrimSpace(msg) != "" {
			e.Message = strings.TrimSpace(msg)
			e.Traceback = tb
			return e
		}
	}
	e.Message = s
	return e
}

// jsonText returns a JSON value as text: a string's content, or the JSON of
// anything else ("" for null or absent).
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// exceptionName turns Python's "<class 'ValueError'>" into "ValueError".
func exceptionName(s string) string {
	if inner, ok := strings.CutPrefix(s, "<class '"); ok {
		if name, ok := strings.CutSuffix(inner, "'>"); ok {
			return name
		}
	}
	return s
}

// WaitError is returned by Wait when it gave up on a job that had not ended:
// its deadline passed (errors.Is(err, ErrTimeout)) or its context was done
// (errors.Is(err, context.Canceled)). Unless asked not to, Wait cancelled the
// job at RunPod first, so nobody pays for abandoned work.
type WaitError struct {
	// JobID is the job's id.
	JobID string
	// State is the last state seen.
	State State
	// Waited is how long Wait waited.
	Waited time.Duration
	// Cause is ErrTimeout or the context's error.
	Cause error
	// Cancelled reports whether the job was cancelled at RunPod. It is false
	// when the cancel found that the job had already ended; State then says
	// how.
	Cancelled bool
	// CancelErr is why cancelling failed, if it was tried and failed.
	CancelErr error
}

func (e *WaitError) Error() string {
	var b strings.Builder
	state := e.State
	if state == "" {
		state = "unknown"
	}
	still := "still"
	if e.State.Terminal() {
		still = "now"
	}
	if e.Cause == ErrTimeout {
		fmt.Fprintf(&b, "runpod: timed out after %s waiting for job %s (%s %s)", e.Waited.Round(time.Second), e.JobID, still, state)
	} else {
		fmt.Fprintf(&b, "runpod: stopped waiting for job %s (%s %s): %v", e.JobID, still, state, e.Cause)
	}
	switch {
	case e.Cancelled:
		b.WriteString("; cancelled it at RunPod")
	case e.CancelErr != nil:
		fmt.Fprintf(&b, "; cancelling it at RunPod failed, it may still run: %v", e.CancelErr)
	case e.State.Terminal():
		fmt.Fprintf(&b, "; it had ended %s before the cancel reached RunPod", e.State)
	default:
		b.WriteString("; left it running at RunPod")
	}
	return b.String()
}

// Unwrap returns the cause. CancelErr is not unwrapped: the error is about
// the wait, whatever went wrong with the cancel.
func (e *WaitError) Unwrap() error { return e.Cause }
