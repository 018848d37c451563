package runpodtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// readRun reads and decodes a /run or /runsync body under limit, answering
// the error itself; ok is false when it did.
func (s *Server) readRun(w http.ResponseWriter, r *http.Request, name string, limit int64) (runRequest, bool) {
	body, tooLarge, err := readBody(r, limit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return runRequest{}, false
	}
	if tooLarge {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s payload is larger than the %s limit; pass large inputs (images, video) as URLs", name, formatBytes(limit)))
		return runRequest{}, false
	}
	req, err := decodeRunRequest(body, Policy{ExecutionTimeout: s.cfg.ExecutionTimeout, TTL: s.cfg.TTL})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return runRequest{}, false
	}
	return req, true
}

// handleRun serves /run: queue the job and answer its id at once.
func (s *Server) handleRun(w http.ResponseWriter, r *http.Request, rt route) {
	req, ok := s.readRun(w, r, "/run", s.cfg.MaxRunBytes)
	if !ok {
		return
	}
	s.mu.Lock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.newJobLocked(rt.ep, req, false, now)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: StatusInQueue})
}

// handleRunsync serves /runsync: queue the job, wait up to ?wait= for it to
// finish, and answer its status either way.
func (s *Server) handleRunsync(w http.ResponseWriter, r *http.Request, rt route) {
	wait, err := waitParam(r, MinRunsyncWait, MaxRunsyncWait, RunsyncWaitDefault)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, ok := s.readRun(w, r, "/runsync", s.cfg.MaxRunsyncBytes)
	if !ok {
		return
	}
	s.mu.Lock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.newJobLocked(rt.ep, req, true, now)
	s.mu.Unlock()
	s.answerWhenDone(w, r, OpRunsync, j, wait)
}

// answerWhenDone holds the request until j is terminal or wait ends, then
// answers its status.
func (s *Server) answerWhenDone(w http.ResponseWriter, r *http.Request, op Op, j *job, wait time.Duration) {
	s.poll(r.Context(), op, wait, j.changed.wait, func(time.Time) bool {
		return j.status.Terminal() || j.deleted != ""
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.deleted != "" {
		writeError(w, http.StatusNotFound, s.notFound(j.id))
		return
	}
	writeJSON(w, http.StatusOK, s.statusBodyLocked(j, s.clock.Now()))
}

// handleStatus serves /status/{id}.
func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.findJobLocked(rt.ep, rt.jobID)
	if j == nil {
		writeError(w, http.StatusNotFound, s.notFound(rt.jobID))
		return
	}
	writeJSON(w, http.StatusOK, s.statusBodyLocked(j, now))
}

// handleStatusSync serves /status-sync/{id}?wait=ms, a long-poll that answers
// once the job is terminal or the wait ends.
func (s *Server) handleStatusSync(w http.ResponseWriter, r *http.Request, rt route) {
	j, wait, ok := s.jobAndWait(w, r, rt, RunsyncWaitDefault)
	if ok {
		s.answerWhenDone(w, r, OpStatusSync, j, wait)
	}
}

// jobAndWait reads ?wait= (0 to 300000 ms, def when absent) and finds the job
// rt names, answering 400 or 404 itself; ok is false when it did.
func (s *Server) jobAndWait(w http.ResponseWriter, r *http.Request, rt route, def time.Duration) (j *job, wait time.Duration, ok bool) {
	wait, err := waitParam(r, 0, MaxRunsyncWait, def)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, 0, false
	}
	s.mu.Lock()
	s.sweepLocked(s.clock.Now())
	j = s.findJobLocked(rt.ep, rt.jobID)
	s.mu.Unlock()
	if j == nil {
		writeError(w, http.StatusNotFound, s.notFound(rt.jobID))
		return nil, 0, false
	}
	return j, wait, true
}

// handleStream serves /stream/{id}[?wait=ms]: the chunks not returned by an
// earlier call, waiting up to wait for one when there are none.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, rt route) {
	j, wait, ok := s.jobAndWait(w, r, rt, 0)
	if !ok {
		return
	}
	var out streamBody
	s.poll(r.Context(), OpStream, wait, j.changed.wait, func(time.Time) bool {
		return j.streamAt < len(j.stream) || j.status.Terminal() || j.deleted != ""
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.deleted != "" {
		writeError(w, http.StatusNotFound, s.notFound(j.id))
		return
	}
	out.Status = j.status
	out.Stream = append(out.Stream, j.stream[j.streamAt:]...)
	j.streamAt = len(j.stream)
	if out.Stream == nil {
		out.Stream = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCancel serves /cancel/{id}. A queued or running job is CANCELLED (its
// worker told through job-stop); a finished job is left as it is.
func (s *Server) handleCancel(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.findJobLocked(rt.ep, rt.jobID)
	if j == nil {
		writeError(w, http.StatusNotFound, s.notFound(rt.jobID))
		return
	}
	if !j.status.Terminal() {
		s.finishLocked(j, StatusCancelled, now, "cancelled by the client")
	}
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: j.status})
}

// handleRetry serves /retry/{id}: a FAILED or TIMED_OUT job is queued again
// under the same id.
func (s *Server) handleRetry(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.findJobLocked(rt.ep, rt.jobID)
	if j == nil {
		writeError(w, http.StatusNotFound, s.notFound(rt.jobID))
		return
	}
	if j.status != StatusFailed && j.status != StatusTimedOut {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("job %q is %s; only FAILED or TIMED_OUT jobs can be retried", j.id, j.status))
		return
	}
	s.retryLocked(j, now, "retried by the client")
	writeJSON(w, http.StatusOK, statusBody{ID: j.id, Status: j.status})
}

// handlePurge serves /purge-queue: every queued job of the endpoint is
// deleted; running jobs are left alone.
func (s *Server) handlePurge(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	removed := 0
	for {
		j := s.popQueueLocked(rt.ep)
		if j == nil {
			break
		}
		s.deleteLocked(j, now, "the queue was purged")
		removed++
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": removed, "status": "completed"})
}

// handleHealth serves /health.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request, rt route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	writeJSON(w, http.StatusOK, s.healthLocked(rt.ep, now))
}

// healthLocked counts the endpoint's jobs and workers as /health reports them.
func (s *Server) healthLocked(ep string, now time.Time) Health {
	var h Health
	if t := s.totals[ep]; t != nil {
		h.Jobs = *t
	}
	for _, j := range s.jobs {
		if j.ep != ep {
			continue
		}
		switch j.status {
		case StatusInQueue:
			h.Jobs.InQueue++
		case StatusInProgress:
			h.Jobs.InProgress++
		}
	}
	for _, wk := range s.workers {
		if wk.ep != ep {
			continue
		}
		switch wk.state(now) {
		case WorkerInitializing:
			h.Workers.Initializing++
		case WorkerIdle:
			h.Workers.Idle++
			h.Workers.Ready++
		case WorkerRunning:
			h.Workers.Running++
			h.Workers.Ready++
		case WorkerUnhealthy:
			h.Workers.Unhealthy++
		}
	}
	return h
}
