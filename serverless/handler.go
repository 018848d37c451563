package serverless

import (
	"context"
	"fmt"
)

// Handler runs one job and returns what RunPod should report for it, the Go
// form of a runpod-python handler. Its context is cancelled, with
// context.Cause giving ErrJobCancelled or ErrWorkerShutdown, when RunPod stops
// the job or the worker is hard-stopped.
//
// The returned value becomes the job's result:
//
//   - a Result (or *Result) is posted exactly as it says;
//   - any other value is encoded to JSON. When that is an object, its "error"
//     and "refresh_worker" keys are lifted out as runpod-python does: a
//     truthy "error" fails the job with that message (a non-string error is
//     sent as its JSON text), a truthy "refresh_worker" asks RunPod to
//     replace the worker after this job (stopPod), and the rest is the
//     output, dropped when empty. So map[string]any{"error": "bad seed"}
//     fails the job with "bad seed".
//
// A returned error fails the job. A *JobError (see Fail), found anywhere in
// the chain with errors.As, is posted as a plain message meant for the
// client. Any other error, and a panic, is posted in runpod-python's form for
// exceptions: "error" is a string holding JSON with error_type,
// error_message, error_traceback, hostname, worker_id and runpod_version.
type Handler func(ctx context.Context, job *Job) (any, error)

// StreamHandler runs a job that produces its output in chunks, the Go form of
// a runpod-python generator handler. Each emit posts {"output": chunk} to
// job-stream, where /stream readers see it at once; emit returns an error
// (ErrJobFinished, or why the chunk could not be delivered) when the handler
// should stop. The final job-done post has isStream=true and the output []
// — or every chunk, when Config.ReturnAggregateStream is set.
//
// A chunk that is an object with a truthy "error" ends the job as FAILED with
// that message, as in runpod-python; a returned error fails it as for a
// Handler.
type StreamHandler func(ctx context.Context, job *Job, emit func(chunk any) error) error

// Result is a handler's answer in the exact shape of RunPod's job-done body.
type Result struct {
	// Output is the job's output ("output"). It is sent when set, or when
	// Error is empty (as null).
	Output any
	// Error, when not empty, fails the job with this message ("error").
	Error string
	// RefreshWorker asks RunPod to replace the worker after this job
	// ("stopPod": true); the worker keeps taking jobs until then.
	RefreshWorker bool
}

// JSONAppender is an output that writes its own JSON. Outputs (and progress
// values and stream chunks) that implement it are written by their
// AppendJSON instead of encoding/json, straight into the job-done body: an
// output carrying megabytes of base64 is then written once, in place,
// rather than encoded at encoding/json's pace, copied out of its buffer and
// copied again into the body. AppendJSON appends exactly one JSON value to
// b and returns the extended slice; a nil receiver should append null. The
// runtime checks that what it appended is valid JSON. When the output's size
// is known, growing b once to hold it plus a few dozen bytes (the body's
// closing keys) saves the runtime another copy.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// JobError is a failure meant for the client: its text is posted as the
// job's plain "error", with Output alongside when set (worker-comfyui sends
// {"error": "Job processing failed", "details": […]} that way).
type JobError struct {
	// Message is what the client reads in the job's error.
	Message string
	// Output, when not nil, is posted as the job's output next to the error.
	Output any
}

// Error returns the message.
func (e *JobError) Error() string { return e.Message }

// Fail returns a *JobError with a formatted message, for a handler to return
// when the job failed for a reason the client should read as is.
func Fail(format string, args ...any) error {
	return &JobError{Message: fmt.Sprintf(format, args...)}
}
