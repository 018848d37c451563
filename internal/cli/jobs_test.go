package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/runpod"
)

func TestJobCommandsParseFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := jobsFactory("http://127.0.0.1:1/v2")

	var st *StatusOptions
	cmd := NewCmdStatus(f, func(_ context.Context, o *StatusOptions) error { st = o; return nil })
	cmd.SetArgs([]string{"job-1", "--wait", "--timeout", "10m", "--out", "o", "--json", "--api-key", "flagkey"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if st.JobID != "job-1" || !st.Wait || st.Timeout != 10*time.Minute || st.OutDir != "o" || !st.JSON ||
		st.Conn != (ConnectionOptions{Endpoint: "ep1", APIKey: "flagkey", BaseURL: "http://127.0.0.1:1/v2"}) {
		t.Errorf("status options %+v", st)
	}

	var jo *JobsOptions
	cmd = NewCmdCancel(f, func(_ context.Context, o *JobsOptions) error { jo = o; return nil })
	cmd.SetArgs([]string{"job-2", "--json"})
	if err := cmd.Execute(); err != nil || jo.JobID != "job-2" || !jo.JSON {
		t.Errorf("cancel: %v %+v", err, jo)
	}

	cmd = NewCmdHealth(f, func(_ context.Context, o *JobsOptions) error { jo = o; return nil })
	cmd.SetArgs([]string{"--endpoint", "other", "--base-url", "https://dev-api.runpod.ai/v2"})
	if err := cmd.Execute(); err != nil || jo.Conn.Endpoint != "other" || jo.Conn.BaseURL != "https://dev-api.runpod.ai/v2" || jo.JSON {
		t.Errorf("health: %v %+v", err, jo)
	}

	var po *PurgeQueueOptions
	cmd = NewCmdPurgeQueue(f, func(_ context.Context, o *PurgeQueueOptions) error { po = o; return nil })
	cmd.SetArgs([]string{"--yes"})
	if err := cmd.Execute(); err != nil || !po.Yes {
		t.Errorf("purge-queue: %v %+v", err, po)
	}

	for _, args := range [][]string{{"status"}, {"status", "a", "b"}, {"cancel"}, {"health", "x"}, {"purge-queue"}, {"status", "j", "--timeout", "-1s"}} {
		g, _, _, errOut := jobsFactory("http://127.0.0.1:1/v2")
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
	g, _, _, errOut := jobsFactory("http://127.0.0.1:1/v2")
	Run(context.Background(), g, []string{"purge-queue"})
	if !strings.Contains(errOut.String(), "pass --yes") {
		t.Errorf("purge-queue without --yes: %s", errOut)
	}
}

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	done, png := completedPNG(t, "job-1")
	rp.on("status", 200, done)
	out := t.TempDir()

	f, _, stdout, stderr := jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"status", "job-1", "--out", out}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "ComfyUI_00001_.png")); err != nil || string(b) != string(png) {
		t.Errorf("output not saved: %v", err)
	}
	if !strings.Contains(stderr.String(), "job job-1 COMPLETED (queued 31s, ran 4.2s)") || !strings.HasSuffix(stdout.String(), ".png\n") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}

	f, _, stdout, _ = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"status", "job-1", "--json"}); code != ExitOK || strings.TrimSpace(stdout.String()) != done {
		t.Errorf("--json: exit %d, %q", code, stdout)
	}

	// A failed job is reported; the command itself succeeds.
	rp.on("status", 200, `{"id":"job-1","status":"FAILED","error":"boom"}`)
	f, _, _, stderr = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"status", "job-1"}); code != ExitOK || !strings.Contains(stderr.String(), "failed: boom") {
		t.Errorf("failed job: exit %d, %s", code, stderr)
	}

	// A job still running shows its progress.
	rp.on("status", 200, `{"id":"job-1","status":"IN_PROGRESS","output":"45%"}`)
	f, _, _, stderr = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"status", "job-1"}); code != ExitOK || !strings.Contains(stderr.String(), `progress: "45%"`) {
		t.Errorf("running job: exit %d, %s", code, stderr)
	}

	// Expired or unknown: not found.
	rp.on("status", 404, `{"error":"job not found"}`)
	rp.on("health", 200, `{}`)
	f, _, _, stderr = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"status", "job-1"}); code != ExitNotFound || !strings.Contains(stderr.String(), "expired") {
		t.Errorf("unknown job: exit %d, %s", code, stderr)
	}
}

func TestStatusWait(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	rp.on("status-sync", 200, `{"id":"job-1","status":"IN_PROGRESS"}`, `{"id":"job-1","status":"FAILED","error":"out of memory"}`)
	f, _, _, stderr := jobsFactory(rp.base())
	cmd := NewCmdStatus(f, func(ctx context.Context, o *StatusOptions) error {
		o.ClientOptions = []runpod.Option{runpod.WithClock(&cliClock{now: time.Unix(0, 0)})}
		return runStatus(ctx, o)
	})
	cmd.SetArgs([]string{"job-1", "--wait"})
	err := cmd.ExecuteContext(context.Background())
	if !errors.Is(err, runpod.ErrJobFailed) || exitCode(err) != ExitFailed {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(stderr.String(), "job job-1 IN_PROGRESS") || !strings.Contains(stderr.String(), "job job-1 FAILED") {
		t.Errorf("stderr %s", stderr)
	}
}

func TestCancelHealthPurge(t *testing.T) {
	t.Parallel()
	rp := newFakeRunPod(t)
	rp.on("cancel", 200, `{"id":"job-1","status":"CANCELLED"}`)
	rp.on("health", 200, `{"jobs":{"completed":1,"failed":5,"inProgress":0,"inQueue":2,"retried":0},"workers":{"idle":0,"running":1}}`)
	rp.on("purge-queue", 200, `{"removed":2,"status":"completed"}`)

	f, _, stdout, stderr := jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"cancel", "job-1"}); code != ExitOK || !strings.Contains(stderr.String(), "job job-1 CANCELLED") {
		t.Errorf("cancel: exit %d %s", code, stderr)
	}
	f, _, stdout, _ = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"cancel", "job-1", "--json"}); code != ExitOK || strings.TrimSpace(stdout.String()) != `{"id":"job-1","status":"CANCELLED"}` {
		t.Errorf("cancel --json: exit %d %q", code, stdout)
	}

	f, _, stdout, stderr = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"health"}); code != ExitOK {
		t.Fatalf("health: exit %d %s", code, stderr)
	}
	want := "endpoint ep1\nworkers  idle 0  running 1  initializing 0  ready 0  throttled 0  unhealthy 0\njobs     in queue 2  in progress 0  completed 1  failed 5  retried 0\n"
	if stdout.String() != want {
		t.Errorf("health:\n%s\nwant:\n%s", stdout, want)
	}
	f, _, stdout, _ = jobsFactory(rp.base())
	Run(context.Background(), f, []string{"health", "--json"})
	var h runpod.Health
	if err := json.Unmarshal(stdout.Bytes(), &h); err != nil || h.Jobs.Failed != 5 || h.Workers.Running != 1 {
		t.Errorf("health --json: %v %+v", err, h)
	}

	f, _, stdout, stderr = jobsFactory(rp.base())
	if code := Run(context.Background(), f, []string{"purge-queue", "--yes"}); code != ExitOK || !strings.Contains(stderr.String(), "removed 2 queued job(s) from endpoint ep1") {
		t.Errorf("purge-queue: exit %d %s", code, stderr)
	}
	if len(rp.bodies("purge-queue")) != 1 {
		t.Errorf("purge not sent once")
	}
	for _, a := range rp.auth {
		if a != "Bearer "+cliTestKey {
			t.Errorf("Authorization %q", a)
		}
	}
}

func TestExitCodesForRunPodErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, ExitOK},
		{fmt.Errorf("wrapped: %w", runpod.ErrUnauthorized), ExitAuth},
		{&runpod.APIError{StatusCode: 404}, ExitFailed},
		{fmt.Errorf("x: %w", runpod.ErrEndpointNotFound), ExitNotFound},
		{fmt.Errorf("x: %w", runpod.ErrJobNotFound), ExitNotFound},
		{&runpod.WaitError{Cause: runpod.ErrTimeout, CancelErr: runpod.ErrUnauthorized}, ExitTimeout},
		{&runpod.WaitError{Cause: context.Canceled}, ExitFailed},
		{&runpod.JobError{State: runpod.StateFailed}, ExitFailed},
		{&runpod.JobError{State: runpod.StateTimedOut}, ExitFailed},
		{&runpod.SubmitError{Path: "/run", Err: errors.New("eof")}, ExitFailed},
		{fmt.Errorf("revoke key_x: %w", store.ErrNotFound), ExitNotFound},
		{usageErrorf("bad"), ExitUsage},
		{&SilentError{Code: 7}, 7},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}
