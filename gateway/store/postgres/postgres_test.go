package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/postgres"
	"github.com/comfypod/comfypod/gateway/store/storetest"
	"github.com/comfypod/comfypod/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// freshSchema returns a new schema name for one test, dropped at its end.
func freshSchema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := postgres.DropSchema(context.Background(), dsn, schema); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

func TestContract(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		schema := freshSchema(t, dsn)
		return func() (store.Store, error) {
			return postgres.Open(context.Background(), dsn, &postgres.Options{Schema: schema, MaxConns: 4})
		}
	})
}
