package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/comfypod/comfypod/internal/bytesize"
)

// fetcher downloads URL inputs under a URLPolicy. Its guard runs on every
// connection the transport dials, with the address actually dialed, so DNS
// answers that change between checks (rebinding), redirects and IPv4-mapped
// IPv6 forms all meet the same check. It never uses a proxy, since the
// proxy's address would be the one checked.
type fetcher struct {
	policy URLPolicy
	allow  []allowEntry
	client *http.Client
}

func newFetcher(p URLPolicy) *fetcher {
	f := &fetcher{policy: p}
	for _, a := range p.Allow {
		if e, err := parseAllow(a); err == nil {
			f.allow = append(f.allow, e)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: f.control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	f.client = &http.Client{Transport: tr, CheckRedirect: f.checkRedirect}
	return f
}

// close releases idle connections.
func (f *fetcher) close() { f.client.CloseIdleConnections() }

// blockedError is a connection the guard refused.
type blockedError struct {
	addr   netip.Addr
	reason string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("refused: it points to %s, %s address; the worker connects only to public hosts for URLs a job gives", e.addr, e.reason)
}

// control is the dialer's hook: it sees the resolved address before the
// connection is made.
func (f *fetcher) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused: cannot read the address %q", address)
	}
	return f.checkAddr(ap)
}

func (f *fetcher) checkAddr(ap netip.AddrPort) error {
	a := ap.Addr().Unmap()
	for _, e := range f.allow {
		if e.isPort {
			if e.addrPort == a.String()+":"+strconv.Itoa(int(ap.Port())) {
				return nil
			}
		} else if e.prefix.Contains(a) {
			return nil
		}
	}
	if f.policy.AllowPrivate {
		return nil
	}
	if reason := nonPublic(a); reason != "" {
		return &blockedError{addr: a, reason: reason}
	}
	return nil
}

// Special-purpose ranges netip does not classify.
var reservedPrefixes = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF-reserved"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved"},
	{netip.MustParsePrefix("100::/64"), "a discard"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local"},
}

// Prefixes whose addresses embed an IPv4 address, checked again as IPv4.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	v4Compatible = netip.MustParsePrefix("::/96")
)

// nonPublic says why a is not a public address, or "" when it is.
func nonPublic(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "an invalid"
	case a.IsUnspecified():
		return "an unspecified"
	case a.IsLoopback():
		return "a loopback"
	case a.Is4() && a == netip.AddrFrom4([4]byte{169, 254, 169, 254}):
		return "the cloud metadata"
	case a.IsLinkLocalUnicast():
		return "a link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast"
	case a.IsPrivate():
		return "a private"
	}
	for _, r := range reservedPrefixes {
		if r.p.Contains(a) {
			return r.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case nat64Prefix.Contains(a), v4Compatible.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			v4 = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		}
		if v4.IsValid() {
			if r := nonPublic(v4); r != "" {
				return r + " (embedded in IPv6)"
			}
		}
	}
	return ""
}

func (f *fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if f.policy.MaxRedirects < 0 || len(via) > f.policy.MaxRedirects {
		return fmt.Errorf("refused: more than %d redirects", max(f.policy.MaxRedirects, 0))
	}
	if err := f.checkScheme(req.URL); err != nil {
		return fmt.Errorf("a redirect to %s: %w", redactURL(req.URL.String()), err)
	}
	return nil
}

func (f *fetcher) checkScheme(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !f.policy.AllowHTTP {
			return errors.New("refused: http:// URLs are not accepted by this worker; use https://")
		}
	default:
		return fmt.Errorf("refused: %q URLs are not accepted; use https://", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// fetch downloads rawURL, up to maxBytes. Its errors never hold the URL's
// query or credentials; callers name the field and the redacted URL.
func (f *fetcher) fetch(ctx context.Context, rawURL string, maxBytes int64) ([]byte, error) {
	return f.fetchFile(ctx, rawURL, func([]byte) (int64, string) { return maxBytes, "image" })
}

// sniffLen is how much of a download is read before its limit is chosen.
const sniffLen = 512

// fetchFile downloads rawURL. Its size limit, and what the limit is per
// ("image", "video or audio file"), come from limit given the first bytes
// of the body, so a video may be larger than an image.
func (f *fetcher) fetchFile(ctx context.Context, rawURL string, limit func(head []byte) (int64, string)) ([]byte, error) {
	if f.policy.Disabled {
		return nil, errors.New("URL inputs are turned off on this worker; send the image as base64")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if err := f.checkScheme(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, f.policy.Timeout, errFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	req.Header.Set("User-Agent", "comfypod-worker")
	req.Header.Set("Accept", "image/*, */*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.explain(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return nil, fmt.Errorf("the server answered %s; check the URL (and that a presigned URL has not expired)", resp.Status)
	}
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(resp.Body, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, f.explain(ctx, err)
	}
	head = head[:n]
	maxBytes, per := limit(head)
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("the file is %s, over the %s limit per %s", bytesize.Decimal(resp.ContentLength), bytesize.Decimal(maxBytes), per)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead + 1)
	}
	buf.Write(head)
	if int64(n) <= maxBytes {
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBytes+1-int64(n))); err != nil {
			return nil, f.explain(ctx, err)
		}
	}
	if int64(buf.Len()) > maxBytes {
		return nil, fmt.Errorf("the file is over the %s limit per %s", bytesize.Decimal(maxBytes), per)
	}
	return buf.Bytes(), nil
}

var errFetchTimeout = errors.New("URL fetch timed out")

// explain turns a transport error into a message without the URL.
func (f *fetcher) explain(ctx context.Context, err error) error {
	var blocked *blockedError
	if errors.As(err, &blocked) {
		return blocked
	}
	if errors.Is(context.Cause(ctx), errFetchTimeout) {
		return fmt.Errorf("timed out after %s; the host is too slow or the file too large (send it as base64 instead)", f.policy.Timeout)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("the host %q cannot be found", dnsErr.Name)
	}
	return fmt.Errorf("cannot download it: %v", err)
}
