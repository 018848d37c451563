package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/comfypod/comfypod/internal/jsonscan"
	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/truncate"
)

// Job is one job as the handler sees it: the object RunPod's job-take
// returned. Keys the worker does not know are kept in Extra.
type Job struct {
	// ID is RunPod's job id, opaque (for example "<uuid>-u1" or
	// "sync-<uuid>-e1").
	ID string
	// Input is the job's "input", verbatim; never empty or null.
	Input json.RawMessage
	// Webhook is the URL RunPod calls when the job ends, if the client
	// gave one.
	Webhook string
	// S3Config is the client's upload target, if it sent one.
	S3Config *S3Config
	// Policy is the client's execution policy, if it sent one.
	Policy *Policy
	// BatchID groups jobs taken in one batch, when RunPod sets it.
	BatchID string
	// Extra holds the job object's other keys (delayTime, retries, …).
	Extra map[string]json.RawMessage

	log *slog.Logger
	run *jobRun // nil when the job is not run by a Worker or LocalRunner
}

// S3Config is where a client asks a job's outputs to be uploaded (the job's
// "s3Config"). The worker does the upload itself.
type S3Config struct {
	// AccessID is the access key id.
	AccessID string `json:"accessId"`
	// AccessSecret is the secret key; it is kept out of logs and errors.
	AccessSecret string `json:"accessSecret"`
	// BucketName is the bucket to upload to.
	BucketName string `json:"bucketName"`
	// EndpointURL is the S3 API endpoint.
	EndpointURL string `json:"endpointUrl"`
	// ObjectPath is a key prefix; RunPod's Go SDK sends it.
	ObjectPath string `json:"objectPath,omitempty"`
}

// LogValue keeps the secret out of logs.
func (s S3Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("accessId", s.AccessID),
		slog.String("accessSecret", redact.Marker),
		slog.String("bucketName", s.BucketName),
		slog.String("endpointUrl", s.EndpointURL),
	)
}

// String keeps the secret out of fmt output.
func (s S3Config) String() string {
	return fmt.Sprintf("{accessId:%s accessSecret:%s bucketName:%s endpointUrl:%s}", s.AccessID, redact.Marker, s.BucketName, s.EndpointURL)
}

// Policy is a job's execution policy; times are in milliseconds as RunPod
// sends them.
type Policy struct {
	// ExecutionTimeout is the job's run-time limit (default 600000).
	ExecutionTimeout int64 `json:"executionTimeout,omitempty"`
	// LowPriority jobs do not make RunPod scale workers up.
	LowPriority bool `json:"lowPriority,omitempty"`
	// TTL is the job's whole lifespan, queue included (default 86400000).
	TTL int64 `json:"ttl,omitempty"`
}

// Logger returns the logger for this job: the worker's logger with the job
// id (and batch id) attached, so lines land under the request in RunPod's
// console.
func (j *Job) Logger() *slog.Logger {
	if j.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return j.log
}

// Progress posts an IN_PROGRESS update for the job; clients see v as the
// job's output in /status until the final result replaces it. Updates are
// posted one at a time and never after the final result: once the job is
// finished Progress returns ErrJobFinished and posts nothing. Outside a
// worker (a Job built by hand) it does nothing.
func (j *Job) Progress(ctx context.Context, v any) error {
	if j.run == nil {
		return nil
	}
	return j.run.progress(ctx, v)
}

// takeError is a job object that cannot be run, with the id when it has one.
type takeError struct {
	id  string
	msg string
}

func (e *takeError) Error() string {
	if e.id != "" {
		return fmt.Sprintf("job %s: %s", e.id, e.msg)
	}
	return e.msg
}

// decodeTake parses a job-take answer: one job object, or an array of them
// (batch take). It returns the runnable jobs and one error per entry that
// cannot run (missing id or input, wrong types). A body that is not JSON at
// all, or not well-formed, is a single error and runs nothing.
//
// The body is walked with a structural scanner, not decoded: a job's input
// is a slice of body, kept verbatim for the handler, which reads it itself.
// Inputs carry megabytes of base64, which encoding/json would validate and
// then copy at a fraction of the scanner's speed.
func decodeTake(body []byte) ([]*Job, []error) {
	raws, err := splitTake(body)
	if err != nil {
		return nil, []error{err}
	}
	return decodeEntries(raws, decodeJob)
}

// splitTake returns the job objects of a job-take answer, unparsed: the
// body itself, or the entries of a batch take's array.
func splitTake(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	switch body[0] {
	case '{':
		return []json.RawMessage{body}, nil
	case '[':
		var raws []json.RawMessage
		sc := jsonscan.New(body)
		err := sc.Array(func(int) error {
			raw, err := sc.Value()
			raws = append(raws, raw)
			return err
		})
		if err == nil {
			err = sc.End()
		}
		if err != nil {
			return nil, fmt.Errorf("job-take answer is not a JSON array of jobs: %v", err)
		}
		return raws, nil
	}
	return nil, fmt.Errorf("job-take answer is not a JSON job object or array (starts with %q)", truncate.Bytes(string(body), 40))
}

// decodeEntries decodes each job object with decode, numbering the errors
// of a batch by entry.
func decodeEntries(raws []json.RawMessage, decode func(json.RawMessage) (*Job, error)) ([]*Job, []error) {
	var (
		jobs []*Job
		errs []error
	)
	for i, raw := range raws {
		j, err := decode(raw)
		if err != nil {
			if len(raws) > 1 {
				err = fmt.Errorf("batch entry %d: %w", i, err)
			}
			errs = append(errs, err)
			continue
		}
		jobs = append(jobs, j)
	}
	return jobs, errs
}

// decodeJob parses one job object. id must be a non-empty string and input
// present and not null; the optional keys are read leniently, so a job with
// an odd webhook still runs. The values it keeps (Input, Extra) are slices
// of raw.
func decodeJob(raw json.RawMessage) (*Job, error) {
	fields, err := jobFields(raw)
	if err != nil {
		return nil, err
	}
	return jobFromFields(fields)
}

// jobFromFields builds a job from the members of its object; it keeps the
// members it does not know in Extra.
func jobFromFields(fields map[string]json.RawMessage) (*Job, error) {
	j := &Job{}
	idRaw, hasID := fields["id"]
	if hasID && !isNull(idRaw) {
		if err := json.Unmarshal(idRaw, &j.ID); err != nil {
			// A number id is turned into its text rather than dropped.
			var n json.Number
			if json.Unmarshal(idRaw, &n) == nil {
				j.ID = n.String()
			} else {
				return nil, &takeError{msg: "job has a non-string id"}
			}
		}
	}
	in, hasInput := fields["input"]
	var missing []string
	if j.ID == "" {
		missing = append(missing, "id")
	}
	if !hasInput || isNull(in) {
		missing = append(missing, "input")
	}
	if len(missing) > 0 {
		return nil, &takeError{id: j.ID, msg: "job has missing field(s): " + strings.Join(missing, ", ")}
	}
	j.Input = in
	delete(fields, "id")
	delete(fields, "input")
	if v, ok := fields["webhook"]; ok {
		_ = json.Unmarshal(v, &j.Webhook)
		delete(fields, "webhook")
	}
	if v, ok := fields["batchId"]; ok {
		_ = json.Unmarshal(v, &j.BatchID)
		delete(fields, "batchId")
	}
	if v, ok := fields["s3Config"]; ok && !isNull(v) {
		var s S3Config
		if json.Unmarshal(v, &s) == nil {
			j.S3Config = &s
			delete(fields, "s3Config")
		}
	}
	if v, ok := fields["policy"]; ok && !isNull(v) {
		var p Policy
		if json.Unmarshal(v, &p) == nil {
			j.Policy = &p
			delete(fields, "policy")
		}
	}
	if len(fields) > 0 {
		j.Extra = fields
	}
	return j, nil
}

// jobFields splits a job object into its members, as unmarshalling it into
// a map[string]json.RawMessage would (a repeated key keeps its last value),
// without copying the values.
func jobFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	sc := jsonscan.New(raw)
	if sc.Peek() != '{' {
		// Not an object: encoding/json's message says what it is, and
		// such entries are small or rare.
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, &takeError{msg: fmt.Sprintf("job is not a JSON object: %v", err)}
		}
		if fields == nil {
			return nil, &takeError{msg: "job is null"}
		}
		return fields, nil
	}
	fields := make(map[string]json.RawMessage, 8)
	err := sc.Object(func(key string) error {
		v, err := sc.Value()
		fields[key] = v
		return err
	})
	if err == nil {
		err = sc.End()
	}
	if err != nil {
		return nil, &takeError{msg: fmt.Sprintf("job is not a JSON object: %v", err)}
	}
	return fields, nil
}

// isNull reports whether raw is JSON null.
func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// errBadTestInput is the class of errors for a local test job that cannot run.
var errBadTestInput = errors.New("bad test input")
