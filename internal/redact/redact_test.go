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
