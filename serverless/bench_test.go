package serverless

import (
	"context"
	"io"
	"log/slog"
	"strings"
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
