package runpodtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of the Go control API, matched with errors.Is.
var (
	// ErrJobNotFound: no live job has that id.
	ErrJobNotFound = errors.New("job not found")
	// ErrJobFinished: the job is already COMPLETED, FAILED, CANCELLED or
	// TIMED_OUT.
	ErrJobFinished = errors.New("job already finished")
)

// JobRequest submits a job without going through HTTP, as /run (or /runsync
// when Sync) would.
type JobRequest struct {
	// Endpoint is the endpoint id; the default endpoint when empty.
	Endpoint string
	// Input is the job input (required): any JSON-encodable value, or a
	// json.RawMessage.
	Input any
	// Webhook receives the final status.
	Webhook string
	// Policy overrides the defaults; zero fields keep them.
	Policy *Policy
	// S3Config is forwarded to the worker as the request's s3Config.
	S3Config any
	// Sync gives the job a sync- id and the /runsync retention.
	Sync bool
}

// Enqueue queues a job as /run would and returns its id.
func (s *Server) Enqueue(req JobRequest) (string, error) {
	ep := req.Endpoint
	if ep == "" {
		ep = s.EndpointID()
	}
	if !s.eps[ep] {
		return "", fmt.Errorf("runpodtest: endpoint %q is not served", ep)
	}
	body := map[string]any{"input": req.Input}
	if req.Webhook != "" {
		body["webhook"] = req.Webhook
	}
	if p := req.Policy; p != nil {
		pol := map[string]any{"lowPriority": p.LowPriority}
		if p.ExecutionTimeout != 0 {
			pol["executionTimeout"] = p.ExecutionTimeout.Milliseconds()
		}
		if p.TTL != 0 {
			pol["ttl"] = p.TTL.Milliseconds()
		}
		body["policy"] = pol
	}
	if req.S3Config != nil {
		body["s3Config"] = req.S3Config
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("runpodtest: encode the job: %w", err)
	}
	return s.enqueueRaw(ep, raw, req.Sync)
}

func (s *Server) enqueueRaw(ep string, raw []byte, sync bool) (string, error) {
	rr, err := decodeRunRequest(raw, Policy{ExecutionTimeout: s.cfg.ExecutionTimeout, TTL: s.cfg.TTL})
	if err != nil {
		return "", fmt.Errorf("runpodtest: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	return s.newJobLocked(ep, rr, sync, now).id, nil
}

// drive runs f on live, unfinished job id under the lock.
func (s *Server) drive(id string, f func(j *job, now time.Time)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.jobs[id]
	if j == nil {
		return fmt.Errorf("runpodtest: job %s: %w", id, ErrJobNotFound)
	}
	if j.status.Terminal() {
		return fmt.Errorf("runpodtest: job %s is %s: %w", id, j.status, ErrJobFinished)
	}
	f(j, now)
	return nil
}

// startIfQueued moves a queued job to IN_PROGRESS with no worker.
func (s *Server) startIfQueued(j *job, now time.Time) {
	if j.status == StatusInQueue {
		s.startLocked(j, nil, now)
	}
}

// releaseHolderLocked tells the worker holding j, if any, to stop it: a test
// finished the job in its place.
func (s *Server) releaseHolderLocked(j *job) {
	if w := j.worker; w != nil {
		delete(w.jobs, j.id)
		s.tellStopLocked(w, j.id)
		j.worker = nil
	}
}

// marshalOutput encodes a job output given by a test.
func marshalOutput(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("runpodtest: encode the output: %w", err)
	}
	if isNull(b) {
		return nil, nil
	}
	return compact(b), nil
}

// StartJob moves a queued job to IN_PROGRESS without a worker, as if one had
// taken it.
func (s *Server) StartJob(id string) error {
	return s.drive(id, func(j *job, now time.Time) {
		if j.status != StatusInQueue {
			return
		}
		s.startLocked(j, nil, now)
	})
}

// ProgressJob posts a progress update: the job (started if still queued)
// shows output in /status while IN_PROGRESS.
func (s *Server) ProgressJob(id string, output any) error {
	out, err := marshalOutput(output)
	if err != nil {
		return err
	}
	return s.drive(id, func(j *job, now time.Time) {
		s.startIfQueued(j, now)
		j.output = out
		j.progress++
		s.jobChangedLocked(j)
	})
}

// StreamJob appends {"output": output} to the job's stream (starting it if
// still queued), as a worker's job-stream post would.
func (s *Server) StreamJob(id string, output any) error {
	out, err := marshalOutput(output)
	if err != nil {
		return err
	}
	chunk, err := json.Marshal(map[string]json.RawMessage{"output": out})
	if err != nil {
		return err
	}
	return s.drive(id, func(j *job, now time.Time) {
		s.startIfQueued(j, now)
		j.stream = append(j.stream, chunk)
		s.jobChangedLocked(j)
	})
}

// CompleteJob finishes a job COMPLETED with output, whoever holds it; a worker
// holding it is told to stop through job-stop, and gets 404 if it posts.
func (s *Server) CompleteJob(id string, output any) error {
	out, err := marshalOutput(output)
	if err != nil {
		return err
	}
	return s.drive(id, func(j *job, now time.Time) {
		s.startIfQueued(j, now)
		s.releaseHolderLocked(j)
		j.output = out
		s.finishLocked(j, StatusCompleted, now, "completed directly")
	})
}

// FailJob finishes a job FAILED with the error message msg; a worker holding
// it is told to stop, as with CompleteJob.
func (s *Server) FailJob(id, msg string) error {
	if msg == "" {
		return errors.New("runpodtest: FailJob needs an error message")
	}
	return s.drive(id, func(j *job, now time.Time) {
		s.startIfQueued(j, now)
		s.releaseHolderLocked(j)
		j.output = nil
		j.errMsg = msg
		s.finishLocked(j, StatusFailed, now, "failed directly")
	})
}

// ExpireJob deletes a job now, as if its ttl had run out: /status answers 404
// and a worker holding it is told to stop.
func (s *Server) ExpireJob(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	j := s.jobs[id]
	if j == nil {
		return fmt.Errorf("runpodtest: job %s: %w", id, ErrJobNotFound)
	}
	s.deleteLocked(j, now, "expired directly")
	return nil
}

// serveControl answers the /_emulator/ routes listed in the package
// documentation.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_emulator"), "/"), "/")
	key := r.Method + " " + parts[0]
	switch {
	case key == "GET jobs" && len(parts) == 1:
		writeJSON(w, http.StatusOK, s.Jobs())
	case key == "POST jobs" && len(parts) == 1:
		s.controlEnqueue(w, r)
	case key == "GET jobs" && len(parts) == 2:
		j, ok := s.Job(parts[1])
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("job %q not found", parts[1]))
			return
		}
		writeJSON(w, http.StatusOK, j)
	case key == "POST jobs" && len(parts) == 3:
		s.controlDrive(w, r, parts[1], parts[2])
	case key == "GET workers" && len(parts) == 1:
		writeJSON(w, http.StatusOK, s.Workers())
	case key == "GET requests" && len(parts) == 1:
		writeJSON(w, http.StatusOK, s.RequestCounts())
	case key == "GET webhooks" && len(parts) == 1:
		writeJSON(w, http.StatusOK, s.Webhooks())
	case key == "GET faults" && len(parts) == 1:
		writeJSON(w, http.StatusOK, s.Faults())
	case key == "POST faults" && len(parts) == 1:
		body, tooLarge, err := readBody(r, 1<<20)
		if err != nil || tooLarge {
			writeError(w, http.StatusBadRequest, "fault body unreadable or over 1 MB")
			return
		}
		var f Fault
		if err := json.Unmarshal(body, &f); err != nil {
			writeError(w, http.StatusBadRequest, "fault body: "+jsonErrorText(err))
			return
		}
		id, err := s.AddFault(f)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"id": id})
	case key == "DELETE faults" && len(parts) == 1:
		s.ClearFaults()
		writeJSON(w, http.StatusOK, struct{}{})
	case key == "DELETE faults" && len(parts) == 2:
		id, err := strconv.Atoi(parts[1])
		if err != nil || !s.RemoveFault(id) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("fault %q not found", parts[1]))
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no control route %s %s; see the runpodtest package documentation for /_emulator/ routes", r.Method, r.URL.Path))
	}
}

func (s *Server) controlEnqueue(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readBody(r, s.cfg.MaxRunsyncBytes)
	if err != nil || tooLarge {
		writeError(w, http.StatusBadRequest, "job body unreadable or over the /runsync limit")
		return
	}
	m, err := decodeObject(body, "job body")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ep := s.EndpointID()
	if raw, ok := m["endpoint"]; ok {
		if err := json.Unmarshal(raw, &ep); err != nil || !s.eps[ep] {
			writeError(w, http.StatusBadRequest, `"endpoint" must name a served endpoint id`)
			return
		}
	}
	sync := false
	if raw, ok := m["sync"]; ok {
		if err := json.Unmarshal(raw, &sync); err != nil {
			writeError(w, http.StatusBadRequest, `"sync" must be true or false`)
			return
		}
	}
	id, err := s.enqueueRaw(ep, body, sync)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

func (s *Server) controlDrive(w http.ResponseWriter, r *http.Request, id, action string) {
	body, tooLarge, err := readBody(r, s.cfg.MaxResultBytes)
	if err != nil || tooLarge {
		writeError(w, http.StatusBadRequest, "body unreadable or over the result limit")
		return
	}
	var m map[string]json.RawMessage
	if len(strings.TrimSpace(string(body))) > 0 {
		if m, err = decodeObject(body, "body"); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	output := json.RawMessage(m["output"])
	var out any
	if output != nil {
		out = output
	}
	switch action {
	case "start":
		err = s.StartJob(id)
	case "progress":
		err = s.ProgressJob(id, out)
	case "stream":
		err = s.StreamJob(id, out)
	case "complete":
		err = s.CompleteJob(id, out)
	case "fail":
		var msg string
		if raw, ok := m["error"]; !ok || json.Unmarshal(raw, &msg) != nil || msg == "" {
			writeError(w, http.StatusBadRequest, `send {"error": "<message>"}`)
			return
		}
		err = s.FailJob(id, msg)
	case "expire":
		err = s.ExpireJob(id)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no control action %q; use start, progress, stream, complete, fail or expire", action))
		return
	}
	switch {
	case errors.Is(err, ErrJobNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrJobFinished):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		j, _ := s.Job(id)
		writeJSON(w, http.StatusOK, j)
	}
}
