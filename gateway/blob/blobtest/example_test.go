package blobtest_test

import (
	"testing"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/blob/blobtest"
	"github.com/comfypod/comfypod/gateway/blob/disk"
)

// A blob store package runs the suite from a test, with an empty store per
// contract test.
func ExampleRun() {
	testContract := func(t *testing.T) {
		blobtest.Run(t, func(t testing.TB) blob.Store {
			st, err := disk.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	}
	_ = testContract // func TestContract(t *testing.T) { … }
}
