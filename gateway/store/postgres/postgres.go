package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MaxConnsDefault is the size of the connection pool.
const MaxConnsDefault = 16

// Options tune a Postgres store. The zero value (or nil) gives the defaults.
type Options struct {
	// Schema, when set, holds the tables (created if missing); otherwise the
	// DSN's search_path decides, "public" by default.
	Schema string
	// MaxConns caps the connection pool (MaxConnsDefault when 0).
	MaxConns int
	// Now is the clock for the migrations' timestamps (time.Now when nil).
	Now func() time.Time
}

// Store is a store.Store on PostgreSQL. It is also a store.Listener.
type Store struct {
	*sqlstore.DB
	// conn configures the connection ListenJobs opens.
	conn *pgx.ConnConfig
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Listener = (*Store)(nil)
)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and brings its schema up to date.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxConns <= 0 {
		o.MaxConns = MaxConnsDefault
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN, password included.
		return nil, errors.New("postgres: the connection string is not valid: want postgres://user[:password]@host[:port]/database[?options]")
	}
	cfg.MaxConns = int32(o.MaxConns)
	if o.Schema != "" {
		if err := createSchema(ctx, cfg.ConnConfig, o.Schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = o.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", cfg.ConnConfig.Host, scrub(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %w", cfg.ConnConfig.Host, scrub(err))
	}
	if err := migrate(ctx, db, o.Now()); err != nil {
		_ = db.Close()
		pool.Close()
		return nil, err
	}
	sdb, err := sqlstore.Open(ctx, db, db, dialect, func() error { pool.Close(); return nil })
	if err != nil {
		_ = db.Close()
		pool.Close()
		return nil, err
	}
	return &Store{DB: sdb, conn: cfg.ConnConfig.Copy()}, nil
}

// ListenJobs implements store.Listener on a connection of its own (not one
// of the pool's), with LISTEN on the channel the jobs table's trigger
// notifies.
func (s *Store) ListenJobs(ctx context.Context, changed func(id string, version int64)) error {
	conn, err := pgx.ConnectConfig(ctx, s.conn.Copy())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: listening: connecting to %s: %w", s.conn.Host, scrub(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var channel string
	if err := conn.QueryRow(ctx, `SELECT 'comfypod_jobs_' || md5(current_schema())`).Scan(&channel); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: listening: %w", scrub(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: listening: %w", scrub(err))
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: listening: %w", scrub(err))
		}
		id, v, ok := strings.Cut(n.Payload, ":")
		version, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		changed(id, version)
	}
}

// DropSchema drops a schema and everything in it, for tests that made one
// per run.
func DropSchema(ctx context.Context, dsn, schema string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("postgres: the connection string is not valid")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: connecting: %w", scrub(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

func createSchema(ctx context.Context, cc *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return fmt.Errorf("postgres: connecting to %s: %w", cc.Host, scrub(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Two replicas creating the schema at once would race on the catalog.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: creating schema %s: %w", schema, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('comfypod/schema/' || $1))`, schema); err != nil {
		return fmt.Errorf("postgres: creating schema %s: %w", schema, err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: creating schema %s: %w", schema, err)
	}
	return tx.Commit(ctx)
}

// scrub keeps what a connection error says without the connection string
// pgx sometimes quotes in it.
func scrub(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New(ce.Unwrap().Error())
	}
	return err
}

var dialect = sqlstore.Dialect{
	Name:        "postgres",
	LockClaims:  `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/comfypod/claims/' || $1))`,
	SkipLocked:  " FOR UPDATE SKIP LOCKED",
	ForUpdate:   " FOR UPDATE",
	IsDuplicate: isDuplicate,
}

func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	ms, err := sqlstore.ReadMigrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return sqlstore.Migrate(ctx, db, dialect, ms, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/comfypod/migrate'))`, now)
}
