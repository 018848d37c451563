package worker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNonPublic(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1": "a loopback", "127.8.9.1": "a loopback", "::1": "a loopback",
		"10.1.2.3": "a private", "172.16.0.1": "a private", "192.168.1.1": "a private", "fd00::1": "a private",
		"169.254.169.254": "the cloud metadata", "169.254.1.1": "a link-local", "fe80::1": "a link-local",
		"0.0.0.0": "an unspecified", "::": "an unspecified", "0.1.2.3": `a "this network"`,
		"100.64.0.1": "a shared (carrier-grade NAT)", "224.0.0.1": "a multicast", "ff02::1": "a multicast",
		"255.255.255.255": "a reserved", "198.18.0.1": "a benchmarking", "192.0.2.1": "a documentation",
		"64:ff9b::7f00:1": "a loopback (embedded in IPv6)", "2002:a00:1::": "a private (embedded in IPv6)",
		"::127.0.0.1": "a loopback (embedded in IPv6)",
		"8.8.8.8":     "", "1.1.1.1": "", "2606:4700::1111": "", "151.101.1.1": "",
	} {
		if got := nonPublic(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

func TestFetcherAddressCheck(t *testing.T) {
	t.Parallel()
	f := newFetcher(URLPolicy{Allow: []string{"10.0.0.0/8", "127.0.0.1:9000", "::1"}})
	defer f.close()
	for ap, allowed := range map[string]bool{
		"10.2.3.4:443": true, "127.0.0.1:9000": true, "127.0.0.1:9001": false, "[::1]:80": true,
		"[::ffff:127.0.0.1]:9000": true, "[::ffff:127.0.0.1]:22": false, "192.168.0.1:443": false, "8.8.8.8:443": true,
	} {
		err := f.checkAddr(netip.MustParseAddrPort(ap))
		if (err == nil) != allowed {
			t.Errorf("%s: %v, want allowed %v", ap, err, allowed)
		}
	}
	if err := newFetcher(URLPolicy{AllowPrivate: true}).checkAddr(netip.MustParseAddrPort("127.0.0.1:1")); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello")) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://example.com/x", http.StatusFound)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 10 {
			_, _ = w.Write([]byte("0123456789"))
			w.(http.Flusher).Flush()
		}
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	host := strings.TrimPrefix(ts.URL, "http://")
	ctx := context.Background()
	ok := newFetcher(URLPolicy{AllowHTTP: true, Allow: []string{host}, Timeout: time.Minute, MaxRedirects: 3})
	defer ok.close()
	if data, err := ok.fetch(ctx, ts.URL+"/a", 100); err != nil || string(data) != "hello" {
		t.Errorf("fetch: %q, %v", data, err)
	}
	for _, tc := range []struct {
		f    *fetcher
		url  string
		max  int64
		want string
	}{
		{ok, ts.URL + "/loop", 100, "more than 3 redirects"},
		{ok, ts.URL + "/ftp", 100, `"ftp" URLs are not accepted`},
		{ok, ts.URL + "/chunked", 50, "over the 50 bytes limit"},
		{ok, ts.URL + "/a", 3, "the file is 5 bytes, over the 3 bytes limit"},
		{ok, "file:///etc/passwd", 100, `"file" URLs are not accepted`},
		{ok, "https://", 100, "no host"},
		{ok, "http://nonexistent.invalid/x", 100, `"nonexistent.invalid" cannot be found`},
		{newFetcher(URLPolicy{Allow: []string{host}, Timeout: time.Minute}), ts.URL + "/a", 100, "http:// URLs are not accepted"},
		{newFetcher(URLPolicy{AllowHTTP: true, Timeout: time.Minute}), ts.URL + "/a", 100, "a loopback address"},
		{newFetcher(URLPolicy{Disabled: true}), ts.URL + "/a", 100, "turned off"},
	} {
		_, err := tc.f.fetch(ctx, tc.url, tc.max)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
		var blocked *blockedError
		if strings.Contains(tc.want, "loopback") && !errors.As(err, &blocked) {
			t.Errorf("%s: %T is not a *blockedError", tc.url, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:pass@host/a.png?X-Amz-Signature=abc#frag": "https://host/a.png?…",
		"https://host/a.png":        "https://host/a.png",
		"not a url?secret=1":        "not a url?…",
		"http://[::1]:80/x?token=y": "http://[::1]:80/x?…",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
