package runpod_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// These tests run the client against the local control plane (runpodtest),
// over real HTTP: every operation end to end, every typed error as the server
// produces it, and the client's own machinery (long poll, cold start, cancel
// on give-up, limiter, keep-warm) against the server's view of the jobs.

// comfyOutput is a worker-comfyui output holding one PNG.
func comfyOutput(name string, img []byte) map[string]any {
	return map[string]any{
		"images": []map[string]string{{"filename": name, "type": "base64", "data": base64.StdEncoding.EncodeToString(img)}},
	}
}

func TestIntegrationRunWaitWritesOutputs(t *testing.T) {
	t.Parallel()
	fake := clockwork.NewFakeClockAt(epoch)
	srv := startEmulator(t, &runpodtest.Config{Clock: fake})
	c := newClient(t, srv, sharedStepClock(fake), runpod.WithLongPoll(10*time.Second))
	ctx := testContext(t, 30*time.Second)

	job, err := c.Run(ctx, &runpod.Request{Input: map[string]any{"prompt": "a cat", "seed": 7}})
	if err != nil {
		t.Fatal(err)
	}
	if job.State != runpod.StateInQueue || !strings.HasSuffix(job.ID, "-u1") {
		t.Errorf("submitted %s %s, want IN_QUEUE and a <uuid>-u1 id", job.ID, job.State)
	}
	sj, ok := srv.Job(job.ID)
	if !ok || string(sj.Input) != `{"prompt":"a cat","seed":7}` {
		t.Fatalf("emulator job %+v: the input did not arrive as sent", sj)
	}

	var log eventLog
	type result struct {
		st  *runpod.Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := job.Wait(ctx, &runpod.WaitOptions{OnEvent: log.add, ColdStartAfter: -1})
		done <- result{st, err}
	}()

	// The first long poll ends at its wait and reports the progress; the
	// second is still held when the job completes, and answers at once.
	if err := srv.ProgressJob(job.ID, map[string]any{"step": 10, "of": 20}); err != nil {
		t.Fatal(err)
	}
	if err := awaitHeld(ctx, srv, runpodtest.OpStatusSync, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Second)
	if err := awaitHeld(ctx, srv, runpodtest.OpStatusSync, 2); err != nil {
		t.Fatal(err)
	}
	img := testPNG(t, 24, 16, 3)
	if err := srv.CompleteJob(job.ID, comfyOutput("ComfyUI_00001_.png", img)); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("Wait did not return")
	}
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	st := r.st
	defer st.Close()
	if st.State != runpod.StateCompleted || st.ID != job.ID {
		t.Errorf("status %s %s", st.ID, st.State)
	}
	if got, want := strings.Join(log.kinds(), " "), "state:IN_PROGRESS progress state:COMPLETED"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if ev := log.all(); len(ev) > 1 && string(ev[1].Progress) != `{"of":20,"step":10}` {
		t.Errorf("progress event %s", ev[1].Progress)
	}

	var out struct {
		Images []struct{ Filename, Type, Data string }
	}
	if err := st.DecodeOutput(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 1 || out.Images[0].Filename != "ComfyUI_00001_.png" || out.Images[0].Type != "base64" {
		t.Errorf("decoded output %+v", out)
	}
	dir := t.TempDir()
	files, err := st.WriteOutputs(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name != "ComfyUI_00001_.png" || files[0].MediaType != "image/png" || files[0].Size != int64(len(img)) {
		t.Fatalf("written %+v", files)
	}
	got, err := os.ReadFile(filepath.Join(dir, "ComfyUI_00001_.png"))
	if err != nil || !bytes.Equal(got, img) {
		t.Errorf("the written file differs from the worker's image (%v)", err)
	}

	// Everything went through the long poll: one submission, no /status.
	counts := srv.RequestCounts()
	if counts[runpodtest.OpRun] != 1 || counts[runpodtest.OpStatusSync] != 2 || counts[runpodtest.OpStatus] != 0 {
		t.Errorf("requests %v, want 1 run, 2 status-sync, no status", counts)
	}
}

func TestIntegrationWorkedByATestWorker(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	img := testPNG(t, 8, 8, 9)
	w, err := srv.StartWorker(ctx, func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		var in struct{ Name string }
		if err := json.Unmarshal(job.Input, &in); err != nil {
			return nil, err
		}
		if err := job.Progress(ctx, "loading"); err != nil {
			return nil, err
		}
		return comfyOutput(in.Name, img), nil
	}, &runpodtest.WorkerOptions{ID: "pod-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c := newClient(t, srv, newStepClock())

	job, err := c.Run(ctx, &runpod.Request{Input: map[string]string{"name": "../../etc/out.png"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := job.Wait(ctx, &runpod.WaitOptions{ColdStartAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.State != runpod.StateCompleted || st.WorkerID != "pod-a" {
		t.Errorf("status %s by %q", st.State, st.WorkerID)
	}
	dir := t.TempDir()
	files, err := st.WriteOutputs(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The worker's file name is stripped of its directories.
	if len(files) != 1 || files[0].Path != filepath.Join(dir, "out.png") {
		t.Fatalf("written %+v", files)
	}
	if got, _ := os.ReadFile(files[0].Path); !bytes.Equal(got, img) {
		t.Error("the written file differs from the worker's image")
	}
}

func TestIntegrationRunSync(t *testing.T) {
	t.Parallel()
	t.Run("completes within the wait", func(t *testing.T) {
		t.Parallel()
		srv := startEmulator(t, nil)
		ctx := testContext(t, 30*time.Second)
		w, err := srv.StartWorker(ctx, func(_ context.Context, job *runpodtest.WorkerJob) (any, error) {
			return map[string]json.RawMessage{"echo": job.Input}, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		c := newClient(t, srv, newStepClock())
		st, err := c.RunSync(ctx, &runpod.Request{Input: map[string]int{"n": 1}}, &runpod.RunSyncOptions{Wait: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if st.State != runpod.StateCompleted || !strings.HasPrefix(st.ID, "sync-") || string(st.Output) != `{"echo":{"n":1}}` {
			t.Errorf("status %s %s %s", st.ID, st.State, st.Output)
		}
		if n := srv.Requests(runpodtest.OpStatusSync) + srv.Requests(runpodtest.OpStatus); n != 0 {
			t.Errorf("%d status calls after a /runsync that answered the end", n)
		}
		if j, _ := srv.Job(st.ID); !j.Sync {
			t.Error("the emulator did not record a /runsync job")
		}
	})
	t.Run("keeps waiting on the id when the wait ends first", func(t *testing.T) {
		t.Parallel()
		fake := clockwork.NewFakeClockAt(epoch)
		srv := startEmulator(t, &runpodtest.Config{Clock: fake})
		ctx := testContext(t, 30*time.Second)
		c := newClient(t, srv, sharedStepClock(fake), runpod.WithLongPoll(10*time.Second))
		var log eventLog
		type result struct {
			st  *runpod.Status
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := c.RunSync(ctx, &runpod.Request{Input: "x"}, &runpod.RunSyncOptions{Wait: 2 * time.Second, WaitOptions: runpod.WaitOptions{OnEvent: log.add, ColdStartAfter: -1}})
			done <- result{st, err}
		}()
		if err := awaitHeld(ctx, srv, runpodtest.OpRunsync, 1); err != nil {
			t.Fatal(err)
		}
		id := onlyJob(t, srv)
		if err := srv.StartJob(id); err != nil {
			t.Fatal(err)
		}
		fake.Advance(2 * time.Second) // RunPod's wait ends: IN_PROGRESS
		if err := awaitHeld(ctx, srv, runpodtest.OpStatusSync, 1); err != nil {
			t.Fatal(err)
		}
		if err := srv.CompleteJob(id, "done"); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.st.Close()
		if r.st.ID != id || r.st.State != runpod.StateCompleted || string(r.st.Output) != `"done"` {
			t.Errorf("status %s %s %s, want %s COMPLETED", r.st.ID, r.st.State, r.st.Output, id)
		}
		if n := srv.Requests(runpodtest.OpRunsync); n != 1 {
			t.Errorf("%d /runsync requests, want 1", n)
		}
	})
}

func TestIntegrationStatus(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	c := newClient(t, srv, newStepClock())
	job, err := c.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := job.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runpod.StateInQueue || st.HasOutput() {
		t.Errorf("queued job: %s, output %v", st.State, st.HasOutput())
	}
	if err := srv.ProgressJob(job.ID, map[string]float64{"progress": 0.25}); err != nil {
		t.Fatal(err)
	}
	st, err = c.Status(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runpod.StateInProgress || string(st.Output) != `{"progress":0.25}` {
		t.Errorf("running job: %s %s", st.State, st.Output)
	}
	if err := srv.CompleteJob(job.ID, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	st, err = job.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runpod.StateCompleted || string(st.Output) != `[1,2]` || st.Err() != nil {
		t.Errorf("finished job: %s %s %v", st.State, st.Output, st.Err())
	}
}

func TestIntegrationStream(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	chunks := []string{"a cat", " on a", " mat"}
	w, err := srv.StartWorker(ctx, func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		for _, ch := range chunks {
			if err := job.Stream(ctx, map[string]string{"text": ch}); err != nil {
				return nil, err
			}
		}
		var in struct{ Fail bool }
		_ = json.Unmarshal(job.Input, &in)
		if in.Fail {
			return nil, errors.New("handler: out of tokens \ntraceback: line 3")
		}
		return strings.Join(chunks, ""), nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c := newClient(t, srv, newStepClock())

	follow := func(input any) ([]string, error) {
		job, err := c.Run(ctx, &runpod.Request{Input: input})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		var last error
		for ch, err := range job.Stream(ctx) {
			if err != nil {
				last = err
				continue
			}
			var v struct{ Text string }
			if err := json.Unmarshal(ch.Output, &v); err != nil {
				t.Fatalf("chunk %s: %v", ch.Output, err)
			}
			got = append(got, v.Text)
		}
		j, _ := srv.Job(job.ID)
		if j.StreamReturned != len(chunks) {
			t.Errorf("the emulator handed out %d chunks, want %d", j.StreamReturned, len(chunks))
		}
		return got, last
	}

	got, err := follow(map[string]bool{"fail": false})
	if err != nil || !slices.Equal(got, chunks) {
		t.Errorf("chunks %q, %v; want %q once each, in order", got, err, chunks)
	}
	got, err = follow(map[string]bool{"fail": true})
	var je *runpod.JobError
	if !slices.Equal(got, chunks) || !errors.As(err, &je) || je.State != runpod.StateFailed || je.Message != "out of tokens" || je.Traceback != "line 3" {
		t.Errorf("failed stream: chunks %q, last error %v", got, err)
	}
}

func TestIntegrationCancel(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	c := newClient(t, srv, newStepClock())

	queued, err := c.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	running, err := c.Run(ctx, &runpod.Request{Input: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartJob(running.ID); err != nil {
		t.Fatal(err)
	}
	for _, job := range []*runpod.Job{queued, running} {
		st, err := job.Cancel(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != runpod.StateCancelled {
			t.Errorf("cancel answered %s", st.State)
		}
		sj, _ := srv.Job(job.ID)
		if sj.Status != runpodtest.StatusCancelled || sj.History[len(sj.History)-1].Reason != "cancelled by the client" {
			t.Errorf("emulator: %s, history %+v", sj.Status, sj.History)
		}
		st, err = job.Wait(ctx, nil)
		if !errors.Is(err, runpod.ErrJobCancelled) || st == nil || st.State != runpod.StateCancelled {
			t.Errorf("Wait after cancel: %v, %v", st, err)
		}
	}
	// Cancelling a finished job leaves it as it is.
	done, err := c.Run(ctx, &runpod.Request{Input: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CompleteJob(done.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Cancel(ctx, done.ID)
	if err != nil || st.State != runpod.StateCompleted {
		t.Errorf("cancel of a completed job: %v, %v", st, err)
	}
	if n := srv.Requests(runpodtest.OpCancel); n != 3 {
		t.Errorf("%d cancel requests, want 3", n)
	}
}

func TestIntegrationRetryFailedJob(t *testing.T) {
	t.Parallel()
	fake := clockwork.NewFakeClockAt(epoch)
	srv := startEmulator(t, &runpodtest.Config{Clock: fake})
	ctx := testContext(t, 30*time.Second)
	c := newClient(t, srv, sharedStepClock(fake))
	job, err := c.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.FailJob(job.ID, "CUDA out of memory"); err != nil {
		t.Fatal(err)
	}
	st, err := job.Wait(ctx, nil)
	if !errors.Is(err, runpod.ErrJobFailed) || st.Error != "CUDA out of memory" {
		t.Fatalf("Wait: %v, %v", st, err)
	}

	again, err := c.Retry(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != job.ID || again.State != runpod.StateInQueue {
		t.Errorf("retry answered %s %s, want the same id IN_QUEUE", again.ID, again.State)
	}
	if err := srv.CompleteJob(job.ID, "second time lucky"); err != nil {
		t.Fatal(err)
	}
	st, err = again.Wait(ctx, nil)
	if err != nil || string(st.Output) != `"second time lucky"` || st.Retries != 1 {
		t.Fatalf("after retry: %v, %v", st, err)
	}

	// A TIMED_OUT job can be retried too.
	slow, err := c.Run(ctx, &runpod.Request{Input: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartJob(slow.ID); err != nil {
		t.Fatal(err)
	}
	fake.Advance(runpodtest.ExecutionTimeoutDefault)
	if _, err := slow.Wait(ctx, nil); !errors.Is(err, runpod.ErrJobTimedOut) {
		t.Fatalf("Wait past the execution timeout: %v", err)
	}
	if again, err := c.Retry(ctx, slow.ID); err != nil || again.State != runpod.StateInQueue {
		t.Fatalf("retry of a timed-out job: %v, %v", again, err)
	}

	// Only FAILED and TIMED_OUT jobs can be retried; RunPod says why.
	_, err = c.Retry(ctx, job.ID)
	var ae *runpod.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "only FAILED or TIMED_OUT") {
		t.Errorf("retry of a completed job: %v", err)
	}
	if errors.Is(err, runpod.ErrMaybeSubmitted) || errors.Is(err, runpod.ErrPayloadTooLarge) {
		t.Errorf("a refused retry is %v", err)
	}
	if n := srv.Requests(runpodtest.OpRetry); n != 3 {
		t.Errorf("%d retry requests, want 3", n)
	}
}

func TestIntegrationPurgeQueue(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	c := newClient(t, srv, newStepClock())
	var jobs []*runpod.Job
	for i := range 3 {
		j, err := c.Run(ctx, &runpod.Request{Input: i})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if err := srv.StartJob(jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	res, err := c.PurgeQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 2 || res.Status != "completed" {
		t.Errorf("purge: %+v, want 2 removed", res)
	}
	if st, err := jobs[0].Status(ctx); err != nil || st.State != runpod.StateInProgress {
		t.Errorf("the running job: %v, %v", st, err)
	}
	for _, j := range jobs[1:] {
		_, err := j.Status(ctx)
		if !errors.Is(err, runpod.ErrJobNotFound) || errors.Is(err, runpod.ErrEndpointNotFound) {
			t.Errorf("a purged job: %v, want ErrJobNotFound", err)
		}
	}
	h, err := c.Health(ctx)
	if err != nil || h.Jobs.InQueue != 0 || h.Jobs.InProgress != 1 {
		t.Errorf("health after purge: %+v, %v", h, err)
	}

	// A /runsync whose queued job is purged while RunPod holds the answer
	// learns that the job is gone.
	go func() {
		if awaitHeld(ctx, srv, runpodtest.OpRunsync, 1) == nil {
			_, _ = c.PurgeQueue(ctx)
		}
	}()
	_, err = c.RunSync(ctx, &runpod.Request{Input: "sync"}, &runpod.RunSyncOptions{Wait: 60 * time.Second})
	if !errors.Is(err, runpod.ErrJobNotFound) || errors.Is(err, runpod.ErrEndpointNotFound) {
		t.Errorf("runsync of a purged job: %v, want ErrJobNotFound", err)
	}
}

func TestIntegrationHealth(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	c := newClient(t, srv, newStepClock())
	h, err := c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Warm() || *h != (runpod.Health{}) {
		t.Errorf("fresh endpoint: %+v", h)
	}
	for i, fail := range []bool{false, false, true} {
		j, err := c.Run(ctx, &runpod.Request{Input: i})
		if err != nil {
			t.Fatal(err)
		}
		if fail {
			err = srv.FailJob(j.ID, "boom")
		} else {
			err = srv.CompleteJob(j.ID, i)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Run(ctx, &runpod.Request{Input: "queued"}); err != nil {
		t.Fatal(err)
	}
	w, err := srv.StartWorker(ctx, func(ctx context.Context, _ *runpodtest.WorkerJob) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := srv.Await(ctx, func() bool { h, _ := srv.Health(srv.EndpointID()); return h.Workers.Running == 1 }); err != nil {
		t.Fatal(err)
	}
	h, err = c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := runpod.Health{
		Jobs:    runpod.HealthJobs{Completed: 2, Failed: 1, InProgress: 1},
		Workers: runpod.HealthWorkers{Running: 1, Ready: 1},
	}
	if *h != want || !h.Warm() {
		t.Errorf("health %+v, want %+v", *h, want)
	}
}

func TestIntegrationErrors(t *testing.T) {
	t.Parallel()
	t.Run("401 bad key", func(t *testing.T) {
		t.Parallel()
		srv := startEmulator(t, nil)
		ctx := testContext(t, 30*time.Second)
		c := newClientFor(t, srv, srv.EndpointID(), "rpa_WRONG", newStepClock())
		_, err := c.Run(ctx, &runpod.Request{Input: 1})
		var ae *runpod.APIError
		if !errors.Is(err, runpod.ErrUnauthorized) || !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Run: %v", err)
		}
		if errors.Is(err, runpod.ErrMaybeSubmitted) {
			t.Errorf("a refused key is not a lost answer: %v", err)
		}
		if strings.Contains(err.Error(), "rpa_WRONG") || bytes.Contains(ae.Body, []byte("rpa_WRONG")) {
			t.Errorf("the key leaked into the error: %v", err)
		}
		if _, err := c.Health(ctx); !errors.Is(err, runpod.ErrUnauthorized) {
			t.Errorf("Health: %v", err)
		}
		if _, err := c.Status(ctx, "some-job-u1"); !errors.Is(err, runpod.ErrUnauthorized) {
			t.Errorf("Status: %v", err)
		}
		if n := srv.Requests(runpodtest.OpRun); n != 1 || len(srv.Jobs()) != 0 {
			t.Errorf("%d run requests and %d jobs, want 1 and none", n, len(srv.Jobs()))
		}
	})
	t.Run("404 unknown endpoint", func(t *testing.T) {
		t.Parallel()
		srv := startEmulator(t, nil)
		ctx := testContext(t, 30*time.Second)
		c := newClientFor(t, srv, "no-such-endpoint", testKey, newStepClock())
		_, err := c.Run(ctx, &runpod.Request{Input: 1})
		if !errors.Is(err, runpod.ErrEndpointNotFound) || errors.Is(err, runpod.ErrMaybeSubmitted) {
			t.Errorf("Run: %v", err)
		}
		if _, err := c.Health(ctx); !errors.Is(err, runpod.ErrEndpointNotFound) {
			t.Errorf("Health: %v", err)
		}
		// A job call answers 404 too; /health tells the endpoint is unknown.
		_, err = c.Status(ctx, "some-job-u1")
		if !errors.Is(err, runpod.ErrEndpointNotFound) || errors.Is(err, runpod.ErrJobNotFound) {
			t.Errorf("Status: %v", err)
		}
		job, _ := c.Job("some-job-u1")
		if _, err := job.Wait(ctx, nil); !errors.Is(err, runpod.ErrEndpointNotFound) {
			t.Errorf("Wait: %v", err)
		}
		if !strings.Contains(err.Error(), `"no-such-endpoint"`) {
			t.Errorf("the error does not name the endpoint: %v", err)
		}
	})
	t.Run("404 expired job", func(t *testing.T) {
		t.Parallel()
		fake := clockwork.NewFakeClockAt(epoch)
		srv := startEmulator(t, &runpodtest.Config{Clock: fake})
		ctx := testContext(t, 30*time.Second)
		c := newClient(t, srv, sharedStepClock(fake))
		notFound := func(what string, err error) {
			t.Helper()
			var ae *runpod.APIError
			if !errors.Is(err, runpod.ErrJobNotFound) || errors.Is(err, runpod.ErrEndpointNotFound) || !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %v, want a 404 matching ErrJobNotFound", what, err)
			}
		}

		// /run results are kept 30 min after the job ends.
		job, err := c.Run(ctx, &runpod.Request{Input: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.CompleteJob(job.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		fake.Advance(runpodtest.RunRetentionDefault - time.Second)
		if st, err := job.Status(ctx); err != nil || st.State != runpod.StateCompleted {
			t.Fatalf("within retention: %v, %v", st, err)
		}
		fake.Advance(2 * time.Second)
		_, err = job.Status(ctx)
		notFound("after retention", err)
		_, err = job.Wait(ctx, nil)
		notFound("Wait after retention", err)
		_, err = c.Retry(ctx, job.ID)
		notFound("Retry after retention", err)

		// /runsync results are kept 1 min.
		go func() {
			_ = awaitHeld(ctx, srv, runpodtest.OpRunsync, 1)
			if jobs := srv.Jobs(); len(jobs) == 1 {
				_ = srv.CompleteJob(jobs[0].ID, "sync")
			}
		}()
		st, err := c.RunSync(ctx, &runpod.Request{Input: 2}, &runpod.RunSyncOptions{Wait: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		fake.Advance(runpodtest.RunsyncRetentionDefault + time.Second)
		_, err = c.Status(ctx, st.ID)
		notFound("runsync after retention", err)

		// A /runsync job deleted while RunPod holds the answer is a job
		// that is gone, not an endpoint that is unknown.
		go func() {
			_ = awaitHeld(ctx, srv, runpodtest.OpRunsync, 2)
			if jobs := srv.Jobs(); len(jobs) == 1 {
				_ = srv.ExpireJob(jobs[0].ID)
			}
		}()
		_, err = c.RunSync(ctx, &runpod.Request{Input: 3}, &runpod.RunSyncOptions{Wait: 30 * time.Second})
		notFound("runsync deleted while held", err)
		if errors.Is(err, runpod.ErrMaybeSubmitted) {
			t.Errorf("a 404 is an answer: %v", err)
		}

		// A ttl deletes the job whatever its state, here while Wait holds a
		// long poll on it.
		job, err = c.Run(ctx, &runpod.Request{Input: 4, Policy: &runpod.Policy{TTL: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		if sj, _ := srv.Job(job.ID); sj.Policy.TTL != 10*time.Second {
			t.Errorf("the emulator got ttl %s", sj.Policy.TTL)
		}
		next := srv.Requests(runpodtest.OpStatusSync) + 1
		go func() {
			if awaitHeld(ctx, srv, runpodtest.OpStatusSync, next) == nil {
				fake.Advance(11 * time.Second)
			}
		}()
		_, err = job.Wait(ctx, &runpod.WaitOptions{ColdStartAfter: -1})
		notFound("Wait past the ttl", err)
		if sj, _ := srv.Job(job.ID); !strings.Contains(sj.Deleted, "ttl") {
			t.Errorf("the emulator deleted the job because %q", sj.Deleted)
		}
	})
	t.Run("400 over the payload limit", func(t *testing.T) {
		t.Parallel()
		// A 1 MB limit instead of RunPod's 10 MB keeps the test light.
		const limit = 1 << 20
		srv := startEmulator(t, &runpodtest.Config{MaxRunBytes: limit})
		ctx := testContext(t, 30*time.Second)
		big := &runpod.Request{Input: map[string]string{"image": strings.Repeat("A", limit)}}

		// The client refuses it before sending, naming the limit.
		c := newClient(t, srv, newStepClock(), runpod.WithPayloadLimits(limit, 2*limit))
		_, err := c.Run(ctx, big)
		if !errors.Is(err, runpod.ErrPayloadTooLarge) || !strings.Contains(err.Error(), "over the 1.0 MB limit of /run") {
			t.Errorf("client-side check: %v", err)
		}
		if n := srv.Requests(runpodtest.OpRun); n != 0 {
			t.Fatalf("%d oversized requests sent", n)
		}

		// With the check off, RunPod's 400 comes back typed, naming it too.
		c = newClient(t, srv, newStepClock(), runpod.WithPayloadLimits(0, 0))
		_, err = c.Run(ctx, big)
		var ae *runpod.APIError
		if !errors.Is(err, runpod.ErrPayloadTooLarge) || !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
			t.Fatalf("server-side limit: %v", err)
		}
		if !strings.Contains(ae.Message, "payload limit for /run") || !strings.Contains(ae.Message, "RunPod said: /run payload is larger than the 1 MB limit") {
			t.Errorf("the error does not name the limit: %s", ae.Message)
		}
		if errors.Is(err, runpod.ErrMaybeSubmitted) || len(srv.Jobs()) != 0 || srv.Requests(runpodtest.OpRun) != 1 {
			t.Errorf("a refused payload: %v, %d jobs, %d requests", err, len(srv.Jobs()), srv.Requests(runpodtest.OpRun))
		}
	})
	t.Run("429 with Retry-After", func(t *testing.T) {
		t.Parallel()
		srv := startEmulator(t, nil)
		ctx := testContext(t, 30*time.Second)
		if _, err := srv.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultRateLimit, Times: 2, RetryAfter: 1500 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		clk := newStepClock()
		c := newClient(t, srv, clk)
		job, err := c.Run(ctx, &runpod.Request{Input: 1})
		if err != nil {
			t.Fatalf("Run through two 429s: %v", err)
		}
		// Retry-After is sent in whole seconds, rounded up; the client
		// waits that long rather than its own millisecond backoff.
		if got := clk.Sleeps(); !slices.Equal(got, []time.Duration{2 * time.Second, 2 * time.Second}) {
			t.Errorf("waits %v, want RunPod's Retry-After (2s) twice", got)
		}
		// A refused submission is safe to resend: one job, three requests.
		if n, jobs := srv.Requests(runpodtest.OpRun), srv.Jobs(); n != 3 || len(jobs) != 1 || jobs[0].ID != job.ID {
			t.Errorf("%d run requests and %d jobs, want 3 and 1", n, len(jobs))
		}

		// When the policy gives up, the 429 comes back typed.
		if _, err := srv.AddFault(runpodtest.Fault{Op: runpodtest.OpHealth, Action: runpodtest.FaultRateLimit, RetryAfter: 3 * time.Second}); err != nil {
			t.Fatal(err)
		}
		clk = newStepClock()
		c = newClient(t, srv, clk, runpod.WithRetryPolicy(fastRetry(1)))
		_, err = c.Health(ctx)
		var rl *runpod.RateLimitError
		if !errors.Is(err, runpod.ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second || rl.StatusCode != http.StatusTooManyRequests {
			t.Errorf("Health: %v", err)
		}
		if got := clk.Sleeps(); !slices.Equal(got, []time.Duration{3 * time.Second}) {
			t.Errorf("waits %v, want one of 3s", got)
		}
		if n := srv.Requests(runpodtest.OpHealth); n != 2 {
			t.Errorf("%d health requests, want 2", n)
		}
	})
}

func TestIntegrationPythonStyleJobError(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	raw := pythonError(t, "ValueError", "seed must be positive", "pod-b")
	w, err := srv.StartWorker(ctx, func(context.Context, *runpodtest.WorkerJob) (any, error) {
		return nil, errors.New(raw)
	}, &runpodtest.WorkerOptions{ID: "pod-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c := newClient(t, srv, newStepClock())
	job, err := c.Run(ctx, &runpod.Request{Input: map[string]int{"seed": -1}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := job.Wait(ctx, nil)
	var je *runpod.JobError
	if !errors.As(err, &je) || !errors.Is(err, runpod.ErrJobFailed) {
		t.Fatalf("Wait: %v", err)
	}
	if st == nil || st.State != runpod.StateFailed || st.Error != raw {
		t.Errorf("status %+v", st)
	}
	want := runpod.JobError{
		JobID: job.ID, State: runpod.StateFailed, Message: "seed must be positive", Type: "ValueError",
		Hostname: "pod-pod-b", WorkerID: "pod-b", RunpodVersion: "1.12.0", Raw: raw,
	}
	got := *je
	got.Traceback = ""
	if !strings.HasPrefix(je.Traceback, "Traceback (most recent call last):") {
		t.Errorf("traceback %q", je.Traceback)
	}
	if got.JobID != want.JobID || got.State != want.State || got.Message != want.Message || got.Type != want.Type ||
		got.Hostname != want.Hostname || got.WorkerID != want.WorkerID || got.RunpodVersion != want.RunpodVersion || got.Raw != want.Raw {
		t.Errorf("job error %+v, want %+v", got, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "ValueError: seed must be positive") || !strings.Contains(msg, "pod-b") {
		t.Errorf("message %q", msg)
	}
}

func TestIntegrationColdStart(t *testing.T) {
	t.Parallel()
	fake := clockwork.NewFakeClockAt(epoch)
	srv := startEmulator(t, &runpodtest.Config{Clock: fake, ColdStart: 2 * time.Minute})
	ctx := testContext(t, 30*time.Second)
	w, err := srv.StartWorker(ctx, func(context.Context, *runpodtest.WorkerJob) (any, error) {
		return "warm now", nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := srv.Await(ctx, func() bool { h, _ := srv.Health(srv.EndpointID()); return h.Workers.Initializing == 1 }); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, sharedStepClock(fake), runpod.WithLongPoll(10*time.Second))
	job, err := c.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	// Fake time passes only while the job waits in the queue: once the cold
	// start is over and the worker holds the job, it finishes in real time.
	queued := func() bool {
		j, ok := srv.Job(job.ID)
		return ok && j.Status == runpodtest.StatusInQueue
	}
	stop := advanceHeldWhile(ctx, srv, fake, runpodtest.OpStatusSync, 10*time.Second, queued)
	st, err := job.Wait(ctx, &runpod.WaitOptions{ColdStartAfter: 30 * time.Second, OnEvent: log.add})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runpod.StateCompleted || string(st.Output) != `"warm now"` {
		t.Errorf("status %s %s", st.State, st.Output)
	}
	var cold []runpod.Event
	for _, e := range log.all() {
		if e.Kind == runpod.EventColdStart {
			cold = append(cold, e)
		}
	}
	if len(cold) != 1 {
		t.Fatalf("events %v, want one cold start", log.kinds())
	}
	e := cold[0]
	if e.Health == nil || e.Health.Warm() || e.Health.Workers.Initializing != 1 || e.State != runpod.StateInQueue || e.Elapsed < 30*time.Second || e.Elapsed >= 2*time.Minute {
		t.Errorf("cold start event %+v (health %+v)", e, e.Health)
	}
	if kinds := log.kinds(); kinds[len(kinds)-1] != "state:COMPLETED" {
		t.Errorf("events %v", kinds)
	}
	if n := srv.Requests(runpodtest.OpHealth); n < 1 {
		t.Errorf("Wait did not ask /health")
	}
}

func TestIntegrationGivingUpCancelsTheJob(t *testing.T) {
	t.Parallel()
	cancelledAtRunPod := func(t *testing.T, srv *runpodtest.Server, id string, err error) {
		t.Helper()
		var we *runpod.WaitError
		if !errors.As(err, &we) || !we.Cancelled || we.CancelErr != nil || we.JobID != id {
			t.Fatalf("Wait: %v (%+v)", err, we)
		}
		if n := srv.Requests(runpodtest.OpCancel); n != 1 {
			t.Errorf("the emulator saw %d cancel requests, want 1", n)
		}
		sj, _ := srv.Job(id)
		if sj.Status != runpodtest.StatusCancelled || sj.History[len(sj.History)-1].Reason != "cancelled by the client" {
			t.Errorf("the emulator's job is %s (%+v), want CANCELLED by the client", sj.Status, sj.History)
		}
	}
	t.Run("client-side timeout", func(t *testing.T) {
		t.Parallel()
		fake := clockwork.NewFakeClockAt(epoch)
		srv := startEmulator(t, &runpodtest.Config{Clock: fake})
		ctx := testContext(t, 30*time.Second)
		c := newClient(t, srv, sharedStepClock(fake), runpod.WithLongPoll(10*time.Second))
		job, err := c.Run(ctx, &runpod.Request{Input: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.StartJob(job.ID); err != nil {
			t.Fatal(err)
		}
		stop := advanceHeld(ctx, srv, fake, runpodtest.OpStatusSync, 10*time.Second)
		_, err = job.Wait(ctx, &runpod.WaitOptions{Timeout: 25 * time.Second, ColdStartAfter: -1})
		stop()
		if !errors.Is(err, runpod.ErrTimeout) {
			t.Fatalf("Wait: %v, want ErrTimeout", err)
		}
		cancelledAtRunPod(t, srv, job.ID, err)
	})
	t.Run("context cancelled", func(t *testing.T) {
		t.Parallel()
		srv := startEmulator(t, nil)
		ctx := testContext(t, 30*time.Second)
		c := newClient(t, srv, newStepClock(), runpod.WithLongPoll(30*time.Second))
		job, err := c.Run(ctx, &runpod.Request{Input: 1})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			if awaitHeld(ctx, srv, runpodtest.OpStatusSync, 1) == nil {
				cancel()
			}
		}()
		_, err = job.Wait(wctx, nil)
		cancel()
		if !errors.Is(err, context.Canceled) || errors.Is(err, runpod.ErrTimeout) {
			t.Fatalf("Wait: %v, want context.Canceled", err)
		}
		cancelledAtRunPod(t, srv, job.ID, err)
	})
}

func TestIntegrationJobEndsAsWaitGivesUp(t *testing.T) {
	t.Parallel()
	// The job completes after Wait's last look and before its cancel
	// arrives: RunPod answers the cancel with the job as it is, COMPLETED.
	fake := clockwork.NewFakeClockAt(epoch)
	srv := startEmulator(t, &runpodtest.Config{Clock: fake})
	ctx := testContext(t, 30*time.Second)
	if _, err := srv.AddFault(runpodtest.Fault{Op: runpodtest.OpCancel, Action: runpodtest.FaultLatency, Latency: 5 * time.Second, Times: 1}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, sharedStepClock(fake), runpod.WithLongPoll(10*time.Second))
	job, err := c.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		if awaitHeld(ctx, srv, runpodtest.OpStatusSync, 1) != nil {
			return
		}
		cancel() // the caller gives up
		if awaitHeld(ctx, srv, runpodtest.OpCancel, 1) != nil {
			return
		}
		_ = srv.CompleteJob(job.ID, "made it")
		fake.Advance(5 * time.Second)
	}()
	_, err = job.Wait(wctx, &runpod.WaitOptions{ColdStartAfter: -1})
	cancel()
	var we *runpod.WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v", err)
	}
	if sj, _ := srv.Job(job.ID); sj.Status != runpodtest.StatusCompleted {
		t.Fatalf("the emulator's job is %s", sj.Status)
	}
	if we.Cancelled || we.State != runpod.StateCompleted || we.CancelErr != nil {
		t.Errorf("wait error %+v: a job that completed was not cancelled", we)
	}
	if msg := err.Error(); strings.Contains(msg, "cancelled it") || !strings.Contains(msg, "COMPLETED") {
		t.Errorf("message %q", msg)
	}
}

func TestIntegrationWebhook(t *testing.T) {
	t.Parallel()
	fake := clockwork.NewFakeClockAt(epoch)
	srv := startEmulator(t, &runpodtest.Config{Clock: fake})
	ctx := testContext(t, 30*time.Second)

	var mu sync.Mutex
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			http.Error(w, "not ready", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()

	c := newClient(t, srv, sharedStepClock(fake))
	job, err := c.Run(ctx, &runpod.Request{Input: 1, Webhook: hook.URL + "/done?token=secret"})
	if err != nil {
		t.Fatal(err)
	}
	// The handle can be handed to the webhook instead of waiting.
	job.Release()
	img := testPNG(t, 4, 4, 1)
	if err := srv.CompleteJob(job.ID, comfyOutput("a.png", img)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Await(ctx, func() bool { return len(srv.Webhooks()) == 1 }); err != nil {
		t.Fatal(err)
	}
	fake.Advance(runpodtest.WebhookRetryDelayDefault) // RunPod retries 10 s later
	if err := srv.Await(ctx, func() bool { return len(srv.Webhooks()) == 2 }); err != nil {
		t.Fatal(err)
	}
	hooks := srv.Webhooks()
	if hooks[0].Delivered || hooks[0].StatusCode != http.StatusInternalServerError || !hooks[1].Delivered || hooks[1].Attempt != 2 {
		t.Errorf("deliveries %+v", hooks)
	}
	mu.Lock()
	got := slices.Clone(bodies)
	mu.Unlock()
	if len(got) != 2 || !bytes.Equal(got[0], got[1]) {
		t.Fatalf("the receiver got %d bodies, want the same status twice", len(got))
	}
	st, err := c.ReadStatus(bytes.NewReader(got[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.ID != job.ID || st.State != runpod.StateCompleted {
		t.Errorf("webhook status %s %s", st.ID, st.State)
	}
	files, err := st.WriteOutputs(ctx, t.TempDir())
	if err != nil || len(files) != 1 || files[0].Size != int64(len(img)) {
		t.Errorf("webhook outputs %+v, %v", files, err)
	}
}

func TestIntegrationLimiter(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	lim, err := runpod.NewLimiter(2)
	if err != nil {
		t.Fatal(err)
	}
	c1 := newClient(t, srv, newStepClock(), runpod.WithLimiter(lim))
	c2 := newClient(t, srv, newStepClock(), runpod.WithLimiter(lim)) // one limiter, two clients
	j1, err := c1.Run(ctx, &runpod.Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	j2, err := c2.Run(ctx, &runpod.Request{Input: 2})
	if err != nil {
		t.Fatal(err)
	}
	full := func(step string) {
		t.Helper()
		if lim.InUse() != 2 {
			t.Fatalf("%s: %d slots in use, want 2", step, lim.InUse())
		}
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		before := srv.Requests(runpodtest.OpRun)
		if _, err := c1.Run(short, &runpod.Request{Input: "more"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: a third job was not held back: %v", step, err)
		}
		if srv.Requests(runpodtest.OpRun) != before {
			t.Fatalf("%s: a job was sent without a free slot", step)
		}
	}
	full("two jobs queued")

	// A job that ends at RunPod keeps its slot until the client sees it end.
	if err := srv.CompleteJob(j1.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	full("one job done, not yet seen")
	if _, err := j1.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if lim.InUse() != 1 {
		t.Fatalf("%d slots in use after Wait saw the end, want 1", lim.InUse())
	}

	// RunSync holds a slot for the whole call.
	var wg sync.WaitGroup
	wg.Go(func() {
		st, err := c2.RunSync(ctx, &runpod.Request{Input: "sync"}, &runpod.RunSyncOptions{Wait: 30 * time.Second})
		if !errors.Is(err, runpod.ErrJobFailed) || st == nil || st.State != runpod.StateFailed {
			t.Errorf("RunSync: %v, %v", st, err)
		}
	})
	if err := awaitHeld(ctx, srv, runpodtest.OpRunsync, 1); err != nil {
		t.Fatal(err)
	}
	full("a runsync in flight")
	var syncID string
	for _, j := range srv.Jobs() {
		if j.Sync {
			syncID = j.ID
		}
	}
	if err := srv.FailJob(syncID, "boom"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if lim.InUse() != 1 {
		t.Fatalf("%d slots in use after the runsync failed, want 1", lim.InUse())
	}

	// Cancel, Status and Release give slots back too.
	if _, err := j2.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if lim.InUse() != 0 {
		t.Fatalf("%d slots in use after cancel", lim.InUse())
	}
	j3, err := c1.Run(ctx, &runpod.Request{Input: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.FailJob(j3.ID, "boom"); err != nil {
		t.Fatal(err)
	}
	if st, err := j3.Status(ctx); err != nil || st.State != runpod.StateFailed || lim.InUse() != 0 {
		t.Fatalf("status of a failed job: %v, %v; %d in use", st, err, lim.InUse())
	}
	j4, err := c1.Run(ctx, &runpod.Request{Input: 4})
	if err != nil {
		t.Fatal(err)
	}
	j4.Release()
	j4.Release()
	if lim.InUse() != 0 {
		t.Errorf("%d slots in use after release", lim.InUse())
	}
	// So does a streamed job that is gone.
	j5, err := c1.Run(ctx, &runpod.Request{Input: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ExpireJob(j5.ID); err != nil {
		t.Fatal(err)
	}
	var last error
	for _, err := range j5.Stream(ctx) {
		last = err
	}
	if !errors.Is(last, runpod.ErrJobNotFound) || lim.InUse() != 0 {
		t.Errorf("stream of a deleted job: %v, %d slots in use", last, lim.InUse())
	}
	// A lost submission gives its slot back at once.
	if _, err := srv.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultDropAnswer, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Run(ctx, &runpod.Request{Input: 6}); !errors.Is(err, runpod.ErrMaybeSubmitted) || lim.InUse() != 0 {
		t.Errorf("lost submission: %v, %d in use", err, lim.InUse())
	}
}

func TestIntegrationKeepWarm(t *testing.T) {
	t.Parallel()
	srv := startEmulator(t, nil)
	ctx := testContext(t, 30*time.Second)
	fake := clockwork.NewFakeClockAt(epoch)
	lim, _ := runpod.NewLimiter(1)
	c := newClient(t, srv, timerClock{fake}, runpod.WithLimiter(lim))
	checks := make(chan *runpod.Health, 8)
	kw, err := c.NewKeepWarm(runpod.KeepWarmConfig{
		Interval: time.Minute,
		Warmup:   &runpod.Request{Input: map[string]bool{"warmup": true}, Policy: &runpod.Policy{TTL: time.Minute}},
		OnHealth: func(h *runpod.Health, err error) {
			if err != nil {
				t.Error(err)
			}
			checks <- h
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *runpod.Health {
		t.Helper()
		select {
		case h := <-checks:
			return h
		case <-ctx.Done():
			t.Fatal("no health check")
			return nil
		}
	}
	if err := kw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kw.Start(ctx); err == nil {
		t.Error("a second Start was accepted")
	}

	// Nobody is up and nothing is queued: a warm-up job goes in.
	if h := next(); h.Warm() || h.Jobs.InQueue != 0 {
		t.Errorf("first check %+v", h)
	}
	if err := srv.Await(ctx, func() bool { return len(srv.Jobs()) == 1 }); err != nil {
		t.Fatal(err)
	}
	warm := srv.Jobs()[0]
	if string(warm.Input) != `{"warmup":true}` || warm.Policy.TTL != time.Minute {
		t.Errorf("warm-up job %s ttl %s", warm.Input, warm.Policy.TTL)
	}
	if lim.InUse() != 0 {
		t.Errorf("the warm-up job took a limiter slot")
	}

	// The next check sees it queued and submits nothing more.
	if err := fake.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Minute)
	if h := next(); h.Jobs.InQueue != 1 {
		t.Errorf("second check %+v", h)
	}

	// A worker takes it; the endpoint is warm and stays without warm-ups.
	w, err := srv.StartWorker(ctx, func(context.Context, *runpodtest.WorkerJob) (any, error) { return "warm", nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := srv.WaitStatus(ctx, warm.ID, runpodtest.StatusCompleted); err != nil {
		t.Fatal(err)
	}
	if err := fake.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Minute)
	if h := next(); !h.Warm() {
		t.Errorf("third check %+v", h)
	}
	if err := kw.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kw.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if n := srv.Requests(runpodtest.OpRun); n != 1 {
		t.Errorf("%d warm-up jobs, want 1", n)
	}
	if n := srv.Requests(runpodtest.OpHealth); n != 3 {
		t.Errorf("%d health checks, want 3", n)
	}
}
