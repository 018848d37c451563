package runpodtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/comfypod/comfypod/internal/redact"
)

// WebhookDelivery is one attempt to deliver a job's final status to its
// webhook.
type WebhookDelivery struct {
	JobID string `json:"jobId"`
	// URL is the webhook as the request gave it.
	URL string `json:"url"`
	// Attempt counts from 1; a failed attempt is retried until
	// Config.WebhookAttempts are spent.
	Attempt int `json:"attempt"`
	// StatusCode is the receiver's answer, 0 when none arrived.
	StatusCode int `json:"statusCode,omitempty"`
	// Err says why the attempt failed; empty when the receiver answered 200.
	Err string `json:"error,omitempty"`
	// Body is the JSON posted: the job's final status.
	Body json.RawMessage `json:"body"`
	// At is when the attempt ended, on the server's clock.
	At time.Time `json:"at"`
	// Delivered is true when the receiver answered 200.
	Delivered bool `json:"delivered"`
}

// sendWebhookLocked starts delivering j's final status to its webhook.
func (s *Server) sendWebhookLocked(j *job, now time.Time) {
	body, err := json.Marshal(s.statusBodyLocked(j, now))
	if err != nil {
		return
	}
	if s.closed {
		return
	}
	s.bg.Add(1)
	go s.deliver(j.id, j.webhook, body)
}

// deliver posts body to hook until it answers 200 or the attempts are spent,
// waiting Config.WebhookRetryDelay between attempts.
func (s *Server) deliver(jobID, hook string, body []byte) {
	defer s.bg.Done()
	for attempt := 1; attempt <= s.cfg.WebhookAttempts; attempt++ {
		code, err := s.postWebhook(hook, body)
		d := WebhookDelivery{JobID: jobID, URL: hook, Attempt: attempt, StatusCode: code, Body: body}
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("the receiver answered %d; RunPod wants 200", code)
		}
		// Arm the retry timer before the attempt becomes visible, so a test
		// that sees it can advance a fake clock past the delay.
		var t clockwork.Timer
		if err != nil && attempt < s.cfg.WebhookAttempts {
			t = s.clock.NewTimer(s.cfg.WebhookRetryDelay)
		}
		s.mu.Lock()
		d.At = s.clock.Now()
		if err != nil {
			d.Err = err.Error()
		} else {
			d.Delivered = true
		}
		s.deliveries = append(s.deliveries, d)
		s.notifyLocked()
		s.mu.Unlock()
		if err == nil {
			s.log.Info("runpodtest: webhook delivered", "job", jobID, "url", redact.URL(hook), "attempt", attempt)
			return
		}
		s.log.Warn("runpodtest: webhook failed", "job", jobID, "url", redact.URL(hook), "attempt", attempt, "err", d.Err)
		if t == nil {
			return
		}
		select {
		case <-t.Chan():
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// postWebhook makes one delivery attempt.
func (s *Server) postWebhook(hook string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad webhook URL %s", redact.URL(hook))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post to %s failed: %s", redact.URL(hook), redact.Error(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Webhooks lists every webhook delivery attempt so far, oldest first.
func (s *Server) Webhooks() []WebhookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WebhookDelivery(nil), s.deliveries...)
}
