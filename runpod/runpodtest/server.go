package runpodtest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Server is a RunPod Serverless control plane on loopback: the client API
// under /v2/{endpoint_id}/, the worker job protocol beside it, and inspection
// and control routes under /_emulator/. All state sits under one mutex.
//
// A Server is an http.Handler; NewServer also serves it on its own listener.
type Server struct {
	// URL is the server's base address, such as http://127.0.0.1:41234, with
	// no trailing slash. Clients use URL + "/v2" (BaseURL) as RunPod's base.
	URL string

	cfg    *Config
	clock  clockwork.Clock
	log    *slog.Logger
	apiKey string
	eps    map[string]bool

	client    *http.Client // webhook deliveries
	ownClient bool

	ctx    context.Context // ends when Close starts
	cancel context.CancelFunc

	httpSrv   *http.Server
	served    chan struct{}  // closed when httpSrv.Serve has returned
	conns     sync.WaitGroup // open connections of httpSrv
	bg        sync.WaitGroup // janitor, serve loop, webhook deliveries
	closeOnce sync.Once
	kick      chan struct{} // wakes the janitor when an earlier deadline appears

	mu           sync.Mutex
	closed       bool
	inflight     int
	idle         chan struct{} // closed when inflight drops to 0 after Close
	rng          *rand.Rand
	changed      signal             // any state change, for Await
	queueChanged map[string]*signal // per endpoint: a job was queued or a worker warmed up
	observed     signal             // held requests or worker activity changed
	jobs         map[string]*job
	tombstones   map[string]*job
	tombOrder    []string
	queues       map[string][]queued
	queueSeq     uint64
	workers      map[string]*worker // by endpoint + "/" + worker id
	deadlines    deadlineHeap
	armedAt      time.Time
	totals       map[string]*HealthJobs // cumulative completed, failed, retried per endpoint
	requests     map[Op]int
	waiting      map[Op]int
	faults       []*faultRule
	nextFaultID  int
	deliveries   []WebhookDelivery
	testWorkers  map[*TestWorker]struct{}
}

// maxTombstones bounds how many deleted jobs stay visible to inspection.
const maxTombstones = 1024

// NewServer starts a Server listening on cfg.Addr (127.0.0.1:0 by default).
// Close it when done.
func NewServer(cfg *Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("runpodtest: listen on %s: %w", s.cfg.Addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				s.conns.Done()
			}
		},
	}
	s.served = make(chan struct{})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(s.served)
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("runpodtest: serve stopped", "err", err)
		}
	}()
	s.log.Info("runpodtest: listening", "url", s.URL, "endpoints", s.cfg.Endpoints)
	return s, nil
}

// New returns a Server that does not listen: mount it in an http.Server of
// your own and set cfg.URL to the address clients reach it at. Close it when
// done.
func New(cfg *Config) (*Server, error) {
	if cfg == nil || cfg.URL == "" {
		return nil, errors.New("runpodtest: New needs Config.URL, the address clients reach the server at (NewServer listens by itself)")
	}
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("runpodtest: Config.URL %q: want an absolute http:// or https:// URL", cfg.URL)
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	s.URL = strings.TrimSuffix(s.cfg.URL, "/")
	return s, nil
}

func newServer(cfg *Config) (*Server, error) {
	c := cfg.WithDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	src := c.Rand
	if src == nil {
		var seed [32]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("runpodtest: seed: %w", err)
		}
		src = rand.NewChaCha8(seed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          c,
		clock:        c.Clock,
		log:          c.Logger,
		eps:          map[string]bool{},
		client:       c.HTTPClient,
		ctx:          ctx,
		cancel:       cancel,
		kick:         make(chan struct{}, 1),
		rng:          rand.New(src),
		queueChanged: map[string]*signal{},
		jobs:         map[string]*job{},
		tombstones:   map[string]*job{},
		queues:       map[string][]queued{},
		workers:      map[string]*worker{},
		totals:       map[string]*HealthJobs{},
		requests:     map[Op]int{},
		waiting:      map[Op]int{},
		testWorkers:  map[*TestWorker]struct{}{},
	}
	for _, ep := range c.Endpoints {
		s.eps[ep] = true
		s.totals[ep] = &HealthJobs{}
		s.queueChanged[ep] = &signal{}
	}
	s.apiKey = c.APIKey
	if s.apiKey == "" {
		s.apiKey = s.randomKey()
	}
	if s.client == nil {
		s.client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
		s.ownClient = true
	}
	s.bg.Add(1)
	go s.janitor()
	return s, nil
}

// randomKey returns a key shaped like RunPod's: rpa_ and 40 characters.
func (s *Server) randomKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 40)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return "rpa_" + string(b)
}

// uuidLocked returns a random version-4 UUID from the server's source.
func (s *Server) uuidLocked() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], s.rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], s.rng.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BaseURL is what a client uses as RunPod's base: URL + "/v2"
// (RUNPOD_ENDPOINT_BASE_URL).
func (s *Server) BaseURL() string { return s.URL + "/v2" }

// APIKey is the key clients and workers must send.
func (s *Server) APIKey() string { return s.apiKey }

// EndpointID is the default (first configured) endpoint id.
func (s *Server) EndpointID() string { return s.cfg.Endpoints[0] }

// Endpoints lists the endpoint ids the server serves.
func (s *Server) Endpoints() []string { return append([]string(nil), s.cfg.Endpoints...) }

// Clock is the clock the server runs on (Config.Clock or the wall clock).
func (s *Server) Clock() clockwork.Clock { return s.clock }

// Close stops the test workers, ends every held request, shuts the listener
// down and returns once every goroutine the server started has returned.
// Calling it twice is safe.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		workers := make([]*TestWorker, 0, len(s.testWorkers))
		for w := range s.testWorkers {
			workers = append(workers, w)
		}
		if s.inflight > 0 {
			s.idle = make(chan struct{})
		}
		idle := s.idle
		s.mu.Unlock()

		s.cancel()
		for _, w := range workers {
			w.Stop()
		}
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.httpSrv.Shutdown(ctx); err != nil {
				_ = s.httpSrv.Close()
			}
			cancel()
			<-s.served // no connection can start after this
			s.conns.Wait()
		}
		if idle != nil {
			<-idle
		}
		s.bg.Wait()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
		s.log.Info("runpodtest: closed", "url", s.URL)
	})
}

// enter admits a request unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// signal is a broadcast under the server's lock: wait returns a channel that
// the next fire closes. It allocates only while someone waits.
type signal struct{ ch chan struct{} }

func (g *signal) wait() <-chan struct{} {
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

func (g *signal) fire() {
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}

// notifyLocked wakes Await callers after a state change. Held requests wait
// on narrower signals (a job's, an endpoint queue's, a worker's stops).
func (s *Server) notifyLocked() { s.changed.fire() }

// route is a parsed /v2 path.
type route struct {
	op       Op
	ep       string
	jobID    string
	workerID string
	batch    bool // job-take-batch
}

// routeSpec describes one /v2/{endpoint_id}/{name} route.
type routeSpec struct {
	op      Op
	ids     int // path segments after the name
	methods []string
}

var routes = map[string]routeSpec{
	"run":            {OpRun, 0, []string{http.MethodPost}},
	"runsync":        {OpRunsync, 0, []string{http.MethodPost}},
	"purge-queue":    {OpPurge, 0, []string{http.MethodPost}},
	"health":         {OpHealth, 0, []string{http.MethodGet}},
	"status":         {OpStatus, 1, []string{http.MethodGet, http.MethodPost}},
	"status-sync":    {OpStatusSync, 1, []string{http.MethodGet, http.MethodPost}},
	"stream":         {OpStream, 1, []string{http.MethodGet, http.MethodPost}},
	"cancel":         {OpCancel, 1, []string{http.MethodPost}},
	"retry":          {OpRetry, 1, []string{http.MethodPost}},
	"job-take":       {OpTake, 1, []string{http.MethodGet}},
	"job-take-batch": {OpTake, 1, []string{http.MethodGet}},
	"ping":           {OpPing, 1, []string{http.MethodGet}},
	"job-stop":       {OpStop, 1, []string{http.MethodGet}},
	"job-done":       {OpDone, 2, []string{http.MethodPost}},
	"job-stream":     {OpStreamPost, 2, []string{http.MethodPost}},
}

// parseRoute splits /v2/{endpoint_id}/{name}[/{id}[/{id}]].
func parseRoute(path string) (route, routeSpec, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, routeSpec{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || parts[0] == "" {
		return route{}, routeSpec{}, false
	}
	spec, ok := routes[parts[1]]
	if !ok || len(parts) != 2+spec.ids {
		return route{}, routeSpec{}, false
	}
	rt := route{op: spec.op, ep: parts[0], batch: parts[1] == "job-take-batch"}
	ids := parts[2:]
	for _, id := range ids {
		if id == "" {
			return route{}, routeSpec{}, false
		}
	}
	switch {
	case spec.ids == 2:
		rt.workerID, rt.jobID = ids[0], ids[1]
	case spec.ids == 1 && workerOp(spec.op):
		rt.workerID = ids[0]
	case spec.ids == 1:
		rt.jobID = ids[0]
	}
	return rt, spec, true
}

// workerOp reports whether op belongs to the worker protocol.
func workerOp(op Op) bool {
	switch op {
	case OpTake, OpDone, OpStreamPost, OpPing, OpStop:
		return true
	}
	return false
}

// ServeHTTP answers the RunPod client API, the worker protocol and the
// /_emulator/ routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		writeError(w, http.StatusServiceUnavailable, "runpodtest: the server is shutting down")
		return
	}
	defer s.leave()
	start := time.Now()
	rec := newRecorder()
	op := Op("inspect")
	defer func() {
		s.logRequest(r, op, rec.code, time.Since(start))
	}()
	if r.URL.Path == "/_emulator" || strings.HasPrefix(r.URL.Path, "/_emulator/") {
		if !s.authorized(r) {
			writeError(rec, http.StatusUnauthorized, "401 Unauthorized: send the emulator's API key in the Authorization header")
		} else {
			s.serveControl(rec, r)
		}
		rec.flush(w)
		return
	}
	rt, spec, ok := parseRoute(r.URL.Path)
	if !ok {
		op = ""
		writeError(rec, http.StatusNotFound, fmt.Sprintf("no route %s %s; RunPod serves /v2/{endpoint_id}/run, /runsync, /status/{id}, /status-sync/{id}, /stream/{id}, /cancel/{id}, /retry/{id}, /purge-queue, /health and the worker routes", r.Method, r.URL.Path))
		rec.flush(w)
		return
	}
	op = rt.op
	plan := s.planFaults(rt)
	if err := s.sleep(r.Context(), rt.op, plan.latency); err != nil {
		// The client or the server gave up while a latency fault held the
		// request.
		writeError(rec, http.StatusServiceUnavailable, "runpodtest: the server is shutting down")
		rec.flush(w)
		return
	}
	if plan.pre(rec, w) {
		return
	}
	if s.admit(rec, r, rt, spec, plan) {
		s.dispatch(rec, r, rt)
	}
	plan.post(rec, w)
}

// admit checks the method, the key and the endpoint, and applies an expire
// fault; it answers into rec and reports false when the request stops here.
func (s *Server) admit(rec *recorder, r *http.Request, rt route, spec routeSpec, plan faultPlan) bool {
	switch {
	case !allowed(spec.methods, r.Method):
		rec.Header().Set("Allow", strings.Join(spec.methods, ", "))
		writeError(rec, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(spec.methods, " or ")))
		return false
	case !s.authorized(r):
		writeError(rec, http.StatusUnauthorized, "401 Unauthorized: make sure the RunPod API key is set and valid")
		return false
	case !s.eps[rt.ep]:
		writeError(rec, http.StatusNotFound, fmt.Sprintf("endpoint %q not found; check RUNPOD_ENDPOINT_ID", rt.ep))
		return false
	case plan.action == FaultExpire && !s.expireFault(rt):
		writeError(rec, http.StatusNotFound, "runpodtest: injected fault: not found (expired)")
		return false
	}
	return true
}

// dispatch runs the handler of rt.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt route) {
	if workerOp(rt.op) {
		if !idPattern.MatchString(rt.workerID) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("worker id %q: use letters, digits, '-' and '_' only", rt.workerID))
			return
		}
		s.workerEnter(rt.ep, rt.workerID)
		defer s.workerLeave(rt.ep, rt.workerID)
	}
	switch rt.op {
	case OpRun:
		s.handleRun(w, r, rt)
	case OpRunsync:
		s.handleRunsync(w, r, rt)
	case OpStatus:
		s.handleStatus(w, r, rt)
	case OpStatusSync:
		s.handleStatusSync(w, r, rt)
	case OpStream:
		s.handleStream(w, r, rt)
	case OpCancel:
		s.handleCancel(w, r, rt)
	case OpRetry:
		s.handleRetry(w, r, rt)
	case OpPurge:
		s.handlePurge(w, r, rt)
	case OpHealth:
		s.handleHealth(w, r, rt)
	case OpTake:
		s.handleTake(w, r, rt)
	case OpDone:
		s.handleDone(w, r, rt)
	case OpStreamPost:
		s.handleStreamPost(w, r, rt)
	case OpPing:
		s.handlePing(w, r, rt)
	case OpStop:
		s.handleStop(w, r, rt)
	}
}

func allowed(methods []string, m string) bool {
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// authorized accepts "Bearer <key>" (the SDKs) and the bare key (the docs'
// curl examples and the worker runtime).
func (s *Server) authorized(r *http.Request) bool {
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	}
	return subtle.ConstantTimeCompare([]byte(v), []byte(s.apiKey)) == 1
}

func (s *Server) logRequest(r *http.Request, op Op, code int, d time.Duration) {
	level := slog.LevelDebug
	switch {
	case code >= 500:
		level = slog.LevelError
	case code >= 400:
		level = slog.LevelInfo
	}
	s.log.Log(context.Background(), level, "runpodtest: request",
		"method", r.Method, "path", r.URL.Path, "op", string(op), "status", code, "duration", d)
}

// sleep holds a request of op for d on the server's clock, or until ctx or
// the server ends; Waiting counts it meanwhile.
func (s *Server) sleep(ctx context.Context, op Op, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := s.clock.NewTimer(d)
	defer t.Stop()
	s.mu.Lock()
	s.setWaitingLocked(op, +1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.setWaitingLocked(op, -1)
		s.mu.Unlock()
	}()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// recorder buffers a handler's answer so faults can truncate or drop it after
// the work is done, and so the status code can be logged.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, code: http.StatusOK} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func (r *recorder) WriteHeader(code int) { r.code = code }

// flush sends the buffered answer to w.
func (r *recorder) flush(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.code != http.StatusNoContent && r.code != http.StatusNotModified {
		w.Header().Set("Content-Length", strconv.Itoa(r.body.Len()))
	}
	w.WriteHeader(r.code)
	_, _ = w.Write(r.body.Bytes())
}

// writeJSON answers v as JSON with the given status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"runpodtest: cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeError answers RunPod's error shape {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errBody{Error: msg})
}

// readBody reads at most limit bytes of r's body. It reports tooLarge when
// the body is longer, after draining some of the rest so the client reads the
// answer rather than a reset connection.
func readBody(r *http.Request, limit int64) (body []byte, tooLarge bool, err error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		return nil, true, nil
	}
	return b, false, nil
}

// formatBytes prints a limit as RunPod's docs do (10 MB), or in bytes.
func formatBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MB", n>>20)
	}
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// waitParam reads the wait query value in milliseconds within [lo, hi]; def
// when absent.
func waitParam(r *http.Request, lo, hi, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return def, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < lo.Milliseconds() || ms > hi.Milliseconds() {
		return 0, fmt.Errorf("wait is invalid; must be between %d and %d", lo.Milliseconds(), hi.Milliseconds())
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// poll holds a request open: it runs try under s.mu now and each time the
// signal returned by watch (also called under s.mu) fires, until try reports
// true, the wait d runs out on the server's clock, ctx ends or the server
// closes. It reports whether try succeeded; try may change state.
func (s *Server) poll(ctx context.Context, op Op, d time.Duration, watch func() <-chan struct{}, try func(now time.Time) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweepLocked(now)
	if try(now) {
		return true
	}
	if d <= 0 {
		return false
	}
	timer := s.clock.NewTimer(d)
	defer timer.Stop()
	s.setWaitingLocked(op, +1)
	defer s.setWaitingLocked(op, -1)
	for {
		ch := watch()
		s.mu.Unlock()
		expired := false
		select {
		case <-ch:
		case <-timer.Chan():
			expired = true
		case <-ctx.Done():
			s.mu.Lock()
			return false
		case <-s.ctx.Done():
			s.mu.Lock()
			return false
		}
		s.mu.Lock()
		now = s.clock.Now()
		s.sweepLocked(now)
		if try(now) {
			return true
		}
		if expired {
			return false
		}
	}
}

// observeLocked wakes Await and AwaitWaiting callers; held requests, which
// only care about job state, are not woken.
func (s *Server) observeLocked() {
	s.observed.fire()
}

func (s *Server) setWaitingLocked(op Op, delta int) {
	s.waiting[op] += delta
	s.observeLocked()
}

// Waiting reports how many requests of op are being held open right now: in a
// long-poll (runsync, status-sync, stream, take, stop) or by a latency fault.
func (s *Server) Waiting(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting[op]
}

// AwaitWaiting blocks until at least n requests of op are held open, so a
// test can advance a clockwork.FakeClock knowing the long-poll has armed its wait.
func (s *Server) AwaitWaiting(ctx context.Context, op Op, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.waiting[op], s.observed.wait()
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("runpodtest: %d %s request(s) held open, want %d: %w", got, op, n, ctx.Err())
		case <-s.ctx.Done():
			return errors.New("runpodtest: server closed")
		}
	}
}
