package runpodtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Op names one operation of the client API or of the worker protocol; faults
// and request counters are keyed by it.
type Op string

// The operations the server counts and can inject faults into.
const (
	OpRun        Op = "run"
	OpRunsync    Op = "runsync"
	OpStatus     Op = "status"
	OpStatusSync Op = "status-sync"
	OpStream     Op = "stream"
	OpCancel     Op = "cancel"
	OpRetry      Op = "retry"
	OpPurge      Op = "purge"
	OpHealth     Op = "health"
	OpTake       Op = "take" // job-take and job-take-batch
	OpDone       Op = "done"
	OpStreamPost Op = "stream-post"
	OpPing       Op = "ping"
	OpStop       Op = "stop"
)

// Ops lists every operation, in the order above.
func Ops() []Op {
	return []Op{OpRun, OpRunsync, OpStatus, OpStatusSync, OpStream, OpCancel, OpRetry, OpPurge,
		OpHealth, OpTake, OpDone, OpStreamPost, OpPing, OpStop}
}

func knownOp(op Op) bool {
	for _, o := range Ops() {
		if o == op {
			return true
		}
	}
	return false
}

// FaultAction is what an injected fault does to a request.
type FaultAction string

// The fault actions.
const (
	// FaultLatency holds the request for Fault.Latency, then serves it.
	FaultLatency FaultAction = "latency"
	// FaultRateLimit answers 429 with Retry-After, doing nothing.
	FaultRateLimit FaultAction = "rate-limit"
	// FaultServerError answers Fault.StatusCode (500 by default), doing
	// nothing.
	FaultServerError FaultAction = "server-error"
	// FaultDrop closes the connection without an answer, doing nothing.
	FaultDrop FaultAction = "drop"
	// FaultTruncate does the work, then sends the headers and half the body
	// and closes the connection.
	FaultTruncate FaultAction = "truncate"
	// FaultDropAnswer does the work, then closes the connection without an
	// answer: for /run the job exists but the client never learns its id.
	FaultDropAnswer FaultAction = "drop-answer"
	// FaultExpire deletes the job the request names, as if its ttl had run
	// out, so the request answers 404; requests naming no job get a 404.
	FaultExpire FaultAction = "expire"
)

// Fault is a rule injecting a failure into matching requests. Rules are tried
// in the order they were added; latency rules add up, and the first other rule
// that fires decides the request's fate. Probabilities are drawn from
// Config.Rand, so a seeded source makes a sequential run repeatable.
type Fault struct {
	// Op is the operation the rule matches; empty matches every operation.
	Op Op
	// Endpoint restricts the rule to one endpoint id; empty matches all.
	Endpoint string
	// Action is what the rule does.
	Action FaultAction
	// Skip lets this many matching requests through before the rule can fire.
	Skip int
	// Times is how often the rule fires before it is spent; 0 is no limit.
	Times int
	// Probability is the chance that a matching request fires the rule, in
	// (0, 1]; 0 means always.
	Probability float64
	// Latency is the delay of FaultLatency, on the server's clock.
	Latency time.Duration
	// RetryAfter is the Retry-After of FaultRateLimit (1 s when zero); it is
	// sent in whole seconds, rounded up.
	RetryAfter time.Duration
	// StatusCode is the 5xx of FaultServerError (500 when zero).
	StatusCode int
}

// faultJSON is Fault on the /_emulator/faults route, durations in ms.
type faultJSON struct {
	Op           Op          `json:"op,omitempty"`
	Endpoint     string      `json:"endpoint,omitempty"`
	Action       FaultAction `json:"action"`
	Skip         int         `json:"skip,omitempty"`
	Times        int         `json:"times,omitempty"`
	Probability  float64     `json:"probability,omitempty"`
	LatencyMs    int64       `json:"latencyMs,omitempty"`
	RetryAfterMs int64       `json:"retryAfterMs,omitempty"`
	StatusCode   int         `json:"statusCode,omitempty"`
}

// MarshalJSON writes f with durations in milliseconds (latencyMs,
// retryAfterMs), the form the /_emulator/faults route accepts.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultJSON{f.Op, f.Endpoint, f.Action, f.Skip, f.Times, f.Probability,
		f.Latency.Milliseconds(), f.RetryAfter.Milliseconds(), f.StatusCode})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	const maxMs = math.MaxInt64 / int64(time.Millisecond)
	if j.LatencyMs < 0 || j.LatencyMs > maxMs || j.RetryAfterMs < 0 || j.RetryAfterMs > maxMs {
		return errors.New("latencyMs and retryAfterMs must be between 0 and 9223372036854")
	}
	*f = Fault{j.Op, j.Endpoint, j.Action, j.Skip, j.Times, j.Probability,
		time.Duration(j.LatencyMs) * time.Millisecond, time.Duration(j.RetryAfterMs) * time.Millisecond, j.StatusCode}
	return nil
}

func (f Fault) validate() error {
	if f.Op != "" && !knownOp(f.Op) {
		return fmt.Errorf("runpodtest: fault op %q: want one of %v, or empty for all", f.Op, Ops())
	}
	switch f.Action {
	case FaultLatency:
		if f.Latency <= 0 {
			return errors.New("runpodtest: a latency fault needs Latency > 0")
		}
	case FaultServerError:
		if f.StatusCode != 0 && (f.StatusCode < 500 || f.StatusCode > 599) {
			return fmt.Errorf("runpodtest: fault status code %d: want 500-599", f.StatusCode)
		}
	case FaultRateLimit, FaultDrop, FaultTruncate, FaultDropAnswer, FaultExpire:
	default:
		return fmt.Errorf("runpodtest: fault action %q: want latency, rate-limit, server-error, drop, truncate, drop-answer or expire", f.Action)
	}
	if f.Skip < 0 || f.Times < 0 || f.RetryAfter < 0 || f.Latency < 0 {
		return errors.New("runpodtest: fault Skip, Times, Latency and RetryAfter must not be negative")
	}
	if math.IsNaN(f.Probability) || f.Probability < 0 || f.Probability > 1 {
		return fmt.Errorf("runpodtest: fault probability %v: want 0 (always) or a value in (0, 1]", f.Probability)
	}
	return nil
}

// faultRule is an installed Fault with its counters.
type faultRule struct {
	id      int
	f       Fault
	matched int
	fired   int
}

// FaultStatus is an installed fault and how often it matched and fired.
type FaultStatus struct {
	// ID is what AddFault returned.
	ID    int   `json:"id"`
	Fault Fault `json:"fault"`
	// Matched counts the requests the rule matched (op and endpoint, while
	// not spent); Fired those it acted on.
	Matched int `json:"matched"`
	Fired   int `json:"fired"`
}

// AddFault installs a fault rule and returns its id for RemoveFault.
func (s *Server) AddFault(f Fault) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaultID++
	s.faults = append(s.faults, &faultRule{id: s.nextFaultID, f: f})
	return s.nextFaultID, nil
}

// RemoveFault uninstalls a fault rule; it reports whether the id existed.
func (s *Server) RemoveFault(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.faults {
		if r.id == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return true
		}
	}
	return false
}

// ClearFaults uninstalls every fault rule.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the installed fault rules with their counters.
func (s *Server) Faults() []FaultStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FaultStatus, len(s.faults))
	for i, r := range s.faults {
		out[i] = FaultStatus{ID: r.id, Fault: r.f, Matched: r.matched, Fired: r.fired}
	}
	return out
}

// faultPlan is what the faults decided for one request.
type faultPlan struct {
	latency time.Duration
	action  FaultAction // "" when no terminal rule fired
	fault   Fault
}

// planFaults counts the request and draws the faults that fire for it.
func (s *Server) planFaults(rt route) faultPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[rt.op]++
	var p faultPlan
	for _, r := range s.faults {
		f := r.f
		if (f.Op != "" && f.Op != rt.op) || (f.Endpoint != "" && f.Endpoint != rt.ep) {
			continue
		}
		if f.Times > 0 && r.fired >= f.Times {
			continue
		}
		r.matched++
		if r.matched <= f.Skip {
			continue
		}
		if f.Probability > 0 && f.Probability < 1 && s.rng.Float64() >= f.Probability {
			continue
		}
		r.fired++
		if f.Action == FaultLatency {
			p.latency += f.Latency
			continue
		}
		p.action, p.fault = f.Action, f
		break
	}
	return p
}

// pre applies the faults that stop a request before any work; it reports
// whether the request is finished.
func (p faultPlan) pre(rec *recorder, w http.ResponseWriter) bool {
	switch p.action {
	case FaultRateLimit:
		after := p.fault.RetryAfter
		if after <= 0 {
			after = time.Second
		}
		secs := int64(math.Ceil(after.Seconds()))
		rec.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(rec, http.StatusTooManyRequests, fmt.Sprintf("runpodtest: injected fault: rate limited; retry after %d s", secs))
		rec.flush(w)
		return true
	case FaultServerError:
		code := p.fault.StatusCode
		if code == 0 {
			code = http.StatusInternalServerError
		}
		writeError(rec, code, fmt.Sprintf("runpodtest: injected fault: %d %s", code, http.StatusText(code)))
		rec.flush(w)
		return true
	case FaultDrop:
		rec.code = 0
		dropConn(w)
		return true
	}
	return false
}

// post sends the recorded answer, or truncates or drops it.
func (p faultPlan) post(rec *recorder, w http.ResponseWriter) {
	switch p.action {
	case FaultTruncate:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes()[:rec.body.Len()/2])
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		dropConn(w)
	case FaultDropAnswer:
		dropConn(w)
	default:
		rec.flush(w)
	}
}

// dropConn closes the request's connection without (finishing) an answer.
func dropConn(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	// Not hijackable (HTTP/2, or a wrapping handler): make net/http abort the
	// stream or connection.
	panic(http.ErrAbortHandler)
}

// expireFault deletes the job rt names, as a ttl expiry would; it reports
// false when rt names no live job.
func (s *Server) expireFault(rt route) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.findJobLocked(rt.ep, rt.jobID)
	if rt.jobID == "" || j == nil {
		return false
	}
	s.deleteLocked(j, s.clock.Now(), "expired by an injected fault")
	return true
}
