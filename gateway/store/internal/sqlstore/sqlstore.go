// Package sqlstore is the SQL shared by the SQLite and PostgreSQL stores. The
// two differ only in what Dialect says: placeholders, how claims are
// serialised, row locks, and how a unique violation looks.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// Dialect is what differs between databases.
type Dialect struct {
	// Name is the database's name, for errors ("sqlite", "postgres").
	Name string
	// Numbered turns the $1, $2 … placeholders the queries use into ?1, ?2 …
	// (SQLite).
	Numbered bool
	// LockClaims is run first in a claim's transaction, to serialise claims
	// of one endpoint ($1) across processes; empty when transactions are
	// serialised anyway (SQLite).
	LockClaims string
	// SkipLocked is appended to the sub-selects that pick rows to change
	// (" FOR UPDATE SKIP LOCKED"); ForUpdate to single-row reads in a
	// transaction (" FOR UPDATE").
	SkipLocked string
	ForUpdate  string
	// IsDuplicate reports whether err is a unique-constraint violation.
	IsDuplicate func(error) bool
}

// DB is a Store over database/sql. W takes writes and R reads; they may be
// the same pool.
type DB struct {
	W, R *sql.DB
	D    Dialect

	getJob *sql.Stmt
	getKey *sql.Stmt
	closer func() error
}

// Open prepares the statements of the hot paths. closer, when set, runs at
// Close after the pools are closed.
func Open(ctx context.Context, w, r *sql.DB, d Dialect, closer func() error) (*DB, error) {
	db := &DB{W: w, R: r, D: d, closer: closer}
	var err error
	if db.getJob, err = r.PrepareContext(ctx, db.q(`SELECT `+jobCols+` FROM jobs WHERE id = $1`)); err != nil {
		return nil, fmt.Errorf("%s: preparing statements: %w", d.Name, err)
	}
	if db.getKey, err = r.PrepareContext(ctx, db.q(`SELECT `+keyCols+` FROM api_keys WHERE hash = $1`)); err != nil {
		_ = db.getJob.Close()
		return nil, fmt.Errorf("%s: preparing statements: %w", d.Name, err)
	}
	return db, nil
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// q adapts a query written with $N placeholders to the dialect.
func (db *DB) q(query string) string {
	if db.D.Numbered {
		return placeholder.ReplaceAllString(query, "?$1")
	}
	return query
}

const jobCols = `seq, id, owner, endpoint, state, version, created_at, deadline, submitted_at, started_at, finished_at,
	runpod_id, webhook_hash, cold_start, cancel_requested, attempts, not_before, progress, error, error_code,
	params, outputs, lease_owner, lease_until, inputs, idempotency_key, request_hash`

const keyCols = `id, name, hash, prefix, created_at, revoked_at`

// inFlight and terminal are the state lists of the queries.
const (
	inFlight = `('claimed', 'submitting', 'in_queue', 'running')`
	terminal = `('succeeded', 'failed', 'cancelled', 'timed_out')`
)

type rowScanner interface{ Scan(...any) error }

func scanJob(r rowScanner) (*store.Job, error) {
	var (
		j                                             store.Job
		state                                         string
		created, deadline, notBefore                  int64
		submitted, started, finished, leaseUntil      sql.NullInt64
		runpodID, webhook, progress, errMsg, errCode  sql.NullString
		outputs, leaseOwner, inputs, idemKey, reqHash sql.NullString
		params                                        string
		coldStart, cancelReq                          int64
	)
	if err := r.Scan(&j.Seq, &j.ID, &j.Owner, &j.Endpoint, &state, &j.Version, &created, &deadline,
		&submitted, &started, &finished, &runpodID, &webhook, &coldStart, &cancelReq, &j.Attempts, &notBefore,
		&progress, &errMsg, &errCode, &params, &outputs, &leaseOwner, &leaseUntil, &inputs, &idemKey, &reqHash); err != nil {
		return nil, err
	}
	j.State = store.State(state)
	j.CreatedAt, j.Deadline, j.NotBefore = fromMS(created), fromMS(deadline), fromMS(notBefore)
	j.SubmittedAt, j.StartedAt, j.FinishedAt, j.LeaseUntil = nullMS(submitted), nullMS(started), nullMS(finished), nullMS(leaseUntil)
	j.RunPodID, j.WebhookHash, j.Error, j.ErrorCode, j.LeaseOwner = runpodID.String, webhook.String, errMsg.String, errCode.String, leaseOwner.String
	j.ColdStart, j.CancelRequested = coldStart != 0, cancelReq != 0
	if progress.Valid && progress.String != "" {
		j.Progress = json.RawMessage(progress.String)
	}
	j.Params = json.RawMessage(params)
	if outputs.Valid && outputs.String != "" {
		if err := json.Unmarshal([]byte(outputs.String), &j.Outputs); err != nil {
			return nil, fmt.Errorf("job %s: reading its outputs: %w", j.ID, err)
		}
	}
	if inputs.Valid && inputs.String != "" {
		if err := json.Unmarshal([]byte(inputs.String), &j.Inputs); err != nil {
			return nil, fmt.Errorf("job %s: reading its inputs: %w", j.ID, err)
		}
	}
	j.IdempotencyKey, j.RequestHash = idemKey.String, reqHash.String
	return &j, nil
}

func scanJobs(rows *sql.Rows) ([]*store.Job, error) {
	defer rows.Close()
	var out []*store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out, nil
}

func toMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func nullMS(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMS(n.Int64)
}

// optMS is a nullable time argument: NULL for the zero time.
func optMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// optText is a nullable text argument: NULL for "".
func optText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (db *DB) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicate) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", db.D.Name, op, err)
}

// tx runs fn in a write transaction.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// CreateJob implements store.Store.
func (db *DB) CreateJob(ctx context.Context, j *store.Job, input []byte) error {
	if j.ID == "" || j.Endpoint == "" {
		return fmt.Errorf("%s: create job: id and endpoint are required", db.D.Name)
	}
	params := string(j.Params)
	if params == "" {
		params = "{}"
	}
	var inputs any
	if len(j.Inputs) > 0 {
		b, err := json.Marshal(j.Inputs)
		if err != nil {
			return fmt.Errorf("%s: create job: %w", db.D.Name, err)
		}
		inputs = string(b)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`INSERT INTO jobs (id, owner, endpoint, state, version, created_at, deadline,
			cold_start, cancel_requested, attempts, not_before, params, inputs, idempotency_key, request_hash)
			VALUES ($1, $2, $3, 'queued', 1, $4, $5, 0, 0, 0, 0, $6, $7, $8, $9) RETURNING seq`),
			j.ID, j.Owner, j.Endpoint, toMS(j.CreatedAt), toMS(j.Deadline), params, inputs,
			optText(j.IdempotencyKey), optText(j.RequestHash)).Scan(&j.Seq)
		if err != nil {
			if db.D.IsDuplicate(err) {
				return fmt.Errorf("job %s: %w", j.ID, store.ErrDuplicate)
			}
			return err
		}
		if input != nil {
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO job_inputs (job_id, body) VALUES ($1, $2)`), j.ID, input); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return db.wrap("create job", err)
	}
	j.State, j.Version, j.Params = store.StateQueued, 1, json.RawMessage(params)
	return nil
}

// GetJob implements store.Store.
func (db *DB) GetJob(ctx context.Context, id string) (*store.Job, error) {
	j, err := scanJob(db.getJob.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %s: %w", id, store.ErrNotFound)
	}
	return j, db.wrap("get job", err)
}

// JobByIdempotencyKey implements store.Store.
func (db *DB) JobByIdempotencyKey(ctx context.Context, owner, key string) (*store.Job, error) {
	j, err := scanJob(db.R.QueryRowContext(ctx, db.q(`SELECT `+jobCols+` FROM jobs WHERE owner = $1 AND idempotency_key = $2`), owner, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job with idempotency key: %w", store.ErrNotFound)
	}
	return j, db.wrap("get job by idempotency key", err)
}

// ListJobs implements store.Store.
func (db *DB) ListJobs(ctx context.Context, p store.ListParams) ([]*store.Job, error) {
	if p.Limit <= 0 {
		return nil, fmt.Errorf("%s: list jobs: limit %d: want > 0", db.D.Name, p.Limit)
	}
	before := p.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := db.R.QueryContext(ctx, db.q(`SELECT `+jobCols+` FROM jobs WHERE owner = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`),
		p.Owner, before, p.Limit)
	if err != nil {
		return nil, db.wrap("list jobs", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, db.wrap("list jobs", err)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].Seq > jobs[b].Seq })
	return jobs, nil
}

// JobInput implements store.Store.
func (db *DB) JobInput(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := db.R.QueryRowContext(ctx, db.q(`SELECT body FROM job_inputs WHERE job_id = $1`), id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("input of job %s: %w", id, store.ErrNotFound)
	}
	return b, db.wrap("job input", err)
}

// ClaimJobs implements store.Store.
func (db *DB) ClaimJobs(ctx context.Context, p store.ClaimParams) ([]*store.Job, error) {
	if p.Max <= 0 || p.Limit <= 0 {
		return nil, nil
	}
	var jobs []*store.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if db.D.LockClaims != "" {
			if _, err := tx.ExecContext(ctx, db.D.LockClaims, p.Endpoint); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT count(*) FROM jobs WHERE endpoint = $1 AND state IN `+inFlight), p.Endpoint).Scan(&n); err != nil {
			return err
		}
		free := min(p.Max, p.Limit-n)
		if free <= 0 {
			return nil
		}
		// The rows are picked in a materialised CTE: a sub-select with LIMIT
		// and SKIP LOCKED may be re-run by the planner and pick more rows.
		rows, err := tx.QueryContext(ctx, db.q(`WITH picked AS MATERIALIZED (SELECT seq FROM jobs
				WHERE endpoint = $1 AND state = 'queued' AND not_before <= $4 ORDER BY seq LIMIT $5`+db.D.SkipLocked+`)
			UPDATE jobs SET state = 'claimed', version = version + 1, lease_owner = $2, lease_until = $3
			WHERE seq IN (SELECT seq FROM picked) AND state = 'queued'
			RETURNING `+jobCols),
			p.Endpoint, p.Replica, toMS(p.LeaseUntil), toMS(p.Now), free)
		if err != nil {
			return err
		}
		jobs, err = scanJobs(rows)
		return err
	})
	if err != nil {
		return nil, db.wrap("claim jobs", err)
	}
	return jobs, nil
}

// one runs an UPDATE … RETURNING that changes at most one job. When it
// changes none, the job is read to tell ErrNotFound from ErrConflict.
func (db *DB) one(ctx context.Context, op, id, query string, args ...any) (*store.Job, error) {
	j, err := scanJob(db.W.QueryRowContext(ctx, db.q(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := db.GetJob(ctx, id); gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("%s job %s: %w", op, id, store.ErrConflict)
	}
	return j, db.wrap(op+" job", err)
}

// MarkSubmitting implements store.Store.
func (db *DB) MarkSubmitting(ctx context.Context, id, replica, webhookHash string, now time.Time) (*store.Job, error) {
	return db.one(ctx, "mark submitting", id, `UPDATE jobs SET state = 'submitting', webhook_hash = $3, version = version + 1
		WHERE id = $1 AND state = 'claimed' AND lease_owner = $2 AND cancel_requested = 0 RETURNING `+jobCols,
		id, replica, optText(webhookHash))
}

// MarkSubmitted implements store.Store.
func (db *DB) MarkSubmitted(ctx context.Context, id, runpodID string, now time.Time) (*store.Job, error) {
	if runpodID == "" {
		return nil, fmt.Errorf("%s: mark submitted: empty RunPod id", db.D.Name)
	}
	var j *store.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET state = 'in_queue', runpod_id = $2, submitted_at = $3,
			error = NULL, version = version + 1
			WHERE id = $1 AND state = 'submitting' AND runpod_id IS NULL RETURNING `+jobCols), id, runpodID, toMS(now)))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM job_inputs WHERE job_id = $1`), id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := db.GetJob(ctx, id); gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("mark submitted job %s: %w", id, store.ErrConflict)
	}
	return j, db.wrap("mark submitted", err)
}

// Requeue implements store.Store.
func (db *DB) Requeue(ctx context.Context, id, replica string, r store.Requeue) (*store.Job, error) {
	return db.one(ctx, "requeue", id, `UPDATE jobs SET state = 'queued', attempts = attempts + 1, not_before = $3, error = $4,
		lease_owner = NULL, lease_until = NULL, webhook_hash = NULL, version = version + 1
		WHERE id = $1 AND lease_owner = $2 AND state IN ('claimed', 'submitting') AND runpod_id IS NULL RETURNING `+jobCols,
		id, replica, toMS(r.NotBefore), optText(r.Error))
}

// UpdateJob implements store.Store.
func (db *DB) UpdateJob(ctx context.Context, id, replica string, u store.Update) (*store.Job, error) {
	if u.State != store.StateInQueue && u.State != store.StateRunning {
		return nil, fmt.Errorf("%s: update job %s: state %q is not in_queue or running", db.D.Name, id, u.State)
	}
	var progress any
	if u.Progress != nil {
		progress = string(u.Progress)
	}
	return db.one(ctx, "update", id, `UPDATE jobs SET state = $3, cold_start = $4, progress = COALESCE($5, progress),
		started_at = COALESCE(started_at, $6), version = version + 1
		WHERE id = $1 AND lease_owner = $2 AND state IN ('in_queue', 'running') RETURNING `+jobCols,
		id, replica, string(u.State), boolInt(u.ColdStart), progress, optMS(u.StartedAt))
}

// Finish implements store.Store.
func (db *DB) Finish(ctx context.Context, id string, f store.Finish) (*store.Job, bool, error) {
	if !f.State.Terminal() {
		return nil, false, fmt.Errorf("%s: finish job %s: state %q is not terminal", db.D.Name, id, f.State)
	}
	var outputs any
	if f.Outputs != nil {
		b, err := json.Marshal(f.Outputs)
		if err != nil {
			return nil, false, err
		}
		outputs = string(b)
	}
	var j *store.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET state = $2, finished_at = $3, error = $4, error_code = $5,
			outputs = $6, runpod_id = COALESCE(runpod_id, $7), started_at = COALESCE(started_at, $8), cold_start = 0,
			lease_owner = NULL, lease_until = NULL, version = version + 1
			WHERE id = $1 AND state NOT IN `+terminal+` RETURNING `+jobCols),
			id, string(f.State), toMS(f.At), optText(f.Error), optText(f.ErrorCode), outputs, optText(f.RunPodID), optMS(f.StartedAt)))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM job_inputs WHERE job_id = $1`), id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		j, err := db.GetJob(ctx, id)
		return j, false, err
	}
	if err != nil {
		return nil, false, db.wrap("finish job", err)
	}
	return j, true, nil
}

// RequestCancel implements store.Store.
func (db *DB) RequestCancel(ctx context.Context, id string, f store.Finish) (*store.Job, error) {
	var j *store.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, db.q(`SELECT state FROM jobs WHERE id = $1`+db.D.ForUpdate), id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("job %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		switch st := store.State(state); {
		case st == store.StateQueued || st == store.StateClaimed:
			j, err = scanJob(tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET state = 'cancelled', finished_at = $2, error = $3, error_code = $4,
				cold_start = 0, lease_owner = NULL, lease_until = NULL, version = version + 1
				WHERE id = $1 RETURNING `+jobCols), id, toMS(f.At), optText(f.Error), optText(f.ErrorCode)))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, db.q(`DELETE FROM job_inputs WHERE job_id = $1`), id)
			return err
		case st.InFlight():
			j, err = scanJob(tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET cancel_requested = 1,
				version = version + CASE WHEN cancel_requested = 0 THEN 1 ELSE 0 END
				WHERE id = $1 RETURNING `+jobCols), id))
			return err
		default:
			j, err = scanJob(tx.QueryRowContext(ctx, db.q(`SELECT `+jobCols+` FROM jobs WHERE id = $1`), id))
			return err
		}
	})
	if err != nil {
		return nil, db.wrap("cancel job", err)
	}
	return j, nil
}

// ExpireQueued implements store.Store.
func (db *DB) ExpireQueued(ctx context.Context, endpoint string, f store.Finish, max int) ([]*store.Job, error) {
	if max <= 0 {
		return nil, nil
	}
	var jobs []*store.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`WITH picked AS MATERIALIZED (SELECT seq FROM jobs
				WHERE endpoint = $1 AND state = 'queued' AND deadline < $3 ORDER BY deadline LIMIT $6`+db.D.SkipLocked+`)
			UPDATE jobs SET state = $2, finished_at = $3, error = CASE WHEN error IS NULL THEN $4 ELSE $4 || ' — ' || error END,
			error_code = $5, lease_owner = NULL, lease_until = NULL, version = version + 1
			WHERE seq IN (SELECT seq FROM picked) AND state = 'queued'
			RETURNING `+jobCols), endpoint, string(f.State), toMS(f.At), f.Error, optText(f.ErrorCode), max)
		if err != nil {
			return err
		}
		if jobs, err = scanJobs(rows); err != nil {
			return err
		}
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM job_inputs WHERE job_id = $1`), j.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, db.wrap("expire queued jobs", err)
	}
	return jobs, nil
}

// RenewLeases implements store.Store.
func (db *DB) RenewLeases(ctx context.Context, endpoint, replica string, until time.Time) ([]*store.Job, error) {
	rows, err := db.W.QueryContext(ctx, db.q(`UPDATE jobs SET lease_until = $3
		WHERE endpoint = $1 AND lease_owner = $2 AND state IN `+inFlight+` RETURNING `+jobCols), endpoint, replica, toMS(until))
	if err != nil {
		return nil, db.wrap("renew leases", err)
	}
	jobs, err := scanJobs(rows)
	return jobs, db.wrap("renew leases", err)
}

// AdoptJobs implements store.Store.
func (db *DB) AdoptJobs(ctx context.Context, p store.AdoptParams) ([]*store.Job, error) {
	if p.Max <= 0 {
		return nil, nil
	}
	own := ""
	if p.IncludeOwn {
		own = ` OR lease_owner = $2`
	}
	rows, err := db.W.QueryContext(ctx, db.q(`WITH picked AS MATERIALIZED (SELECT seq FROM jobs
			WHERE endpoint = $1 AND state IN `+inFlight+` AND (lease_until IS NULL OR lease_until < $4`+own+`)
			ORDER BY seq LIMIT $5`+db.D.SkipLocked+`)
		UPDATE jobs SET lease_owner = $2, lease_until = $3
		WHERE seq IN (SELECT seq FROM picked) AND state IN `+inFlight+` RETURNING `+jobCols), p.Endpoint, p.Replica, toMS(p.LeaseUntil), toMS(p.Now), p.Max)
	if err != nil {
		return nil, db.wrap("adopt jobs", err)
	}
	jobs, err := scanJobs(rows)
	return jobs, db.wrap("adopt jobs", err)
}

// ReleaseLeases implements store.Store.
func (db *DB) ReleaseLeases(ctx context.Context, endpoint, replica string, now time.Time) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, version = version + 1
			WHERE endpoint = $1 AND lease_owner = $2 AND state = 'claimed'`), endpoint, replica); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET lease_until = 0
			WHERE endpoint = $1 AND lease_owner = $2 AND state IN `+inFlight), endpoint, replica)
		return err
	})
	return db.wrap("release leases", err)
}

// CountActive implements store.Store.
func (db *DB) CountActive(ctx context.Context) (map[store.State]int, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT state, count(*) FROM jobs WHERE state NOT IN `+terminal+` GROUP BY state`)
	if err != nil {
		return nil, db.wrap("count jobs", err)
	}
	defer rows.Close()
	out := map[store.State]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, db.wrap("count jobs", err)
		}
		out[store.State(s)] = n
	}
	return out, db.wrap("count jobs", rows.Err())
}

// EndedBefore implements store.Store.
func (db *DB) EndedBefore(ctx context.Context, endpoint string, before time.Time, max int) ([]*store.Job, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := db.R.QueryContext(ctx, db.q(`SELECT `+jobCols+` FROM jobs
		WHERE endpoint = $1 AND state IN `+terminal+` AND finished_at < $2 ORDER BY finished_at, seq LIMIT $3`),
		endpoint, toMS(before), max)
	if err != nil {
		return nil, db.wrap("list ended jobs", err)
	}
	jobs, err := scanJobs(rows)
	if err != nil {
		return nil, db.wrap("list ended jobs", err)
	}
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].FinishedAt.Before(jobs[b].FinishedAt) })
	return jobs, nil
}

// DeleteJobs implements store.Store.
func (db *DB) DeleteJobs(ctx context.Context, ids []string, before time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := []any{toMS(before)}
	marks := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		marks[i] = fmt.Sprintf("$%d", i+2)
	}
	var deleted []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		deleted = deleted[:0]
		rows, err := tx.QueryContext(ctx, db.q(`DELETE FROM jobs WHERE id IN (`+strings.Join(marks, ", ")+`)
			AND state IN `+terminal+` AND finished_at < $1 RETURNING id`), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Inputs go when a job ends; these would be left over, if any.
		for _, id := range deleted {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM job_inputs WHERE job_id = $1`), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, db.wrap("delete jobs", err)
	}
	return len(deleted), nil
}

func scanKey(r rowScanner) (*store.Key, error) {
	var (
		k       store.Key
		created int64
		revoked sql.NullInt64
	)
	if err := r.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.RevokedAt = fromMS(created), nullMS(revoked)
	return &k, nil
}

// CreateKey implements store.Store.
func (db *DB) CreateKey(ctx context.Context, k *store.Key) error {
	if k.ID == "" || k.Hash == "" {
		return fmt.Errorf("%s: create key: id and hash are required", db.D.Name)
	}
	_, err := db.W.ExecContext(ctx, db.q(`INSERT INTO api_keys (id, name, hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)`),
		k.ID, k.Name, k.Hash, k.Prefix, toMS(k.CreatedAt))
	if err != nil && db.D.IsDuplicate(err) {
		return fmt.Errorf("key %s: %w", k.ID, store.ErrDuplicate)
	}
	return db.wrap("create key", err)
}

// KeyByHash implements store.Store.
func (db *DB) KeyByHash(ctx context.Context, hash string) (*store.Key, error) {
	k, err := scanKey(db.getKey.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key: %w", store.ErrNotFound)
	}
	return k, db.wrap("find key", err)
}

// ListKeys implements store.Store.
func (db *DB) ListKeys(ctx context.Context) ([]*store.Key, error) {
	rows, err := db.R.QueryContext(ctx, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, db.wrap("list keys", err)
	}
	defer rows.Close()
	var out []*store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, db.wrap("list keys", err)
		}
		out = append(out, k)
	}
	return out, db.wrap("list keys", rows.Err())
}

// RevokeKey implements store.Store.
func (db *DB) RevokeKey(ctx context.Context, id string, now time.Time) (*store.Key, error) {
	k, err := scanKey(db.W.QueryRowContext(ctx, db.q(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING `+keyCols),
		id, toMS(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s: %w", id, store.ErrNotFound)
	}
	return k, db.wrap("revoke key", err)
}

// CountActiveKeys implements store.Store.
func (db *DB) CountActiveKeys(ctx context.Context) (int, error) {
	var n int
	err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE revoked_at IS NULL`).Scan(&n)
	return n, db.wrap("count keys", err)
}

// Ping implements store.Store.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.wrap("ping", db.R.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}

// Close implements store.Store.
func (db *DB) Close() error {
	var errs []error
	for _, s := range []*sql.Stmt{db.getJob, db.getKey} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	errs = append(errs, db.W.Close())
	if db.R != db.W {
		errs = append(errs, db.R.Close())
	}
	if db.closer != nil {
		errs = append(errs, db.closer())
	}
	return errors.Join(errs...)
}

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrate applies the migrations not applied yet, in one transaction that
// first runs lock (when set) so that replicas starting together do not race.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, migrations []Migration, lock string, now time.Time) error {
	sort.Slice(migrations, func(a, b int) bool { return migrations[a].Version < migrations[b].Version })
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrating: %w", d.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("%s: migrating: %w", d.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%s: creating schema_migrations: %w", d.Name, err)
	}
	rebind := func(q string) string {
		if d.Numbered {
			return placeholder.ReplaceAllString(q, "?$1")
		}
		return q
	}
	for _, m := range migrations {
		var n int
		if err := tx.QueryRowContext(ctx, rebind(`SELECT count(*) FROM schema_migrations WHERE version = $1`), m.Version).Scan(&n); err != nil {
			return fmt.Errorf("%s: reading schema_migrations: %w", d.Name, err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%s: applying migration %04d_%s: %w", d.Name, m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`),
			m.Version, m.Name, now.UnixMilli()); err != nil {
			return fmt.Errorf("%s: recording migration %04d_%s: %w", d.Name, m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: migrating: %w", d.Name, err)
	}
	return nil
}

// ReadMigrations reads the migrations in dir of fsys, files named
// NNNN_name.sql.
func ReadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		name := e.Name()
		var v int
		base := strings.TrimSuffix(name, ".sql")
		i := strings.IndexByte(base, '_')
		if i <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		if _, err := fmt.Sscanf(base[:i], "%d", &v); err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: base[i+1:], SQL: string(body)})
	}
	return out, nil
}
