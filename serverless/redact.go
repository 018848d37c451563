package serverless

import (
	"strings"

	"github.com/comfypod/comfypod/internal/redact"
)

// redactor removes known secret values (the API key, a job's S3 secret) and
// presigned-URL credentials from text that is about to be logged or posted.
type redactor struct {
	secrets []string
}

// newRedactor returns a redactor for the given secret values. Values shorter
// than 4 bytes are ignored: replacing them would mangle ordinary text and they
// protect nothing.
func newRedactor(secrets ...string) redactor {
	var r redactor
	for _, s := range secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// with returns a redactor that also removes the given values.
func (r redactor) with(secrets ...string) redactor {
	out := redactor{secrets: append([]string(nil), r.secrets...)}
	for _, s := range secrets {
		if len(s) >= 4 {
			out.secrets = append(out.secrets, s)
		}
	}
	return out
}

// String returns s with secrets replaced.
func (r redactor) String(s string) string {
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redact.Marker)
		}
	}
	return redact.Signatures(s)
}

// Err returns an error whose text is err's with secrets replaced. errors.Is
// and errors.As still see the original chain.
func (r redactor) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := r.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError is an error with secrets removed from its text.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
