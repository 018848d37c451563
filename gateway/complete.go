package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/internal/truncate"
	"github.com/comfypod/comfypod/runpod"
)

// maxErrorText caps the error text kept for a failed job.
const maxErrorText = 2000

// errOutputTooLarge stops copying an output over MaxOutputBytes.
var errOutputTooLarge = errors.New("output over the size limit")

// complete ends job id from RunPod's final status st: for a completed job it
// copies every output file into the output store first. It returns an error
// only when trying again later may help (the output store or the file's URL
// did not answer); every other outcome ends the job. The first replica (or
// webhook) to end a job wins; the others' work is dropped.
func (s *Service) complete(ctx context.Context, id string, st *runpod.Status) error {
	now := s.clock.Now()
	f := store.Finish{At: now, RunPodID: st.ID}
	if st.ExecutionTime > 0 {
		f.StartedAt = now.Add(-st.ExecutionTime)
	}
	switch st.State {
	case runpod.StateCompleted:
		outs, ferr, err := s.copyOutputs(ctx, id, st)
		if err != nil {
			return err
		}
		if ferr != nil {
			f.State, f.Error, f.ErrorCode = store.StateFailed, ferr.Error(), "no_output"
		} else {
			f.State, f.Outputs = store.StateSucceeded, outs
		}
	case runpod.StateFailed:
		f.State, f.ErrorCode = store.StateFailed, "worker_error"
		f.Error = "the worker failed"
		var je *runpod.JobError
		if errors.As(st.Err(), &je) && je.Message != "" {
			msg := je.Message
			if je.Type != "" && !strings.HasPrefix(msg, je.Type) {
				msg = je.Type + ": " + msg
			}
			f.Error = "the worker failed: " + msg
		}
		f.Error = truncate.Bytes(scrub(f.Error), maxErrorText)
	case runpod.StateCancelled:
		f.State, f.ErrorCode, f.Error = store.StateCancelled, "cancelled", "cancelled at RunPod"
	case runpod.StateTimedOut:
		f.State, f.ErrorCode = store.StateTimedOut, "timeout"
		f.Error = "RunPod timed the job out: it waited or ran longer than the endpoint allows"
	default:
		return fmt.Errorf("complete: job %s is %s, not ended", id, st.State)
	}
	j, changed, err := s.st.Finish(ctx, id, f)
	if err != nil {
		return fmt.Errorf("ending job %s: %w", id, err)
	}
	if changed {
		s.finished(j)
	}
	return nil
}

// copyOutputs copies a completed job's files into the output store, under
// jobs/<id>/<n>-<name>. ferr is a reason to fail the job (no file, a file too
// large or unreadable); err a reason to try again later.
func (s *Service) copyOutputs(ctx context.Context, id string, st *runpod.Status) (outs []store.Output, ferr, err error) {
	var stored []store.Output
	defer func() {
		if ferr != nil || err != nil {
			// The job gets none of the files stored so far: a later try
			// writes them again, and a failed job lists none for retention
			// to delete.
			s.dropFiles(context.WithoutCancel(ctx), stored)
		}
	}()
	files, err := st.Outputs()
	if err != nil {
		return nil, fmt.Errorf("the worker's output cannot be read: %s", truncate.Bytes(scrub(err.Error()), 300)), nil
	}
	if len(files) == 0 {
		msg := "the job completed without an output file"
		if ex := outputExcerpt(st); ex != "" {
			msg += " (output: " + ex + ")"
		}
		return nil, errors.New(msg), nil
	}
	for i, f := range files {
		name := safeName(f.Name, i)
		key := fmt.Sprintf("jobs/%s/%d-%s", id, i, name)
		rc, err := f.Open(ctx)
		if err != nil {
			if f.URL == "" {
				return nil, fmt.Errorf("output %s cannot be decoded: %s", name, truncate.Bytes(scrub(err.Error()), 300)), nil
			}
			return nil, nil, fmt.Errorf("fetching output %s: %s", f.String(), scrub(err.Error()))
		}
		br := bufio.NewReaderSize(rc, 4096)
		ct := f.MediaType
		if ct == "" {
			head, _ := br.Peek(512)
			ct = http.DetectContentType(head)
		}
		lr := &capReader{r: br, n: s.cfg.MaxOutputBytes}
		size, err := s.blobs.Put(ctx, key, lr, ct)
		_ = rc.Close()
		if err != nil {
			if errors.Is(err, errOutputTooLarge) { // Put left no file
				return nil, fmt.Errorf("output %s is larger than %s", name, sizeText(s.cfg.MaxOutputBytes)), nil
			}
			if lr.readErr != nil && f.URL == "" {
				return nil, fmt.Errorf("output %s cannot be decoded: %s", name, truncate.Bytes(scrub(lr.readErr.Error()), 300)), nil
			}
			return nil, nil, fmt.Errorf("storing output %s: %s", name, scrub(err.Error()))
		}
		stored = append(stored, store.Output{Name: name, ContentType: ct, Key: key, Size: size})
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "outputs stored", slog.String("job", id), slog.Int("files", len(stored)))
	return stored, nil, nil
}

// capReader fails with errOutputTooLarge past n bytes, and remembers a read
// error of the source (as opposed to one of the store).
type capReader struct {
	r       io.Reader
	n       int64
	readErr error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		var one [1]byte
		if k, _ := c.r.Read(one[:]); k > 0 {
			return 0, errOutputTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	if err != nil && !errors.Is(err, io.EOF) {
		c.readErr = err
	}
	return k, err
}

// safeName keeps a file name the store and a Content-Disposition header
// accept; a name that has nothing left becomes output-<n>.
func safeName(name string, n int) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), ".")
	if out == "" || out == "_" {
		return fmt.Sprintf("output-%d", n)
	}
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	return out
}

// outputExcerpt is the start of a small output, for an error message.
func outputExcerpt(st *runpod.Status) string {
	if len(st.Output) == 0 || len(st.Output) > 4096 {
		return ""
	}
	return truncate.Bytes(scrub(string(bytes.TrimSpace(st.Output))), 300)
}
