package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/comfypod/comfypod/runpod"
)

// handleHealthz says the process is up: it touches nothing else.
func (s *Service) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Readiness answer: each check is "ok" or what failed.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReadyz says whether the service can take jobs: the store answers,
// the output store answers, and RunPod answers for the endpoint (its /health,
// at most every 10 s). A failing check answers 503.
func (s *Service) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"store":   s.st.Ping,
		"outputs": s.blobs.Check,
		"runpod": func(ctx context.Context) error {
			_, err := s.health.check(ctx)
			return err
		},
	}
	out := readiness{Status: "ready", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			msg := "ok"
			if err := check(ctx); err != nil {
				msg = readinessProblem(name, err)
				s.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("check", name), slog.String("err", scrub(err.Error())))
			}
			mu.Lock()
			out.Checks[name] = msg
			mu.Unlock()
		})
	}
	wg.Wait()
	code := http.StatusOK
	for _, v := range out.Checks {
		if v != "ok" {
			out.Status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	if s.life.Err() != nil {
		out.Status, code = "stopping", http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

// readinessProblem says what failed without the error's own text, which
// stays in the log.
func readinessProblem(check string, err error) string {
	switch {
	case errors.Is(err, runpod.ErrUnauthorized):
		return "RunPod refused the API key"
	case errors.Is(err, runpod.ErrEndpointNotFound):
		return "RunPod does not know the endpoint id"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case check == "runpod":
		return "RunPod cannot be reached"
	}
	return "not reachable (see the service log)"
}
