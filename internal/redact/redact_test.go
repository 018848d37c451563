package redact

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:pw@host/p?X-Amz-Signature=abc#frag": "https://host/p?REDACTED",
		"http://h/hook":   "http://h/hook",
		"http://[::1:bad": "<unparsable URL>",
		"https://bucket.s3.amazonaws.com/dance_00001.mp4?X-Amz-Credential=AKIA&X-Amz-Signature=s": "https://bucket.s3.amazonaws.com/dance_00001.mp4?REDACTED",
		"http://u@h:8188/object_info#x": "http://h:8188/object_info",
		"http://h/x?":                   "http://h/x?REDACTED",
		"/relative?token=t":             "/relative?REDACTED",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	_, err := http.Get("http://127.0.0.1:0/x?token=s3cret")
	if err == nil {
		t.Fatal("GET to port 0 succeeded")
	}
	if got := Error(err); got == "" || got == err.Error() || strings.Contains(got, "s3cret") {
		t.Errorf("Error(%v) = %q", err, got)
	}
	wrapped := fmt.Errorf("fetch: %w", err)
	if got := Error(wrapped); strings.Contains(got, "s3cret") {
		t.Errorf("Error(wrapped) = %q", got)
	}
	if got := Error(errors.New("plain")); got != "plain" {
		t.Errorf("Error(plain) = %q", got)
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"see https://b.s3/x?X-Amz-Signature=abc&a=1":            "see https://b.s3/x?X-Amz-Signature=REDACTED&a=1",
		"https://h/x?a=1&token=t0k#f and http://g/?sig=s other": "https://h/x?a=1&token=REDACTED#f and http://g/?sig=REDACTED other",
		"no url, key=value":   "no url, key=value",
		`"https://h/x?Key=v"`: `"https://h/x?Key=REDACTED"`,
	} {
		if got := Signatures(in); got != want {
			t.Errorf("Signatures(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	errGone := errors.New("not found")
	r := NewSecrets("rpa_KEY_123", "abc", "")
	if r.Len() != 1 {
		t.Errorf("short secrets kept: %d values", r.Len())
	}
	base := fmt.Errorf("post https://bucket.s3.amazonaws.com/x.png?X-Amz-Credential=AKIA%%2F1&X-Amz-Signature=deadbeef&x-id=PutObject with rpa_KEY_123: %w", errGone)
	err := r.Err(base)
	if !errors.Is(err, errGone) {
		t.Error("redaction lost the chain")
	}
	if strings.Contains(err.Error(), "deadbeef") || strings.Contains(err.Error(), "AKIA") || strings.Contains(err.Error(), "rpa_KEY_123") || !strings.Contains(err.Error(), "x-id=PutObject") {
		t.Errorf("redacted: %s", err)
	}
	if r.Err(nil) != nil || r.Err(errGone) != errGone {
		t.Error("clean errors are returned as they are")
	}
	if got := r.With("s3secret").String("k=s3secret"); got != "k=REDACTED" {
		t.Errorf("With: %q", got)
	}
	if r.Len() != 1 {
		t.Error("With changed the Secrets it was called on")
	}
	var zero Secrets
	if got := zero.String("GET https://h/x?sig=abc&a=1"); got != "GET https://h/x?sig=REDACTED&a=1" {
		t.Errorf("the zero Secrets left a signature: %q", got)
	}
}
