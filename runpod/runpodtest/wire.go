package runpodtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Status is a job status as the RunPod API spells it.
type Status string

// The job statuses RunPod returns.
const (
	StatusInQueue    Status = "IN_QUEUE"
	StatusInProgress Status = "IN_PROGRESS"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
	StatusTimedOut   Status = "TIMED_OUT"
)

// Terminal reports whether a job in status s will not change again (short of
// a retry).
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCancelled, StatusTimedOut:
		return true
	}
	return false
}

// Policy is the per-job policy of a /run or /runsync request, resolved
// against the server's defaults.
type Policy struct {
	// ExecutionTimeout is how long a worker may hold the job before it is
	// TIMED_OUT.
	ExecutionTimeout time.Duration
	// TTL is the job's whole lifespan from submission; when it runs out the
	// job is deleted whatever its state.
	TTL time.Duration
	// LowPriority is recorded and forwarded; the emulator does no scaling.
	LowPriority bool
}

// MarshalJSON writes p in RunPod's wire form, durations in milliseconds.
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ExecutionTimeout int64 `json:"executionTimeout"`
		LowPriority      bool  `json:"lowPriority"`
		TTL              int64 `json:"ttl"`
	}{p.ExecutionTimeout.Milliseconds(), p.LowPriority, p.TTL.Milliseconds()})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var w struct {
		ExecutionTimeout int64 `json:"executionTimeout"`
		LowPriority      bool  `json:"lowPriority"`
		TTL              int64 `json:"ttl"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Policy{ExecutionTimeout: time.Duration(w.ExecutionTimeout) * time.Millisecond, TTL: time.Duration(w.TTL) * time.Millisecond, LowPriority: w.LowPriority}
	return nil
}

// runRequest is a decoded /run or /runsync body.
type runRequest struct {
	input     json.RawMessage
	webhook   string
	policy    Policy
	rawPolicy json.RawMessage // as sent; forwarded to the worker
	s3Config  json.RawMessage
}

// errBody is the error shape of every RunPod error answer.
type errBody struct {
	Error string `json:"error"`
}

// decodeObject splits a JSON object into its members, keeping exact key
// spelling (encoding/json alone would match keys case-insensitively).
func decodeObject(body []byte, what string) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s is empty; send a JSON object", what)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%s must be a JSON object", what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %s", what, jsonErrorText(err))
	}
	return m, nil
}

// jsonErrorText describes a decoding error without echoing the payload.
func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	}
	return err.Error()
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || string(bytes.TrimSpace(raw)) == "null"
}

// decodeRunRequest decodes and checks a /run or /runsync body. def holds the
// policy values a request that sets none gets.
func decodeRunRequest(body []byte, def Policy) (runRequest, error) {
	m, err := decodeObject(body, "request body")
	if err != nil {
		return runRequest{}, err
	}
	var req runRequest
	in, ok := m["input"]
	if !ok || isNull(in) {
		return runRequest{}, errors.New(`request body has no "input"; send {"input": {...}}`)
	}
	req.input = compact(in)
	if raw, ok := m["webhook"]; ok && !isNull(raw) {
		var hook string
		if err := json.Unmarshal(raw, &hook); err != nil {
			return runRequest{}, errors.New(`"webhook" must be a string URL`)
		}
		if hook != "" {
			if err := checkWebhookURL(hook); err != nil {
				return runRequest{}, err
			}
		}
		req.webhook = hook
	}
	req.policy = def
	if raw, ok := m["policy"]; ok && !isNull(raw) {
		p, err := decodePolicy(raw, def)
		if err != nil {
			return runRequest{}, err
		}
		req.policy = p
		req.rawPolicy = compact(raw)
	}
	if raw, ok := m["s3Config"]; ok && !isNull(raw) {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return runRequest{}, errors.New(`"s3Config" must be an object {"accessId","accessSecret","bucketName","endpointUrl"}`)
		}
		req.s3Config = compact(raw)
	}
	return req, nil
}

// checkWebhookURL accepts absolute http and https URLs.
func checkWebhookURL(hook string) error {
	u, err := url.Parse(hook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New(`"webhook" must be an absolute http:// or https:// URL`)
	}
	return nil
}

func decodePolicy(raw json.RawMessage, def Policy) (Policy, error) {
	m, err := decodeObject(raw, `"policy"`)
	if err != nil {
		return Policy{}, err
	}
	p := def
	if v, ok := m["executionTimeout"]; ok && !isNull(v) {
		d, err := decodeMillis(v, "policy.executionTimeout", MinExecutionTimeout, MaxExecutionTimeout)
		if err != nil {
			return Policy{}, err
		}
		p.ExecutionTimeout = d
	}
	if v, ok := m["ttl"]; ok && !isNull(v) {
		d, err := decodeMillis(v, "policy.ttl", MinTTL, MaxTTL)
		if err != nil {
			return Policy{}, err
		}
		p.TTL = d
	}
	if v, ok := m["lowPriority"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &p.LowPriority); err != nil {
			return Policy{}, errors.New(`"policy.lowPriority" must be true or false`)
		}
	}
	return p, nil
}

// decodeMillis reads a whole number of milliseconds within [lo, hi].
func decodeMillis(raw json.RawMessage, name string, lo, hi time.Duration) (time.Duration, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) {
		return 0, fmt.Errorf("%q must be a whole number of milliseconds", name)
	}
	if f < float64(lo.Milliseconds()) || f > float64(hi.Milliseconds()) {
		return 0, fmt.Errorf("%q is %v ms; it must be between %d and %d", name, f, lo.Milliseconds(), hi.Milliseconds())
	}
	return time.Duration(f) * time.Millisecond, nil
}

// compact returns raw without insignificant white space (raw is valid JSON).
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}

// result is a decoded job-done body.
type result struct {
	output   json.RawMessage // nil when absent or null
	errMsg   string          // "" when absent, null or empty
	stopPod  bool
	progress bool // {"status":"IN_PROGRESS",...}: an update, not the result
}

// decodeResult decodes a job-done body in any of the forms runpod-python
// posts: {output}, {error}, {output,error}, with stopPod, and progress
// updates {"status":"IN_PROGRESS","output":…}.
func decodeResult(body []byte) (result, error) {
	m, err := decodeObject(body, "job result")
	if err != nil {
		return result{}, err
	}
	var r result
	if v, ok := m["output"]; ok && !isNull(v) {
		r.output = compact(v)
	}
	if v, ok := m["error"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			// Not a string: keep the JSON text, as RunPod's error is a string.
			s = string(compact(v))
		}
		r.errMsg = s
	}
	if v, ok := m["stopPod"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &r.stopPod); err != nil {
			return result{}, errors.New(`"stopPod" must be true or false`)
		}
	}
	if v, ok := m["status"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return result{}, errors.New(`"status" must be a string such as "IN_PROGRESS"`)
		}
		r.progress = Status(s) == StatusInProgress
	}
	return r, nil
}

// decodeStreamChunk checks a job-stream body: one JSON object, normally
// {"output": …}, kept whole so extra keys (vLLM's "metrics") reach clients.
func decodeStreamChunk(body []byte) (json.RawMessage, error) {
	m, err := decodeObject(body, "stream chunk")
	if err != nil {
		return nil, err
	}
	if _, ok := m["output"]; !ok {
		if _, ok := m["error"]; !ok {
			return nil, errors.New(`stream chunk has neither "output" nor "error"; send {"output": …}`)
		}
	}
	return compact(bytes.TrimSpace(body)), nil
}

// statusBody is the answer of /status and friends, keys in RunPod's order.
type statusBody struct {
	DelayTime     *int64          `json:"delayTime,omitempty"`
	Error         string          `json:"error,omitempty"`
	ExecutionTime *int64          `json:"executionTime,omitempty"`
	ID            string          `json:"id"`
	Output        json.RawMessage `json:"output,omitempty"`
	Retries       int             `json:"retries,omitempty"`
	Status        Status          `json:"status"`
	WorkerID      string          `json:"workerId,omitempty"`
}

// streamBody is the answer of /stream.
type streamBody struct {
	Status Status            `json:"status"`
	Stream []json.RawMessage `json:"stream"`
}

// Health is an endpoint's /health answer: job and worker counters.
type Health struct {
	Jobs    HealthJobs    `json:"jobs"`
	Workers HealthWorkers `json:"workers"`
}

// HealthJobs are the job counters of /health.
type HealthJobs struct {
	// Completed, Failed (FAILED and TIMED_OUT) and Retried count since the
	// server started.
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// InProgress and InQueue count the jobs in those states now.
	InProgress int `json:"inProgress"`
	InQueue    int `json:"inQueue"`
	Retried    int `json:"retried"`
}

// HealthWorkers are the worker counters of /health.
// Each counts the endpoint's workers in one WorkerState; Ready is Idle plus
// Running and Throttled is always 0.
type HealthWorkers struct {
	Idle         int `json:"idle"`
	Initializing int `json:"initializing"`
	Ready        int `json:"ready"`
	Running      int `json:"running"`
	Throttled    int `json:"throttled"`
	Unhealthy    int `json:"unhealthy"`
}

// takenJob is a job as job-take hands it to a worker.
type takenJob struct {
	ID       string          `json:"id"`
	Input    json.RawMessage `json:"input"`
	Webhook  string          `json:"webhook,omitempty"`
	Policy   json.RawMessage `json:"policy,omitempty"`
	S3Config json.RawMessage `json:"s3Config,omitempty"`
}

// parseIDList splits a comma-separated job_id query value.
func parseIDList(v string) []string {
	var ids []string
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}
