package serverless

import (
	"strings"
	"testing"
)

func TestAppendQuery(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"http://h/v2/ep/job-take/w", "http://h/v2/ep/job-take/w?k=v+1"},
		{"http://h/v2/ep/job-take/w?", "http://h/v2/ep/job-take/w?k=v+1"},
		{"http://h/v2/ep/job-take/w?gpu=NVIDIA+H100", "http://h/v2/ep/job-take/w?gpu=NVIDIA+H100&k=v+1"},
		{"http://h/x?a=1&", "http://h/x?a=1&k=v+1"},
	} {
		if got := appendQuery(c.in, "k", "v 1"); got != c.want {
			t.Errorf("appendQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, tmpl, worker, job string
		both                    bool
		want                    string
	}{
		{"take with $ID", "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=H100", "pod-1", "", true, "https://api.runpod.ai/v2/ep/job-take/pod-1?gpu=H100"},
		{"take with $RUNPOD_POD_ID", "https://api.runpod.ai/v2/ep/job-take/$RUNPOD_POD_ID?gpu=H100", "pod-1", "", true, "https://api.runpod.ai/v2/ep/job-take/pod-1?gpu=H100"},
		{"ping", "https://api.runpod.ai/v2/ep/ping/$RUNPOD_POD_ID", "pod-1", "", true, "https://api.runpod.ai/v2/ep/ping/pod-1"},
		{"done", "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=NVIDIA+H100+PCIe", "pod-1", "abc-e1", false, "https://api.runpod.ai/v2/ep/job-done/pod-1/abc-e1?gpu=NVIDIA+H100+PCIe"},
		{"id cannot add a segment", "http://h/job-done/$RUNPOD_POD_ID/$ID?", "w", "../x/y?z=1", false, "http://h/job-done/w/..%2Fx%2Fy%3Fz=1?"},
		{"id in the query", "http://h/done?job=$ID", "w", "a&b=c", false, "http://h/done?job=a%26b%3Dc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := substituteWorker(c.tmpl, c.worker, c.both)
			if c.job != "" {
				got = jobURL(got, c.job)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestNewEndpoints(t *testing.T) {
	t.Parallel()
	cfg := &Config{
		TakeURL:   "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=H100",
		DoneURL:   "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=H100",
		StreamURL: "https://api.runpod.ai/v2/ep/job-stream/$RUNPOD_POD_ID/$ID?gpu=H100",
		PingURL:   "https://api.runpod.ai/v2/ep/ping/$RUNPOD_POD_ID?gpu=H100",
		WorkerID:  "w1",
	}
	e, err := newEndpoints(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.batch != "https://api.runpod.ai/v2/ep/job-take-batch/w1?gpu=H100" || e.stop != "https://api.runpod.ai/v2/ep/job-stop/w1?gpu=H100" {
		t.Errorf("batch %q stop %q", e.batch, e.stop)
	}
	if e.done != "https://api.runpod.ai/v2/ep/job-done/w1/$ID?gpu=H100" || e.ping != "https://api.runpod.ai/v2/ep/ping/w1?gpu=H100" {
		t.Errorf("done %q ping %q", e.done, e.ping)
	}

	// A take URL without /job-take/ works, with neither batch nor stop.
	cfg.TakeURL = "http://sched.local/take/$ID"
	e, err = newEndpoints(cfg)
	if err != nil || e.batch != "" || e.stop != "" {
		t.Errorf("custom take URL: %+v %v", e, err)
	}

	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no done URL", func(c *Config) { c.DoneURL = "" }, "RUNPOD_WEBHOOK_POST_OUTPUT"},
		{"relative take", func(c *Config) { c.TakeURL = "/v2/ep/job-take/$ID" }, "RUNPOD_WEBHOOK_GET_JOB (Config.TakeURL) must be an http or https URL"},
		{"no host", func(c *Config) { c.PingURL = "http:///ping" }, "RUNPOD_WEBHOOK_PING (Config.PingURL) has no host"},
		{"bad stream", func(c *Config) { c.StreamURL = "ftp://x/$ID" }, "RUNPOD_WEBHOOK_POST_STREAM"},
		{"unparsable", func(c *Config) { c.TakeURL = "http://h/%zz" }, "is not a valid URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := *cfg
			c.edit(&cc)
			_, err := newEndpoints(&cc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestPingURL(t *testing.T) {
	t.Parallel()
	w := &Worker{cfg: &Config{RunpodVersion: "1.12.0"}, urls: endpoints{ping: "http://h/ping/w1?gpu=A"}}
	if got := w.pingURL(nil); got != "http://h/ping/w1?gpu=A&runpod_version=1.12.0" {
		t.Errorf("idle ping %q", got)
	}
	if got := w.pingURL([]string{"b", "a"}); got != "http://h/ping/w1?gpu=A&job_id=a%2Cb&runpod_version=1.12.0" {
		t.Errorf("busy ping %q", got)
	}
	// A very long list is cut at a comma, under 64 KiB.
	var ids []string
	for range 10000 {
		ids = append(ids, "0123456789abcdef")
	}
	got := w.pingURL(ids)
	if len(got) > maxPingJobIDs*3+100 || strings.Contains(got, "%2C&") {
		t.Errorf("long ping URL: %d bytes, ends %q", len(got), got[len(got)-40:])
	}
}
