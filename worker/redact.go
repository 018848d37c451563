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

// seed returns 32 random bytes from the operating system.
func seed() [32]byte {
	var b [32]byte
	_, _ = crand.Read(b[:]) // never fails since Go 1.24
	return b
}
