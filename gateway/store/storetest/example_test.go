package storetest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/gateway/store/storetest"
)

// A store package runs the suite from a test, giving it a fresh database
// for each contract test.
func ExampleRun() {
	testContract := func(t *testing.T) {
		storetest.Run(t, func(t testing.TB) storetest.Opener {
			path := filepath.Join(t.TempDir(), "comfypod.db")
			return func() (store.Store, error) { return sqlite.Open(context.Background(), path, nil) }
		})
	}
	_ = testContract // func TestContract(t *testing.T) { … }
}
