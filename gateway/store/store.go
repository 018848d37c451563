package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// State is where a job is in its life. The gateway maps it to the status its
// API shows.
type State string

// The states of a job. Claimed, Submitting, InQueue and Running are in flight:
// they count against the concurrency limit and are watched under a lease.
const (
	// StateQueued: stored, waiting for a free slot.
	StateQueued State = "queued"
	// StateClaimed: taken by a replica that is about to submit it; not sent
	// yet, so it may go back to the queue.
	StateClaimed State = "claimed"
	// StateSubmitting: /run is being sent, or was sent and its answer is not
	// stored yet. RunPod may have the job: it is never sent again.
	StateSubmitting State = "submitting"
	// StateInQueue: RunPod has the job (RunPodID) and it waits for a worker.
	StateInQueue State = "in_queue"
	// StateRunning: a worker is running it.
	StateRunning State = "running"
	// StateSucceeded: it completed and its outputs are in the output store.
	StateSucceeded State = "succeeded"
	// StateFailed: the worker, RunPod or the gateway reported an error.
	StateFailed State = "failed"
	// StateCancelled: cancelled by its owner.
	StateCancelled State = "cancelled"
	// StateTimedOut: it did not end before its deadline (and was cancelled at
	// RunPod), or RunPod timed it out.
	StateTimedOut State = "timed_out"
)

// Terminal reports whether a job in state s will not change again.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateTimedOut:
		return true
	}
	return false
}

// InFlight reports whether a job in state s holds a concurrency slot.
func (s State) InFlight() bool {
	switch s {
	case StateClaimed, StateSubmitting, StateInQueue, StateRunning:
		return true
	}
	return false
}

// States lists every state, in the order of a job's life.
func States() []State {
	return []State{StateQueued, StateClaimed, StateSubmitting, StateInQueue, StateRunning,
		StateSucceeded, StateFailed, StateCancelled, StateTimedOut}
}

// Job is one job as stored.
type Job struct {
	// Seq orders jobs by creation; it is the cursor of ListJobs.
	Seq int64
	// ID is the job's public id.
	ID string
	// Owner is the id of the API key that created it ("" when the service
	// runs open).
	Owner string
	// Endpoint is the RunPod endpoint the job is for.
	Endpoint string
	// State is where the job is.
	State State
	// Version grows with every change, starting at 1.
	Version int64

	// CreatedAt is when the job was accepted.
	CreatedAt time.Time
	// Deadline is when it times out.
	Deadline time.Time
	// SubmittedAt is when RunPod answered /run (zero until then).
	SubmittedAt time.Time
	// StartedAt is when a worker was first seen running it (zero until then).
	StartedAt time.Time
	// FinishedAt is when it ended (zero until then).
	FinishedAt time.Time

	// RunPodID is RunPod's job id, once known.
	RunPodID string
	// WebhookHash is the hex SHA-256 of the job's webhook secret; empty when
	// the job was submitted without a webhook.
	WebhookHash string
	// ColdStart is set while the job waits for a worker that is starting.
	ColdStart bool
	// CancelRequested is set when the owner asked to cancel a job that was
	// already at RunPod (or on its way there).
	CancelRequested bool
	// Attempts counts submissions that failed before reaching RunPod.
	Attempts int
	// NotBefore holds a requeued job back until then.
	NotBefore time.Time

	// Progress is the latest progress update the worker sent (JSON), if any.
	Progress json.RawMessage
	// Error says why a job failed, timed out or was cancelled.
	Error string
	// ErrorCode classifies Error.
	ErrorCode string
	// Params are the values written into the workflow, by name (JSON object).
	Params json.RawMessage
	// Outputs are the files of a succeeded job, in the output store.
	Outputs []Output
	// Inputs are the images the job was submitted with, as its workers got
	// them, in the output store (Name is the param's name); empty when they
	// were not kept.
	Inputs []Output
	// IdempotencyKey is the key the client sent with its submission, if any:
	// one job per owner and key.
	IdempotencyKey string
	// RequestHash identifies what was submitted with IdempotencyKey, so that
	// a retry can be told from another request reusing the key.
	RequestHash string

	// LeaseOwner is the replica watching the job.
	LeaseOwner string
	// LeaseUntil is when the lease ends unless renewed.
	LeaseUntil time.Time
}

// Output is one file a job produced.
type Output struct {
	// Name is the file name shown to clients.
	Name string `json:"name"`
	// ContentType is its media type.
	ContentType string `json:"content_type"`
	// Key is where it is in the output store.
	Key string `json:"key"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
}

// Key is an API key. The secret itself is never stored: only its hash.
type Key struct {
	// ID identifies the key (it is not secret).
	ID string
	// Name is a label chosen by whoever created it.
	Name string
	// Hash is the hex SHA-256 of the secret.
	Hash string
	// Prefix is the start of the secret, for people to recognise it.
	Prefix string
	// CreatedAt is when it was made.
	CreatedAt time.Time
	// RevokedAt is when it was revoked (zero while it is active).
	RevokedAt time.Time
}

// Errors returned by every Store, matched with errors.Is.
var (
	// ErrNotFound: no such job or key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the job is not in a state the operation applies to, or
	// the caller does not hold its lease (another replica took it over).
	ErrConflict = errors.New("store: job changed under the caller")
	// ErrDuplicate: a job or key with that id already exists, or a job of
	// that owner with that idempotency key.
	ErrDuplicate = errors.New("store: already exists")
)

// ListParams select a page of one owner's jobs, newest first.
type ListParams struct {
	// Owner is whose jobs to list.
	Owner string
	// Before, when > 0, lists only jobs with a Seq below it (the cursor).
	Before int64
	// Limit is the page size (> 0).
	Limit int
}

// ClaimParams say which queued jobs a replica may take.
type ClaimParams struct {
	// Endpoint is the RunPod endpoint whose jobs are claimed.
	Endpoint string
	// Replica is the claiming replica; it gets the leases.
	Replica string
	// Now is the current time.
	Now time.Time
	// LeaseUntil is the end of the leases given.
	LeaseUntil time.Time
	// Limit is the most jobs of Endpoint that may be in flight at once,
	// counted over every replica.
	Limit int
	// Max is the most jobs to claim in this call.
	Max int
}

// AdoptParams say which in-flight jobs a replica takes over.
type AdoptParams struct {
	// Endpoint is the RunPod endpoint whose jobs are adopted.
	Endpoint string
	// Replica is the adopting replica.
	Replica string
	// Now is the current time: leases that ended before it are free.
	Now time.Time
	// LeaseUntil is the end of the new leases.
	LeaseUntil time.Time
	// Max is the most jobs to adopt in this call.
	Max int
	// IncludeOwn also adopts jobs whose lease Replica itself holds, for a
	// replica restarting under the same id. Only at start-up: a running
	// replica would take back jobs its own dispatcher is busy with.
	IncludeOwn bool
}

// Update is a watcher's change to a job in flight.
type Update struct {
	// State is StateInQueue or StateRunning.
	State State
	// ColdStart says whether the job waits for a worker that is starting.
	ColdStart bool
	// Progress, when not nil, replaces the progress update.
	Progress json.RawMessage
	// StartedAt, when not zero and none is stored yet, is when the job
	// started running.
	StartedAt time.Time
}

// Finish is how a job ended.
type Finish struct {
	// State is a terminal state.
	State State
	// At is when it ended.
	At time.Time
	// Error says why it did not succeed.
	Error string
	// ErrorCode classifies Error.
	ErrorCode string
	// Outputs are the files of a succeeded job.
	Outputs []Output
	// RunPodID, when the job has none yet, records RunPod's id (learnt from a
	// webhook).
	RunPodID string
	// StartedAt, when the job has no start time yet, records one.
	StartedAt time.Time
}

// Requeue sends a claimed job that never reached RunPod back to the queue.
type Requeue struct {
	// NotBefore holds it back until then.
	NotBefore time.Time
	// Error is why the submission failed, kept until the job ends.
	Error string
}

// Listener is a Store that tells when jobs change in any process sharing its
// database (PostgreSQL's LISTEN/NOTIFY). The gateway uses it, when its store
// has it, to bring other replicas' changes to its event streams and cache at
// once instead of at their next poll.
type Listener interface {
	// ListenJobs calls changed with the id and new version of every job
	// created or changed, by any process, until ctx ends (then it returns
	// nil) or the connection fails (then it returns the error: call it
	// again; changes made in between are not reported). changed runs on
	// ListenJobs's goroutine and should return quickly.
	ListenJobs(ctx context.Context, changed func(id string, version int64)) error
}

// Store keeps the gateway's jobs and keys. Implementations are safe for
// concurrent use by any number of goroutines and processes sharing the
// database.
type Store interface {
	// CreateJob stores a new queued job (Seq is set on return) and its input,
	// in one transaction. Version starts at 1. ErrDuplicate when the id, or
	// the owner's IdempotencyKey, is taken.
	CreateJob(ctx context.Context, j *Job, input []byte) error
	// GetJob returns job id, or ErrNotFound.
	GetJob(ctx context.Context, id string) (*Job, error)
	// JobByIdempotencyKey returns owner's job created with key, or
	// ErrNotFound.
	JobByIdempotencyKey(ctx context.Context, owner, key string) (*Job, error)
	// ListJobs returns a page of an owner's jobs, newest first.
	ListJobs(ctx context.Context, p ListParams) ([]*Job, error)
	// JobInput returns the input of a job not yet submitted (ErrNotFound once
	// it is).
	JobInput(ctx context.Context, id string) ([]byte, error)

	// ClaimJobs moves up to p.Max queued jobs (oldest first, NotBefore
	// passed) to StateClaimed under a lease for p.Replica, as long as fewer
	// than p.Limit jobs of the endpoint are in flight. No job is claimed
	// twice.
	ClaimJobs(ctx context.Context, p ClaimParams) ([]*Job, error)
	// MarkSubmitting moves a claimed job to StateSubmitting, recording the
	// webhook hash it is sent with, just before /run. ErrConflict if the
	// replica no longer holds it or it is no longer claimed (a cancel
	// request also turns it into ErrConflict: see RequestCancel).
	MarkSubmitting(ctx context.Context, id, replica, webhookHash string, now time.Time) (*Job, error)
	// MarkSubmitted records RunPod's id for a submitting job, moves it to
	// StateInQueue and drops its input. It is not fenced by the lease: the
	// id must be kept whoever watches the job now. ErrConflict when the job
	// is no longer submitting (it already ended, or has an id).
	MarkSubmitted(ctx context.Context, id, runpodID string, now time.Time) (*Job, error)
	// Requeue sends a claimed or submitting job that definitely never reached
	// RunPod back to the queue. Fenced by the lease.
	Requeue(ctx context.Context, id, replica string, r Requeue) (*Job, error)
	// UpdateJob applies a watcher's change to an in-flight job. Fenced by
	// the lease; ErrConflict if the job ended or another replica holds it.
	UpdateJob(ctx context.Context, id, replica string, u Update) (*Job, error)
	// Finish ends a job. The first Finish wins: on a job that has already
	// ended it changes nothing and returns the job with changed false.
	Finish(ctx context.Context, id string, f Finish) (j *Job, changed bool, err error)
	// RequestCancel cancels a job that has not been sent to RunPod (queued or
	// claimed) at once, with the reason given, and marks any other job in
	// flight CancelRequested for its watcher. Jobs that ended are returned
	// unchanged.
	RequestCancel(ctx context.Context, id string, f Finish) (*Job, error)
	// ExpireQueued ends the queued jobs of an endpoint whose deadline is
	// before f.At as f says (f.State is StateTimedOut), up to max of them,
	// and returns them. The error of a failed submission attempt, if the job
	// had one, is kept after f.Error.
	ExpireQueued(ctx context.Context, endpoint string, f Finish, max int) ([]*Job, error)

	// RenewLeases extends the leases replica holds on in-flight jobs of
	// endpoint and returns those jobs: any job not returned has ended or
	// moved to another replica.
	RenewLeases(ctx context.Context, endpoint, replica string, until time.Time) ([]*Job, error)
	// AdoptJobs takes over in-flight jobs whose lease has expired.
	AdoptJobs(ctx context.Context, p AdoptParams) ([]*Job, error)
	// ReleaseLeases ends every lease replica holds, so that others adopt its
	// jobs at once; its claimed jobs go back to the queue.
	ReleaseLeases(ctx context.Context, endpoint, replica string, now time.Time) error
	// CountActive counts the jobs that have not ended, by state.
	CountActive(ctx context.Context) (map[State]int, error)

	// EndedBefore returns up to max jobs of endpoint that ended before
	// before, those that ended first first: the jobs retention removes.
	EndedBefore(ctx context.Context, endpoint string, before time.Time, max int) ([]*Job, error)
	// DeleteJobs deletes the jobs of ids that ended before before (others are
	// left alone) and returns how many it deleted. Deleting a job that is not
	// there is not an error, so replicas pruning at once do no harm.
	DeleteJobs(ctx context.Context, ids []string, before time.Time) (int, error)

	// CreateKey stores a key; ErrDuplicate if its id or hash exists.
	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash returns the key with that hash, revoked or not, or
	// ErrNotFound.
	KeyByHash(ctx context.Context, hash string) (*Key, error)
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]*Key, error)
	// RevokeKey revokes key id (ErrNotFound if there is none); revoking twice
	// keeps the first time.
	RevokeKey(ctx context.Context, id string, now time.Time) (*Key, error)
	// CountActiveKeys counts keys that are not revoked.
	CountActiveKeys(ctx context.Context) (int, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
