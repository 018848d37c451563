package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/comfypod/comfypod/internal/redact"
)

// Job statuses reported by the local modes, as RunPod names them.
const (
	// StatusCompleted is a job that finished with a result.
	StatusCompleted = "COMPLETED"
	// StatusFailed is a job that finished with an error.
	StatusFailed = "FAILED"
	// StatusInProgress is a job stored by the local API's /run.
	StatusInProgress = "IN_PROGRESS"
)

// ErrJobFailed is returned by Start in local mode when the test job failed,
// so the command can exit 1 as runpod-python does.
var ErrJobFailed = errors.New("serverless: the test job failed")

// LocalResult is a job's result in local mode, in the shape of RunPod's
// /runsync answer.
type LocalResult struct {
	// ID is the job's id.
	ID string `json:"id"`
	// Status is StatusCompleted or StatusFailed.
	Status string `json:"status"`
	// Output is the job's output; for a StreamHandler, the list of chunks.
	Output json.RawMessage `json:"output,omitempty"`
	// Error is the failure message of a FAILED job.
	Error string `json:"error,omitempty"`
	// Chunks are a StreamHandler's chunks, in order.
	Chunks []json.RawMessage `json:"-"`
	// RefreshWorker says the result asked for the worker to be replaced.
	RefreshWorker bool `json:"-"`
}

// Failed reports whether the job failed.
func (r *LocalResult) Failed() bool { return r.Status == StatusFailed }

// localRunner runs jobs in-process for the local modes: no control plane,
// progress updates logged, stream chunks collected.
type localRunner struct {
	cfg  *Config
	exec *executor
}

func newLocalRunner(cfg *Config) (*localRunner, error) {
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	exec := newExecutor(c, redact.NewSecrets(c.APIKey))
	// Local modes return a stream's chunks as its output, as
	// runpod-python's local API does.
	exec.aggregate = true
	return &localRunner{cfg: c, exec: exec}, nil
}

// run runs one job to its end.
func (l *localRunner) run(ctx context.Context, job *Job) *LocalResult {
	job.log = l.exec.jobLogger(job)
	r := newJobRun(ctx, job)
	defer r.cancel(nil)
	r.aggregate = true
	r.maxBytes = l.cfg.MaxResultBytes
	log := job.Logger()
	r.postProgress = func(_ context.Context, body []byte) error {
		log.Info("Progress update: " + l.exec.meta.scrub.String(string(body)))
		return nil
	}
	log.Info("Started.")
	out, _ := l.exec.execute(r)
	r.claimFinal()
	res := &LocalResult{ID: job.ID, Output: out.output, RefreshWorker: out.stopPod}
	if l.exec.stream != nil {
		r.mu.Lock()
		res.Chunks = r.chunks
		r.mu.Unlock()
	}
	if out.failed {
		res.Status = StatusFailed
		res.Error = out.errMsg
		log.Info("Finished (FAILED).")
	} else {
		res.Status = StatusCompleted
		log.Info("Finished.")
	}
	return res
}

// parseTestInput reads a local test job: {"input": …} with an optional
// "id" (default LocalJobIDDefault) and the other job keys.
func parseTestInput(data []byte) (*Job, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: it is empty; give a JSON object such as {\"input\": {\"prompt\": \"a cat\"}}", errBadTestInput)
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("%w: it must be a JSON object such as {\"input\": {...}}", errBadTestInput)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: it is not valid JSON: %v", errBadTestInput, err)
	}
	if in, ok := probe["input"]; !ok || isNull(in) {
		return nil, fmt.Errorf("%w: it has no \"input\"; the job's input goes under \"input\", as in {\"input\": {...}}", errBadTestInput)
	}
	if id, ok := probe["id"]; !ok || isNull(id) {
		probe["id"] = json.RawMessage(`"` + LocalJobIDDefault + `"`)
		data, _ = json.Marshal(probe)
	}
	job, err := decodeJob(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadTestInput, err)
	}
	return job, nil
}

// RunLocal runs one job given as test input, {"input": …, "id"?: …}, with
// cfg's handler, as runpod-python's --test_input does, and returns its
// result. A StreamHandler's chunks become the output list. The error is
// for test input that cannot run; a job that ran and failed is a result
// with Status FAILED.
func RunLocal(ctx context.Context, cfg *Config, testInput []byte) (*LocalResult, error) {
	l, err := newLocalRunner(cfg)
	if err != nil {
		return nil, err
	}
	job, err := parseTestInput(testInput)
	if err != nil {
		return nil, fmt.Errorf("serverless: test input: %w", err)
	}
	return l.run(ctx, job), nil
}

// runLocalMode is Start in local mode: run the test input (Config.TestInput,
// else Config.TestInputFile), log the result, and return ErrJobFailed when
// the job failed.
func runLocalMode(ctx context.Context, cfg *Config) error {
	c := cfg.WithDefaults()
	input := c.TestInput
	if len(input) == 0 {
		data, err := os.ReadFile(c.TestInputFile)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("serverless: local mode (RUNPOD_WEBHOOK_GET_JOB is unset) needs a test job, and %s was not found: pass the job as test input or create the file with {\"input\": {...}}", c.TestInputFile)
		}
		if err != nil {
			return fmt.Errorf("serverless: reading the test input: %w", err)
		}
		input = data
	}
	c.Logger.Info("--- Starting Serverless Worker | Version " + c.RunpodVersion + " --- (local mode: running the test input once)")
	res, err := RunLocal(ctx, c, input)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(res)
	log := c.Logger.With(slog.String(JobIDKey, res.ID))
	if res.Failed() {
		log.Error("Job result: " + string(body))
		return fmt.Errorf("%w: %s", ErrJobFailed, res.Error)
	}
	log.Info("Job result: " + string(body))
	return nil
}
