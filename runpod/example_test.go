package runpod_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/comfypod/comfypod/runpod"
)

// fakeRunPod stands in for RunPod in the examples: one endpoint, "my-endpoint",
// whose jobs complete with one PNG after a progress update.
func fakeRunPod() *httptest.Server {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4)))
	img := base64.StdEncoding.EncodeToString(b.Bytes())
	var polls, streams atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		done := `{"id":"job-1","status":"COMPLETED","executionTime":2100,"output":{"images":[{"filename":"ComfyUI_00001_.png","type":"base64","data":"` + img + `"}]}}`
		switch {
		case r.URL.Path == "/v2/my-endpoint/run":
			_, _ = io.WriteString(w, `{"id":"job-1","status":"IN_QUEUE"}`)
		case r.URL.Path == "/v2/my-endpoint/runsync":
			_, _ = io.WriteString(w, strings.Replace(done, "job-1", "sync-1", 1))
		case strings.HasPrefix(r.URL.Path, "/v2/my-endpoint/status-sync/"):
			if polls.Add(1) == 1 {
				_, _ = io.WriteString(w, `{"id":"job-1","status":"IN_PROGRESS","output":{"progress":"50%"}}`)
				return
			}
			_, _ = io.WriteString(w, done)
		case strings.HasPrefix(r.URL.Path, "/v2/my-endpoint/stream/"):
			if streams.Add(1) == 1 { // each call returns only new chunks
				_, _ = io.WriteString(w, `{"status":"COMPLETED","stream":[{"output":"Hello"},{"output":", world"}]}`)
				return
			}
			_, _ = io.WriteString(w, `{"status":"COMPLETED","stream":[]}`)
		default:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		}
	}))
}

// Submit a job, wait for it while reporting progress, and save its images.
func Example() {
	srv := fakeRunPod()
	defer srv.Close()
	ctx := context.Background()

	c, err := runpod.New("my-endpoint",
		runpod.WithAPIKey("rpa_example"),
		runpod.WithBaseURL(srv.URL+"/v2"), // leave out to call api.runpod.ai
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	job, err := c.Run(ctx, &runpod.Request{
		Input:  map[string]any{"workflow": map[string]any{}, "params": map[string]any{"seed": 42}},
		Policy: &runpod.Policy{ExecutionTimeout: 10 * time.Minute},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := job.Wait(ctx, &runpod.WaitOptions{
		Timeout: 6 * time.Minute,
		OnEvent: func(e runpod.Event) {
			switch e.Kind {
			case runpod.EventState:
				fmt.Println("state:", e.State)
			case runpod.EventProgress:
				fmt.Println("progress:", string(e.Progress))
			case runpod.EventColdStart:
				fmt.Println("model is loading (cold start)…")
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	dir, _ := os.MkdirTemp("", "outputs")
	defer os.RemoveAll(dir)
	files, err := st.WriteOutputs(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range files {
		fmt.Printf("saved %s (%s, from %s)\n", f.Name, f.MediaType, f.Field)
	}
	fmt.Println("ran for", st.ExecutionTime)
	// Output:
	// state: IN_PROGRESS
	// progress: {"progress":"50%"}
	// state: COMPLETED
	// saved ComfyUI_00001_.png (image/png, from images[0])
	// ran for 2.1s
}

// RunSync submits and waits in one call.
func ExampleClient_RunSync() {
	srv := fakeRunPod()
	defer srv.Close()
	c, _ := runpod.New("my-endpoint", runpod.WithAPIKey("rpa_example"), runpod.WithBaseURL(srv.URL+"/v2"))

	st, err := c.RunSync(context.Background(), &runpod.Request{Input: map[string]any{"prompt": "a cat"}},
		&runpod.RunSyncOptions{Wait: 60 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	files, _ := st.Outputs()
	fmt.Println(st.ID, st.State, len(files), "file:", files[0].Name)
	// Output: sync-1 COMPLETED 1 file: ComfyUI_00001_.png
}

// Errors are typed: match them with errors.Is and errors.As.
func ExampleParseJobError() {
	// The error string of a FAILED job whose Python handler raised.
	raw := `{"error_type": "<class 'ValueError'>", "error_message": "seed must be positive", "error_traceback": "Traceback ...", "hostname": "abc", "worker_id": "w-17", "runpod_version": "1.12.0"}`
	e := runpod.ParseJobError(raw)
	fmt.Println(e.Type)
	fmt.Println(e.Message)
	fmt.Println(e.WorkerID)
	// Output:
	// ValueError
	// seed must be positive
	// w-17
}

// A webhook receives the same status JSON as /status; ReadStatus decodes it
// and Outputs lists its files without loading them.
func ExampleClient_ReadStatus() {
	c, _ := runpod.New("my-endpoint", runpod.WithAPIKey("rpa_example"))
	body := `{"id":"job-7","status":"COMPLETED","output":{"videos":[{"filename":"dance_00001.mp4","type":"s3_url","data":"https://bucket.s3.amazonaws.com/dance_00001.mp4?X-Amz-Signature=secret"}]}}`
	st, err := c.ReadStatus(strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	files, _ := st.Outputs()
	for _, f := range files {
		fmt.Println(f) // the presigned URL's signature is not printed
	}
	// Output: dance_00001.mp4 (videos[0] from https://bucket.s3.amazonaws.com/dance_00001.mp4?REDACTED)
}

// Stream follows a streaming handler's chunks to the end.
func ExampleJob_Stream() {
	srv := fakeRunPod()
	defer srv.Close()
	c, _ := runpod.New("my-endpoint", runpod.WithAPIKey("rpa_example"), runpod.WithBaseURL(srv.URL+"/v2"))
	job, _ := c.Job("job-1")
	var text []string
	for chunk, err := range job.Stream(context.Background()) {
		if err != nil {
			fmt.Println(err)
			return
		}
		var s string
		_ = json.Unmarshal(chunk.Output, &s)
		text = append(text, s)
	}
	fmt.Println(strings.Join(text, ""))
	// Output: Hello, world
}

// EncodeImage prepares an input image: base64, downscaled to fit.
func ExampleEncodeImage() {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 400, 200)))
	s, err := runpod.EncodeImage(&b, &runpod.ImageOptions{MaxSide: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, _ := runpod.DecodeImageString(s)
	cfg, _, _ := image.DecodeConfig(bytes.NewReader(raw))
	fmt.Println(cfg.Width, cfg.Height)
	// Output: 100 50
}
