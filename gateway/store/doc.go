// Package store is the gateway's durable state: jobs, their inputs until they
// are submitted, and API keys. Store is the interface the gateway uses;
// sqlite and postgres implement it, and storetest is the contract suite both
// pass.
//
// # A job's life in the store
//
//	queued ──claim──▶ claimed ──▶ submitting ──/run answered──▶ in_queue ⇄ running
//	   │                 │             │                            │
//	   │                 └─requeue─────┘ (definitely not sent)       ▼
//	   └──────────────▶ cancelled / timed_out          succeeded · failed · cancelled · timed_out
//
// CreateJob stores a job and its input in one transaction, so a job the
// gateway has acknowledged is never lost. ClaimJobs moves queued jobs to
// claimed for one replica, never past the concurrency limit counted over every
// replica's in-flight jobs, and never the same job twice. MarkSubmitting records,
// before /run is sent, that the job may reach RunPod: from then on it is never
// requeued, because RunPod might already have it. MarkSubmitted stores
// RunPod's job id and drops the input.
//
// # Leases
//
// A replica watches the in-flight jobs it holds a lease on (LeaseOwner,
// LeaseUntil). It renews them with RenewLeases; when a replica dies, its leases
// expire and AdoptJobs hands the jobs to another one. Writes a watcher makes
// (UpdateJob, MarkSubmitting, Requeue) are fenced by the lease, so a replica
// that lost a job cannot overwrite the new holder's work. Finish is not fenced:
// the end of a job is news from RunPod, whoever hears it first (a webhook may
// arrive at any replica), and only the first Finish counts.
//
// # Kept with a job
//
// Job.Inputs lists the images a job was submitted with, as files in the
// output store (the RunPod input itself, from CreateJob, is dropped once it is
// sent). A job created with an IdempotencyKey is the only one of its owner
// with that key: CreateJob answers ErrDuplicate for a second one, and
// JobByIdempotencyKey finds the first, whose RequestHash tells a retry from a
// different request reusing the key.
//
// # Following other processes
//
// The postgres store is also a Listener: a trigger announces every new
// version of a job with NOTIFY, and ListenJobs hears them, so replicas learn
// of each other's changes at once.
//
// # Retention
//
// EndedBefore lists the jobs that ended before a time, and DeleteJobs deletes
// them, checking again that each ended before it, so that several replicas
// pruning at once do no harm: the gateway deletes a job's files between the
// two calls.
//
// Times are passed in by the caller (the gateway's clock) and stored as Unix
// milliseconds; replicas sharing a database need clocks in sync (NTP).
package store
