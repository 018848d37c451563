package serverless

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/comfypod/comfypod/internal/pyjson"
	"github.com/comfypod/comfypod/internal/redact"
)

// Attribute keys the log handler gives a meaning to. The worker puts them on
// every line about a job; handlers get them through Job.Logger.
const (
	// JobIDKey carries the job id; it becomes the line's requestId.
	JobIDKey = "job_id"
	// BatchIDKey carries a batch id; the message is prefixed
	// "[batchId=<id>] " as runpod-python does.
	BatchIDKey = "batch_id"
)

// MaxLogMessage is the longest message logged whole; longer ones keep their
// first and last MaxLogMessage/2 characters, as runpod-python does.
const MaxLogMessage = 4096

// LogOptions configures NewLogHandler.
type LogOptions struct {
	// JSON selects RunPod's JSON lines; false gives readable text.
	JSON bool
	// Level is the minimum level logged (LevelOff logs nothing).
	Level slog.Leveler
	// Secrets are values removed from every line (the API key).
	Secrets []string
}

// NewLogHandler returns a slog.Handler that writes runpod-python's log lines
// to w, one per record:
//
//	{"requestId": "<job id>" | null, "message": "...", "level": "INFO"}   (JSON)
//	INFO   | <job id> | message                                          (text)
//
// The JSON form is byte-for-byte what runpod-python prints on RunPod (its
// json.dumps spacing and ASCII escaping), which the console parses to file
// lines under their request. Attributes other than JobIDKey and BatchIDKey
// are appended to the message as key=value. Messages over MaxLogMessage
// characters are cut in the middle. Presigned-URL credentials and the given
// secrets are replaced with REDACTED. Writes are serialized.
func NewLogHandler(w io.Writer, opts *LogOptions) slog.Handler {
	if opts == nil {
		opts = &LogOptions{}
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	return &logHandler{
		out:   &logOutput{w: w},
		json:  opts.JSON,
		level: level,
		scrub: redact.NewSecrets(opts.Secrets...),
	}
}

// logOutput is the writer shared by a handler and those derived from it.
type logOutput struct {
	mu sync.Mutex
	w  io.Writer
}

type logHandler struct {
	out     *logOutput
	json    bool
	level   slog.Leveler
	scrub   redact.Secrets
	jobID   string
	batchID string
	attrs   []byte // pre-rendered " key=value" pairs from WithAttrs
	group   string // dotted prefix from WithGroup
}

// Enabled reports whether records at lv are logged.
func (h *logHandler) Enabled(_ context.Context, lv slog.Level) bool {
	min := h.level.Level()
	return min != LevelOff && lv >= min
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	var b bytes.Buffer
	b.Write(h.attrs)
	ids := logIDs{job: h.jobID, batch: h.batchID}
	for _, a := range attrs {
		addAttr(&b, h.group, a, &ids)
	}
	h2.jobID, h2.batchID = ids.job, ids.batch
	h2.attrs = b.Bytes()
	return &h2
}

// WithGroup returns a handler that qualifies later attribute keys with name.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// Handle writes one line.
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	ids := logIDs{job: h.jobID, batch: h.batchID}
	var extra bytes.Buffer
	extra.Write(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		addAttr(&extra, h.group, a, &ids)
		return true
	})
	jobID, batchID := ids.job, ids.batch
	msg := r.Message + extra.String()
	if batchID != "" {
		msg = "[batchId=" + batchID + "] " + msg
	}
	msg = truncateMiddle(h.scrub.String(msg), MaxLogMessage)
	level := levelName(r.Level)

	line := make([]byte, 0, len(msg)+len(jobID)+64)
	if h.json {
		line = append(line, `{"requestId": `...)
		if jobID == "" {
			line = append(line, "null"...)
		} else {
			line = pyjson.AppendString(line, jobID)
		}
		line = append(line, `, "message": `...)
		line = pyjson.AppendString(line, msg)
		line = append(line, `, "level": `...)
		line = pyjson.AppendString(line, level)
		line = append(line, "}\n"...)
	} else {
		line = append(line, level...)
		for i := len(level); i < 7; i++ {
			line = append(line, ' ')
		}
		line = append(line, "| "...)
		if jobID != "" {
			line = append(line, jobID...)
			line = append(line, " | "...)
		}
		line = append(line, msg...)
		line = append(line, '\n')
	}
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(line)
	return err
}

// logIDs are the job and batch ids found among a line's attributes.
type logIDs struct{ job, batch string }

// addAttr renders a as " key=value" (groups flattened with dots). Top-level
// job and batch ids are kept aside in ids instead.
func addAttr(b *bytes.Buffer, prefix string, a slog.Attr, ids *logIDs) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if prefix == "" {
		switch a.Key {
		case JobIDKey:
			ids.job = v.String()
			return
		case BatchIDKey:
			ids.batch = v.String()
			return
		}
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range v.Group() {
			addAttr(b, p, g, ids)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix + a.Key)
	b.WriteByte('=')
	s := v.String()
	if v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		}
	}
	if needsQuote(s) {
		b.WriteString(strconv.Quote(s))
	} else {
		b.WriteString(s)
	}
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == utf8.RuneError || r == 0x7f {
			return true
		}
	}
	return false
}

// levelName maps slog levels to runpod-python's level names.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	default:
		return "ERROR"
	}
}

// truncateMiddle keeps the first and last max/2 characters of a string
// longer than max characters, with runpod-python's note between them:
// "\n...TRUNCATED <n> CHARACTERS...\n", n being the length over max.
// Characters are Unicode code points, as Python counts them.
func truncateMiddle(s string, max int) string {
	if len(s) <= max { // bytes >= runes, so this is exact for the fast path
		return s
	}
	n := utf8.RuneCountInString(s)
	if n <= max {
		return s
	}
	half := max / 2
	// Byte offset after the first half runes.
	head := 0
	for i := 0; i < half; i++ {
		_, size := utf8.DecodeRuneInString(s[head:])
		head += size
	}
	// Byte offset of the last half runes.
	tail := len(s)
	for i := 0; i < half; i++ {
		_, size := utf8.DecodeLastRuneInString(s[:tail])
		tail -= size
	}
	return s[:head] + fmt.Sprintf("\n...TRUNCATED %d CHARACTERS...\n", n-max) + s[tail:]
}
