package runpodtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures the emulator's throughput over loopback HTTP:
// clients /run a job and long-poll /status-sync until it is COMPLETED, while
// test workers take it (long-poll) and post the result.
func BenchmarkRoundTrip(b *testing.B) {
	for _, c := range []struct{ clients, workers int }{{1, 1}, {8, 4}, {32, 8}} {
		b.Run(fmt.Sprintf("clients=%d/workers=%d", c.clients, c.workers), func(b *testing.B) {
			benchRoundTrip(b, c.clients, c.workers)
		})
	}
}

func benchRoundTrip(b *testing.B, clients, workers int) {
	srv, err := NewServer(&Config{APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for i := range workers {
		if _, err := srv.StartWorker(b.Context(), echo, &WorkerOptions{ID: fmt.Sprintf("bench-%d", i), Concurrency: 2}); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	post := func(ctx context.Context, method, path, body string) (map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, srv.BaseURL()+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		return m, nil
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for next.Add(1) <= int64(b.N) {
				run, err := post(ctx, "POST", "/local/run", `{"input":{"prompt":"bench"}}`)
				if err != nil {
					errs <- err
					return
				}
				id, _ := run["id"].(string)
				for {
					st, err := post(ctx, "GET", "/local/status-sync/"+id+"?wait=60000", "")
					if err != nil {
						errs <- err
						return
					}
					if st["status"] == string(StatusCompleted) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}
