package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNotFound means no file has that key.
var ErrNotFound = errors.New("blob: not found")

// MaxKeyLength bounds a key, in bytes.
const MaxKeyLength = 512

// Store keeps files by key. Implementations are safe for concurrent use.
type Store interface {
	// Put writes the file key from r, replacing any file of that key, and
	// returns its size. A reader that fails leaves no file behind.
	Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
	// Open returns the file key for reading, or ErrNotFound.
	Open(ctx context.Context, key string) (*Object, error)
	// Delete removes the file key; a missing file is not an error.
	Delete(ctx context.Context, key string) error
	// Check reports whether the store can be reached and written to, for
	// readiness probes.
	Check(ctx context.Context) error
}

// Object is an open file. Close it when done.
type Object struct {
	io.ReadSeekCloser
	// Size is its length in bytes.
	Size int64
	// ModTime is when it was written.
	ModTime time.Time
	// ContentType is the media type stored with it, when the store keeps one.
	ContentType string
}

// CheckKey reports whether key is acceptable: a relative, slash-separated
// path of non-empty segments, none "." or "..", of printable ASCII without
// backslashes, at most MaxKeyLength bytes.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLength {
		return fmt.Errorf("blob: key %q: want 1 to %d bytes", key, MaxKeyLength)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("blob: key %q: empty, \".\" or \"..\" segment", key)
		}
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("blob: key %q: only printable ASCII without spaces or backslashes", key)
		}
	}
	return nil
}
