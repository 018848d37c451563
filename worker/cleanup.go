package worker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/comfypod/comfypod/serverless"
)

// cleanupTimeout bounds the ComfyUI calls of a job's cleanup.
const cleanupTimeout = 5 * time.Second

// cleanup removes what the job left on the ComfyUI side: its uploaded
// inputs, the files its nodes wrote (and, for savers that were
// interrupted, whatever carries the job's tag) and its history entry.
func (r *jobRun) cleanup() {
	if r.h.cfg.KeepFiles {
		return
	}
	if dir := r.h.cfg.ComfyDir; dir != "" {
		for _, u := range r.uploaded {
			r.remove(dir, u.Type, u.Subfolder, u.Name)
		}
		for _, f := range r.outputs {
			r.remove(dir, f.Type, f.Subfolder, f.Filename)
		}
		r.removeTagged(dir)
	}
	if r.promptID != "" {
		// ComfyUI keeps 10000 history entries; forgetting the job's is not
		// worth delaying its result for.
		id, log := r.promptID, r.log
		r.h.inBackground(func() {
			ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer cancel()
			if err := r.h.client.DeleteHistory(ctx, id); err != nil {
				log.Debug("could not delete the job's ComfyUI history entry", "err", err)
			}
		})
	}
}

// folder returns ComfyUI's folder of a file type.
func folder(dir, typ string) string {
	switch typ {
	case "", "input":
		return filepath.Join(dir, "input")
	case "output", "temp":
		return filepath.Join(dir, typ)
	}
	return ""
}

// remove deletes one file below ComfyUI's folder of its type, refusing
// names that would leave it.
func (r *jobRun) remove(dir, typ, subfolder, name string) {
	base := folder(dir, typ)
	if base == "" || name == "" {
		return
	}
	rel := path.Clean(path.Join(subfolder, name))
	if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, `\`) {
		return
	}
	if err := os.Remove(filepath.Join(base, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Debug("could not delete a job file", "file", rel, "err", err)
	}
}

// removeTagged deletes the files in output/ whose names carry the job's
// tag: what savers wrote before an interrupt, and side files such as the
// first-frame PNG VideoHelperSuite writes next to a video.
func (r *jobRun) removeTagged(dir string) {
	if r.wf == nil {
		return
	}
	dirs := map[string]bool{}
	for _, n := range r.wf.Nodes() {
		v, ok := n.Input("filename_prefix")
		if !ok {
			continue
		}
		p, ok := v.Text()
		if !ok || !strings.Contains(path.Base(p), r.tag) {
			continue
		}
		dirs[path.Dir(path.Clean(p))] = true
	}
	out := folder(dir, "output")
	for d := range dirs {
		if path.IsAbs(d) || d == ".." || strings.HasPrefix(d, "../") {
			continue
		}
		full := filepath.Join(out, filepath.FromSlash(d))
		entries, err := os.ReadDir(full)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() && strings.HasPrefix(e.Name(), r.tag) {
				r.remove(dir, "output", d, e.Name())
			}
		}
	}
}

// Warmup runs Config.Warmup once and discards its outputs, so that the
// first real job finds ComfyUI's models loaded.
func (h *Handler) Warmup(ctx context.Context) error {
	if len(h.cfg.Warmup) == 0 {
		return nil
	}
	input := h.cfg.Warmup
	if in, err := DecodeInput(input); err != nil || (in.Workflow == nil && in.WorkflowName == "" && len(in.Images) == 0 && len(in.Params) == 0) {
		// A bare workflow.
		input = append(append([]byte(`{"workflow":`), input...), '}')
	}
	r := h.newRun(&serverless.Job{ID: "warmup", Input: input})
	r.log = h.log.With("job_id", "warmup")
	r.warmup = true
	start := h.now()
	if _, err := r.run(ctx); err != nil {
		var we *Error
		if errors.As(err, &we) {
			return &Error{Kind: we.Kind, Message: "the warm-up workflow failed: " + we.Error()}
		}
		return err
	}
	h.log.Info("warm-up done", "took", h.now().Sub(start).Round(time.Millisecond))
	return nil
}
