package gateway

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// Status is a job's status as the API shows it.
type Status string

// The statuses of a job. Succeeded, Failed, Cancelled and TimedOut are final.
const (
	// StatusQueued: waiting for a free slot, or in RunPod's queue.
	StatusQueued Status = "queued"
	// StatusColdStart: in RunPod's queue while a worker starts and loads the
	// model (30 to 60 s on a cold endpoint).
	StatusColdStart Status = "cold_start"
	// StatusRunning: a worker is running it.
	StatusRunning Status = "running"
	// StatusSucceeded: done; Outputs lists its files.
	StatusSucceeded Status = "succeeded"
	// StatusFailed: it did not produce an output; Error says why.
	StatusFailed Status = "failed"
	// StatusCancelled: cancelled by its owner (or at RunPod).
	StatusCancelled Status = "cancelled"
	// StatusTimedOut: it did not end in time and was cancelled at RunPod.
	StatusTimedOut Status = "timed_out"
)

// Final reports whether a job with status s will not change again.
func (s Status) Final() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// statusOf maps a stored job to its API status.
func statusOf(j *store.Job) Status {
	switch j.State {
	case store.StateQueued, store.StateClaimed, store.StateSubmitting:
		return StatusQueued
	case store.StateInQueue:
		if j.ColdStart {
			return StatusColdStart
		}
		return StatusQueued
	case store.StateRunning:
		return StatusRunning
	case store.StateSucceeded:
		return StatusSucceeded
	case store.StateCancelled:
		return StatusCancelled
	case store.StateTimedOut:
		return StatusTimedOut
	}
	return StatusFailed
}

// Job is a job as GET /v1/jobs/{id} returns it.
type Job struct {
	// ID identifies the job.
	ID string `json:"id"`
	// Status is where the job is.
	Status Status `json:"status"`
	// CreatedAt is when it was accepted.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when a worker started it (null until then).
	StartedAt *time.Time `json:"started_at"`
	// FinishedAt is when it ended (null until then).
	FinishedAt *time.Time `json:"finished_at"`
	// Deadline is when it will be cancelled if it has not ended.
	Deadline time.Time `json:"deadline"`
	// Progress is the worker's latest progress report, if any.
	Progress *Progress `json:"progress"`
	// Error says why the job failed, timed out or was cancelled.
	Error *JobError `json:"error"`
	// Outputs are the files of a succeeded job.
	Outputs []Output `json:"outputs"`
	// Inputs are the images the job was submitted with, as its workers got
	// them (turned upright, downscaled, the mask in its canonical form), for
	// showing before and after. Empty when they were not kept.
	Inputs []Input `json:"inputs"`
	// Params are the values the workflow ran with, including defaults and
	// the seed drawn for "random".
	Params map[string]json.RawMessage `json:"params"`
	// RunPodID is RunPod's id of the job, once submitted.
	RunPodID string `json:"runpod_id,omitempty"`
}

// Progress is a running job's progress.
type Progress struct {
	// Fraction is how far the job is, from 0 to 1, when the worker's report
	// says.
	Fraction *float64 `json:"fraction,omitempty"`
	// Message is the worker's text, when it sent one.
	Message string `json:"message,omitempty"`
	// Detail is the worker's report as it sent it.
	Detail json.RawMessage `json:"detail"`
}

// JobError is why a job did not succeed.
type JobError struct {
	// Code classifies it: worker_error, no_output, output_unavailable,
	// timeout, cancelled, runpod_refused, runpod_expired, submission_unknown,
	// internal.
	Code string `json:"code"`
	// Message says what happened and, where we know, what to do.
	Message string `json:"message"`
}

// Output is one file a job produced.
type Output struct {
	// Filename is the file's name.
	Filename string `json:"filename"`
	// ContentType is its media type.
	ContentType string `json:"content_type"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// URL is where to download it (GET, with the same API key).
	URL string `json:"url"`
}

// Input is one image a job was submitted with.
type Input struct {
	// Name is the image param it was sent as: target, reference, mask.
	Name string `json:"name"`
	// ContentType is its media type.
	ContentType string `json:"content_type"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// URL is where to download it (GET, with the same API key).
	URL string `json:"url"`
}

// JobList is a page of GET /v1/jobs.
type JobList struct {
	// Jobs are the caller's jobs, newest first.
	Jobs []Job `json:"jobs"`
	// NextCursor, when set, fetches the next (older) page as ?cursor=….
	NextCursor string `json:"next_cursor,omitempty"`
}

// Accepted is the answer to POST /v1/jobs.
type Accepted struct {
	// ID identifies the new job.
	ID string `json:"id"`
	// Status is "queued" for a new job; a retried submission (the same
	// Idempotency-Key) gets its job's status now.
	Status Status `json:"status"`
	// URL is the job's address (also in the Location header).
	URL string `json:"url"`
	// Params are the values the workflow will run with.
	Params map[string]json.RawMessage `json:"params"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	// Error says what was wrong.
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what was wrong with a request.
type ErrorDetail struct {
	// Code is a stable word for programs: invalid_request, invalid_param,
	// too_large, unsupported_media_type, unauthorized, not_found, conflict,
	// gone, idempotency_key_reused, internal, unavailable.
	Code string `json:"code"`
	// Message says what to fix.
	Message string `json:"message"`
	// Field names the form field or param at fault, when one is.
	Field string `json:"field,omitempty"`
	// Problems lists every problem when there are several.
	Problems []Problem `json:"problems,omitempty"`
	// RequestID identifies the request in the service's logs.
	RequestID string `json:"request_id,omitempty"`
}

// Problem is one problem of a request.
type Problem struct {
	// Field names the form field or param at fault, when one is.
	Field string `json:"field,omitempty"`
	// Message says what to fix.
	Message string `json:"message"`
}

// view renders a stored job for the API. base is prepended to output URLs
// ("" for root-relative URLs).
func view(j *store.Job, base string) Job {
	v := Job{
		ID:        j.ID,
		Status:    statusOf(j),
		CreatedAt: j.CreatedAt,
		Deadline:  j.Deadline,
		Outputs:   []Output{},
		Inputs:    []Input{},
		RunPodID:  j.RunPodID,
	}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt
		v.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		v.FinishedAt = &t
	}
	if len(j.Progress) > 0 && !v.Status.Final() {
		v.Progress = progressOf(j.Progress)
	}
	if v.Status != StatusSucceeded && v.Status.Final() {
		code := j.ErrorCode
		if code == "" {
			code = string(v.Status)
		}
		msg := j.Error
		if msg == "" {
			msg = "the job " + string(v.Status)
		}
		v.Error = &JobError{Code: code, Message: msg}
	}
	for i, o := range j.Outputs {
		v.Outputs = append(v.Outputs, Output{
			Filename:    o.Name,
			ContentType: o.ContentType,
			Size:        o.Size,
			URL:         base + "/v1/jobs/" + url.PathEscape(j.ID) + "/outputs/" + strconv.Itoa(i),
		})
	}
	for _, in := range j.Inputs {
		v.Inputs = append(v.Inputs, Input{
			Name:        in.Name,
			ContentType: in.ContentType,
			Size:        in.Size,
			URL:         base + "/v1/jobs/" + url.PathEscape(j.ID) + "/inputs/" + url.PathEscape(in.Name),
		})
	}
	if len(j.Params) > 0 {
		_ = json.Unmarshal(j.Params, &v.Params)
	}
	if v.Params == nil {
		v.Params = map[string]json.RawMessage{}
	}
	return v
}

// progressOf reads a worker's progress report. It understands the shapes
// workers send — {"percent": 40}, {"value": 3, "max": 20}, {"step": 3,
// "steps": 20}, {"progress": 0.4}, a bare number, a string — and keeps the
// report as it came in Detail. comfypod's worker sends {"stage": "running",
// "value": 3, "max": 20, "percent": 45}.
func progressOf(raw json.RawMessage) *Progress {
	p := &Progress{Detail: raw}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return p
	}
	frac := func(f float64) {
		if f >= 0 && f <= 1 {
			p.Fraction = &f
		}
	}
	ratio := func(n, d any) bool {
		a, ok1 := n.(float64)
		b, ok2 := d.(float64)
		if ok1 && ok2 && b > 0 {
			frac(a / b)
			return true
		}
		return false
	}
	switch v := doc.(type) {
	case float64:
		if v > 1 {
			v /= 100
		}
		frac(v)
	case string:
		p.Message = v
	case map[string]any:
		// A whole-job figure wins over a node's own steps.
		if pc, ok := v["percent"].(float64); ok {
			frac(pc / 100)
		} else if pr, ok := v["progress"].(float64); ok {
			if pr > 1 {
				pr /= 100
			}
			frac(pr)
		} else if !ratio(v["value"], v["max"]) && !ratio(v["step"], v["steps"]) {
			ratio(v["current"], v["total"])
		}
		for _, k := range []string{"message", "status", "text", "stage"} {
			if s, ok := v[k].(string); ok && s != "" {
				p.Message = s
				break
			}
		}
	}
	return p
}

// cursor encodes a page boundary for ?cursor=.
func cursor(seq int64) string { return "c" + strconv.FormatInt(seq, 36) }

func parseCursor(s string) (int64, error) {
	if len(s) < 2 || s[0] != 'c' {
		return 0, fmt.Errorf("cursor %q is not one this service returned", s)
	}
	n, err := strconv.ParseInt(s[1:], 36, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("cursor %q is not one this service returned", s)
	}
	return n, nil
}
