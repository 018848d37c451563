// Command waitdelay measures how long runpod.Job.Wait takes to notice that a
// job finished: the time from the job completing on the server to Wait
// returning. It compares the long poll on /status-sync with fixed /status
// polling every 1 s and 2 s (what clients usually do) and with the client's
// adaptive polling, side by side in one run.
//
// By default the server is the local RunPod control plane (runpodtest): each
// job is completed with Server.CompleteJob at a random 0.3–2.5 s after its
// submission, and the delay counts from the instant the emulator recorded it
// finished (Job.FinishedAt) to Wait returning. -against=stub uses a minimal
// stand-in server instead, whose jobs complete on their own timers.
//
//	go run ./bench/waitdelay
//	go run ./bench/waitdelay -jobs 500
//	go run ./bench/waitdelay -against stub
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func main() {
	jobs := flag.Int("jobs", 200, "jobs per mode, run concurrently")
	against := flag.String("against", "emulator", "server to measure against: emulator (runpodtest) or stub")
	flag.Parse()
	if err := run(*jobs, *against); err != nil {
		fmt.Fprintln(os.Stderr, "waitdelay:", err)
		os.Exit(1)
	}
}

type mode struct {
	name string
	opts []runpod.Option
}

// backend is a server under measurement: where clients reach it, which
// endpoint, how many requests it has seen, and how to measure n jobs.
type backend struct {
	base, endpoint, key string
	requests            func() int
	measure             func(c *runpod.Client, n int) ([]time.Duration, error)
	close               func()
}

func run(n int, against string) error {
	var (
		b   backend
		err error
	)
	switch against {
	case "emulator":
		b, err = emulatorBackend()
	case "stub":
		b = stubBackend()
	default:
		return fmt.Errorf("-against %q: want emulator or stub", against)
	}
	if err != nil {
		return err
	}
	defer b.close()
	noJitter := runpod.WithRand(func() float64 { return 0.5 })
	modes := []mode{
		{"long poll (/status-sync)", nil},
		{"adaptive /status polling", []runpod.Option{runpod.WithLongPoll(0)}},
		{"fixed 1 s /status polling", []runpod.Option{runpod.WithLongPoll(0), runpod.WithPolling(time.Second, time.Second), noJitter}},
		{"fixed 2 s /status polling", []runpod.Option{runpod.WithLongPoll(0), runpod.WithPolling(2*time.Second, 2*time.Second), noJitter}},
	}
	fmt.Printf("completion-detection delay of Job.Wait against the %s, %d jobs per mode finishing 0.3–2.5 s after submission\n\n", against, n)
	fmt.Printf("| %-26s | %8s | %8s | %8s | %15s |\n", "mode", "p50", "p99", "max", "requests / job")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 28), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 17))
	for _, m := range modes {
		// Each mode has its own connection pool, so none inherits warm
		// connections from the one before.
		tr := &http.Transport{MaxIdleConnsPerHost: n}
		c, err := runpod.New(b.endpoint, append([]runpod.Option{
			runpod.WithAPIKey(b.key), runpod.WithBaseURL(b.base), runpod.WithHTTPClient(&http.Client{Transport: tr}),
		}, m.opts...)...)
		if err != nil {
			return err
		}
		before := b.requests()
		delays, err := b.measure(c, n)
		tr.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		slices.Sort(delays)
		p := func(q float64) time.Duration { return delays[min(len(delays)-1, int(q*float64(len(delays))))] }
		perJob := float64(b.requests()-before) / float64(n)
		fmt.Printf("| %-26s | %8s | %8s | %8s | %15.1f |\n", m.name, ms(p(0.50)), ms(p(0.99)), ms(delays[len(delays)-1]), perJob)
	}
	fmt.Println("\ntarget: long poll p50 <= 100 ms")
	return nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// finishAfter draws when a job finishes: 0.3–2.5 s after its submission.
func finishAfter(rng *rand.Rand) time.Duration {
	return 300*time.Millisecond + time.Duration(rng.Int64N(int64(2200*time.Millisecond)))
}

// emulatorBackend measures against the local control plane on the wall clock.
func emulatorBackend() (backend, error) {
	srv, err := runpodtest.NewServer(&runpodtest.Config{Endpoints: []string{"bench"}, Rand: rand.NewPCG(7, 11)})
	if err != nil {
		return backend{}, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var mu sync.Mutex
	return backend{
		base: srv.BaseURL(), endpoint: srv.EndpointID(), key: srv.APIKey(),
		requests: func() int {
			total := 0
			for _, v := range srv.RequestCounts() {
				total += v
			}
			return total
		},
		measure: func(c *runpod.Client, n int) ([]time.Duration, error) {
			return measureEmulator(c, srv, n, func() time.Duration {
				mu.Lock()
				defer mu.Unlock()
				return finishAfter(rng)
			})
		},
		close: srv.Close,
	}, nil
}

// measureEmulator submits n jobs at once; each is completed in the emulator
// after its drawn delay, and the time from the emulator's record of the
// completion to Wait returning is measured.
func measureEmulator(c *runpod.Client, srv *runpodtest.Server, n int, after func() time.Duration) ([]time.Duration, error) {
	ctx := context.Background()
	delays := make([]time.Duration, n)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			job, err := c.Run(ctx, &runpod.Request{Input: map[string]any{"i": i}})
			if err != nil {
				errs <- err
				return
			}
			completed := make(chan struct{})
			timer := time.AfterFunc(after(), func() {
				defer close(completed)
				if err := srv.CompleteJob(job.ID, map[string]bool{"ok": true}); err != nil {
					errs <- err
				}
			})
			st, err := job.Wait(ctx, &runpod.WaitOptions{Timeout: time.Minute, ColdStartAfter: -1})
			returned := time.Now()
			if err != nil {
				timer.Stop()
				errs <- err
				return
			}
			_ = st.Close()
			<-completed
			j, ok := srv.Job(job.ID)
			if !ok || j.FinishedAt.IsZero() {
				errs <- fmt.Errorf("job %s: no completion recorded", job.ID)
				return
			}
			delays[i] = returned.Sub(j.FinishedAt)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return delays, nil
}

// stubBackend measures against a minimal stand-in server.
func stubBackend() backend {
	srv := newServer()
	ts := httptest.NewServer(srv)
	return backend{
		base: ts.URL + "/v2", endpoint: "bench", key: "rpa_bench",
		requests: srv.requests,
		measure:  func(c *runpod.Client, n int) ([]time.Duration, error) { return measureStub(c, srv, n) },
		close:    ts.Close,
	}
}

// measureStub submits n jobs at once to the stand-in server and returns, for
// each, the time from its completion on the server to Wait returning.
func measureStub(c *runpod.Client, srv *server, n int) ([]time.Duration, error) {
	ctx := context.Background()
	delays := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job, err := c.Run(ctx, &runpod.Request{Input: map[string]any{"i": i}})
			if err != nil {
				errs <- err
				return
			}
			st, err := job.Wait(ctx, &runpod.WaitOptions{Timeout: time.Minute})
			returned := time.Now()
			if err != nil {
				errs <- err
				return
			}
			_ = st.Close()
			delays[i] = returned.Sub(srv.completedAt(job.ID))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return delays, nil
}

// server is a stand-in endpoint whose jobs complete after a random 0.3–2.5 s,
// with a real long poll: /status-sync answers as soon as the job ends, or when
// the wait is over.
type server struct {
	mu    sync.Mutex
	rng   *rand.Rand
	next  int
	jobs  map[string]*job
	count int
}

type job struct {
	done chan struct{}
	at   time.Time
}

func newServer() *server {
	return &server{rng: rand.New(rand.NewPCG(7, 11)), jobs: map[string]*job{}}
}

func (s *server) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func (s *server) completedAt(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id].at
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // v2 bench op [id]
	if len(parts) < 3 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	s.mu.Lock()
	s.count++
	s.mu.Unlock()
	switch op := parts[2]; {
	case op == "run":
		s.mu.Lock()
		s.next++
		id := "job-" + strconv.Itoa(s.next)
		j := &job{done: make(chan struct{})}
		s.jobs[id] = j
		d := finishAfter(s.rng)
		s.mu.Unlock()
		time.AfterFunc(d, func() {
			s.mu.Lock()
			j.at = time.Now()
			s.mu.Unlock()
			close(j.done)
		})
		fmt.Fprintf(w, `{"id":%q,"status":"IN_QUEUE"}`, id)
	case (op == "status" || op == "status-sync") && len(parts) == 4:
		s.mu.Lock()
		j := s.jobs[parts[3]]
		s.mu.Unlock()
		if j == nil {
			http.Error(w, `{"error":"job not found"}`, http.StatusNotFound)
			return
		}
		if op == "status-sync" {
			wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
			t := time.NewTimer(time.Duration(wait) * time.Millisecond)
			select {
			case <-j.done:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
		select {
		case <-j.done:
			fmt.Fprintf(w, `{"id":%q,"status":"COMPLETED","output":{"ok":true}}`, parts[3])
		default:
			fmt.Fprintf(w, `{"id":%q,"status":"IN_PROGRESS"}`, parts[3])
		}
	default:
		http.NotFound(w, r)
	}
}
