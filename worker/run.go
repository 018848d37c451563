package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/truncate"
)

// errJobTimeout is the cause of a job context cancelled by Config.JobTimeout.
var errJobTimeout = errors.New("job timeout")

// run does the job and returns its output.
func (r *jobRun) run(ctx context.Context) (*Output, error) {
	if d := r.h.cfg.JobTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, errJobTimeout)
		defer cancel()
	}
	if err := r.prepare(ctx); err != nil {
		return nil, r.ctxError(ctx, err)
	}
	defer r.cleanup()
	prog := r.h.startProgress(r.job, r.log)
	defer prog.stop()
	prog.update(Progress{Stage: StageUploading})
	if err := r.uploadAll(ctx); err != nil {
		return nil, r.ctxError(ctx, err)
	}
	res, err := r.execute(ctx, prog)
	if err != nil {
		return nil, r.ctxError(ctx, err)
	}
	if r.warmup {
		return &Output{Images: []File{}}, nil
	}
	prog.update(Progress{Stage: StageCollecting, Percent: 100})
	out, err := r.collect(ctx, res)
	if err != nil {
		return nil, r.ctxError(ctx, err)
	}
	r.log.Info("job done", "images", len(out.Images), "videos", len(out.Videos), "audio", len(out.Audio), "files", len(out.Files),
		"s3", r.s3 != nil, "took", r.h.now().Sub(r.start).Round(1e6))
	return out, nil
}

// ctxError turns an error seen after ctx ended into the reason it ended.
func (r *jobRun) ctxError(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errJobTimeout) {
		return &Error{Kind: ErrTimeout, Message: fmt.Sprintf("the job ran longer than this worker's job timeout of %s; ComfyUI was interrupted", r.h.cfg.JobTimeout)}
	}
	return context.Cause(ctx)
}

// uploadAll sends the job's images to ComfyUI under their unique names.
func (r *jobRun) uploadAll(ctx context.Context) error {
	for _, u := range r.uploads {
		up, err := r.h.client.UploadImage(ctx, comfy.Upload{Name: u.server, Data: bytes.NewReader(u.data), Overwrite: true})
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			var api *comfy.APIError
			if errors.As(err, &api) && api.StatusCode < 500 {
				return &Error{Kind: ErrInvalidInput, Problems: []Problem{{Field: u.field, Message: fmt.Sprintf("ComfyUI refused the upload: %v", err)}}}
			}
			return r.h.unavailable(ctx, err)
		}
		r.uploaded = append(r.uploaded, *up)
		if ref := up.Ref(); ref != u.server {
			r.wf.RenameFile(r.info, u.server, ref)
		}
		u.data = nil // uploaded: let it go
	}
	return nil
}

// execute queues the workflow and waits for it.
func (r *jobRun) execute(ctx context.Context, prog *progress) (*comfy.Result, error) {
	opts := comfy.RunOptions{OnEvent: prog.event}
	key := r.in.ComfyOrgAPIKey
	if key == "" {
		key = r.h.cfg.ComfyOrgAPIKey
	}
	if key != "" {
		opts.ExtraData = map[string]any{"api_key_comfy_org": key}
	}
	opts.PromptID = r.h.newUUID()
	r.promptID = opts.PromptID
	prog.wf = r.wf
	prog.update(Progress{Stage: StageQueued})
	res, err := r.h.client.Run(ctx, r.wf, opts)
	if res != nil {
		r.outputs = append(r.outputs, res.Files()...)
		for _, ne := range res.NodeErrors {
			r.warnings = append(r.warnings, fmt.Sprintf("output node %s (%s) was refused by ComfyUI and did not run: %s", ne.NodeID, ne.ClassType, describeNodeErrors(ne)))
		}
	}
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	var (
		pe *comfy.PromptError
		ee *comfy.ExecutionError
		ei *comfy.ExecutionInterrupted
	)
	switch {
	case errors.As(err, &pe):
		return nil, promptError(pe)
	case errors.As(err, &ee):
		return nil, executionError(ee)
	case errors.As(err, &ei):
		return nil, &Error{Kind: ErrExecution, Message: "ComfyUI interrupted the workflow (someone called /interrupt or cleared the queue)",
			Problems: []Problem{{Node: ei.NodeID, ClassType: ei.NodeType, Message: "was running when the workflow was interrupted"}}}
	case errors.Is(err, comfy.ErrPromptDeleted):
		return nil, &Error{Kind: ErrExecution, Message: "the workflow was removed from ComfyUI's queue before it ran (was the queue cleared?)"}
	}
	return nil, r.h.unavailable(ctx, err)
}

// promptError turns ComfyUI's refusal of a prompt into the job's error.
func promptError(pe *comfy.PromptError) error {
	e := &Error{Kind: ErrInvalidWorkflow}
	head := strings.TrimRight(pe.Message, ".")
	if head == "" {
		head = pe.Type
	}
	e.Message = "ComfyUI refused the workflow: " + head
	if pe.Type == "invalid_prompt" && pe.Details != "" {
		e.Message += " (" + pe.Details + ")"
	}
	for _, ne := range pe.NodeErrors {
		for _, d := range ne.Errors {
			e.Problems = append(e.Problems, Problem{Node: ne.NodeID, ClassType: ne.ClassType, Input: d.InputName(), Message: describeDetail(d)})
		}
	}
	return e
}

// describeDetail renders one of ComfyUI's node errors as a sentence.
func describeDetail(d comfy.ErrorDetail) string {
	msg := d.Message
	if msg == "" {
		msg = d.Type
	}
	det := strings.TrimSpace(d.Details)
	if in := d.InputName(); in != "" {
		det = strings.TrimPrefix(det, in+" - ")
		det = strings.TrimPrefix(det, in+": ")
		if det == in {
			det = ""
		}
	}
	if det != "" && !strings.Contains(msg, det) {
		msg += ": " + truncate.Bytes(det, 300)
	}
	return msg
}

// describeNodeErrors joins a node's errors into one line.
func describeNodeErrors(ne comfy.NodeError) string {
	parts := make([]string, 0, len(ne.Errors))
	for _, d := range ne.Errors {
		p := describeDetail(d)
		if in := d.InputName(); in != "" {
			p = fmt.Sprintf("input %q: %s", in, p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// executionError turns a node failure into the job's error.
func executionError(ee *comfy.ExecutionError) error {
	msg := strings.TrimSpace(ee.ExceptionMessage)
	if ee.ExceptionType != "" {
		msg = ee.ExceptionType + ": " + msg
	}
	p := Problem{Node: ee.NodeID, ClassType: ee.NodeType, Message: truncate.Bytes(msg, 2000)}
	if n := len(ee.Traceback); n > 0 {
		p.Traceback = ee.Traceback[max(0, n-8):]
	}
	return &Error{Kind: ErrExecution, Problems: []Problem{p}}
}
