package runpod

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadBodyLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := spoolConfig{memLimit: 100, maxSize: 1000, dir: dir}
	for _, tc := range []struct {
		size    int
		known   bool
		spooled bool
		tooBig  bool
	}{
		{0, false, false, false}, {0, true, false, false},
		{99, false, false, false}, {100, false, false, false}, {100, true, false, false},
		{101, false, true, false}, {101, true, true, false},
		{5000, false, true, true}, {5000, true, true, true},
		{1000, false, true, false},
	} {
		data := bytes.Repeat([]byte("abcdefghij"), tc.size/10+1)[:tc.size]
		cl := int64(-1)
		if tc.known {
			cl = int64(tc.size)
		}
		b, err := readBody(bytes.NewReader(data), cl, cfg)
		if tc.tooBig {
			if !errors.Is(err, errTooLarge) {
				t.Errorf("size %d: err %v, want errTooLarge", tc.size, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("size %d: %v", tc.size, err)
		}
		if b.spooled() != tc.spooled || b.size != int64(tc.size) {
			t.Errorf("size %d known %v: spooled %v size %d", tc.size, tc.known, b.spooled(), b.size)
		}
		got, _ := io.ReadAll(b.section(0, b.size))
		if !bytes.Equal(got, data) {
			t.Errorf("size %d: content differs", tc.size)
		}
		if err := b.close(); err != nil {
			t.Error(err)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestReadBodyErrors(t *testing.T) {
	t.Parallel()
	for _, size := range []int{10, 500} { // in memory, and while spooling
		_, err := readBody(&failingReader{n: size}, -1, spoolConfig{memLimit: 100, maxSize: 1000, dir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("after %d bytes: %v", size, err)
		}
	}
	_, err := readBody(strings.NewReader(strings.Repeat("x", 200)), -1, spoolConfig{memLimit: 100, maxSize: 1000, dir: "/nonexistent/dir"})
	if err == nil || !strings.Contains(err.Error(), "spool") {
		t.Errorf("bad temp dir: %v", err)
	}
}
