package worker

import (
	crand "crypto/rand"
	"net/url"
	"strings"

	"github.com/comfypod/comfypod/internal/truncate"
)

// redactURL returns u without credentials, query or fragment, for messages:
// presigned URLs carry their signature in the query.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		// Not a URL we can take apart: keep only what precedes a query.
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i] + "?…"
		}
		return truncate.Bytes(u, 120)
	}
	p.User = nil
	hadQuery := p.RawQuery != "" || p.Fragment != ""
	p.RawQuery, p.Fragment, p.RawFragment = "", "", ""
	s := p.String()
	if hadQuery {
		s += "?…"
	}
	return truncate.Bytes(s, 200)
}

// redactor removes known secrets from text.
type redactor []string

// with returns r plus the non-trivial secrets given.
func (r redactor) with(secrets ...string) redactor {
	out := append(redactor(nil), r...)
	for _, s := range secrets {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

// String replaces every secret in s with REDACTED.
func (r redactor) String(s string) string {
	for _, sec := range r {
		s = strings.ReplaceAll(s, sec, "REDACTED")
	}
	return s
}

// seed returns 32 random bytes from the operating system.
func seed() [32]byte {
	var b [32]byte
	_, _ = crand.Read(b[:]) // never fails since Go 1.24
	return b
}
