// Package postgres is the gateway's store on PostgreSQL (pgx), for several
// service replicas behind a load balancer sharing one database.
//
//	st, err := postgres.Open(ctx, "postgres://comfypod@db:5432/comfypod", nil)
//	defer st.Close()
//
// Replicas share the work safely: claims take queued jobs with FOR UPDATE
// SKIP LOCKED under a per-endpoint advisory lock, so the concurrency limit
// holds across replicas and no job is claimed twice; in-flight jobs are
// watched under leases that another replica adopts when they expire.
// Migrations are embedded and applied at Open under an advisory lock, so
// replicas may start together.
//
// Options.Schema keeps the tables in a schema of their own (created if
// missing), for sharing a database or for tests.
package postgres
