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
// Times are passed in by the caller (the gateway's clock) and stored as Unix
// milliseconds; replicas sharing a database need clocks in sync (NTP).
package store
