package serverless_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
	"github.com/comfypod/comfypod/serverless"
)

// A worker as it runs on RunPod: the configuration comes from the
// environment RunPod sets, Start takes and runs jobs until its context ends.
// Here the control plane is runpodtest's, on loopback.
func Example() {
	plane, _ := runpodtest.NewServer(nil)
	defer plane.Close()
	env := plane.WorkerEnv("worker-1")

	cfg, err := serverless.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	handler := func(ctx context.Context, job *serverless.Job) (any, error) {
		var in struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(job.Input, &in); err != nil || in.Name == "" {
			return nil, serverless.Fail(`input needs a "name"`)
		}
		_ = job.Progress(ctx, "greeting")
		return map[string]string{"greeting": "hello " + in.Name}, nil
	}

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serverless.Start(ctx, handler, cfg) }()

	for _, input := range []any{map[string]string{"name": "Ada"}, map[string]int{"age": 3}} {
		id, _ := plane.Enqueue(runpodtest.JobRequest{Input: input})
		job, _ := plane.WaitStatus(context.Background(), id)
		fmt.Println(job.Status, string(job.Output)+job.Error)
	}
	stop() // SIGTERM: finish in-flight jobs, then return
	fmt.Println("Start returned:", <-done)
	// Output:
	// COMPLETED {"greeting":"hello Ada"}
	// FAILED input needs a "name"
	// Start returned: <nil>
}

// A streaming handler: each chunk reaches /stream readers at once; with
// ReturnAggregateStream the final output lists them all.
func ExampleStartStream() {
	plane, _ := runpodtest.NewServer(nil)
	defer plane.Close()
	env := plane.WorkerEnv("worker-1")
	cfg, _ := serverless.ConfigFromEnv(func(k string) string { return env[k] })
	cfg.ReturnAggregateStream = true

	tokens := func(ctx context.Context, job *serverless.Job, emit func(any) error) error {
		for _, tok := range []string{"once", "upon", "a", "time"} {
			if err := emit(tok); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serverless.StartStream(ctx, tokens, cfg) }()

	id, _ := plane.Enqueue(runpodtest.JobRequest{Input: "tell me a story"})
	job, _ := plane.WaitStatus(context.Background(), id)
	fmt.Println(job.Status, len(job.Stream), "chunks, output", string(job.Output))
	stop()
	<-done
	// Output: COMPLETED 4 chunks, output ["once","upon","a","time"]
}

// A Worker with an explicit lifecycle: soft Stop finishes the running jobs
// within the deadline, then cancels the rest and reports them FAILED.
func ExampleWorker() {
	plane, _ := runpodtest.NewServer(nil)
	defer plane.Close()
	env := plane.WorkerEnv("worker-1")
	cfg, _ := serverless.ConfigFromEnv(func(k string) string { return env[k] })
	cfg.Concurrency = 2
	slowStarted := make(chan struct{})
	cfg.Handler = func(ctx context.Context, job *serverless.Job) (any, error) {
		if strings.Contains(string(job.Input), "slow") {
			close(slowStarted)
			<-ctx.Done() // runs until cancelled
			return nil, ctx.Err()
		}
		return "quick result", nil
	}
	w, _ := serverless.New(cfg)
	_ = w.Start(context.Background())

	quick, _ := plane.Enqueue(runpodtest.JobRequest{Input: "quick"})
	slow, _ := plane.Enqueue(runpodtest.JobRequest{Input: "slow"})
	plane.WaitStatus(context.Background(), quick)
	<-slowStarted // the worker runs it (IN_PROGRESS alone may still be in flight)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fmt.Println("stop:", w.Stop(ctx) != nil)
	for _, id := range []string{quick, slow} {
		j, _ := plane.Job(id)
		fmt.Println(j.Status, string(j.Output)+j.Error)
	}
	// Output:
	// stop: true
	// COMPLETED "quick result"
	// FAILED worker shut down before the job finished
}

// Local mode: run one job from test input, as --test_input does.
func ExampleRunLocal() {
	cfg := &serverless.Config{Handler: func(ctx context.Context, job *serverless.Job) (any, error) {
		return map[string]any{"id": job.ID, "input": job.Input}, nil
	}}
	res, err := serverless.RunLocal(context.Background(), cfg, []byte(`{"input": {"prompt": "a cat"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, string(res.Output))
	// Output: COMPLETED {"id":"local_test","input":{"prompt":"a cat"}}
}

// The local API, as --rp_serve_api serves it: RunPod's routes answered by the
// handler in-process.
func ExampleLocalAPI() {
	api, _ := serverless.NewLocalAPI(&serverless.Config{Handler: func(ctx context.Context, job *serverless.Job) (any, error) {
		return map[string]any{"error": "no GPU here"}, nil
	}})
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer api.Close()

	resp, _ := http.Post(srv.URL+"/runsync", "application/json", strings.NewReader(`{"input": {"prompt": "a cat"}}`))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct{ Status, Error string }
	_ = json.Unmarshal(body, &out)
	fmt.Println(out.Status, out.Error)
	// Output: FAILED no GPU here
}

// The log lines RunPod's console parses (with RUNPOD_ENDPOINT_ID set), and
// the readable form used elsewhere.
func ExampleNewLogHandler() {
	onRunPod := slog.New(serverless.NewLogHandler(os.Stdout, &serverless.LogOptions{JSON: true}))
	onRunPod.Info("Started.", slog.String(serverless.JobIDKey, "6c0f-e1"))
	onRunPod.Warn("disk almost full")

	local := slog.New(serverless.NewLogHandler(os.Stdout, nil))
	local.Info("Finished.", slog.String(serverless.JobIDKey, "6c0f-e1"), slog.Int("ms", 42))
	// Output:
	// {"requestId": "6c0f-e1", "message": "Started.", "level": "INFO"}
	// {"requestId": null, "message": "disk almost full", "level": "WARN"}
	// INFO   | 6c0f-e1 | Finished. ms=42
}

// ConfigFromEnv reads what RunPod sets; an unset RUNPOD_WEBHOOK_GET_JOB means
// local mode.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB": "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=NVIDIA+H100",
		"RUNPOD_POD_ID":          "pod-1",
		"RUNPOD_PING_INTERVAL":   "10000",
		"RUNPOD_MAX_CONCURRENCY": "4",
	}
	cfg, _ := serverless.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(cfg.Local(), cfg.WorkerID, cfg.PingInterval, cfg.Concurrency)

	_, err := serverless.ConfigFromEnv(func(k string) string {
		return map[string]string{"RUNPOD_PING_INTERVAL": "10s"}[k]
	})
	fmt.Println(err)
	// Output:
	// false pod-1 10s 4
	// serverless: bad environment: RUNPOD_PING_INTERVAL="10s": want a whole number of milliseconds, such as 10000
}
