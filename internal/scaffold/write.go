package scaffold

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeNew writes a new package: files go into a temporary folder beside
// dir, which is then renamed to dir. exists says dir is an empty folder
// already, which the rename replaces.
func writeNew(ctx context.Context, dir string, exists bool, files []file) (err error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(dir))+".init-*")
	if err != nil {
		return fmt.Errorf("creating a temporary folder beside %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes the folder 0700; a package folder is an ordinary one.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		target := filepath.Join(tmp, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, f.data, f.mode); err != nil {
			return err
		}
		// WriteFile's mode is filtered by the umask; an entrypoint must
		// stay executable.
		if err := os.Chmod(target, f.mode); err != nil {
			return err
		}
	}
	if exists {
		// An empty folder: remove it so the rename can take its place.
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("replacing the empty folder %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if exists {
			// Put the empty folder back as it was.
			_ = os.Mkdir(dir, 0o755)
		}
		return fmt.Errorf("moving the new package into %s: %w", dir, err)
	}
	return nil
}

// writeInto writes files into the existing folder dir, each through a
// temporary file renamed over its target, and returns the files that
// existed before.
func writeInto(ctx context.Context, dir string, files []file) ([]string, error) {
	var replaced []string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return replaced, err
		}
		target := filepath.Join(dir, filepath.FromSlash(f.name))
		st, err := os.Lstat(target)
		switch {
		case err == nil && st.IsDir():
			return replaced, fmt.Errorf("%s is a folder where the template has a file; move it away and run again", target)
		case err == nil:
			replaced = append(replaced, f.name)
		case !errors.Is(err, fs.ErrNotExist):
			return replaced, err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return replaced, err
		}
		if err := writeFileAtomic(target, f.data, f.mode); err != nil {
			return replaced, err
		}
	}
	return replaced, nil
}

// writeFileAtomic writes data to a temporary file in name's folder, syncs it
// and renames it to name, so name holds either its old content or the new,
// never a part. A symbolic link at name is replaced, not followed.
func writeFileAtomic(name string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err = os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("replacing %s: %w", name, err)
	}
	return nil
}
