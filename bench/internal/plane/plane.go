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
	hold   *hold // the next job-take answer carrying a job waits for it
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
		p.serveTake(w, r)
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

// hold is a job-take answer kept back until released.
type hold struct {
	held    chan struct{} // closed when an answer carrying a job is kept
	release chan struct{} // closed to send it
}

// serveTake answers a job-take; an answer carrying a job waits while a hold
// is armed (see HoldNextAnswer), and the time it is sent is noted.
func (p *Plane) serveTake(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	p.srv.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		p.mu.Lock()
		h := p.hold
		p.hold = nil
		p.mu.Unlock()
		if h != nil {
			close(h.held)
			<-h.release
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if rec.Code == http.StatusOK {
		p.mark(&p.handed)
	}
}

// HoldNextAnswer keeps back the next job-take answer that carries a job: the
// plane has handed the job out, the worker does not have it yet. held is
// closed once it is kept; release sends it. A benchmark uses it to start a
// worker's job from a settled process, as its other rows start.
func (p *Plane) HoldNextAnswer() (held <-chan struct{}, release func()) {
	h := &hold{held: make(chan struct{}), release: make(chan struct{})}
	p.mu.Lock()
	p.hold = h
	p.mu.Unlock()
	var once sync.Once
	return h.held, func() { once.Do(func() { close(h.release) }) }
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
