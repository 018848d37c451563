package runpod

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog collects Wait's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		s := e.Kind.String()
		if e.Kind == EventState {
			s += ":" + string(e.State)
		}
		out = append(out, s)
	}
	return out
}

func TestWaitLongPolls(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("run", rawReply(200, `{"id":"j1","status":"IN_QUEUE"}`))
	e.on("status-sync", sequence(
		rawReply(200, statusJSON("j1", StateInQueue, "")),
		rawReply(200, statusJSON("j1", StateInProgress, `"output":{"progress":0.5}`)),
		rawReply(200, statusJSON("j1", StateInProgress, `"output":{"progress":0.5}`)),
		rawReply(200, statusJSON("j1", StateInProgress, `"output":{"progress":0.9}`)),
		rawReply(200, statusJSON("j1", StateCompleted, `"output":{"text":"done"},"executionTime":1200`)),
	))
	c, _ := e.client(WithLongPoll(5 * time.Second))
	ctx := context.Background()
	job, err := c.Run(ctx, &Request{Input: map[string]any{"a": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	st, err := job.Wait(ctx, &WaitOptions{OnEvent: log.add})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.State != StateCompleted || string(st.Output) != `{"text":"done"}` || st.ExecutionTime != 1200*time.Millisecond {
		t.Errorf("status %+v", st)
	}
	want := "state:IN_PROGRESS progress progress state:COMPLETED"
	if got := strings.Join(log.kinds(), " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	reqs := e.requests("status-sync")
	if len(reqs) != 5 {
		t.Fatalf("%d status-sync calls, want 5", len(reqs))
	}
	if reqs[0].Method != http.MethodGet || reqs[0].Query != "wait=5000" {
		t.Errorf("status-sync call %s ?%s", reqs[0].Method, reqs[0].Query)
	}
	if n := len(e.requests("status")); n != 0 {
		t.Errorf("%d /status calls while long polling works", n)
	}
}

func TestWaitFallsBackToPolling(t *testing.T) {
	t.Parallel()
	for _, code := range []int{404, 405} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t)
			e.on("status-sync", rawReply(code, `{"error":"no route"}`))
			e.on("health", rawReply(200, `{}`))
			e.on("status", sequence(
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateInQueue, "")),
				rawReply(200, statusJSON("j1", StateCompleted, `"output":"ok"`)),
			))
			c, clk := e.client(WithPolling(250*time.Millisecond, time.Second))
			job, err := c.Job("j1")
			if err != nil {
				t.Fatal(err)
			}
			st, err := job.Wait(context.Background(), &WaitOptions{ColdStartAfter: -1})
			if err != nil {
				t.Fatal(err)
			}
			if st.State != StateCompleted {
				t.Errorf("state %s", st.State)
			}
			if n := len(e.requests("status-sync")); n != 1 {
				t.Errorf("%d status-sync calls, want 1 then none", n)
			}
			if n := len(e.requests("status")); n != 7 {
				t.Errorf("%d status calls, want 7", n)
			}
			// Adaptive polling: 250ms growing ×1.5 to the 1s cap (jitter
			// is fixed at its middle by the test's random source).
			want := []time.Duration{250, 375, 562, 843, 1000, 1000}
			s := clk.Sleeps()
			if len(s) != len(want) {
				t.Fatalf("sleeps %v, want %d", s, len(want))
			}
			for i, w := range want {
				if d := s[i] - w*time.Millisecond; d < -2*time.Millisecond || d > 2*time.Millisecond {
					t.Errorf("sleep %d = %s, want about %dms", i, s[i], w)
				}
			}
			// The fallback is remembered by the client.
			job2, _ := c.Job("j1")
			if _, err := job2.Wait(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if n := len(e.requests("status-sync")); n != 1 {
				t.Errorf("status-sync tried again after the fallback")
			}
		})
	}
}

func TestWaitJobNotFound(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("status-sync", rawReply(404, `{"error":"job not found"}`))
	e.on("status", rawReply(404, `{"error":"job not found"}`))
	e.on("health", rawReply(200, `{}`))
	c, _ := e.client()
	job, _ := c.Job("gone")
	_, err := job.Wait(context.Background(), nil)
	if !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("err = %v, want ErrJobNotFound", err)
	}
	if n := len(e.requests("cancel")); n != 0 {
		t.Errorf("cancelled a job that does not exist")
	}
}

func TestWaitTimeoutCancelsTheJob(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("run", rawReply(200, `{"id":"j1","status":"IN_QUEUE"}`))
	e.on("status-sync", rawReply(200, statusJSON("j1", StateInQueue, "")))
	e.on("status", rawReply(200, statusJSON("j1", StateInQueue, ""))) // used near the deadline
	e.on("health", rawReply(200, `{"workers":{"running":1}}`))
	e.on("cancel", rawReply(200, statusJSON("j1", StateCancelled, "")))
	lim, _ := NewLimiter(1)
	c, _ := e.client(WithLimiter(lim))
	ctx := context.Background()
	job, err := c.Run(ctx, &Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Wait(ctx, &WaitOptions{Timeout: time.Minute})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	var we *WaitError
	if !errors.As(err, &we) || !we.Cancelled || we.JobID != "j1" || we.State != StateCancelled {
		t.Errorf("wait error %+v", we)
	}
	if !strings.Contains(err.Error(), "cancelled it at RunPod") {
		t.Errorf("message %q", err)
	}
	if n := len(e.requests("cancel")); n != 1 {
		t.Errorf("%d cancel calls, want 1", n)
	}
	if lim.InUse() != 0 {
		t.Errorf("limiter slot not released")
	}
}

func TestWaitContextCancelCancelsTheJob(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.on("status-sync", sequence(
		rawReply(200, statusJSON("j1", StateInQueue, "")),
		func(w http.ResponseWriter, r *http.Request) {
			cancel() // the caller gives up while the job runs
			rawReply(200, statusJSON("j1", StateInProgress, ""))(w, r)
		},
	))
	cancelled := make(chan error, 1)
	e.on("cancel", func(w http.ResponseWriter, r *http.Request) {
		cancelled <- r.Context().Err()
		rawReply(200, statusJSON("j1", StateCancelled, ""))(w, r)
	})
	c, _ := e.client()
	job, _ := c.Job("j1")
	_, err := job.Wait(ctx, nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case cerr := <-cancelled:
		if cerr != nil {
			t.Errorf("cancel request arrived with a dead context: %v", cerr)
		}
	default:
		t.Fatal("the job was not cancelled at RunPod")
	}
}

func TestWaitLeaveRunning(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("status-sync", rawReply(200, statusJSON("j1", StateInProgress, "")))
	e.on("status", rawReply(200, statusJSON("j1", StateInProgress, "")))
	c, _ := e.client()
	job, _ := c.Job("j1")
	_, err := job.Wait(context.Background(), &WaitOptions{Timeout: 10 * time.Second, LeaveRunning: true})
	var we *WaitError
	if !errors.As(err, &we) || we.Cancelled || !strings.Contains(err.Error(), "left it running") {
		t.Fatalf("err = %v", err)
	}
	if n := len(e.requests("cancel")); n != 0 {
		t.Errorf("cancelled although asked not to")
	}
}

func TestWaitCancelFailureIsReported(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("status-sync", rawReply(200, statusJSON("j1", StateInProgress, "")))
	e.on("status", rawReply(200, statusJSON("j1", StateInProgress, "")))
	e.on("cancel", rawReply(401, `no`))
	c, _ := e.client()
	job, _ := c.Job("j1")
	_, err := job.Wait(context.Background(), &WaitOptions{Timeout: 10 * time.Second})
	var we *WaitError
	if !errors.As(err, &we) || we.Cancelled || we.CancelErr == nil {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnauthorized) {
		t.Errorf("the error should be about the timeout only: %v", err)
	}
	if !strings.Contains(err.Error(), "may still run") {
		t.Errorf("message %q", err)
	}
}

func TestWaitReportsColdStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		health string
		want   string
	}{
		{"no workers", `{"jobs":{"inQueue":1},"workers":{"idle":0,"running":0,"initializing":1}}`, "cold-start"},
		{"busy workers", `{"jobs":{"inQueue":4},"workers":{"running":2}}`, "queued"},
		{"health down", ``, "cold-start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t)
			states := []http.HandlerFunc{}
			for range 12 {
				states = append(states, rawReply(200, statusJSON("j1", StateInQueue, "")))
			}
			states = append(states, rawReply(200, statusJSON("j1", StateCompleted, `"output":1`)))
			e.on("status", sequence(states...))
			if tc.health != "" {
				e.on("health", rawReply(200, tc.health))
			} else {
				e.on("health", rawReply(500, `down`))
			}
			c, _ := e.client(WithLongPoll(0), WithPolling(5*time.Second, 5*time.Second))
			job, _ := c.Job("j1")
			var log eventLog
			if _, err := job.Wait(context.Background(), &WaitOptions{OnEvent: log.add}); err != nil {
				t.Fatal(err)
			}
			kinds := strings.Join(log.kinds(), " ")
			if !strings.HasPrefix(kinds, "state:IN_QUEUE "+tc.want) {
				t.Errorf("events %q, want %s after about 30s in the queue", kinds, tc.want)
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			for _, ev := range log.events {
				if ev.Kind == EventColdStart || ev.Kind == EventQueued {
					if ev.Elapsed < ColdStartAfterDefault {
						t.Errorf("%s reported after %s, before the threshold", ev.Kind, ev.Elapsed)
					}
					if tc.name == "busy workers" && (ev.Health == nil || ev.Health.Jobs.InQueue != 4) {
						t.Errorf("queued event without health: %+v", ev)
					}
				}
			}
			if strings.Count(kinds, "cold-start") > 1 {
				t.Errorf("cold start reported more than once: %q", kinds)
			}
		})
	}
}

func TestWaitReturnsJobErrors(t *testing.T) {
	t.Parallel()
	pyErr := `{\"error_type\": \"<class 'ValueError'>\", \"error_message\": \"bad seed\", \"error_traceback\": \"Traceback (most recent call last): ...\", \"hostname\": \"host-1\", \"worker_id\": \"w-9\", \"runpod_version\": \"1.12.0\"}`
	cases := []struct {
		name, body string
		is         error
		msg        string
		check      func(*testing.T, *JobError)
	}{
		{"python exception", statusJSON("j1", StateFailed, `"error":"`+pyErr+`"`), ErrJobFailed, "ValueError: bad seed (worker w-9)",
			func(t *testing.T, e *JobError) {
				if e.Traceback == "" || e.Hostname != "host-1" || e.RunpodVersion != "1.12.0" {
					t.Errorf("decoded %+v", e)
				}
			}},
		{"plain string", statusJSON("j1", StateFailed, `"error":"Job processing failed","output":{"details":["node 5: missing model"]}`), ErrJobFailed, "Job processing failed",
			func(t *testing.T, e *JobError) {
				if string(e.Details) != `["node 5: missing model"]` {
					t.Errorf("details %s", e.Details)
				}
			}},
		{"cancelled", statusJSON("j1", StateCancelled, ""), ErrJobCancelled, "was cancelled", nil},
		{"timed out", statusJSON("j1", StateTimedOut, ""), ErrJobTimedOut, "executionTimeout", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t)
			e.on("status-sync", rawReply(200, tc.body))
			c, _ := e.client()
			job, _ := c.Job("j1")
			st, err := job.Wait(context.Background(), nil)
			if st == nil {
				t.Fatalf("no status with the job error %v", err)
			}
			var je *JobError
			if !errors.As(err, &je) || !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want a JobError matching %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			if tc.check != nil {
				tc.check(t, je)
			}
		})
	}
}

func TestWaitSurvivesTransientErrors(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	var handlers []http.HandlerFunc
	for range 4 { // one poll's worth of 5xx (1 + 3 retries)
		handlers = append(handlers, rawReply(503, `busy`))
	}
	handlers = append(handlers, rawReply(200, statusJSON("j1", StateCompleted, `"output":1`)))
	e.on("status-sync", sequence(handlers...))
	c, _ := e.client()
	job, _ := c.Job("j1")
	st, err := job.Wait(context.Background(), nil)
	if err != nil || st.State != StateCompleted {
		t.Fatalf("%v, %v", st, err)
	}
}

func TestWaitGivesUpOnPersistentErrors(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("status-sync", rawReply(503, `busy`))
	c, _ := e.client()
	job, _ := c.Job("j1")
	_, err := job.Wait(context.Background(), &WaitOptions{Timeout: -1})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitOnServerThatAnswersEarly(t *testing.T) {
	t.Parallel()
	// A status-sync that returns at once must not make Wait spin: it pauses
	// between calls, and the deadline still comes.
	e := newEndpoint(t)
	e.on("status-sync", rawReply(200, statusJSON("j1", StateInProgress, "")))
	e.on("status", rawReply(200, statusJSON("j1", StateInProgress, "")))
	e.on("cancel", rawReply(200, statusJSON("j1", StateCancelled, "")))
	c, clk := e.client()
	job, _ := c.Job("j1")
	_, err := job.Wait(context.Background(), &WaitOptions{Timeout: 5 * time.Second})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	n := len(e.requests("status-sync"))
	if n > 25 {
		t.Errorf("%d calls in 5 s: the loop spins", n)
	}
	for _, s := range clk.Sleeps() {
		if s <= 0 {
			t.Errorf("non-positive pause %s", s)
		}
	}
}

func TestRunSync(t *testing.T) {
	t.Parallel()
	t.Run("completes within the wait", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t)
		e.on("runsync", rawReply(200, `{"delayTime":824,"executionTime":3391,"id":"sync-1","output":{"ok":true},"status":"COMPLETED"}`))
		c, _ := e.client()
		st, err := c.RunSync(context.Background(), &Request{Input: 1}, &RunSyncOptions{Wait: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if st.ID != "sync-1" || string(st.Output) != `{"ok":true}` {
			t.Errorf("status %+v", st)
		}
		if q := e.requests("runsync")[0].Query; q != "wait=30000" {
			t.Errorf("query %q", q)
		}
	})
	t.Run("keeps waiting after the server's wait", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t)
		e.on("runsync", rawReply(200, `{"id":"sync-2","status":"IN_PROGRESS"}`))
		e.on("status-sync", rawReply(200, statusJSON("sync-2", StateCompleted, `"output":"x"`)))
		c, _ := e.client()
		st, err := c.RunSync(context.Background(), &Request{Input: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateCompleted || string(st.Output) != `"x"` {
			t.Errorf("status %+v", st)
		}
		if q := e.requests("runsync")[0].Query; q != "" {
			t.Errorf("query %q, want RunPod's default wait", q)
		}
		if len(e.requests("status-sync")) != 1 {
			t.Errorf("did not follow the job")
		}
	})
	t.Run("wait is shortened to the timeout", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t)
		e.on("runsync", rawReply(200, `{"id":"sync-3","status":"IN_QUEUE"}`))
		e.on("status-sync", rawReply(200, statusJSON("sync-3", StateInQueue, "")))
		e.on("status", rawReply(200, statusJSON("sync-3", StateInQueue, "")))
		e.on("cancel", rawReply(200, statusJSON("sync-3", StateCancelled, "")))
		c, _ := e.client()
		_, err := c.RunSync(context.Background(), &Request{Input: 1}, &RunSyncOptions{Wait: 120 * time.Second, WaitOptions: WaitOptions{Timeout: 40 * time.Second}})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
		if q := e.requests("runsync")[0].Query; q != "wait=40000" {
			t.Errorf("query %q, want wait=40000", q)
		}
		if len(e.requests("cancel")) != 1 {
			t.Errorf("the job was not cancelled")
		}
	})
	t.Run("wait validated", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t)
		c, _ := e.client()
		for _, w := range []time.Duration{500 * time.Millisecond, 301 * time.Second} {
			if _, err := c.RunSync(context.Background(), &Request{Input: 1}, &RunSyncOptions{Wait: w}); err == nil || !strings.Contains(err.Error(), "1s to 300s") {
				t.Errorf("wait %s: %v", w, err)
			}
		}
		if len(e.requests("")) != 0 {
			t.Errorf("sent a request with an invalid wait")
		}
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t)
		e.on("runsync", rawReply(200, `{"id":"sync-4","status":"FAILED","error":"out of memory"}`))
		c, _ := e.client()
		st, err := c.RunSync(context.Background(), &Request{Input: 1}, nil)
		if !errors.Is(err, ErrJobFailed) || st == nil || !strings.Contains(err.Error(), "out of memory") {
			t.Errorf("%v, %v", st, err)
		}
	})
}

func TestLimiterHoldsSlotsUntilTerminal(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	var mu sync.Mutex
	n := 0
	e.on("run", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := []string{"a", "b", "c"}[n-1]
		mu.Unlock()
		rawReply(200, `{"id":"`+id+`","status":"IN_QUEUE"}`)(w, r)
	})
	e.on("status-sync", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		rawReply(200, statusJSON(id, StateCompleted, ""))(w, r)
	})
	lim, err := NewLimiter(2)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := e.client(WithLimiter(lim))
	c2, _ := e.client(WithLimiter(lim)) // shared between clients
	ctx := context.Background()
	j1, err := c1.Run(ctx, &Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	j2, err := c2.Run(ctx, &Request{Input: 1})
	if err != nil {
		t.Fatal(err)
	}
	if lim.InUse() != 2 {
		t.Fatalf("in use %d", lim.InUse())
	}
	// A third submission waits for a slot.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c1.Run(short, &Request{Input: 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third submission: %v, want to wait for a slot", err)
	}
	if len(e.requests("run")) != 2 {
		t.Errorf("the third job was sent without a slot")
	}
	done := make(chan *Job, 1)
	go func() {
		j, err := c1.Run(ctx, &Request{Input: 1})
		if err != nil {
			t.Error(err)
		}
		done <- j
	}()
	if _, err := j1.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case j3 := <-done:
		if j3 == nil {
			t.Fatal("third submission failed")
		}
		j3.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("the third submission never got the freed slot")
	}
	j2.Release()
	j2.Release() // twice is harmless
	if lim.InUse() != 0 {
		t.Errorf("in use %d after all released", lim.InUse())
	}
}

func TestJobStreamIterator(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("stream", sequence(
		rawReply(200, `{"status":"IN_QUEUE","stream":[]}`),
		rawReply(200, `{"status":"IN_PROGRESS","stream":[{"output":"a"},{"output":"b"}]}`),
		rawReply(200, `{"status":"IN_PROGRESS","stream":[]}`),
		rawReply(200, `{"status":"COMPLETED","stream":[{"output":"c"}]}`),
		rawReply(200, `{"status":"COMPLETED","stream":[]}`),
	))
	c, _ := e.client()
	job, _ := c.Job("j1")
	var got []string
	for ch, err := range job.Stream(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(ch.Output))
	}
	if strings.Join(got, ",") != `"a","b","c"` {
		t.Errorf("chunks %v", got)
	}
}

func TestJobStreamFailed(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t)
	e.on("stream", rawReply(200, `{"status":"FAILED","stream":[]}`))
	e.on("status", rawReply(200, statusJSON("j1", StateFailed, `"error":"handler: boom \ntraceback: line 1"`)))
	c, _ := e.client()
	job, _ := c.Job("j1")
	var last error
	for _, err := range job.Stream(context.Background()) {
		last = err
	}
	var je *JobError
	if !errors.As(last, &je) || je.Message != "boom" || je.Traceback != "line 1" {
		t.Errorf("last = %v (%+v)", last, je)
	}
}
