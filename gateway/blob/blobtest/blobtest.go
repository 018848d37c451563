package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/comfypod/comfypod/gateway/blob"
)

// Run runs the suite; fresh makes an empty store for one test.
func Run(t *testing.T, fresh func(t testing.TB) blob.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Large", testLarge},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"FailedWriteLeavesNothing", testFailedWrite},
		{"BadKeys", testBadKeys},
		{"Concurrent", testConcurrent},
		{"Check", testCheck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, fresh(t))
		})
	}
}

func put(t testing.TB, s blob.Store, key string, data []byte) {
	t.Helper()
	n, err := s.Put(context.Background(), key, bytes.NewReader(data), "image/png")
	if err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
	if n != int64(len(data)) {
		t.Fatalf("Put(%s) = %d bytes, want %d", key, n, len(data))
	}
}

func read(t testing.TB, s blob.Store, key string) []byte {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	if o.Size != int64(len(b)) {
		t.Fatalf("Open(%s).Size = %d, read %d bytes", key, o.Size, len(b))
	}
	return b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i/256)
	}
	return b
}

func testRoundTrip(t *testing.T, s blob.Store) {
	data := pattern(70_000)
	put(t, s, "jobs/j1/0-out.png", data)
	if got := read(t, s, "jobs/j1/0-out.png"); !bytes.Equal(got, data) {
		t.Fatal("content changed on the way")
	}
	// Seeking serves range requests.
	o, err := s.Open(context.Background(), "jobs/j1/0-out.png")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Seek(60_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(tail, data[60_000:]) {
		t.Fatalf("after Seek: %d bytes, %v", len(tail), err)
	}
	if end, err := o.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek to the end: %d, %v", end, err)
	}
	if o.ModTime.IsZero() {
		t.Fatal("no ModTime")
	}
	put(t, s, "empty", nil)
	if got := read(t, s, "empty"); len(got) != 0 {
		t.Fatalf("empty file reads %d bytes", len(got))
	}
}

func testLarge(t *testing.T, s blob.Store) {
	data := pattern(12 << 20) // more than one S3 part
	n, err := s.Put(context.Background(), "big/file.bin", io.MultiReader(bytes.NewReader(data[:1]), bytes.NewReader(data[1:])), "application/octet-stream")
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put: %d, %v", n, err)
	}
	if got := read(t, s, "big/file.bin"); !bytes.Equal(got, data) {
		t.Fatal("large content changed on the way")
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "a/b", []byte("first"))
	put(t, s, "a/b", []byte("second, longer"))
	if got := read(t, s, "a/b"); string(got) != "second, longer" {
		t.Fatalf("after overwrite: %q", got)
	}
	if err := s.Delete(context.Background(), "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(context.Background(), "a/b"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrNotFound", err)
	}
}

func testMissing(t *testing.T, s blob.Store) {
	if _, err := s.Open(context.Background(), "no/such/file"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open(missing): %v, want ErrNotFound", err)
	}
	if err := s.Delete(context.Background(), "no/such/file"); err != nil {
		t.Fatalf("Delete(missing): %v", err)
	}
	put(t, s, "dir/file", []byte("x"))
	if _, err := s.Open(context.Background(), "dir"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open(a folder): %v, want ErrNotFound", err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("the source broke")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func testFailedWrite(t *testing.T, s blob.Store) {
	_, err := s.Put(context.Background(), "broken", &failingReader{n: 100_000}, "image/png")
	if err == nil || !strings.Contains(err.Error(), "the source broke") {
		t.Fatalf("Put from a failing reader: %v", err)
	}
	if _, err := s.Open(context.Background(), "broken"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed Put left a file: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, "cancelled", bytes.NewReader(pattern(1000)), ""); err == nil {
		t.Fatal("Put with a cancelled context: no error")
	}
	if _, err := s.Open(context.Background(), "cancelled"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a cancelled Put left a file: %v", err)
	}
}

func testBadKeys(t *testing.T, s blob.Store) {
	for _, key := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", "sp ace", `back\slash`, "tab\t", strings.Repeat("x", blob.MaxKeyLength+1)} {
		if _, err := s.Put(context.Background(), key, strings.NewReader("x"), ""); err == nil {
			t.Errorf("Put(%q): no error", key)
		}
		if _, err := s.Open(context.Background(), key); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open(%q): %v, want a key error", key, err)
		}
	}
}

func testConcurrent(t *testing.T, s blob.Store) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			key := fmt.Sprintf("c/%d", i)
			data := pattern(10_000 + i)
			if _, err := s.Put(context.Background(), key, bytes.NewReader(data), ""); err != nil {
				t.Errorf("Put(%s): %v", key, err)
			}
		})
	}
	wg.Wait()
	for i := range 8 {
		if got := read(t, s, fmt.Sprintf("c/%d", i)); !bytes.Equal(got, pattern(10_000+i)) {
			t.Errorf("c/%d changed", i)
		}
	}
}

func testCheck(t *testing.T, s blob.Store) {
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
