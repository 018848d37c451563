package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/gateway/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		path := filepath.Join(t.TempDir(), "sub", "comfypod.db")
		return func() (store.Store, error) { return sqlite.Open(context.Background(), path, nil) }
	})
}
