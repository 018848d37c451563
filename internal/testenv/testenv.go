// Package testenv finds the outside services some tests need (PostgreSQL,
// Chromium, the shared reference corpus) and decides whether a test that lacks
// one skips or fails.
//
// On a newcomer's laptop a missing service skips the test with a message that
// says what to install. CI sets COMFYPOD_TEST_REQUIRE to a comma-separated list
// (postgres, chromium, shared) and a missing service then fails the test.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// required says whether the service must be present (COMFYPOD_TEST_REQUIRE).
func required(service string) bool {
	return slices.Contains(strings.Split(os.Getenv("COMFYPOD_TEST_REQUIRE"), ","), service)
}

func missing(t testing.TB, service, why string) {
	t.Helper()
	if required(service) {
		t.Fatalf("%s is required here (COMFYPOD_TEST_REQUIRE=%s) but missing: %s", service, os.Getenv("COMFYPOD_TEST_REQUIRE"), why)
	}
	t.Skipf("skipping: %s not available (%s); set COMFYPOD_TEST_REQUIRE=%s to make this a failure", service, why, service)
}

// PostgresDSN returns the DSN of a reachable PostgreSQL server: the value of
// COMFYPOD_TEST_POSTGRES, or postgres://postgres@127.0.0.1:5432/test. It skips
// (or fails, when required) if nothing listens there.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("COMFYPOD_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	host := "127.0.0.1:5432"
	if i := strings.Index(dsn, "@"); i >= 0 {
		rest := dsn[i+1:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			rest = rest[:j]
		}
		if rest != "" {
			host = rest
		}
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", host)
	if err != nil {
		missing(t, "postgres", "nothing listens on "+host+"; start PostgreSQL or set COMFYPOD_TEST_POSTGRES")
		return ""
	}
	_ = c.Close()
	return dsn
}

// Chromium returns the path of a Chromium or Chrome binary: $COMFYPOD_CHROMIUM,
// or the first of chromium, chromium-browser, google-chrome on PATH. It skips
// (or fails, when required) if there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COMFYPOD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium", "no chromium on PATH; install Debian's chromium package (.ci/install does)")
	return ""
}

// SharedDir returns the path of the shared reference folder (../shared next
// to the repository, or $COMFYPOD_SHARED), which holds other people's files
// that tests read in place but the project does not copy. It skips (or fails,
// when required) if the folder is absent.
func SharedDir(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COMFYPOD_SHARED"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(t), "..", "shared")
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		missing(t, "shared", "no ../shared folder next to the repository")
		return ""
	}
	return filepath.Clean(p)
}

// RepoRoot returns the repository's root folder (the one holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate the source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Conformance returns the folder of the ComfyUI conformance cases captured
// from a real server (copied into testdata, so always present).
func Conformance(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "testdata", "conformance", "comfyui")
}
