package runpod

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/comfypod/comfypod/internal/bytesize"
	"github.com/comfypod/comfypod/internal/redact"
)

// Request is a job to submit with Run or RunSync.
type Request struct {
	// Input is what the worker's handler receives as job["input"]: any value
	// that encodes to JSON (a struct, a map, a json.RawMessage). Required.
	Input any `json:"input"`
	// Webhook, when set, is called by RunPod with the final status.
	Webhook string `json:"webhook,omitempty"`
	// Policy overrides the endpoint's timeouts and priority for this job.
	Policy *Policy `json:"policy,omitempty"`
	// S3Config is passed to the worker, for workers that upload outputs to a
	// bucket themselves.
	S3Config *S3Config `json:"s3Config,omitempty"`
}

// Policy is a job's execution policy. Zero fields keep RunPod's defaults.
type Policy struct {
	// ExecutionTimeout is how long the job may run: 5 s to 7 days, 10 min by
	// default.
	ExecutionTimeout time.Duration
	// LowPriority jobs do not make the endpoint scale up.
	LowPriority bool
	// TTL is the job's whole lifespan from submission, queue time included:
	// 10 s to 7 days, 24 h by default. After it RunPod deletes the job.
	TTL time.Duration
}

// MarshalJSON writes the policy in RunPod's form: durations in milliseconds.
func (p Policy) MarshalJSON() ([]byte, error) {
	type wire struct {
		ExecutionTimeout int64 `json:"executionTimeout,omitempty"`
		LowPriority      bool  `json:"lowPriority,omitempty"`
		TTL              int64 `json:"ttl,omitempty"`
	}
	return json.Marshal(wire{p.ExecutionTimeout.Milliseconds(), p.LowPriority, p.TTL.Milliseconds()})
}

func (p *Policy) validate() error {
	const week = 7 * 24 * time.Hour
	if p.ExecutionTimeout != 0 && (p.ExecutionTimeout < 5*time.Second || p.ExecutionTimeout > week) {
		return fmt.Errorf("policy execution timeout %s: RunPod accepts 5s to 7 days", p.ExecutionTimeout)
	}
	if p.TTL != 0 && (p.TTL < 10*time.Second || p.TTL > week) {
		return fmt.Errorf("policy TTL %s: RunPod accepts 10s to 7 days", p.TTL)
	}
	return nil
}

// S3Config gives the worker a bucket to write outputs to. Its String and
// LogValue hide the secret.
type S3Config struct {
	AccessID     string `json:"accessId"`             // access key id
	AccessSecret string `json:"accessSecret"`         // secret access key
	BucketName   string `json:"bucketName"`           // bucket to write to
	EndpointURL  string `json:"endpointUrl"`          // S3 endpoint, e.g. https://s3.us-east-1.amazonaws.com
	ObjectPath   string `json:"objectPath,omitempty"` // key prefix, for workers that support it
}

// String describes the config without its secret.
func (s S3Config) String() string {
	return fmt.Sprintf("S3Config{AccessID:%q AccessSecret:REDACTED BucketName:%q EndpointURL:%q}", s.AccessID, s.BucketName, redact.URL(s.EndpointURL))
}

// GoString is String, so %#v does not print the secret either.
func (s S3Config) GoString() string { return s.String() }

// LogValue keeps the secret out of slog output.
func (s S3Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("accessId", s.AccessID), slog.String("bucketName", s.BucketName),
		slog.String("endpointUrl", redact.URL(s.EndpointURL)))
}

// encode checks the request and encodes it.
func (r *Request) encode() ([]byte, error) {
	if r == nil || r.Input == nil {
		return nil, errors.New("runpod: the request has no input")
	}
	if r.Webhook != "" {
		u, err := url.Parse(r.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("runpod: webhook %q: want an absolute http(s) URL", redact.URL(r.Webhook))
		}
	}
	if r.Policy != nil {
		if err := r.Policy.validate(); err != nil {
			return nil, fmt.Errorf("runpod: %w", err)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("runpod: encode the request: %w", err)
	}
	// A nil map or a RawMessage "null" encodes to null, which RunPod rejects.
	var probe struct {
		Input json.RawMessage `json:"input"`
	}
	if json.Unmarshal(b, &probe) == nil && (len(probe.Input) == 0 || string(probe.Input) == "null") {
		return nil, errors.New("runpod: the request's input is null")
	}
	return b, nil
}

// payloadLimit is the size limit checked for path, 0 for none.
func (c *Client) payloadLimit(path string) int64 {
	switch path {
	case "/run":
		return c.runLimit
	case "/runsync":
		return c.runSyncLimit
	}
	return 0
}

// checkPayload refuses a request RunPod would refuse for its size.
func (c *Client) checkPayload(path string, body []byte) error {
	limit := c.payloadLimit(path)
	if limit <= 0 || int64(len(body)) <= limit {
		return nil
	}
	hint := "send large images as URLs or downscale them"
	if path == "/run" && int64(len(body)) <= c.runSyncLimit {
		hint = "use RunSync (/runsync accepts " + bytesize.Binary(c.runSyncLimit) + "), " + hint
	}
	return fmt.Errorf("%w: the request is %s, over the %s limit of %s: %s", ErrPayloadTooLarge,
		bytesize.Binary(int64(len(body))), bytesize.Binary(limit), path, hint)
}
