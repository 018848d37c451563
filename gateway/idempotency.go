package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/comfypod/comfypod/gateway/store"
)

// IdempotencyHeader names the header that makes POST /v1/jobs safe to retry.
const IdempotencyHeader = "Idempotency-Key"

// maxIdempotencyKey caps the length of an Idempotency-Key.
const maxIdempotencyKey = 255

// idempotencyKey reads the request's Idempotency-Key: printable ASCII, 1 to
// maxIdempotencyKey characters, optionally quoted as a structured-field
// string. "" when there is none.
func idempotencyKey(r *http.Request) (string, *apiError) {
	vals := r.Header.Values(IdempotencyHeader)
	if len(vals) == 0 {
		return "", nil
	}
	bad := badRequest(IdempotencyHeader, "want one key of 1 to %d printable ASCII characters, such as a UUID made for this submission", maxIdempotencyKey)
	if len(vals) > 1 {
		return "", bad
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxIdempotencyKey {
		return "", bad
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c > 0x7e {
			return "", bad
		}
	}
	return k, nil
}

// fingerprint identifies what a submission asks for: its files and params,
// whatever the multipart boundary or the order of fields. Two submissions
// with one fingerprint create the same job.
func (sub *submission) fingerprint() string {
	var lines []string
	for name, data := range sub.files {
		sum := sha256.Sum256(data)
		lines = append(lines, "file\x00"+name+"\x00"+hex.EncodeToString(sum[:]))
	}
	for name, v := range sub.params {
		switch x := v.(type) {
		case string:
			lines = append(lines, "text\x00"+name+"\x00"+x)
		case json.RawMessage:
			var b bytes.Buffer
			if json.Compact(&b, x) != nil {
				b.Reset()
				b.Write(x)
			}
			lines = append(lines, "json\x00"+name+"\x00"+b.String())
		}
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

// replay answers a submission whose Idempotency-Key the owner used before:
// with its job (200) when the submission is the same, with 422 when it is
// not. It reports whether it answered; false means the key is new.
func (s *Service) replay(w http.ResponseWriter, r *http.Request, owner, key, hash string) bool {
	j, err := s.st.JobByIdempotencyKey(r.Context(), owner, key)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		s.writeError(w, r, unavailable("the job store does not answer; nothing was queued, try again", err))
		return true
	}
	if j.RequestHash != hash {
		s.writeError(w, r, &apiError{status: http.StatusUnprocessableEntity, code: "idempotency_key_reused", field: IdempotencyHeader,
			msg: "this Idempotency-Key was used for job " + j.ID + " with other images or params: send a new key for a new job"})
		return true
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "submission retried with its Idempotency-Key: answered with its job",
		slog.String("job", j.ID), slog.String("request_id", requestID(r.Context())))
	w.Header().Set("Idempotent-Replayed", "true")
	s.writeAccepted(w, http.StatusOK, j)
	return true
}
