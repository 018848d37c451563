package runpodtest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WorkerState is how the server sees a worker.
type WorkerState string

// The worker states the server reports.
const (
	// WorkerInitializing: within its cold start (first request or refresh).
	WorkerInitializing WorkerState = "initializing"
	// WorkerIdle: warm and holding no job.
	WorkerIdle WorkerState = "idle"
	// WorkerRunning: holding at least one job, or saying job_in_progress=1.
	WorkerRunning WorkerState = "running"
	// WorkerUnhealthy: went silent while holding jobs, or reported a failed
	// fitness check on its ping.
	WorkerUnhealthy WorkerState = "unhealthy"
	// WorkerLost: went silent while holding nothing (scaled down).
	WorkerLost WorkerState = "lost"
)

// worker is the server's record of one worker of one endpoint.
type worker struct {
	id, ep       string
	firstSeen    time.Time
	lastSeen     time.Time // end of its latest request
	lastPing     time.Time
	warmAt       time.Time
	warmNoticed  bool
	active       int             // requests in flight
	jobs         map[string]*job // held
	reported     []string        // job ids of its latest ping
	busy         bool            // job_in_progress of its latest take
	version      string          // runpod_version of its latest ping
	refreshing   bool
	refreshes    int
	lost         bool
	lostHolding  bool   // held jobs when it went silent
	unhealthy    string // failed fitness check reported on ping
	stops        []string
	stopsChanged signal
	requests     int
}

func (w *worker) state(now time.Time) WorkerState {
	switch {
	case w.lost && w.lostHolding:
		return WorkerUnhealthy
	case w.lost:
		return WorkerLost
	case w.unhealthy != "":
		return WorkerUnhealthy
	case now.Before(w.warmAt):
		return WorkerInitializing
	case len(w.jobs) > 0 || w.busy:
		return WorkerRunning
	}
	return WorkerIdle
}

func workerKey(ep, id string) string { return ep + "/" + id }

// workerEnter records the start of a worker request, registering the worker
// on first contact (and again after it was lost).
func (s *Server) workerEnter(ep, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	w := s.workers[workerKey(ep, id)]
	if w == nil {
		w = &worker{id: id, ep: ep, firstSeen: now, jobs: map[string]*job{}}
		s.workers[workerKey(ep, id)] = w
		s.coldStartLocked(w, now)
		s.notifyLocked()
		s.log.Info("runpodtest: worker joined", "endpoint", ep, "worker", id)
	} else if w.lost {
		w.lost, w.lostHolding = false, false
		s.coldStartLocked(w, now)
		s.notifyLocked()
		s.log.Info("runpodtest: lost worker is back", "endpoint", ep, "worker", id)
	}
	w.active++
	w.requests++
	w.lastSeen = now
}

// workerLeave records the end of a worker request; its liveness counts from
// here.
func (s *Server) workerLeave(ep, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workers[workerKey(ep, id)]
	if w == nil {
		return
	}
	w.active--
	w.lastSeen = s.clock.Now()
	if w.active == 0 {
		s.kickLocked(w.lastSeen.Add(s.cfg.PingTimeout))
		s.observeLocked()
	}
}

func (s *Server) coldStartLocked(w *worker, now time.Time) {
	w.warmAt = now.Add(s.cfg.ColdStart)
	w.warmNoticed = s.cfg.ColdStart == 0
	if !w.warmNoticed {
		s.kickLocked(w.warmAt)
	}
}

// loseWorkerLocked handles a worker that went silent: each job it held goes
// back to the queue the first time it loses a worker, and fails the second.
func (s *Server) loseWorkerLocked(w *worker, at time.Time) {
	w.lost = true
	w.lostHolding = len(w.jobs) > 0
	s.log.Warn("runpodtest: worker lost", "endpoint", w.ep, "worker", w.id, "silent_for", s.cfg.PingTimeout, "jobs", len(w.jobs))
	ids := make([]string, 0, len(w.jobs))
	for id := range w.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j := w.jobs[id]
		delete(w.jobs, id)
		s.tellStopLocked(w, id)
		j.worker = nil
		j.losses++
		silent := fmt.Sprintf("worker %s sent no ping for %s while running the job", w.id, s.cfg.PingTimeout)
		if j.losses == 1 {
			j.retries++
			if t := s.totals[j.ep]; t != nil {
				t.Retried++
			}
			s.queueLocked(j, at, silent+"; requeued")
			continue
		}
		j.errMsg = silent + "; it had already been requeued once after losing a worker, so it failed"
		s.finishLocked(j, StatusFailed, at, silent+"; failed after a second lost worker")
	}
	s.notifyLocked()
}

// handleTake serves job-take and job-take-batch: a long-poll that hands out
// queued jobs once the worker is past its cold start.
func (s *Server) handleTake(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	busy := false
	switch v := q.Get("job_in_progress"); v {
	case "", "0", "false":
	case "1", "true":
		busy = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("job_in_progress=%q: want 0 or 1", v))
		return
	}
	n := 1
	if rt.batch {
		if v := q.Get("batch_size"); v != "" {
			b, err := strconv.Atoi(v)
			if err != nil || b < 1 || b > s.cfg.MaxBatchSize {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("batch_size=%q: want a whole number between 1 and %d", v, s.cfg.MaxBatchSize))
				return
			}
			n = b
		}
	}
	var taken []*job
	s.poll(r.Context(), OpTake, s.cfg.WorkerPollWait, s.queueChanged[rt.ep].wait, func(now time.Time) bool {
		wk := s.workers[workerKey(rt.ep, rt.workerID)]
		if wk == nil {
			return false
		}
		wk.busy = busy
		if now.Before(wk.warmAt) {
			return false
		}
		wk.refreshing = false
		for len(taken) < n {
			j := s.popQueueLocked(rt.ep)
			if j == nil {
				break
			}
			s.startLocked(j, wk, now)
			taken = append(taken, j)
		}
		return len(taken) > 0
	})
	if len(taken) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out := make([]takenJob, len(taken))
	for i, j := range taken {
		out[i] = takenJob{ID: j.id, Input: j.input, Webhook: j.webhook, Policy: j.rawPolicy, S3Config: j.s3Config}
	}
	if rt.batch {
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusOK, out[0])
}

// heldLocked returns the job a worker posts about, or an error message when
// the worker does not hold it (unknown, expired, cancelled, timed out or
// requeued jobs).
func (s *Server) heldLocked(rt route) (*job, string) {
	j := s.findJobLocked(rt.ep, rt.jobID)
	if j == nil {
		return nil, s.notFound(rt.jobID) + "; result discarded"
	}
	if j.status != StatusInProgress || j.worker == nil || j.worker.id != rt.workerID {
		return nil, fmt.Sprintf("job %q is %s and not held by worker %q; result discarded", rt.jobID, j.status, rt.workerID)
	}
	return j, ""
}

// readWorkerBody reads a job-done or job-stream body under
// Config.MaxResultBytes, answering 400 itself; ok is false when it did.
// runpod-python labels its JSON application/x-www-form-urlencoded, so the
// content type is ignored and the body always read as JSON.
func (s *Server) readWorkerBody(w http.ResponseWriter, r *http.Request, what string) ([]byte, bool) {
	body, tooLarge, err := readBody(r, s.cfg.MaxResultBytes)
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the "+what+": "+err.Error())
		return nil, false
	}
	if tooLarge {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Bad Request: the %s is larger than %s; upload large outputs (e.g. to S3) and return URLs", what, formatBytes(s.cfg.MaxResultBytes)))
		return nil, false
	}
	return body, true
}

// handleDone serves job-done: the final result, or a progress update.
func (s *Server) handleDone(w http.ResponseWriter, r *http.Request, rt route) {
	switch v := r.URL.Query().Get("isStream"); v {
	case "", "true", "false":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("isStream=%q: want true or false", v))
		return
	}
	body, ok := s.readWorkerBody(w, r, "job result")
	if !ok {
		return
	}
	res, err := decodeResult(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j, msg := s.heldLocked(rt)
	if j == nil {
		writeError(w, http.StatusNotFound, msg)
		return
	}
	if res.progress {
		j.output = res.output
		j.progress++
		s.jobChangedLocked(j)
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	wk := j.worker
	j.output = res.output
	if res.errMsg != "" {
		j.errMsg = res.errMsg
		s.finishLocked(j, StatusFailed, now, "worker "+rt.workerID+" reported an error")
	} else {
		s.finishLocked(j, StatusCompleted, now, "worker "+rt.workerID+" posted the result")
	}
	if res.stopPod {
		wk.refreshing = true
		wk.refreshes++
		s.coldStartLocked(wk, now)
		s.log.Info("runpodtest: worker refreshing", "endpoint", wk.ep, "worker", wk.id)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// handleStreamPost serves job-stream: one chunk for /stream.
func (s *Server) handleStreamPost(w http.ResponseWriter, r *http.Request, rt route) {
	body, ok := s.readWorkerBody(w, r, "stream chunk")
	if !ok {
		return
	}
	chunk, err := decodeStreamChunk(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.clock.Now())
	j, msg := s.heldLocked(rt)
	if j == nil {
		writeError(w, http.StatusNotFound, msg)
		return
	}
	j.stream = append(j.stream, chunk)
	s.jobChangedLocked(j)
	writeJSON(w, http.StatusOK, struct{}{})
}

// handlePing serves the heartbeat: liveness, the job ids the worker says it
// holds, its runpod_version, and fitness failure reports.
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	wk := s.workers[workerKey(rt.ep, rt.workerID)]
	if wk != nil {
		wk.lastPing = s.clock.Now()
		wk.reported = parseIDList(q.Get("job_id"))
		if v := q.Get("runpod_version"); v != "" {
			wk.version = v
		}
		if strings.EqualFold(q.Get("status"), "unhealthy") {
			reason := q.Get("check")
			if why := q.Get("reason"); why != "" {
				reason += ": " + why
			}
			if reason == "" {
				reason = "unhealthy"
			}
			wk.unhealthy = reason
			s.log.Warn("runpodtest: worker reported a failed fitness check", "endpoint", rt.ep, "worker", rt.workerID, "check", reason)
		}
	}
	s.notifyLocked()
	writeJSON(w, http.StatusOK, map[string]string{"status": "pong"})
}

// handleStop serves job-stop: a long-poll answering the ids of jobs the
// worker should abandon (cancelled, timed out, expired or requeued).
func (s *Server) handleStop(w http.ResponseWriter, r *http.Request, rt route) {
	var ids []string
	s.mu.Lock()
	wk := s.workers[workerKey(rt.ep, rt.workerID)] // registered by dispatch
	s.mu.Unlock()
	s.poll(r.Context(), OpStop, s.cfg.WorkerPollWait, wk.stopsChanged.wait, func(time.Time) bool {
		if len(wk.stops) == 0 {
			return false
		}
		ids, wk.stops = wk.stops, nil
		return true
	})
	if len(ids) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"jobsToStop": ids})
}
