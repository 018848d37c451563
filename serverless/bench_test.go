package serverless

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// BenchmarkJobOverhead measures what the runtime adds to a job: take →
// handler that returns at once → job-done, against runpodtest over loopback.
// "latency" queues one job at a time and waits for it (the full round trip a
// client sees, plane included); "backlog" drains a queue of b.N jobs. The
// runpodtest/TestWorker rows run runpodtest's minimal worker the same way,
// as a floor for the protocol itself.
func BenchmarkJobOverhead(b *testing.B) {
	for _, bc := range []struct {
		name    string
		worker  string // "serverless" or "testworker"
		conc    int
		backlog bool
	}{
		{"latency/serverless", "serverless", 1, false},
		{"latency/testworker", "testworker", 1, false},
		{"backlog/c=1/serverless", "serverless", 1, true},
		{"backlog/c=1/testworker", "testworker", 1, true},
		{"backlog/c=4/serverless", "serverless", 4, true},
		{"backlog/c=4/testworker", "testworker", 4, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv, err := runpodtest.NewServer(nil)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			ctx := context.Background()
			start := func() func() {
				if bc.worker == "testworker" {
					tw, err := srv.StartWorker(ctx, func(context.Context, *runpodtest.WorkerJob) (any, error) { return "ok", nil },
						&runpodtest.WorkerOptions{ID: "bench", Concurrency: bc.conc})
					if err != nil {
						b.Fatal(err)
					}
					return tw.Stop
				}
				env := srv.WorkerEnv("bench")
				cfg := must(ConfigFromEnv(func(k string) string { return env[k] }))
				cfg.Concurrency = bc.conc
				cfg.Logger = slog.New(slog.DiscardHandler)
				cfg.Handler = func(context.Context, *Job) (any, error) { return "ok", nil }
				w, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Start(ctx); err != nil {
					b.Fatal(err)
				}
				return func() { _ = w.StopAndCancel(ctx) }
			}
			wait := func(id string) {
				j, err := srv.WaitStatus(ctx, id)
				if err != nil || j.Status != runpodtest.StatusCompleted {
					b.Fatalf("job %s: %s %v", id, j.Status, err)
				}
			}
			if !bc.backlog {
				stop := start()
				defer stop()
				wait(must(srv.Enqueue(runpodtest.JobRequest{Input: 0}))) // warm up
				b.ResetTimer()
				for range b.N {
					wait(must(srv.Enqueue(runpodtest.JobRequest{Input: 0})))
				}
				return
			}
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = must(srv.Enqueue(runpodtest.JobRequest{Input: i}))
			}
			b.ResetTimer()
			stop := start()
			defer stop()
			for _, id := range ids {
				wait(id)
			}
		})
	}
}

func BenchmarkLogLine(b *testing.B) {
	for _, c := range []struct {
		name string
		msg  string
	}{
		{"short", "Finished."},
		{"5000 chars", strings.Repeat("é", 5000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			log := slog.New(NewLogHandler(io.Discard, &LogOptions{JSON: true, Secrets: []string{"rpa_KEY"}}))
			for b.Loop() {
				log.Info(c.msg, slog.String(JobIDKey, "job-1"))
			}
		})
	}
}

func BenchmarkResultBody(b *testing.B) {
	img := strings.Repeat("A", 8<<20) // an 8 MB base64 image
	out := map[string]any{"images": []map[string]string{{"filename": "x.png", "type": "base64", "data": img}}}
	m := resultMeta{maxBytes: MaxResultBytesDefault, runpodVersion: RunpodVersionDefault}
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		if o := m.fromReturn(out, nil, nil); o.failed {
			b.Fatal(string(o.body[:200]))
		}
	}
}

func BenchmarkDecodeTake(b *testing.B) {
	img := strings.Repeat("QUJD", 2300000/4)
	body := []byte(`{"id":"sync-1-e1","input":{"workflow":{"1":{"class_type":"LoadImage","inputs":{"image":"input.png"}}},"images":[{"name":"input.png","image":"data:image/png;base64,` + img + `"}]},"delayTime":3,"retries":0}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if jobs, errs := decodeTake(body); len(jobs) != 1 || len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

// appendedOutput is an output that writes its own JSON, as worker.Output
// does.
type appendedOutput struct{ data string }

func (o *appendedOutput) AppendJSON(b []byte) ([]byte, error) {
	b = slices.Grow(b, len(o.data)+128)
	b = append(b, `{"images":[{"filename":"x.png","type":"base64","data":"`...)
	b = append(b, o.data...)
	return append(b, `"}]}`...), nil
}

// BenchmarkLargeJob is the runtime's own cost for a job the size of the
// ComfyUI worker's benchmark (2.3 MB of base64 in, as much out): take,
// decode, a handler that returns at once, encode, post, against a plane
// that answers from memory, so the plane's own JSON handling is left out.
func BenchmarkLargeJob(b *testing.B) {
	img := strings.Repeat("QUJD", 2300000/4)
	take := []byte(`{"id":"job-1","input":{"workflow":{},"images":[{"name":"input.png","image":"` + img + `"}]},"delayTime":3}`)
	var takes atomic.Int64
	posted := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/job-take/"):
			if takes.Add(1) > int64(b.N) {
				<-r.Context().Done()
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(take)))
			_, _ = w.Write(take)
		case strings.Contains(r.URL.Path, "/job-done/"):
			_, _ = io.Copy(io.Discard, r.Body)
			posted <- struct{}{}
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer ts.Close()
	env := map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB":     ts.URL + "/v2/ep/job-take/$ID?",
		"RUNPOD_WEBHOOK_POST_OUTPUT": ts.URL + "/v2/ep/job-done/$RUNPOD_POD_ID/$ID?",
		"RUNPOD_POD_ID":              "bench",
	}
	cfg := must(ConfigFromEnv(func(k string) string { return env[k] }))
	cfg.Logger = slog.New(slog.DiscardHandler)
	out := &appendedOutput{data: img}
	cfg.Handler = func(context.Context, *Job) (any, error) { return Result{Output: out}, nil }
	w := must(New(cfg))
	b.SetBytes(int64(len(take)))
	b.ReportAllocs()
	if err := w.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		<-posted
	}
	b.StopTimer()
	_ = w.StopAndCancel(context.Background())
}
