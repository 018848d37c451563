package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/comfy/engine"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const job = `{"workflow": {"1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 255}},
  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "blue"}}}}`

func runJob(t *testing.T, st *devstack.Stack) *worker.Output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
	if err != nil {
		t.Fatal(err)
	}
	status, err := c.RunSync(ctx, &runpod.Request{Input: json.RawMessage(job)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer status.Close()
	var out worker.Output
	if err := status.DecodeOutput(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestStartRunsJobsAndCleansUp(t *testing.T) {
	t.Parallel()
	st, err := devstack.Start(context.Background(), &devstack.Config{Workers: 3, EndpointID: "ep-test", APIKey: "rpa_TEST"})
	if err != nil {
		t.Fatal(err)
	}
	dir := st.ComfyDir()
	if st.EndpointID() != "ep-test" || st.APIKey() != "rpa_TEST" || !strings.HasSuffix(st.BaseURL(), "/v2") || len(st.Workers()) != 3 || st.Engine() == nil {
		t.Errorf("stack: %s %s %s %d", st.EndpointID(), st.APIKey(), st.BaseURL(), len(st.Workers()))
	}
	if env := st.Env(); env["RUNPOD_ENDPOINT_BASE_URL"] != st.BaseURL() || env["RUNPOD_ENDPOINT_ID"] != "ep-test" || env["RUNPOD_API_KEY"] != "rpa_TEST" {
		t.Errorf("env %v", env)
	}
	out := runJob(t, st)
	if len(out.Images) != 1 || out.Images[0].Filename != "blue_00001_.png" {
		t.Errorf("output %+v", out.Images)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary engine folder is left: %v", err)
	}
}

func TestStartWithExternalComfyUI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	eng, err := engine.New(&engine.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(eng)
	defer func() {
		ts.Close()
		_ = eng.Stop(context.Background())
	}()
	st, err := devstack.Start(context.Background(), &devstack.Config{ComfyURL: ts.URL, ComfyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if st.Engine() != nil || st.ComfyURL() != ts.URL || st.ComfyDir() != dir {
		t.Errorf("external ComfyUI: engine %v url %s dir %s", st.Engine(), st.ComfyURL(), st.ComfyDir())
	}
	if out := runJob(t, st); len(out.Images) != 1 {
		t.Errorf("output %+v", out)
	}
	if entries, _ := os.ReadDir(dir + "/output"); len(entries) != 0 {
		t.Errorf("the job's outputs were not deleted: %v", entries)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  *devstack.Config
		want string
	}{
		{&devstack.Config{Workers: -1}, "want 1 to 64"},
		{&devstack.Config{Addr: "256.0.0.1:1"}, "control plane"},
		{&devstack.Config{Worker: worker.Config{Workflow: "x"}}, "need a Manifest"},
		{&devstack.Config{Worker: worker.Config{Warmup: []byte(`{"1": {"class_type": "Nope", "inputs": {}}}`), WarmupRequired: true}}, "warm-up workflow failed"},
	} {
		st, err := devstack.Start(context.Background(), tc.cfg)
		if err == nil {
			st.Close(context.Background())
			t.Errorf("%+v: started", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The whole trip on one machine: a RunPod client's job runs on the
// built-in engine through the local control plane and a worker.
func ExampleStart() {
	st, err := devstack.Start(context.Background(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close(context.Background())

	c, _ := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
	status, err := c.RunSync(context.Background(), &runpod.Request{Input: json.RawMessage(job)}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer status.Close()
	var out worker.Output
	_ = status.DecodeOutput(&out)
	fmt.Println(status.State, out.Images[0].Filename, out.Images[0].Type)
	// Output: COMPLETED blue_00001_.png base64
}

// With a cold start the stack is an endpoint scaled to zero: no worker until
// the first job, then workers that initialize (as /health says) for the
// cold start before they take it.
func TestColdStart(t *testing.T) {
	t.Parallel()
	const cold = 700 * time.Millisecond
	st, err := devstack.Start(context.Background(), &devstack.Config{Workers: 2, ColdStart: cold})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if n := len(st.Workers()); n != 0 {
		t.Fatalf("%d workers before any job", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	j, err := c.Run(ctx, &runpod.Request{Input: json.RawMessage(job)})
	if err != nil {
		t.Fatal(err)
	}
	// The workers come up and initialize; the job waits for them.
	if err := st.Control().Await(ctx, func() bool {
		h, err := st.Control().Health(st.EndpointID())
		return err == nil && h.Workers.Initializing == 2
	}); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Status(ctx, j.ID); err != nil || s.State != runpod.StateInQueue {
		t.Fatalf("while the workers initialize the job is %v (%v), want IN_QUEUE", s, err)
	} else {
		s.Close()
	}
	status, err := j.Wait(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	status.Close()
	if took := time.Since(start); took < cold {
		t.Fatalf("the first job took %s, less than the cold start", took)
	}
	if n := len(st.Workers()); n != 2 {
		t.Fatalf("%d workers after the first job", n)
	}
	// Warm now: the next job runs at once.
	if out := runJob(t, st); len(out.Images) != 1 {
		t.Fatalf("output %+v", out)
	}
	h, err := st.Control().Health(st.EndpointID())
	if err != nil || h.Workers.Initializing != 0 || h.Workers.Idle+h.Workers.Running != 2 {
		t.Fatalf("health after the cold start: %+v %v", h.Workers, err)
	}
}

// A stack with a cold start that never gets a job closes cleanly.
func TestColdStartNoJob(t *testing.T) {
	t.Parallel()
	st, err := devstack.Start(context.Background(), &devstack.Config{ColdStart: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := devstack.Start(context.Background(), &devstack.Config{ColdStart: -time.Second}); err == nil {
		t.Fatal("a negative cold start: no error")
	}
}
