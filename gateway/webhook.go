package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/comfypod/comfypod/gateway/store"
)

// maxWebhookBytes caps a webhook body: RunPod posts the job's final status,
// outputs included (a worker result is at most 20 MB).
const maxWebhookBytes = 64 << 20

// handleWebhook takes RunPod's call with a job's final status. The path
// carries the job id and a per-job secret, checked in constant time against
// the hash stored at submission. It is idempotent: a job that already ended
// answers 200 and changes nothing. An answer other than 200 makes RunPod try
// again; polling is the fallback either way.
func (s *Service) handleWebhook(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := strings.Cut(r.PathValue("token"), ".")
	if !ok || !validJobID(id) || secret == "" || len(secret) > 128 {
		s.writeError(w, r, notFound("webhook"))
		return
	}
	j, err := s.st.GetJob(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, unavailable("the job store does not answer", err))
		return
	}
	sum := sha256.Sum256([]byte(secret))
	got := []byte(hex.EncodeToString(sum[:]))
	want := make([]byte, len(got))
	if j != nil && len(j.WebhookHash) == len(got) {
		copy(want, j.WebhookHash)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 || j == nil {
		s.writeError(w, r, notFound("webhook"))
		return
	}
	st, err := s.rp.ReadStatus(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	if err != nil {
		s.writeError(w, r, badRequest("", "the body is not a RunPod job status"))
		return
	}
	defer st.Close()
	if j.RunPodID != "" && st.ID != "" && st.ID != j.RunPodID {
		s.writeError(w, r, badRequest("", "the status is of another job"))
		return
	}
	if j.State.Terminal() || !st.State.Terminal() {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	}
	if !s.beginJobWork() {
		// Stop has begun and waits for the work it knows of; RunPod
		// retries the webhook, and the next start's polling ends the job.
		s.writeError(w, r, unavailable("the service is stopping; try again", nil))
		return
	}
	err = s.complete(r.Context(), id, st)
	s.jobsWG.Done()
	if err != nil {
		s.writeError(w, r, unavailable("the job could not be ended now; try again", err))
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "webhook received", slog.String("job", id), slog.String("state", string(st.State)))
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
