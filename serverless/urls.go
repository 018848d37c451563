package serverless

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/comfypod/comfypod/internal/redact"
)

// The placeholders RunPod puts in its URL templates. $ID is the worker id in
// the take and ping templates and the job id in the done and stream templates;
// $RUNPOD_POD_ID is always the worker id.
const (
	placeholderID    = "$ID"
	placeholderPodID = "$RUNPOD_POD_ID"
)

// The path segments that turn the take URL into the batch-take and job-stop
// URLs.
const (
	takeSegment  = "/job-take/"
	batchSegment = "/job-take-batch/"
	stopSegment  = "/job-stop/"
)

// endpoints are the control-plane URLs of one worker, with the worker id
// already substituted. done and stream still hold $ID for the job id.
type endpoints struct {
	take   string // single take; empty in local mode
	batch  string // batch take; empty when the take URL has no /job-take/
	stop   string // job-stop long-poll; empty when the take URL has no /job-take/
	done   string // job-done template, $ID = job id
	stream string // job-stream template, $ID = job id; may be empty
	ping   string // heartbeat; may be empty
}

// newEndpoints substitutes the worker id into the templates and checks that
// each resulting URL is an absolute http(s) URL. The error names the
// environment variable to fix.
func newEndpoints(cfg *Config) (endpoints, error) {
	var e endpoints
	wid := cfg.WorkerID
	e.take = substituteWorker(cfg.TakeURL, wid, true)
	if err := checkURL("RUNPOD_WEBHOOK_GET_JOB (Config.TakeURL)", e.take); err != nil {
		return e, err
	}
	if strings.Contains(e.take, takeSegment) {
		e.batch = strings.Replace(e.take, takeSegment, batchSegment, 1)
		e.stop = strings.Replace(e.take, takeSegment, stopSegment, 1)
	}
	if cfg.DoneURL == "" {
		return e, fmt.Errorf("serverless: RUNPOD_WEBHOOK_POST_OUTPUT (Config.DoneURL) is not set; the worker could take jobs but never return their results")
	}
	e.done = substituteWorker(cfg.DoneURL, wid, false)
	if err := checkURL("RUNPOD_WEBHOOK_POST_OUTPUT (Config.DoneURL)", jobURL(e.done, "job")); err != nil {
		return e, err
	}
	if cfg.StreamURL != "" {
		e.stream = substituteWorker(cfg.StreamURL, wid, false)
		if err := checkURL("RUNPOD_WEBHOOK_POST_STREAM (Config.StreamURL)", jobURL(e.stream, "job")); err != nil {
			return e, err
		}
	}
	if cfg.PingURL != "" {
		e.ping = substituteWorker(cfg.PingURL, wid, true)
		if err := checkURL("RUNPOD_WEBHOOK_PING (Config.PingURL)", e.ping); err != nil {
			return e, err
		}
	}
	return e, nil
}

// substituteWorker replaces $RUNPOD_POD_ID with the worker id, and also $ID
// when both is set (take and ping templates). Python replaces only one of the
// two in each template; replacing both is what every template seen in the
// wild needs.
func substituteWorker(tmpl, workerID string, both bool) string {
	out := replaceEscaped(tmpl, placeholderPodID, workerID)
	if both {
		out = replaceEscaped(out, placeholderID, workerID)
	}
	return out
}

// jobURL puts a job id in place of $ID in a done or stream template.
func jobURL(tmpl, jobID string) string {
	return replaceEscaped(tmpl, placeholderID, jobID)
}

// replaceEscaped replaces every placeholder in u with value, escaped for the
// part of the URL it lands in (path or query), so an id can never add a path
// segment or a query parameter.
func replaceEscaped(u, placeholder, value string) string {
	if !strings.Contains(u, placeholder) {
		return u
	}
	path, query, hasQuery := strings.Cut(u, "?")
	path = strings.ReplaceAll(path, placeholder, url.PathEscape(value))
	if !hasQuery {
		return path
	}
	return path + "?" + strings.ReplaceAll(query, placeholder, url.QueryEscape(value))
}

// appendQuery adds key=value to u, joining with '?' when u has no query yet
// and with '&' otherwise. Templates from RunPod end in "?", "?gpu=<name>" or
// nothing, so both joins are needed.
func appendQuery(u, key, value string) string {
	kv := url.QueryEscape(key) + "=" + url.QueryEscape(value)
	_, query, hasQuery := strings.Cut(u, "?")
	switch {
	case !hasQuery:
		return u + "?" + kv
	case query == "", strings.HasSuffix(query, "&"):
		return u + kv
	default:
		return u + "&" + kv
	}
}

// checkURL reports a template that does not yield an absolute http(s) URL.
// The URL itself is left out of the message only when it carries credentials.
func checkURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("serverless: %s is not a valid URL: %v", name, redact.Signatures(err.Error()))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("serverless: %s must be an http or https URL, got %q", name, redact.Signatures(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("serverless: %s has no host: %q", name, redact.Signatures(raw))
	}
	return nil
}
