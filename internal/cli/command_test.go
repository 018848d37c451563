package cli

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// commandTimeout bounds how long a test waits for a long-running command to
// start, print or stop.
const commandTimeout = 30 * time.Second

// syncBuffer is a goroutine-safe writer for a command's output streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a long-running command (engine, runpod-emulator, …) started by a
// test in its own goroutine, until the test stops it.
type running struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// startCommand runs run in the background with a context that stop cancels.
// A command the test leaves running is stopped when the test ends.
func startCommand(t testing.TB, run func(ctx context.Context) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() {
		if !r.ended {
			_ = r.stop()
		}
	})
	return r
}

// await returns the next value of ch. The test fails if the command returns
// first or nothing comes within commandTimeout; what names the awaited event.
func await[T any](r *running, ch <-chan T, what string) T {
	r.t.Helper()
	select {
	case v := <-ch:
		return v
	case r.err = <-r.done:
		r.ended = true
		r.t.Fatalf("the command returned %v before %s", r.err, what)
	case <-time.After(commandTimeout):
		r.t.Fatalf("no %s within %v", what, commandTimeout)
	}
	var zero T
	return zero
}

// readLines returns the first n lines the command writes to out (the read
// side of its stdout pipe).
func readLines(r *running, out io.Reader, n int) []string {
	r.t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for len(lines) < n && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()
	lines := await(r, got, "its first lines")
	if len(lines) != n {
		r.t.Fatalf("got %d lines, want %d: %q", len(lines), n, lines)
	}
	return lines
}

// stop cancels the command's context (Ctrl-C) and returns what it returned.
// The test fails if it does not return within commandTimeout.
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	if r.ended {
		return r.err
	}
	select {
	case r.err = <-r.done:
		r.ended = true
		return r.err
	case <-time.After(commandTimeout):
		r.t.Fatalf("the command did not stop within %v", commandTimeout)
		return nil
	}
}
