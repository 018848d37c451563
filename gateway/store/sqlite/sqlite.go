package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Defaults of Options.
const (
	// BusyTimeoutDefault is how long a connection waits for another process's
	// write lock before failing.
	BusyTimeoutDefault = 10 * time.Second
	// ReadConnsDefault is the size of the read pool.
	ReadConnsDefault = 4
)

// Options tune a SQLite store. The zero value (or nil) gives the defaults.
type Options struct {
	// BusyTimeout is how long to wait for a lock held by another connection
	// (BusyTimeoutDefault when 0).
	BusyTimeout time.Duration
	// ReadConns is the number of read connections (ReadConnsDefault when 0).
	ReadConns int
	// SyncNormal trades durability on power loss for faster commits
	// (PRAGMA synchronous=NORMAL): a job acknowledged just before the machine
	// loses power may be lost, though never on a process crash. The default
	// is synchronous=FULL.
	SyncNormal bool
	// Now is the clock for the migrations' timestamps (time.Now when nil).
	Now func() time.Time
}

// Store is a store.Store on a SQLite file.
type Store struct {
	*sqlstore.DB
	path string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it and its folder if missing) the database at path
// and brings its schema up to date.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = BusyTimeoutDefault
	}
	if o.ReadConns <= 0 {
		o.ReadConns = ReadConnsDefault
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if path == "" {
		return nil, errors.New("sqlite: no database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: creating the database folder: %w", err)
		}
	}
	sync := "FULL"
	if o.SyncNormal {
		sync = "NORMAL"
	}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(o.BusyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", sync)
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()

	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	// One writer: SQLite takes one write at a time anyway, and a single
	// connection queues them in Go instead of spinning on busy errors.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	if err := migrate(ctx, w, o.Now()); err != nil {
		_ = w.Close()
		return nil, err
	}
	q.Set("_query_only", "1")
	q.Del("_txlock")
	r, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	db, err := sqlstore.Open(ctx, w, r, dialect, nil)
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, err
	}
	return &Store{DB: db, path: path}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

var dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Numbered:    true,
	IsDuplicate: isDuplicate,
}

func isDuplicate(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	ms, err := sqlstore.ReadMigrations(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return sqlstore.Migrate(ctx, db, dialect, ms, "", now)
}
