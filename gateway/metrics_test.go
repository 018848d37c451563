package gateway

import (
	"image"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true})
	id := h.submit("", brushForm(t, 48, 32, image.Rect(4, 4, 12, 12)))
	if j := h.wait("", id); j.Status != StatusSucceeded {
		t.Fatalf("job: %+v", j)
	}
	h.do("GET", "/v1/jobs/zzzzzzzzzzzzzzzzzzzzzzzz", "", "", nil)
	code, b, hdr := h.doHeader("GET", "/metrics", "", "", nil, nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %v", code, hdr)
	}
	text := string(b)
	for _, want := range []string{
		`comfypod_jobs_accepted_total 1`,
		`comfypod_jobs_finished_total{status="succeeded"} 1`,
		`comfypod_jobs{state="queued"} 0`,
		`comfypod_jobs{state="running"} 0`,
		`comfypod_dispatch_latency_seconds_count 1`,
		`comfypod_job_duration_seconds_count{status="succeeded"} 1`,
		`comfypod_runpod_calls_total{op="run"} 1`,
		`comfypod_jobs_in_flight 0`,
		`comfypod_jobs_submitting 0`,
		`comfypod_http_request_duration_seconds_count{code="202",method="POST",route="POST /v1/jobs"} 1`,
		`comfypod_http_request_duration_seconds_count{code="404",method="GET",route="GET /v1/jobs/{id}"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if m := regexp.MustCompile(`comfypod_runpod_calls_total\{op="status"\} (\d+)`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("no status calls counted")
	}
	if strings.Contains(text, "/v1/jobs/"+id) {
		t.Error("a job id became a metric label")
	}
	if t.Failed() {
		t.Log(text)
	}
}
