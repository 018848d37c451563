// Package plane is the control plane the benchmark programs run workers
// against: a runpodtest server on loopback that reports when each worker
// makes its first job-take, and how long each job took from the job-take
// answer that handed it out to its result fully posted.
package plane

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// Timing is one job as the control plane saw it.
type Timing struct {
	// Worked is the time from the job-take answer that carried the job to
	// the last byte of its result.
	Worked time.Duration
	// Before, Handler and After split Worked around the handler of an
	// in-process worker that reports HandlerBegan and HandlerEnded; Split
	// says whether it did.
	Before, Handler, After time.Duration
	Split                  bool
}

// Plane is a runpodtest server behind a timing proxy.
type Plane struct {
	srv *runpodtest.Server
	ts  *httptest.Server

	mu     sync.Mutex
	firsts map[string]chan time.Time
	handed time.Time // when the last job-take that carried a job was answered
	began  time.Time // when the in-process handler was called
	ended  time.Time // when it returned
	jobs   []Timing
}

// New starts a plane on loopback; Close stops it.
func New() (*Plane, error) {
	p := &Plane{firsts: map[string]chan time.Time{}}
	p.ts = httptest.NewUnstartedServer(nil)
	srv, err := runpodtest.New(&runpodtest.Config{URL: "http://" + p.ts.Listener.Addr().String()})
	if err != nil {
		return nil, err
	}
	p.srv = srv
	p.ts.Config.Handler = http.HandlerFunc(p.serve)
	p.ts.Start()
	return p, nil
}

// serve passes every request to the server, noting job-takes and results.
func (p *Plane) serve(w http.ResponseWriter, r *http.Request) {
	if i := strings.Index(r.URL.Path, "/job-take/"); i >= 0 {
		now := time.Now()
		p.mu.Lock()
		if ch := p.firsts[r.URL.Path[i+len("/job-take/"):]]; ch != nil {
			select {
			case ch <- now:
			default:
			}
		}
		p.mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w}
		p.srv.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			p.mark(&p.handed)
		}
		return
	}
	if strings.Contains(r.URL.Path, "/job-done/") && r.ContentLength > 64<<10 {
		// A final result (progress updates are small): it is posted when
		// all of it has arrived.
		body := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
		now := time.Now()
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		if !p.handed.IsZero() && err == nil {
			t := Timing{Worked: now.Sub(p.handed)}
			if p.began.After(p.handed) && p.ended.After(p.began) {
				t.Before, t.Handler, t.After, t.Split = p.began.Sub(p.handed), p.ended.Sub(p.began), now.Sub(p.ended), true
			}
			p.jobs = append(p.jobs, t)
			p.handed = time.Time{}
		}
		p.mu.Unlock()
	}
	p.srv.ServeHTTP(w, r)
}

// statusRecorder remembers the status an answer was given.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// mark sets *t to now under the lock.
func (p *Plane) mark(t *time.Time) {
	now := time.Now()
	p.mu.Lock()
	*t = now
	p.mu.Unlock()
}

// Server is the runpodtest server, for the workers' environment and clients.
func (p *Plane) Server() *runpodtest.Server { return p.srv }

// Expect registers a worker id and returns the channel the time of its first
// job-take arrives on.
func (p *Plane) Expect(id string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	p.mu.Lock()
	p.firsts[id] = ch
	p.mu.Unlock()
	return ch
}

// HandlerBegan and HandlerEnded are called by an in-process worker's handler
// as it starts and returns, to split the jobs' timings.
func (p *Plane) HandlerBegan() { p.mark(&p.began) }

// HandlerEnded: see HandlerBegan.
func (p *Plane) HandlerEnded() { p.mark(&p.ended) }

// Jobs returns the timings of the jobs since the last Reset.
func (p *Plane) Jobs() []Timing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Timing(nil), p.jobs...)
}

// Reset forgets the timings so far.
func (p *Plane) Reset() {
	p.mu.Lock()
	p.jobs = nil
	p.mu.Unlock()
}

// Close stops the server.
func (p *Plane) Close() {
	p.srv.Close()
	p.ts.Close()
}
