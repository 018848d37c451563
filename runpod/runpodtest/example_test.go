package runpodtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// call sends one authenticated request and returns the status code and body.
func call(srv *runpodtest.Server, method, path, body string) (int, string) {
	req, err := http.NewRequest(method, srv.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A client submits a job with /run; a worker speaking the worker protocol
// takes it and posts the result; the client reads it with /status.
func Example() {
	srv, err := runpodtest.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	_, err = srv.StartWorker(ctx, func(_ context.Context, job *runpodtest.WorkerJob) (any, error) {
		var in struct{ Prompt string }
		if err := json.Unmarshal(job.Input, &in); err != nil {
			return nil, err
		}
		return map[string]string{"text": strings.ToUpper(in.Prompt)}, nil
	}, nil)
	if err != nil {
		log.Fatal(err)
	}

	_, body := call(srv, "POST", "/local/run", `{"input":{"prompt":"a cat"}}`)
	var run struct{ ID, Status string }
	_ = json.Unmarshal([]byte(body), &run)
	fmt.Println("submitted:", run.Status)

	if _, err := srv.WaitStatus(ctx, run.ID); err != nil {
		log.Fatal(err)
	}
	_, body = call(srv, "GET", "/local/status/"+run.ID, "")
	var st struct {
		Status string
		Output map[string]string
	}
	_ = json.Unmarshal([]byte(body), &st)
	fmt.Println(st.Status, st.Output["text"])
	// Output:
	// submitted: IN_QUEUE
	// COMPLETED A CAT
}

// A client test decides when a job finishes, with no worker at all.
func ExampleServer_CompleteJob() {
	srv, err := runpodtest.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	id, err := srv.Enqueue(runpodtest.JobRequest{Input: map[string]any{"seed": 1}})
	if err != nil {
		log.Fatal(err)
	}
	_ = srv.ProgressJob(id, "50%")
	_, body := call(srv, "GET", "/local/status/"+id, "")
	fmt.Println(strings.Contains(body, `"status":"IN_PROGRESS"`), strings.Contains(body, `"output":"50%"`))

	_ = srv.CompleteJob(id, map[string]string{"image": "…"})
	j, _ := srv.Job(id)
	for _, tr := range j.History {
		fmt.Println(tr.Status)
	}
	// Output:
	// true true
	// IN_QUEUE
	// IN_PROGRESS
	// COMPLETED
}

// Faults make the server misbehave on purpose; the request counters prove
// what reached it.
func ExampleServer_AddFault() {
	srv, err := runpodtest.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	_, _ = srv.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultRateLimit, Times: 1, RetryAfter: 2 * time.Second})
	code, _ := call(srv, "POST", "/local/run", `{"input":1}`)
	fmt.Println(code)
	code, _ = call(srv, "POST", "/local/run", `{"input":1}`)
	fmt.Println(code)
	fmt.Println("requests:", srv.Requests(runpodtest.OpRun), "jobs:", len(srv.Jobs()))
	// Output:
	// 429
	// 200
	// requests: 2 jobs: 1
}

// WorkerEnv hands out what RunPod sets in a worker container.
func ExampleServer_WorkerEnv() {
	srv, err := runpodtest.NewServer(&runpodtest.Config{GPUName: "NVIDIA H100 PCIe"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	env := srv.WorkerEnv("pod-1")
	for _, k := range []string{runpodtest.EnvGetJob, runpodtest.EnvPostOutput, runpodtest.EnvPodID, runpodtest.EnvPingInterval} {
		fmt.Printf("%s=%s\n", k, strings.TrimPrefix(env[k], srv.URL))
	}
	// Output:
	// RUNPOD_WEBHOOK_GET_JOB=/v2/local/job-take/$ID?gpu=NVIDIA+H100+PCIe
	// RUNPOD_WEBHOOK_POST_OUTPUT=/v2/local/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100+PCIe
	// RUNPOD_POD_ID=pod-1
	// RUNPOD_PING_INTERVAL=10000
}

// New builds a server to mount in an http.Server of your own.
func ExampleNew() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := runpodtest.New(&runpodtest.Config{URL: "http://" + ln.Addr().String(), Endpoints: []string{"ep1"}})
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()

	code, body := call(srv, "GET", "/ep1/health", "")
	fmt.Println(code, strings.HasPrefix(body, `{"jobs":{"completed":0`))
	code, _ = call(srv, "GET", "/nope/health", "")
	fmt.Println(code)

	srv.Close() // ends held requests first
	_ = hs.Close()
	<-done
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// 200 true
	// 404
}
