package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one API route: its ServeMux pattern and whether it needs a key.
type route struct {
	pattern string
	handler http.HandlerFunc
	auth    bool
}

// apiRoutes are the routes /openapi.json documents.
func (s *Service) apiRoutes() []route {
	return []route{
		{"POST /v1/jobs", s.handleCreate, true},
		{"GET /v1/jobs", s.handleList, true},
		{"GET /v1/jobs/{id}", s.handleGet, true},
		{"DELETE /v1/jobs/{id}", s.handleCancel, true},
		{"GET /v1/jobs/{id}/events", s.handleEvents, true},
		{"GET /v1/jobs/{id}/outputs/{n}", s.handleOutput, true},
		{"GET /v1/jobs/{id}/outputs/{n}/thumbnail", s.handleThumbnail, true},
		{"GET /v1/jobs/{id}/inputs/{name}", s.handleInput, true},
		{"GET /v1/package", s.handlePackage, false},
		{"POST /v1/runpod/webhook/{token}", s.handleWebhook, false},
		{"GET /healthz", s.handleHealthz, false},
		{"GET /readyz", s.handleReadyz, false},
		{"GET /metrics", s.handleMetrics, false},
		{"GET /openapi.json", s.handleOpenAPI, false},
	}
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.apiRoutes() {
		h := rt.handler
		if rt.auth {
			h = s.authenticate(h)
		}
		mux.HandleFunc(rt.pattern, h)
	}
	mux.HandleFunc("GET /", s.handleUI)
	return s.middleware(mux)
}

func (s *Service) handleNoRoute(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such route: see /openapi.json"})
}

func (s *Service) handleMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// statusWriter records the status code of an answer. It passes Flush on, for
// event streams.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routeOf names a request's route for logs and metrics: the pattern it
// matched, never the raw path (which may hold a webhook token).
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// middleware gives each request an id, recovers panics, logs the request
// and measures it.
func (s *Service) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := randomID(8)
		ctx := context.WithValue(r.Context(), requestIDKey{}, rid)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", rid)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err := fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				if sw.code == 0 {
					s.writeError(sw, r, internal(err))
				} else {
					s.log.LogAttrs(ctx, slog.LevelError, "panic while answering", slog.String("request_id", rid), slog.String("err", scrub(err.Error())))
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			d := time.Since(start)
			route := routeOf(r)
			s.metrics.observeHTTP(r.Method, route, code, d)
			if code < 400 {
				s.log.LogAttrs(ctx, slog.LevelDebug, "request", slog.String("method", r.Method), slog.String("route", route),
					slog.Int("status", code), slog.Duration("took", d), slog.String("request_id", rid))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// authenticate lets a request through with its caller, or answers 401.
func (s *Service) authenticate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.auth.check(r)
		switch {
		case errors.Is(err, errNoKey):
			s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "unauthorized",
				msg: "send an API key as Authorization: Bearer <key> (create one with: comfypod keys create)"})
			return
		case errors.Is(err, errBadKey):
			s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "unauthorized",
				msg: "the API key is not valid: it is mistyped or was revoked"})
			return
		case err != nil:
			s.writeError(w, r, unavailable("cannot check the API key right now; try again", err))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	}
}

// baseURL is what output URLs start with: the public URL when known, else
// nothing (root-relative URLs).
func (s *Service) baseURL() string {
	return strings.TrimRight(s.cfg.PublicURL, "/")
}
