package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/comfypod/comfypod/internal/redact"
)

// apiError is an error answer: a status, a code and a message for the
// caller. Internal errors never reach callers: they are logged, and the
// caller gets a generic message with the request id.
type apiError struct {
	status   int
	code     string
	msg      string
	field    string
	problems []Problem
	// cause is logged, never sent.
	cause error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", field: field, msg: withField(field, fmt.Sprintf(format, args...))}
}

func invalid(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: "invalid_param", field: field, msg: withField(field, fmt.Sprintf(format, args...))}
}

func tooLarge(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", field: field, msg: withField(field, fmt.Sprintf(format, args...))}
}

func unsupported(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", field: field, msg: withField(field, fmt.Sprintf(format, args...))}
}

func notFound(what string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "not_found", msg: what + " not found"}
}

func internal(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: "internal",
		msg: "internal error; the service log has the details under this request id", cause: cause}
}

func unavailable(msg string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: "unavailable", msg: msg, cause: cause}
}

func withField(field, msg string) string {
	if field == "" {
		return msg
	}
	return field + ": " + msg
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encoding the answer failed"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers with e, logging it: expected client errors at Info,
// server errors at Error with their cause.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	rid := requestID(r.Context())
	attrs := []slog.Attr{slog.String("route", routeOf(r)), slog.Int("status", e.status), slog.String("code", e.code), slog.String("request_id", rid)}
	if e.status >= 500 {
		msg := e.msg
		if e.cause != nil {
			msg = e.Error()
		}
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", append(attrs, slog.String("err", scrub(msg)))...)
	} else {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request refused", append(attrs, slog.String("reason", scrub(e.msg)))...)
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="comfypod"`)
	}
	writeJSON(w, e.status, ErrorBody{Error: ErrorDetail{Code: e.code, Message: e.msg, Field: e.field, Problems: e.problems, RequestID: rid}})
}

// secretPatterns match what must never reach a log line or an error: API
// keys (ours and RunPod's), webhook paths with their token, bearer headers,
// and the query of presigned URLs.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`cpk_[A-Za-z0-9_-]{8,}`),
	regexp.MustCompile(`rpa_[A-Za-z0-9]{8,}`),
	regexp.MustCompile(`(?i)(bearer\s+)[^\s"']+`),
	regexp.MustCompile(`(/v1/runpod/webhook/)[^\s"'?]+`),
}

// scrub removes secrets from text bound for a log line or an error, the
// signatures of presigned URLs included.
func scrub(s string) string {
	if !strings.ContainsAny(s, "_/") && !strings.Contains(strings.ToLower(s), "bearer") {
		return s
	}
	for i, re := range secretPatterns {
		if i < 2 {
			s = re.ReplaceAllStringFunc(s, func(m string) string { return m[:4] + redact.Marker })
		} else {
			s = re.ReplaceAllString(s, "${1}"+redact.Marker)
		}
	}
	return redact.Signatures(s)
}
