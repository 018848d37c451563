-- Jobs, their inputs until they are submitted, and API keys.
-- Times are Unix milliseconds; booleans are 0 or 1.
CREATE TABLE jobs (
	seq              INTEGER PRIMARY KEY AUTOINCREMENT,
	id               TEXT    NOT NULL UNIQUE,
	owner            TEXT    NOT NULL,
	endpoint         TEXT    NOT NULL,
	state            TEXT    NOT NULL,
	version          INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	deadline         INTEGER NOT NULL,
	submitted_at     INTEGER,
	started_at       INTEGER,
	finished_at      INTEGER,
	runpod_id        TEXT,
	webhook_hash     TEXT,
	cold_start       INTEGER NOT NULL DEFAULT 0,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	attempts         INTEGER NOT NULL DEFAULT 0,
	not_before       INTEGER NOT NULL DEFAULT 0,
	progress         TEXT,
	error            TEXT,
	error_code       TEXT,
	params           TEXT    NOT NULL,
	outputs          TEXT,
	lease_owner      TEXT,
	lease_until      INTEGER
);
CREATE INDEX jobs_owner_seq ON jobs (owner, seq);
CREATE INDEX jobs_queued ON jobs (endpoint, seq) WHERE state = 'queued';
CREATE INDEX jobs_queued_deadline ON jobs (endpoint, deadline) WHERE state = 'queued';
CREATE INDEX jobs_in_flight ON jobs (endpoint, lease_owner, lease_until) WHERE state IN ('claimed', 'submitting', 'in_queue', 'running');

CREATE TABLE job_inputs (
	job_id TEXT PRIMARY KEY,
	body   BLOB NOT NULL
);

CREATE TABLE api_keys (
	id         TEXT    PRIMARY KEY,
	name       TEXT    NOT NULL,
	hash       TEXT    NOT NULL UNIQUE,
	prefix     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
