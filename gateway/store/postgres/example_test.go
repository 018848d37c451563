package postgres_test

import (
	"context"
	"log"

	"github.com/comfypod/comfypod/gateway/store/postgres"
)

// Several replicas open the same database; the first to start creates the
// schema, under a lock.
func ExampleOpen() {
	st, err := postgres.Open(context.Background(), "postgres://comfypod@db.internal:5432/comfypod", &postgres.Options{Schema: "brush"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
}
