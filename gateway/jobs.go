package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/runpod"
)

// uploadTimeout bounds reading a POST /v1/jobs body.
const uploadTimeout = 5 * time.Minute

// Page sizes of GET /v1/jobs.
const (
	listLimitDefault = 20
	listLimitMax     = 100
)

// handleCreate accepts a job: it checks and prepares the input, stores the
// job durably, and only then answers 202. A request with an Idempotency-Key
// that was seen before gets the job it created (200), not a second one.
func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	// A slow upload may take a while, not for ever. (Servers without
	// deadlines, such as httptest's recorder, ignore this.)
	_ = http.NewResponseController(w).SetReadDeadline(s.clock.Now().Add(uploadTimeout))
	idem, aerr := idempotencyKey(r)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	sub, aerr := s.readSubmission(w, r)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	var hash string
	if idem != "" {
		hash = sub.fingerprint()
		if s.replay(w, r, c.owner, idem, hash) {
			return
		}
	}
	id := newJobID()
	prep, aerr := s.prepare(id, sub, s.newRand())
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	now := s.clock.Now().UTC().Truncate(time.Millisecond)
	j := &store.Job{
		ID:             id,
		Owner:          c.owner,
		Endpoint:       s.rp.EndpointID(),
		CreatedAt:      now,
		Deadline:       now.Add(s.cfg.Timeout),
		Params:         prep.params,
		IdempotencyKey: idem,
		RequestHash:    hash,
	}
	j.Inputs = s.keepInputs(r.Context(), id, prep.images)
	if err := s.st.CreateJob(r.Context(), j, prep.input); err != nil {
		s.dropFiles(context.WithoutCancel(r.Context()), j.Inputs)
		// Another request with the same key won the race: answer as a retry.
		if idem != "" && errors.Is(err, store.ErrDuplicate) && s.replay(w, r, c.owner, idem, hash) {
			return
		}
		s.writeError(w, r, unavailable("the job could not be stored; nothing was queued, try again", err))
		return
	}
	s.metrics.accepted.Inc()
	s.changed(j)
	s.disp.poke()
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "job accepted", slog.String("job", id), slog.String("request_id", requestID(r.Context())),
		slog.Int("input_bytes", len(prep.input)))
	s.writeAccepted(w, http.StatusAccepted, j)
}

// writeAccepted answers a submission with its job.
func (s *Service) writeAccepted(w http.ResponseWriter, code int, j *store.Job) {
	loc := "/v1/jobs/" + j.ID
	w.Header().Set("Location", loc)
	v := view(j, s.baseURL())
	writeJSON(w, code, Accepted{ID: j.ID, Status: v.Status, URL: s.baseURL() + loc, Params: v.Params})
}

// job reads a job the caller owns: from the cache unless fresh is set.
// Another owner's job is "not found", as if it did not exist.
func (s *Service) job(ctx context.Context, id string, fresh bool) (*cached, *apiError) {
	if !validJobID(id) {
		return nil, notFound("job")
	}
	c := callerOf(ctx)
	now := s.clock.Now()
	e, ok := s.cache.get(id, now)
	if !ok || fresh {
		j, err := s.st.GetJob(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound("job")
		}
		if err != nil {
			return nil, unavailable("the job store does not answer; try again", err)
		}
		e = s.cache.put(j, now)
	}
	if e.job.Owner != c.owner {
		return nil, notFound("job")
	}
	return e, nil
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	e, aerr := s.job(r.Context(), r.PathValue("id"), false)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	e.once.Do(func() {
		b, err := json.Marshal(view(e.job, s.baseURL()))
		if err == nil {
			e.body = append(b, '\n')
		}
	})
	if e.body == nil {
		s.writeError(w, r, internal(errors.New("encoding a job failed")))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("ETag", strconv.Quote(e.job.ID+"."+strconv.FormatInt(e.job.Version, 10)))
	_, _ = w.Write(e.body)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := listLimitDefault
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > listLimitMax {
			s.writeError(w, r, badRequest("limit", "want a number from 1 to %d", listLimitMax))
			return
		}
		limit = n
	}
	var before int64
	if v := q.Get("cursor"); v != "" {
		n, err := parseCursor(v)
		if err != nil {
			s.writeError(w, r, badRequest("cursor", "%v", err))
			return
		}
		before = n
	}
	jobs, err := s.st.ListJobs(r.Context(), store.ListParams{Owner: callerOf(r.Context()).owner, Before: before, Limit: limit + 1})
	if err != nil {
		s.writeError(w, r, unavailable("the job store does not answer; try again", err))
		return
	}
	out := JobList{Jobs: []Job{}}
	if len(jobs) > limit {
		jobs = jobs[:limit]
		out.NextCursor = cursor(jobs[limit-1].Seq)
	}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, view(j, s.baseURL()))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCancel cancels a job: at once if it has not reached RunPod, else at
// RunPod too (or soon, by its watcher, if RunPod cannot be reached now).
func (s *Service) handleCancel(w http.ResponseWriter, r *http.Request) {
	e, aerr := s.job(r.Context(), r.PathValue("id"), true)
	if aerr != nil {
		s.writeError(w, r, aerr)
		return
	}
	if j := e.job; j.State.Terminal() {
		if j.State == store.StateCancelled {
			writeJSON(w, http.StatusOK, view(j, s.baseURL()))
			return
		}
		s.writeError(w, r, &apiError{status: http.StatusConflict, code: "conflict",
			msg: fmt.Sprintf("the job already ended (%s): there is nothing to cancel", statusOf(j))})
		return
	}
	j, err := s.st.RequestCancel(r.Context(), e.job.ID, s.cancelled("cancelled by its owner"))
	if err != nil {
		s.writeError(w, r, unavailable("the job store does not answer; the job was not cancelled, try again", err))
		return
	}
	if j.State.Terminal() {
		s.finished(j)
		writeJSON(w, http.StatusOK, view(j, s.baseURL()))
		return
	}
	s.changed(j)
	s.watch.markCancel(j.ID)
	if j.RunPodID != "" {
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		if ended, err := s.cancelAtRunPod(ctx, j); err == nil && ended != nil {
			writeJSON(w, http.StatusOK, view(ended, s.baseURL()))
			return
		}
	}
	// The watcher (or the submission, for a job without a RunPod id yet)
	// finishes the cancel.
	writeJSON(w, http.StatusAccepted, view(j, s.baseURL()))
}

// cancelled is how a cancelled job ends.
func (s *Service) cancelled(why string) store.Finish {
	return store.Finish{State: store.StateCancelled, At: s.clock.Now(), Error: why, ErrorCode: "cancelled"}
}

// cancelAtRunPod cancels a job RunPod holds and ends it. A job that RunPod
// says had already ended keeps that ending (a completed one delivers its
// outputs). It returns the ended job.
func (s *Service) cancelAtRunPod(ctx context.Context, j *store.Job) (*store.Job, error) {
	s.metrics.runpodCalls.WithLabelValues("cancel").Inc()
	st, err := s.rp.Cancel(ctx, j.RunPodID)
	if err != nil {
		if errors.Is(err, runpod.ErrJobNotFound) {
			ended, changed, ferr := s.st.Finish(ctx, j.ID, s.cancelled("cancelled by its owner (RunPod no longer had the job)"))
			if ferr == nil && changed {
				s.finished(ended)
			}
			return ended, ferr
		}
		s.metrics.runpodErrs.WithLabelValues("cancel").Inc()
		s.log.LogAttrs(ctx, slog.LevelWarn, "cancel at RunPod failed; retrying later", slog.String("job", j.ID), slog.String("err", scrub(err.Error())))
		return nil, err
	}
	defer st.Close()
	if st.State.Terminal() && st.State != runpod.StateCancelled {
		// It ended before the cancel arrived; the cancel's answer has no
		// output, the status has.
		s.metrics.runpodCalls.WithLabelValues("status").Inc()
		full, err := s.rp.Status(ctx, j.RunPodID)
		if err != nil {
			return nil, err
		}
		defer full.Close()
		if err := s.complete(ctx, j.ID, full); err != nil {
			return nil, err
		}
		return s.st.GetJob(ctx, j.ID)
	}
	ended, changed, err := s.st.Finish(ctx, j.ID, s.cancelled("cancelled by its owner"))
	if err != nil {
		return nil, err
	}
	if changed {
		s.finished(ended)
	}
	return ended, nil
}

// handlePackage describes the package: its params, with types, limits and
// defaults, for forms and clients.
func (s *Service) handlePackage(w http.ResponseWriter, r *http.Request) {
	type param struct {
		Name        string          `json:"name"`
		Type        string          `json:"type"`
		Description string          `json:"description,omitempty"`
		Required    bool            `json:"required"`
		Default     json.RawMessage `json:"default,omitempty"`
		Min         json.RawMessage `json:"min,omitempty"`
		Max         json.RawMessage `json:"max,omitempty"`
		Options     []string        `json:"options,omitempty"`
		MaxLength   int             `json:"max_length,omitempty"`
		MaxSide     int             `json:"max_side,omitempty"`
		Random      bool            `json:"random,omitempty"`
		// Used is false for a param the workflow ignores (the preview
		// workflow takes no prompt): it is checked, then dropped.
		Used bool `json:"used"`
	}
	out := struct {
		Name          string  `json:"name"`
		Description   string  `json:"description,omitempty"`
		Workflow      string  `json:"workflow"`
		Params        []param `json:"params"`
		MaxImageBytes int64   `json:"max_image_bytes"`
		TimeoutSec    float64 `json:"timeout_seconds"`
	}{Name: s.pkg.manifest.Name, Description: s.pkg.manifest.Description, Workflow: s.pkg.name,
		MaxImageBytes: s.cfg.MaxImageBytes, TimeoutSec: s.cfg.Timeout.Seconds(), Params: []param{}}
	for _, p := range s.pkg.manifest.Params() {
		q := param{Name: p.Name, Type: string(p.Type), Description: p.Description, Required: p.Required,
			Default: p.Default, Options: p.Options, MaxLength: p.MaxLength, MaxSide: p.MaxSide, Random: p.Random,
			Used: len(p.Bindings[s.pkg.name]) > 0}
		if p.Min != "" {
			q.Min = json.RawMessage(p.Min)
		}
		if p.Max != "" {
			q.Max = json.RawMessage(p.Max)
		}
		out.Params = append(out.Params, q)
	}
	writeJSON(w, http.StatusOK, out)
}
