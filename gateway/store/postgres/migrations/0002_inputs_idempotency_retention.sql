-- The files a job was submitted with (kept in the output store, for clients
-- to compare before and after), idempotency keys, and an index for pruning
-- ended jobs.
ALTER TABLE jobs ADD COLUMN inputs TEXT;
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_ended ON jobs (endpoint, finished_at) WHERE state IN ('succeeded', 'failed', 'cancelled', 'timed_out');
