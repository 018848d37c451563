package runpodtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Job is a snapshot of one job, for tests to inspect.
type Job struct {
	// ID and Endpoint identify the job.
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	// Sync is true for jobs made by /runsync.
	Sync   bool   `json:"sync,omitempty"`
	Status Status `json:"status"`
	// Input, Webhook, Policy (resolved against the defaults) and S3Config
	// are the request's.
	Input    json.RawMessage `json:"input"`
	Webhook  string          `json:"webhook,omitempty"`
	Policy   Policy          `json:"policy"`
	S3Config json.RawMessage `json:"s3Config,omitempty"`
	// Output is the final output, or the latest progress update while
	// IN_PROGRESS.
	Output json.RawMessage `json:"output,omitempty"`
	// Error is the error message of a FAILED or TIMED_OUT job.
	Error string `json:"error,omitempty"`
	// WorkerID is the worker holding the job, or the last one that did.
	WorkerID string `json:"workerId,omitempty"`
	// Retries counts /retry calls and requeues after a lost worker.
	Retries int `json:"retries"`
	// ProgressUpdates counts {"status":"IN_PROGRESS"} posts.
	ProgressUpdates int `json:"progressUpdates"`
	// Stream holds every chunk posted to job-stream; StreamReturned of them
	// have been handed out by /stream.
	Stream         []json.RawMessage `json:"stream,omitempty"`
	StreamReturned int               `json:"streamReturned"`
	// SubmittedAt is when the job arrived; StartedAt and FinishedAt are those
	// of its latest run (zero until then).
	SubmittedAt time.Time `json:"submittedAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	// History is every status the job went through, oldest first.
	History []Transition `json:"history"`
	// Deleted says why the job was deleted (ttl, retention, purge); empty
	// while /status still finds it.
	Deleted string `json:"deleted,omitempty"`
}

func (j *job) snapshot() Job {
	return Job{
		ID: j.id, Endpoint: j.ep, Sync: j.sync, Status: j.status,
		Input: j.input, Webhook: j.webhook, Policy: j.policy, S3Config: j.s3Config,
		Output: j.output, Error: j.errMsg, WorkerID: j.workerID, Retries: j.retries,
		ProgressUpdates: j.progress,
		Stream:          slices.Clone(j.stream), StreamReturned: j.streamAt,
		SubmittedAt: j.submittedAt, StartedAt: j.startedAt, FinishedAt: j.finishedAt,
		History: slices.Clone(j.history), Deleted: j.deleted,
	}
}

// Worker is a snapshot of one worker, for tests to inspect.
type Worker struct {
	// ID is the worker id of its URLs (RUNPOD_POD_ID); Endpoint the endpoint
	// it serves.
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	// State is how /health counts it.
	State WorkerState `json:"state"`
	// FirstSeen is its first request.
	FirstSeen time.Time `json:"firstSeen"`
	// LastSeen is the end of its latest request (or now, while one is open).
	LastSeen time.Time `json:"lastSeen"`
	// LastPing is its latest heartbeat (zero if none).
	LastPing time.Time `json:"lastPing,omitzero"`
	// Jobs are the ids the server has handed it and not yet closed.
	Jobs []string `json:"jobs"`
	// ReportedJobs are the ids its latest ping listed.
	ReportedJobs []string `json:"reportedJobs"`
	// JobInProgress is the job_in_progress flag of its latest take.
	JobInProgress bool `json:"jobInProgress"`
	// RunpodVersion is the runpod_version of its latest ping.
	RunpodVersion string `json:"runpodVersion,omitempty"`
	// Refreshing is set by a result with stopPod: true, until its next take
	// after the cold start; Refreshes counts them.
	Refreshing bool `json:"refreshing"`
	Refreshes  int  `json:"refreshes"`
	// Unhealthy is the failed fitness check it reported, if any.
	Unhealthy string `json:"unhealthy,omitempty"`
	// PendingStops are job ids job-stop has yet to hand it.
	PendingStops []string `json:"pendingStops"`
	// Requests counts its requests of every kind; OpenRequests are the ones
	// in flight right now.
	Requests     int `json:"requests"`
	OpenRequests int `json:"openRequests"`
}

func (w *worker) snapshot(now time.Time) Worker {
	ids := slices.Sorted(maps.Keys(w.jobs))
	last := w.lastSeen
	if w.active > 0 {
		last = now
	}
	return Worker{
		ID: w.id, Endpoint: w.ep, State: w.state(now), FirstSeen: w.firstSeen, LastSeen: last,
		LastPing: w.lastPing, Jobs: ids, ReportedJobs: slices.Clone(w.reported), JobInProgress: w.busy,
		RunpodVersion: w.version, Refreshing: w.refreshing, Refreshes: w.refreshes,
		Unhealthy: w.unhealthy, PendingStops: slices.Clone(w.stops), Requests: w.requests,
		OpenRequests: w.active,
	}
}

// Job returns a snapshot of job id; deleted jobs stay visible (with Deleted
// set) for a while after /status stops finding them.
func (s *Server) Job(id string) (Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.clock.Now())
	if j := s.jobs[id]; j != nil {
		return j.snapshot(), true
	}
	if j := s.tombstones[id]; j != nil {
		return j.snapshot(), true
	}
	return Job{}, false
}

// Jobs returns snapshots of every live job, oldest submission first.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.clock.Now())
	out := make([]Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.snapshot())
	}
	slices.SortFunc(out, func(a, b Job) int {
		if c := a.SubmittedAt.Compare(b.SubmittedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Workers returns snapshots of every worker that has contacted the server,
// by endpoint and id.
func (s *Server) Workers() []Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	out := make([]Worker, 0, len(s.workers))
	for _, k := range slices.Sorted(maps.Keys(s.workers)) {
		out = append(out, s.workers[k].snapshot(now))
	}
	return out
}

// Requests reports how many requests of op have arrived, whatever their
// answer (faulted, refused or served).
func (s *Server) Requests(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// RequestCounts reports the request counter of every operation.
func (s *Server) RequestCounts() map[Op]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// Health returns what /health answers for endpoint ep.
func (s *Server) Health(ep string) (Health, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.eps[ep] {
		return Health{}, fmt.Errorf("runpodtest: endpoint %q is not served", ep)
	}
	now := s.clock.Now()
	s.sweepLocked(now)
	return s.healthLocked(ep, now), nil
}

// Await blocks until cond reports true, re-checking it after every change of
// job, worker or webhook state and whenever a worker's last open request ends. cond runs without the server's lock and may
// call any Server method.
func (s *Server) Await(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch, obs := s.changed.wait(), s.observed.wait()
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-obs:
		case <-ctx.Done():
			return fmt.Errorf("runpodtest: condition not met: %w", ctx.Err())
		case <-s.ctx.Done():
			return errors.New("runpodtest: server closed")
		}
	}
}

// WaitStatus blocks until job id is in one of want (any terminal status when
// want is empty) and returns its snapshot. It fails if the job is deleted
// first.
func (s *Server) WaitStatus(ctx context.Context, id string, want ...Status) (Job, error) {
	var (
		got  Job
		gone bool
	)
	err := s.Await(ctx, func() bool {
		j, ok := s.Job(id)
		got = j
		if !ok || j.Deleted != "" {
			gone = true
			return true
		}
		if len(want) == 0 {
			return j.Status.Terminal()
		}
		return slices.Contains(want, j.Status)
	})
	if err != nil {
		return got, fmt.Errorf("job %s is %s: %w", id, got.Status, err)
	}
	if gone {
		return got, fmt.Errorf("runpodtest: job %s: %w", id, ErrJobNotFound)
	}
	return got, nil
}
