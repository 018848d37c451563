package runpod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// body is a response body held in memory or, past a size, in a temporary
// file, so that a job output of hundreds of megabytes is never held in memory
// whole. It is read through io.ReaderAt and is safe for concurrent reads.
type body struct {
	mem  []byte
	file *os.File
	name string // set when the file could not be unlinked at creation
	size int64

	closeOnce sync.Once
	closeErr  error
	cleanup   runtime.Cleanup
	hasClean  bool
}

// errTooLarge is returned for a response above the client's size cap.
var errTooLarge = errors.New("response too large")

// spoolConfig says where a body goes.
type spoolConfig struct {
	memLimit int64  // bodies up to this size stay in memory
	maxSize  int64  // bodies above this size are refused
	dir      string // temporary files go here ("" = the system default)
}

// readBody reads r to its end. contentLength is the advertised size, or -1.
func readBody(r io.Reader, contentLength int64, cfg spoolConfig) (*body, error) {
	if contentLength > cfg.maxSize {
		return nil, fmt.Errorf("%w: %d bytes, above the %d-byte cap", errTooLarge, contentLength, cfg.maxSize)
	}
	// Read in chunks rather than into a growing buffer: a body just over the
	// limit then costs the limit, not twice it, before it goes to disk.
	var chunks [][]byte
	var total int64
	if contentLength <= cfg.memLimit {
		for total <= cfg.memLimit {
			// Small first, as most answers are small; then larger chunks.
			size := int(min(int64(4<<10)<<min(len(chunks), 6), cfg.memLimit+1-total))
			if contentLength >= 0 && total+int64(size) > contentLength {
				size = int(max(1, contentLength-total+1)) // +1 to see EOF
			}
			chunk := make([]byte, size)
			n, err := io.ReadFull(r, chunk)
			chunks = append(chunks, chunk[:n])
			total += int64(n)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if len(chunks) == 1 {
					return &body{mem: chunks[0], size: total}, nil
				}
				return &body{mem: bytes.Join(chunks, nil), size: total}, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	f, err := os.CreateTemp(cfg.dir, "runpod-response-*.json")
	if err != nil {
		return nil, fmt.Errorf("spool a large response to disk: %w", err)
	}
	// Unlink at once where the system allows it: the open file stays usable and
	// nothing is left behind, even if the process dies.
	name := f.Name()
	unlinked := os.Remove(name) == nil
	b := &body{file: f}
	fail := func(err error) (*body, error) {
		_ = f.Close()
		if !unlinked {
			_ = os.Remove(name)
		}
		return nil, err
	}
	var n int64
	for _, c := range chunks {
		if _, err := f.Write(c); err != nil {
			return fail(fmt.Errorf("spool a large response to disk: %w", err))
		}
		n += int64(len(c))
	}
	chunks = nil
	m, err := io.Copy(f, io.LimitReader(r, cfg.maxSize-n+1))
	if err != nil {
		return fail(err)
	}
	b.size = n + m
	if b.size > cfg.maxSize {
		return fail(fmt.Errorf("%w: more than the %d-byte cap", errTooLarge, cfg.maxSize))
	}
	if !unlinked {
		b.name = name
	}
	// A Status the caller forgot to Close still gives its file back.
	b.cleanup = runtime.AddCleanup(b, func(t spoolFile) {
		_ = t.f.Close()
		if t.name != "" {
			_ = os.Remove(t.name)
		}
	}, spoolFile{f, b.name})
	b.hasClean = true
	return b, nil
}

// spoolFile is what the cleanup of a forgotten body needs.
type spoolFile struct {
	f    *os.File
	name string
}

// bytesBody wraps bytes already in memory.
func bytesBody(p []byte) *body { return &body{mem: p, size: int64(len(p))} }

// spooled reports whether the body lives in a temporary file.
func (b *body) spooled() bool { return b.file != nil }

// ReadAt implements io.ReaderAt.
func (b *body) ReadAt(p []byte, off int64) (int, error) {
	if b.file != nil {
		if off >= b.size {
			return 0, io.EOF
		}
		if rest := b.size - off; int64(len(p)) > rest {
			n, err := b.file.ReadAt(p[:rest], off)
			if err == nil {
				err = io.EOF
			}
			return n, err
		}
		return b.file.ReadAt(p, off)
	}
	if off >= int64(len(b.mem)) {
		return 0, io.EOF
	}
	n := copy(p, b.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// section returns a reader of n bytes from off.
func (b *body) section(off, n int64) *io.SectionReader {
	return io.NewSectionReader(b, off, n)
}

// close releases the temporary file, if any. Safe to call twice.
func (b *body) close() error {
	b.closeOnce.Do(func() {
		if b.file == nil {
			return
		}
		if b.hasClean {
			b.cleanup.Stop()
		}
		b.closeErr = b.file.Close()
		if b.name != "" {
			if err := os.Remove(b.name); err != nil && b.closeErr == nil {
				b.closeErr = err
			}
		}
	})
	return b.closeErr
}
