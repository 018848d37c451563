package serverless

import (
	"context"
	"errors"

	"github.com/jonboulle/clockwork"
)

// Start runs handler as a RunPod serverless worker until ctx ends, the Go
// form of runpod.serverless.start({"handler": handler}). It blocks.
//
// With a job-take URL in cfg it takes jobs until ctx ends, then stops taking,
// lets running jobs finish for up to cfg.ShutdownGrace and cancels the rest
// (reporting them FAILED), and returns once the worker has drained: nil when
// every job finished in time, an error when some had to be cancelled. With
// cfg.RefreshWorker it returns nil after the first job, as the process should
// then exit. Without a job-take URL (local mode) it runs
// the test input once (cfg.TestInput, else cfg.TestInputFile) and returns
// ErrJobFailed when that job failed.
//
// cfg is not modified; cfg.Handler and cfg.StreamHandler are replaced by
// handler.
func Start(ctx context.Context, handler Handler, cfg *Config) error {
	if handler == nil || cfg == nil {
		return errors.New("serverless: Start needs a handler and a Config")
	}
	c := *cfg
	c.Handler, c.StreamHandler = handler, nil
	return run(ctx, &c)
}

// StartStream is Start for a StreamHandler, the Go form of starting
// runpod-python with a generator handler.
func StartStream(ctx context.Context, handler StreamHandler, cfg *Config) error {
	if handler == nil || cfg == nil {
		return errors.New("serverless: StartStream needs a handler and a Config")
	}
	c := *cfg
	c.Handler, c.StreamHandler = nil, handler
	return run(ctx, &c)
}

func run(ctx context.Context, cfg *Config) error {
	if cfg.Local() {
		return runLocalMode(ctx, cfg)
	}
	w, err := New(cfg)
	if err != nil {
		return err
	}
	if err := w.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-w.Done():
		return nil
	case <-ctx.Done():
	}
	sctx, cancel := clockwork.WithTimeout(context.WithoutCancel(ctx), w.clock, w.cfg.ShutdownGrace)
	defer cancel()
	return w.Stop(sctx)
}
