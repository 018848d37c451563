package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/comfypod/comfypod/internal/redact"
)

// States of a jobRun.
const (
	runActive   int32 = iota // the handler may post progress and chunks
	runFinished              // the final result is claimed; nothing more is posted
	runStopped               // RunPod stopped the job; no result is posted
)

// jobRun is one job being run: its context, its state and the serialization
// of everything posted for it.
type jobRun struct {
	job    *Job
	ctx    context.Context
	cancel context.CancelCauseFunc
	state  atomic.Int32

	// mu is held while anything is posted for the job, so progress updates,
	// stream chunks and the final result go out one at a time and in order.
	mu sync.Mutex

	// postProgress and postChunk deliver a progress body and a stream-chunk
	// body; the worker posts them to RunPod, local modes log or collect.
	postProgress func(ctx context.Context, body []byte) error
	postChunk    func(ctx context.Context, body []byte) error

	aggregate bool
	maxBytes  int64             // the result size limit, for the aggregate
	chunks    []json.RawMessage // every chunk, when aggregating (guarded by mu)
	aggBytes  int64             // the aggregate's size so far (guarded by mu)
	streamErr string            // a chunk's truthy "error" (guarded by mu)

	// handlerDone is closed when the handler has returned.
	handlerDone chan struct{}
}

func newJobRun(parent context.Context, job *Job) *jobRun {
	ctx, cancel := context.WithCancelCause(parent)
	r := &jobRun{job: job, ctx: ctx, cancel: cancel, handlerDone: make(chan struct{})}
	job.run = r
	return r
}

// claimFinal marks the job finished; only the first caller gets true and may
// post the final result.
func (r *jobRun) claimFinal() bool { return r.state.CompareAndSwap(runActive, runFinished) }

// stop marks the job stopped by RunPod and cancels its context; it reports
// whether the job was still active.
func (r *jobRun) stop() bool {
	if !r.state.CompareAndSwap(runActive, runStopped) {
		return false
	}
	r.cancel(ErrJobCancelled)
	return true
}

// progress posts {"status":"IN_PROGRESS","output":v}, unless the job is over.
func (r *jobRun) progress(ctx context.Context, v any) error {
	if r.state.Load() != runActive {
		return ErrJobFinished
	}
	out, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("serverless: progress value cannot be encoded as JSON: %w", err)
	}
	body := writeBody(out, "", false, "IN_PROGRESS")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Load() != runActive { // the final result won the race
		return ErrJobFinished
	}
	if r.postProgress == nil {
		return nil
	}
	return r.postProgress(ctx, body)
}

// emit handles one chunk of a stream handler.
func (r *jobRun) emit(chunk any) error {
	if r.state.Load() != runActive {
		return ErrJobFinished
	}
	out, err := encodeJSON(chunk)
	if err != nil {
		return fmt.Errorf("serverless: stream chunk cannot be encoded as JSON: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Load() != runActive || r.streamErr != "" {
		return ErrJobFinished
	}
	if len(out) > 0 && out[0] == '{' && bytes.Contains(out, []byte(`"error"`)) {
		if _, errText, _, err := liftKeys(out); err == nil && errText != "" {
			// runpod-python ends the stream on a chunk with a truthy
			// error and makes it the final result.
			r.streamErr = errText
			return ErrJobFinished
		}
	}
	if r.postChunk != nil {
		if err := r.postChunk(r.ctx, writeBody(out, "", false, "")); err != nil {
			return err
		}
	}
	if r.aggregate {
		// Past the limit the aggregate can only fail; stop holding it.
		r.aggBytes += int64(len(out)) + 1
		if r.aggBytes <= r.maxBytes {
			r.chunks = append(r.chunks, out)
		} else {
			r.chunks = nil
		}
	}
	return nil
}

// executor runs handlers and turns what they return into job-done bodies.
type executor struct {
	handler   Handler
	stream    StreamHandler
	aggregate bool
	meta      resultMeta
	log       *slog.Logger
}

func newExecutor(cfg *Config, scrub redact.Secrets) *executor {
	return &executor{
		handler:   cfg.Handler,
		stream:    cfg.StreamHandler,
		aggregate: cfg.ReturnAggregateStream,
		log:       cfg.Logger,
		meta: resultMeta{
			workerID:      cfg.WorkerID,
			hostname:      cfg.Hostname,
			runpodVersion: cfg.RunpodVersion,
			maxBytes:      cfg.MaxResultBytes,
			refreshAll:    cfg.RefreshWorker,
			scrub:         scrub,
		},
	}
}

// jobLogger returns the logger for a job's lines.
func (e *executor) jobLogger(job *Job) *slog.Logger {
	l := e.log.With(slog.String(JobIDKey, job.ID))
	if job.BatchID != "" {
		l = l.With(slog.String(BatchIDKey, job.BatchID))
	}
	return l
}

// execute runs the handler for r and returns the job's outcome and whether
// the final post is a stream's (isStream=true). A panic in the handler is
// recovered and becomes a failed outcome with its stack.
func (e *executor) execute(r *jobRun) (out outcome, isStream bool) {
	meta := e.meta
	if s := r.job.S3Config; s != nil {
		meta.scrub = meta.scrub.With(s.AccessSecret)
	}
	var (
		v        any
		err      error
		panicked *panicError
	)
	func() {
		defer close(r.handlerDone)
		defer func() {
			if p := recover(); p != nil {
				panicked = newPanicError(p, debug.Stack())
			}
		}()
		if e.stream != nil {
			err = e.stream(r.ctx, r.job, r.emit)
		} else {
			v, err = e.handler(r.ctx, r.job)
		}
	}()
	log := r.job.Logger()
	if panicked != nil {
		log.Error("Captured handler panic", slog.String("panic", meta.scrub.String(panicked.msg)), slog.String("stack", panicked.stack))
	} else if err != nil {
		var je *JobError
		if !errors.As(err, &je) {
			log.Error("Captured handler error", slog.String("error", meta.scrub.String(err.Error())))
		}
	}
	if e.stream == nil {
		return meta.fromReturn(v, err, panicked), false
	}
	r.mu.Lock()
	streamErr, chunks, aggBytes := r.streamErr, r.chunks, r.aggBytes
	r.mu.Unlock()
	switch {
	case streamErr != "":
		// The error chunk is the result, whatever the handler did after.
		return meta.failure(meta.scrub.String(streamErr), nil, false), true
	case panicked != nil || err != nil:
		return meta.fromReturn(nil, err, panicked), true
	case e.aggregate && aggBytes > meta.maxBytes:
		return meta.failure(tooLargeMessage(aggBytes+int64(len(`{"output":[]}`)), meta.maxBytes), nil, false), true
	}
	var agg bytes.Buffer
	agg.WriteByte('[')
	if e.aggregate {
		for i, c := range chunks {
			if i > 0 {
				agg.WriteByte(',')
			}
			agg.Write(c)
		}
	}
	agg.WriteByte(']')
	return meta.encode(agg.Bytes(), "", false), true
}
