// Package redact removes secrets from URLs and error texts before they are
// logged or returned: the user info, query and fragment of a URL (where
// presigned URLs keep their signature and webhooks their tokens), the URL a
// *url.Error carries, and the values of signing query parameters in free
// text.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Marker replaces what was removed.
const Marker = "REDACTED"

// unparsable stands for a URL that does not parse, which is not shown at
// all: the parser could not say where its secrets are.
const unparsable = "<unparsable URL>"

// URL returns raw without user info, query and fragment, keeping the scheme,
// host and path. A dropped query is marked "?REDACTED".
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return unparsable
	}
	u.User = nil
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = Marker, false
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Error returns err's text without the URL a *url.Error in its chain carries
// (it may hold a token in its query): the cause only. Callers name the
// redacted URL themselves where it matters.
func Error(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// signedParam matches the value of a query parameter that authorizes a
// request on its own: presigned S3 and GCS URLs, SAS tokens, API keys in
// query strings.
var signedParam = regexp.MustCompile(`(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|signature|awsaccesskeyid|sig|token|access_token|api_key|apikey|key)=)[^&#\s"'<>]*`)

// Signatures returns s with the values of signing query parameters replaced
// by Marker in every URL it contains, leaving the rest of each URL readable.
// It is for free text (log lines, error messages) where URLs cannot be
// parsed out.
func Signatures(s string) string {
	if !strings.ContainsAny(s, "?&") {
		return s
	}
	return signedParam.ReplaceAllString(s, "${1}"+Marker)
}

// Secrets removes known secret values (an API key, a job's S3 secret) and
// the values of signing query parameters from text about to be logged or
// sent back. The zero value removes signatures only.
type Secrets struct {
	values []string
}

// NewSecrets returns Secrets for the given values. Values shorter than 4
// bytes are ignored: replacing them would mangle ordinary text and they
// protect nothing.
func NewSecrets(values ...string) Secrets {
	return Secrets{}.With(values...)
}

// With returns Secrets that also remove the given values; s is unchanged.
func (s Secrets) With(values ...string) Secrets {
	out := Secrets{values: append([]string(nil), s.values...)}
	for _, v := range values {
		if len(v) >= 4 {
			out.values = append(out.values, v)
		}
	}
	return out
}

// Len reports how many secret values s removes.
func (s Secrets) Len() int { return len(s.values) }

// String returns t with every secret value and signature replaced by Marker.
func (s Secrets) String(t string) string {
	for _, v := range s.values {
		if strings.Contains(t, v) {
			t = strings.ReplaceAll(t, v, Marker)
		}
	}
	return Signatures(t)
}

// Err returns an error whose text is err's with secrets replaced; errors.Is
// and errors.As still see the original chain. A clean error is returned as
// it is.
func (s Secrets) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.String(msg)
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
