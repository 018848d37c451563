package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

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

// TestListenJobs: every new version of a job, made through any handle on the
// database, is announced to listeners; jobs of another schema are not.
func TestListenJobs(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	open := func(schema string) *postgres.Store {
		st, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: schema, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	schema := freshSchema(t, dsn)
	listener, writer, other := open(schema), open(schema), open(freshSchema(t, dsn))

	type change struct {
		id      string
		version int64
	}
	changes := make(chan change, 16)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	// ListenJobs has no "ready" signal: announce jobs until the first one
	// is heard, then check exact versions.
	go func() {
		done <- listener.ListenJobs(lctx, func(id string, v int64) { changes <- change{id, v} })
	}()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	job := func(id string) *store.Job {
		return &store.Job{ID: id, Owner: "k", Endpoint: "ep", CreatedAt: now, Deadline: now.Add(time.Minute)}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(time.Minute)
	for i := 0; ; i++ {
		probe := job(fmt.Sprintf("probe-%d", i))
		probe.Endpoint = "probes"
		if err := writer.CreateJob(ctx, probe, []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-changes:
			if !strings.HasPrefix(c.id, "probe-") || c.version != 1 {
				t.Fatalf("heard %+v", c)
			}
		case <-tick.C:
			continue
		case <-timeout:
			t.Fatal("no change heard")
		}
		break
	}
	for len(changes) > 0 {
		<-changes
	}
	if err := other.CreateJob(ctx, job("elsewhere"), nil); err != nil {
		t.Fatal(err)
	}
	if err := writer.CreateJob(ctx, job("j1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	claimed, err := writer.ClaimJobs(ctx, store.ClaimParams{Endpoint: "ep", Replica: "r", Now: now.Add(time.Hour), LeaseUntil: now.Add(2 * time.Hour), Limit: 1, Max: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	// A lease renewal is no new version: nothing is announced.
	if _, err := writer.RenewLeases(ctx, "ep", "r", now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writer.Finish(ctx, claimed[0].ID, store.Finish{State: store.StateCancelled, At: now}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []change{{"j1", 1}, {"j1", 2}, {"j1", 3}} {
		select {
		case c := <-changes:
			if c != w {
				t.Fatalf("heard %+v, want %+v", c, w)
			}
		case <-timeout:
			t.Fatalf("did not hear %+v", w)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("ListenJobs after its context ended: %v", err)
	}
	if len(changes) != 0 {
		t.Fatalf("heard more: %+v", <-changes)
	}
}
