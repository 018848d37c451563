// Package disk is a blob.Store in a folder: each key is a file under it.
// Writes go to a temporary file that is synced and renamed into place, so a
// reader never sees half a file and a crash leaves none behind.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/comfypod/comfypod/gateway/blob"
)

// Store is a blob.Store in a folder.
type Store struct {
	dir string
}

var _ blob.Store = (*Store)(nil)

// New returns a store in dir, created if missing.
func New(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("disk: no folder given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("disk: creating %s: %w", abs, err)
	}
	return &Store{dir: abs}, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(key string) (string, error) {
	if err := blob.CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, _ string) (int64, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return 0, fmt.Errorf("disk: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (int64, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return 0, err
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fail(fmt.Errorf("disk: writing %s: %w", key, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("disk: writing %s: %w", key, err))
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("disk: writing %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("disk: writing %s: %w", key, err)
	}
	return n, nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open implements blob.Store.
func (s *Store) Open(_ context.Context, key string) (*blob.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("disk: %w", err)
	}
	if st.IsDir() {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", key, blob.ErrNotFound)
	}
	return &blob.Object{ReadSeekCloser: f, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("disk: %w", err)
	}
	return nil
}

// Check implements blob.Store: the folder exists and takes a new file.
func (s *Store) Check(context.Context) error {
	f, err := os.CreateTemp(s.dir, ".check-*")
	if err != nil {
		return fmt.Errorf("disk: %s is not writable: %w", s.dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
