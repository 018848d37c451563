package cli

import (
	"errors"
	"fmt"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/runpod"
)

// Exit codes of every comfypod command, decided here and nowhere else.
const (
	ExitOK       = 0 // the command did what was asked (a job COMPLETED)
	ExitFailed   = 1 // a job ended FAILED, CANCELLED or TIMED_OUT, or another error
	ExitUsage    = 2 // bad flags or arguments
	ExitAuth     = 3 // the API key was refused
	ExitNotFound = 4 // the endpoint, the job or the key does not exist
	ExitTimeout  = 5 // the client-side deadline passed
)

// UsageError is bad command-line input; it exits with ExitUsage.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// SilentError carries an exit code for a failure the command has already
// reported to the user, so Main prints nothing more.
type SilentError struct{ Code int }

func (e *SilentError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var (
		usage  *UsageError
		silent *SilentError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &silent):
		return silent.Code
	case errors.As(err, &usage):
		return ExitUsage
	// RunPod errors; a client-side timeout is ExitTimeout whatever else
	// went wrong, so it is checked first.
	case errors.Is(err, runpod.ErrTimeout):
		return ExitTimeout
	case errors.Is(err, runpod.ErrUnauthorized):
		return ExitAuth
	case errors.Is(err, runpod.ErrEndpointNotFound), errors.Is(err, runpod.ErrJobNotFound),
		errors.Is(err, store.ErrNotFound):
		return ExitNotFound
	}
	// Everything else, including jobs that ended FAILED, CANCELLED or
	// TIMED_OUT (*runpod.JobError).
	return ExitFailed
}
