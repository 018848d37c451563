package runpod

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// State is the state of a job as RunPod reports it.
type State string

// The states a job goes through. COMPLETED, FAILED, CANCELLED and TIMED_OUT
// are terminal: the job will not change again.
const (
	StateInQueue    State = "IN_QUEUE"    // waiting for a worker
	StateInProgress State = "IN_PROGRESS" // a worker is running it
	StateRunning    State = "RUNNING"     // documented by RunPod but not seen in practice; treated as IN_PROGRESS
	StateCompleted  State = "COMPLETED"   // the worker returned an output
	StateFailed     State = "FAILED"      // the worker returned an error
	StateCancelled  State = "CANCELLED"   // cancelled through /cancel or a purge
	StateTimedOut   State = "TIMED_OUT"   // expired in the queue or ran past its execution timeout
)

// Terminal reports whether a job in state s will not change again.
func (s State) Terminal() bool {
	switch s {
	case StateCompleted, StateFailed, StateCancelled, StateTimedOut:
		return true
	}
	return false
}

// Status is what RunPod reports about a job: its state, timings and, once it
// has completed, its output.
//
// A Status may hold a large response in a temporary file (see
// WithMemoryLimit); call Close when done with it. Read output files with
// Outputs or WriteOutputs, which stream them to disk whatever their size.
type Status struct {
	// ID is the job's id.
	ID string
	// State is the job's state.
	State State
	// DelayTime is how long the job waited in the queue.
	DelayTime time.Duration
	// ExecutionTime is how long a worker ran it.
	ExecutionTime time.Duration
	// WorkerID is the worker that ran the job, when RunPod says.
	WorkerID string
	// Retries is how many times RunPod retried the job.
	Retries int
	// Error is the error a FAILED job reported, as RunPod returned it; see
	// JobError for its decoded form.
	Error string
	// Output is the job's output as JSON (a progress update while the job is
	// IN_PROGRESS). It is nil when the job has no output, and also when the
	// response was too large to keep in memory: then use DecodeOutput,
	// OutputJSON, Outputs or WriteOutputs, which read it from disk.
	Output json.RawMessage

	body      *body
	outOff    int64 // offset of the output value in body; -1 when absent
	outLen    int64
	client    *Client
	errorKind byte // '"' when error was a JSON string, '{' etc. otherwise
}

// HasOutput reports whether the job returned an output (null counts as none).
func (s *Status) HasOutput() bool { return s.outOff >= 0 }

// OutputJSON returns a reader over the raw JSON of the output, from memory or
// disk. It reads "null" when there is no output.
func (s *Status) OutputJSON() io.Reader {
	if s.outOff < 0 || s.body == nil {
		return strings.NewReader("null")
	}
	return s.body.section(s.outOff, s.outLen)
}

// DecodeOutput decodes the output into v, as json.Unmarshal would. For a very
// large output prefer Outputs or WriteOutputs, which do not load it.
func (s *Status) DecodeOutput(v any) error {
	if s.outOff < 0 {
		return errors.New("runpod: the job has no output")
	}
	dec := json.NewDecoder(s.OutputJSON())
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("runpod: decode the output of job %s: %w", s.ID, err)
	}
	return nil
}

// WriteJSON writes the status exactly as RunPod sent it, streaming it from
// disk when it is large.
func (s *Status) WriteJSON(w io.Writer) error {
	if s.body == nil {
		b, err := json.Marshal(s.summary())
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err := io.Copy(w, s.body.section(0, s.body.size))
	return err
}

// summary is the status's small fields as RunPod would spell them.
func (s *Status) summary() map[string]any {
	m := map[string]any{"id": s.ID, "status": s.State}
	if s.DelayTime > 0 {
		m["delayTime"] = s.DelayTime.Milliseconds()
	}
	if s.ExecutionTime > 0 {
		m["executionTime"] = s.ExecutionTime.Milliseconds()
	}
	if s.WorkerID != "" {
		m["workerId"] = s.WorkerID
	}
	if s.Error != "" {
		m["error"] = s.Error
	}
	return m
}

// Close releases the temporary file behind a large status. It is safe to call
// on any Status, and more than once; outputs cannot be read after it.
func (s *Status) Close() error {
	if s == nil || s.body == nil {
		return nil
	}
	return s.body.close()
}

// Limits on the small fields of a status, so that a hostile or broken server
// cannot make the decoder hold much in memory.
const (
	maxIDLen    = 1 << 10
	maxErrorLen = 1 << 20
)

// decodeStatus reads a job status from b. The output is located, not loaded:
// Output is filled only when b is in memory.
func decodeStatus(b *body) (*Status, error) {
	st := &Status{body: b, outOff: -1}
	sc := newScanner(b.section(0, b.size), 0)
	err := sc.object(func(key string) error {
		switch key {
		case "id":
			v, err := stringField(sc, maxIDLen, true)
			st.ID = v
			return fieldErr(key, err)
		case "status":
			v, err := stringField(sc, 64, false)
			st.State = State(v)
			return fieldErr(key, err)
		case "workerId":
			v, err := stringField(sc, maxIDLen, true)
			st.WorkerID = v
			return fieldErr(key, err)
		case "delayTime", "executionTime", "retries":
			n, err := numberField(sc)
			if err != nil {
				return fieldErr(key, err)
			}
			switch key {
			case "delayTime":
				st.DelayTime = msDuration(n)
			case "executionTime":
				st.ExecutionTime = msDuration(n)
			default:
				st.Retries = int(max(0, min(n, math.MaxInt32)))
			}
			return nil
		case "error":
			return fieldErr(key, st.decodeError(sc))
		case "output":
			c, err := sc.peek()
			if err != nil {
				return err
			}
			start := sc.offset()
			if err := sc.skip(); err != nil {
				return err
			}
			if c != 'n' { // null is no output
				st.outOff, st.outLen = start, sc.offset()-start
			}
			return nil
		default:
			return sc.skip()
		}
	})
	if err == nil {
		err = sc.end()
	}
	if err != nil {
		return nil, fmt.Errorf("decode job status: %w", err)
	}
	if st.State == "" {
		return nil, errors.New(`decode job status: no "status" field`)
	}
	if st.outOff >= 0 && !b.spooled() {
		st.Output = json.RawMessage(b.mem[st.outOff : st.outOff+st.outLen])
	}
	return st, nil
}

// decodeError reads the error field: usually a string (possibly holding JSON,
// see JobError), sometimes an object from other workers; kept as text either
// way.
func (st *Status) decodeError(sc *scanner) error {
	c, err := sc.peek()
	if err != nil {
		return err
	}
	switch c {
	case 'n':
		return sc.skip()
	case '"':
		v, _, err := sc.stringTrunc(maxErrorLen)
		st.Error, st.errorKind = v, '"'
		return err
	default:
		raw, err := sc.raw(maxErrorLen)
		if errors.Is(err, errStringTooLong) {
			st.Error, st.errorKind = "(error value too large to show)", '"'
			return nil
		}
		st.Error, st.errorKind = string(raw), c
		return err
	}
}

func fieldErr(key string, err error) error {
	if err == nil {
		return nil
	}
	var se *syntaxError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("field %q: %w", key, err)
}

// stringField reads a string (or null, as "") of at most max bytes; numbers
// are taken as text when numeric is set (ids).
func stringField(sc *scanner, max int, numeric bool) (string, error) {
	c, err := sc.peek()
	if err != nil {
		return "", err
	}
	switch c {
	case 'n':
		return "", sc.skip()
	case '"':
		v, _, err := sc.stringCapped(max)
		return v, err
	default:
		// Be lenient with numbers used as ids.
		raw, err := sc.raw(64)
		if err != nil {
			return "", err
		}
		if numeric && (c == '-' || (c >= '0' && c <= '9')) {
			return string(raw), nil
		}
		return "", fmt.Errorf("want a string, found %s", raw)
	}
}

// numberField reads a number (or null, as 0).
func numberField(sc *scanner) (int64, error) {
	c, err := sc.peek()
	if err != nil {
		return 0, err
	}
	if c == 'n' {
		return 0, sc.skip()
	}
	raw, err := sc.raw(64)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, fmt.Errorf("want a number, found %s", raw)
	}
	if math.IsNaN(f) || f < 0 {
		return 0, nil
	}
	if limit := int64(math.MaxInt64 / int64(time.Millisecond)); f > float64(limit) {
		return limit, nil
	}
	return int64(f), nil
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
