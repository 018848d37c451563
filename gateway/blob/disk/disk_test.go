package disk_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/blobtest"
	"github.com/comfypod/comfypod/gateway/blob/disk"
)

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t testing.TB) blob.Store {
		s, err := disk.New(filepath.Join(t.TempDir(), "outputs"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNoTemporaryFilesLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := disk.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "a/b.png", strings.NewReader("png"), "image/png"); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, dir))
		}
		return err
	})
	if len(names) != 1 || names[0] != "/a/b.png" {
		t.Fatalf("files in the folder: %v", names)
	}
}

func TestNewNeedsAFolder(t *testing.T) {
	t.Parallel()
	if _, err := disk.New(""); err == nil {
		t.Fatal("New(\"\"): no error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.New(filepath.Join(file, "sub")); err == nil {
		t.Fatal("New under a file: no error")
	}
}
