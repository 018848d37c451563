package runpodtest

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"
)

// job is the server's record of one job.
type job struct {
	id        string
	ep        string
	sync      bool // made by /runsync
	input     json.RawMessage
	webhook   string
	policy    Policy
	rawPolicy json.RawMessage
	s3Config  json.RawMessage

	status   Status
	output   json.RawMessage
	errMsg   string
	worker   *worker // holder while IN_PROGRESS; nil when driven directly
	workerID string  // last holder, for workerId in answers
	retries  int
	losses   int // times a holder went silent
	progress int // progress updates received
	stream   []json.RawMessage
	streamAt int // chunks already returned by /stream
	deleted  string

	submittedAt time.Time
	queuedAt    time.Time
	startedAt   time.Time
	finishedAt  time.Time
	history     []Transition
	queueSeq    uint64
	changed     signal // wakes requests held on this job
}

// Transition is one change of a job's status.
type Transition struct {
	// Status is the status entered, At when (on the server's clock).
	Status Status    `json:"status"`
	At     time.Time `json:"at"`
	// WorkerID is the worker holding the job at that moment, if any.
	WorkerID string `json:"workerId,omitempty"`
	// Reason says why the job moved, e.g. "taken by worker w1" or
	// "execution timeout (600000 ms)".
	Reason string `json:"reason,omitempty"`
}

// queued is a queue entry; it is stale once the job left IN_QUEUE or was
// queued again (seq differs).
type queued struct {
	j   *job
	seq uint64
}

// retention is how long a finished job stays readable.
func (s *Server) retention(j *job) time.Duration {
	if j.sync {
		return s.cfg.RunsyncRetention
	}
	return s.cfg.RunRetention
}

// statusBodyLocked renders j as /status does.
func (s *Server) statusBodyLocked(j *job, now time.Time) statusBody {
	b := statusBody{ID: j.id, Status: j.status, Retries: j.retries, Error: j.errMsg, Output: j.output}
	if !j.startedAt.IsZero() {
		delay := j.startedAt.Sub(j.queuedAt).Milliseconds()
		end := now
		if j.status.Terminal() {
			end = j.finishedAt
		}
		exec := max(end.Sub(j.startedAt).Milliseconds(), 0)
		b.DelayTime, b.ExecutionTime = &delay, &exec
		b.WorkerID = j.workerID
	}
	return b
}

func (s *Server) transitionLocked(j *job, st Status, now time.Time, reason string) {
	j.status = st
	wid := ""
	if j.worker != nil {
		wid = j.worker.id
	}
	j.history = append(j.history, Transition{Status: st, At: now, WorkerID: wid, Reason: reason})
	s.log.Info("runpodtest: job", "endpoint", j.ep, "job", j.id, "status", string(st), "reason", reason)
	if st == StatusInQueue {
		s.queueChanged[j.ep].fire()
	}
	s.jobChangedLocked(j)
}

// newJobLocked records a job from a decoded request and queues it.
func (s *Server) newJobLocked(ep string, req runRequest, sync bool, now time.Time) *job {
	id := s.uuidLocked() + "-u1"
	if sync {
		id = "sync-" + id
	}
	j := &job{
		id: id, ep: ep, sync: sync,
		input: req.input, webhook: req.webhook, policy: req.policy,
		rawPolicy: req.rawPolicy, s3Config: req.s3Config,
		submittedAt: now,
	}
	s.jobs[id] = j
	s.pushDeadlineLocked(now.Add(j.policy.TTL), deadlineTTL, j)
	s.queueLocked(j, now, "submitted")
	return j
}

// queueLocked puts j at the back of its endpoint's queue.
func (s *Server) queueLocked(j *job, now time.Time, reason string) {
	j.worker = nil
	j.output, j.errMsg = nil, ""
	j.startedAt, j.finishedAt = time.Time{}, time.Time{}
	j.queuedAt = now
	s.queueSeq++
	j.queueSeq = s.queueSeq
	s.queues[j.ep] = append(s.queues[j.ep], queued{j: j, seq: j.queueSeq})
	s.transitionLocked(j, StatusInQueue, now, reason)
}

// popQueueLocked removes and returns the first live job queued on ep.
func (s *Server) popQueueLocked(ep string) *job {
	q := s.queues[ep]
	for len(q) > 0 {
		e := q[0]
		q[0] = queued{}
		q = q[1:]
		if e.j.status == StatusInQueue && e.j.queueSeq == e.seq && s.jobs[e.j.id] == e.j {
			s.queues[ep] = q
			return e.j
		}
	}
	s.queues[ep] = nil
	return nil
}

// startLocked hands j to worker w (nil when a test drives the job directly).
func (s *Server) startLocked(j *job, w *worker, now time.Time) {
	j.worker = w
	j.startedAt = now
	reason := "started directly"
	if w != nil {
		w.jobs[j.id] = j
		j.workerID = w.id
		reason = "taken by worker " + w.id
	}
	s.pushDeadlineLocked(now.Add(j.policy.ExecutionTimeout), deadlineExec, j)
	s.transitionLocked(j, StatusInProgress, now, reason)
}

// finishLocked moves j to a terminal status, releases its worker, schedules
// its deletion and sends its webhook.
func (s *Server) finishLocked(j *job, st Status, now time.Time, reason string) {
	j.finishedAt = now
	if t := s.totals[j.ep]; t != nil {
		switch st {
		case StatusCompleted:
			t.Completed++
		case StatusFailed, StatusTimedOut:
			t.Failed++
		}
	}
	s.pushDeadlineLocked(now.Add(s.retention(j)), deadlineRetention, j)
	s.transitionLocked(j, st, now, reason) // records the holder, if any
	if w := j.worker; w != nil {
		delete(w.jobs, j.id)
		if st == StatusCancelled || st == StatusTimedOut {
			s.tellStopLocked(w, j.id)
		}
		j.worker = nil
	}
	if j.webhook != "" {
		s.sendWebhookLocked(j, now)
	}
}

// retryLocked queues a FAILED or TIMED_OUT job again under the same id.
func (s *Server) retryLocked(j *job, now time.Time, reason string) {
	j.retries++
	if t := s.totals[j.ep]; t != nil {
		t.Retried++
	}
	j.stream, j.streamAt = nil, 0
	s.queueLocked(j, now, reason)
}

// deleteLocked forgets j; later requests for it answer 404. A worker still
// holding it is told to stop.
func (s *Server) deleteLocked(j *job, now time.Time, why string) {
	if w := j.worker; w != nil {
		delete(w.jobs, j.id)
		s.tellStopLocked(w, j.id)
		j.worker = nil
	}
	delete(s.jobs, j.id)
	j.deleted = why
	j.history = append(j.history, Transition{Status: j.status, At: now, Reason: "deleted: " + why})
	s.tombstones[j.id] = j
	s.tombOrder = append(s.tombOrder, j.id)
	if len(s.tombOrder) > maxTombstones {
		delete(s.tombstones, s.tombOrder[0])
		s.tombOrder = s.tombOrder[1:]
	}
	s.log.Info("runpodtest: job deleted", "endpoint", j.ep, "job", j.id, "why", why)
	s.jobChangedLocked(j)
}

// maxPendingStops bounds the job ids waiting for a worker that never polls
// job-stop (runpod-python before 1.10 does not).
const maxPendingStops = 1024

// tellStopLocked queues job id for w's next job-stop answer.
func (s *Server) tellStopLocked(w *worker, id string) {
	if slices.Contains(w.stops, id) {
		return
	}
	if len(w.stops) >= maxPendingStops {
		w.stops = w.stops[1:]
	}
	w.stops = append(w.stops, id)
	w.stopsChanged.fire()
	s.notifyLocked()
}

// jobChangedLocked wakes the requests held on j, and Await callers.
func (s *Server) jobChangedLocked(j *job) {
	j.changed.fire()
	s.notifyLocked()
}

// findJobLocked returns the live job id of endpoint ep.
func (s *Server) findJobLocked(ep, id string) *job {
	j := s.jobs[id]
	if j == nil || j.ep != ep {
		return nil
	}
	return j
}

// notFound is the 404 message for a job id the server does not hold.
func (s *Server) notFound(id string) string {
	return fmt.Sprintf("job %q not found: it never existed on this endpoint, or it was deleted (its ttl ran out, or it finished more than %s (/run) or %s (/runsync) ago, or the queue was purged)",
		id, s.cfg.RunRetention, s.cfg.RunsyncRetention)
}

// deadlineKind is what happens when a deadline passes.
type deadlineKind int

const (
	deadlineTTL       deadlineKind = iota // delete the job
	deadlineExec                          // time the job out
	deadlineRetention                     // delete the finished job
)

type deadline struct {
	at   time.Time
	kind deadlineKind
	j    *job
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = deadline{}
	*h = old[:len(old)-1]
	return x
}

func (s *Server) pushDeadlineLocked(at time.Time, kind deadlineKind, j *job) {
	heap.Push(&s.deadlines, deadline{at: at, kind: kind, j: j})
	s.kickLocked(at)
}

// kickLocked wakes the janitor when at is earlier than what it waits for.
func (s *Server) kickLocked(at time.Time) {
	if s.armedAt.IsZero() || at.Before(s.armedAt) {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// current reports whether d is still the job's deadline of its kind.
func (s *Server) current(d deadline) bool {
	j := d.j
	if s.jobs[j.id] != j {
		return false
	}
	switch d.kind {
	case deadlineTTL:
		return true
	case deadlineExec:
		return j.status == StatusInProgress && d.at.Equal(j.startedAt.Add(j.policy.ExecutionTimeout))
	case deadlineRetention:
		return j.status.Terminal() && d.at.Equal(j.finishedAt.Add(s.retention(j)))
	}
	return false
}

// sweepLocked applies, in time order, every deadline that has passed by now:
// ttl and retention deletions, execution timeouts and lost workers.
func (s *Server) sweepLocked(now time.Time) {
	for {
		w := s.dueWorkerLocked()
		if len(s.deadlines) > 0 && !s.deadlines[0].at.After(now) &&
			(w == nil || !s.deadlines[0].at.After(w.lastSeen.Add(s.cfg.PingTimeout))) {
			d := heap.Pop(&s.deadlines).(deadline)
			if s.current(d) {
				s.applyDeadlineLocked(d)
			}
			continue
		}
		if w != nil && !w.lastSeen.Add(s.cfg.PingTimeout).After(now) {
			s.loseWorkerLocked(w, w.lastSeen.Add(s.cfg.PingTimeout))
			continue
		}
		break
	}
	for _, w := range s.workers {
		if !w.warmNoticed && !now.Before(w.warmAt) {
			w.warmNoticed = true
			s.queueChanged[w.ep].fire()
			s.notifyLocked()
		}
	}
}

func (s *Server) applyDeadlineLocked(d deadline) {
	j := d.j
	switch d.kind {
	case deadlineTTL:
		s.deleteLocked(j, d.at, fmt.Sprintf("ttl of %d ms ran out", j.policy.TTL.Milliseconds()))
	case deadlineExec:
		j.errMsg = fmt.Sprintf("job timed out: the worker held it longer than policy.executionTimeout (%d ms)", j.policy.ExecutionTimeout.Milliseconds())
		s.finishLocked(j, StatusTimedOut, d.at, fmt.Sprintf("execution timeout (%d ms)", j.policy.ExecutionTimeout.Milliseconds()))
	case deadlineRetention:
		s.deleteLocked(j, d.at, fmt.Sprintf("retention of %s after it finished ran out", s.retention(j)))
	}
}

// dueWorkerLocked returns the live, idle-on-the-wire worker whose liveness
// runs out first, or nil.
func (s *Server) dueWorkerLocked() *worker {
	var first *worker
	for _, w := range s.workers {
		if w.lost || w.active > 0 {
			continue
		}
		if first == nil || w.lastSeen.Before(first.lastSeen) {
			first = w
		}
	}
	return first
}

// nextDeadlineLocked is when the janitor must next sweep.
func (s *Server) nextDeadlineLocked() (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if len(s.deadlines) > 0 {
		consider(s.deadlines[0].at)
	}
	if w := s.dueWorkerLocked(); w != nil {
		consider(w.lastSeen.Add(s.cfg.PingTimeout))
	}
	for _, w := range s.workers {
		if !w.warmNoticed {
			consider(w.warmAt)
		}
	}
	return next, !next.IsZero()
}

// janitor applies deadlines when they pass, so held requests learn about
// timeouts, expiries and lost workers without another request arriving.
func (s *Server) janitor() {
	defer s.bg.Done()
	for {
		s.mu.Lock()
		s.sweepLocked(s.clock.Now())
		next, ok := s.nextDeadlineLocked()
		s.armedAt = next
		s.mu.Unlock()
		var (
			t clockwork.Timer
			c <-chan time.Time
		)
		if ok {
			t = timerAt(s.clock, next)
			c = t.Chan()
		}
		select {
		case <-c:
		case <-s.kick:
		case <-s.ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if s.ctx.Err() != nil {
			return
		}
	}
}
