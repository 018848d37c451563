package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/serverless"
)

// Progress is what a running job reports to RunPod: clients polling /status
// see it as the job's output while it is IN_PROGRESS.
type Progress struct {
	// Stage is StageUploading, StageQueued, StageRunning or
	// StageCollecting.
	Stage string `json:"stage"`
	// Node and ClassType name the node running now.
	Node      string `json:"node,omitempty"`
	ClassType string `json:"class_type,omitempty"`
	// Value and Max are the running node's own steps (a sampler's).
	Value int `json:"value,omitempty"`
	Max   int `json:"max,omitempty"`
	// Percent estimates the whole job's progress, 0 to 100.
	Percent int `json:"percent"`
}

// Stages of a job, as Progress reports them.
const (
	StageUploading  = "uploading"
	StageQueued     = "queued"
	StageRunning    = "running"
	StageCollecting = "collecting"
)

// progress forwards a job's progress to RunPod from a goroutine of its own,
// at most once per Config.ProgressInterval and not before the first interval
// has passed, always sending the latest state: a slow control plane never
// slows the job, and no update queues up behind another.
type progress struct {
	h   *Handler
	job *serverless.Job
	log *slog.Logger

	mu      sync.Mutex
	pending *Progress
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc

	// Event state, touched only by the goroutine running the workflow.
	wf       *comfy.Workflow
	total    int
	finished map[string]bool
	last     Progress
}

func (h *Handler) startProgress(job *serverless.Job, log *slog.Logger) *progress {
	ctx, cancel := context.WithCancel(context.Background())
	p := &progress{h: h, job: job, log: log, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		cancel: cancel, finished: map[string]bool{}}
	go p.loop(ctx)
	return p
}

// update records v as the state to send next.
func (p *progress) update(v Progress) {
	p.mu.Lock()
	p.pending = &v
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *progress) loop(ctx context.Context) {
	defer close(p.done)
	// Nothing is posted during the first interval: a job that ends sooner
	// needs no progress, and its result replaces it anyway.
	first := p.h.cfg.Clock.NewTimer(p.h.cfg.ProgressInterval)
	select {
	case <-p.quit:
		first.Stop()
		return
	case <-first.Chan():
	}
	for {
		select {
		case <-p.quit:
			return
		case <-p.wake:
		}
		p.mu.Lock()
		v := p.pending
		p.pending = nil
		p.mu.Unlock()
		if v == nil {
			continue
		}
		if err := p.job.Progress(ctx, v); err != nil && !errors.Is(err, serverless.ErrJobFinished) && ctx.Err() == nil {
			p.log.Debug("progress update not posted", "err", err)
		}
		t := p.h.cfg.Clock.NewTimer(p.h.cfg.ProgressInterval)
		select {
		case <-p.quit:
			t.Stop()
			return
		case <-t.Chan():
		}
	}
}

// stop ends the goroutine and waits for it.
func (p *progress) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	p.cancel()
	<-p.done
}

// event turns ComfyUI's websocket events into progress.
func (p *progress) event(e comfy.Event) {
	switch {
	case e.Start != nil:
		if p.wf != nil {
			p.total = p.wf.Len()
		}
		p.last = Progress{Stage: StageRunning}
	case e.Cached != nil:
		for _, n := range e.Cached.Nodes {
			p.finished[n] = true
		}
	case e.Executing != nil && !e.Executing.Done:
		if p.last.Node != "" {
			p.finished[p.last.Node] = true
		}
		p.last = Progress{Stage: StageRunning, Node: e.Executing.Node}
		if p.wf != nil {
			if n, ok := p.wf.Node(e.Executing.Node); ok {
				p.last.ClassType = n.ClassType
			}
		}
	case e.Progress != nil:
		p.last.Value, p.last.Max = int(e.Progress.Value), int(e.Progress.Max)
	default:
		return
	}
	p.last.Percent = p.percent()
	p.update(p.last)
}

// percent estimates the share of the workflow done.
func (p *progress) percent() int {
	if p.total <= 0 {
		return 0
	}
	done := float64(len(p.finished))
	if p.last.Max > 0 {
		done += float64(p.last.Value) / float64(p.last.Max)
	}
	return min(99, int(100*done/float64(p.total)))
}
