package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// blockingWorker holds every job until release is closed (or the job is
// stopped), then paints as brushWorker does.
func blockingWorker(release <-chan struct{}) runpodtest.WorkerHandler {
	return func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return brushWorker(ctx, job)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHarness(t, hopts{open: true, handler: blockingWorker(release), config: func(c *Config) { c.Concurrency = 1 }})
	f := brushForm(t, 64, 48, image.Rect(0, 0, 10, 10))
	running := h.submit("", f)
	queued := h.submit("", f)
	awaitCond(t, "the first job running at RunPod", func() bool { return h.get("", running).Status == StatusRunning })
	if j := h.get("", queued); j.Status != StatusQueued || j.RunPodID != "" {
		t.Fatalf("second job: %+v", j)
	}

	// A job that never reached RunPod ends at once.
	code, b := h.do("DELETE", "/v1/jobs/"+queued, "", "", nil)
	j := decodeJob(t, string(b))
	if code != http.StatusOK || j.Status != StatusCancelled || j.Error == nil || j.Error.Code != "cancelled" || j.FinishedAt == nil {
		t.Fatalf("cancel queued: %d %s", code, b)
	}
	// A job at RunPod is cancelled there too.
	code, b = h.do("DELETE", "/v1/jobs/"+running, "", "", nil)
	j = decodeJob(t, string(b))
	if code != http.StatusOK || j.Status != StatusCancelled {
		t.Fatalf("cancel running: %d %s", code, b)
	}
	if rj, ok := h.rp.Job(j.RunPodID); !ok || rj.Status != runpodtest.StatusCancelled {
		t.Fatalf("the job at RunPod: %+v", rj)
	}
	// Again: same answer. A job that succeeded cannot be cancelled.
	if code, _ := h.do("DELETE", "/v1/jobs/"+running, "", "", nil); code != http.StatusOK {
		t.Fatalf("second cancel: %d", code)
	}
	close(release)
	done := h.submit("", f)
	if j := h.wait("", done); j.Status != StatusSucceeded {
		t.Fatalf("third job: %+v", j)
	}
	code, b = h.do("DELETE", "/v1/jobs/"+done, "", "", nil)
	if code != http.StatusConflict || errorOf(t, b).Code != "conflict" {
		t.Fatalf("cancel succeeded: %d %s", code, b)
	}
	if n := h.rp.Requests(runpodtest.OpRun); n != 2 {
		t.Fatalf("%d /run calls, want 2: the cancelled queued job must not reach RunPod", n)
	}
	if code, _ := h.do("DELETE", "/v1/jobs/zzzzzzzzzzzzzzzzzzzzzzzz", "", "", nil); code != http.StatusNotFound {
		t.Fatalf("cancel unknown: %d", code)
	}
}

// TestTimeoutCancelsAtRunPod: a job that waits past its deadline is cancelled
// at RunPod and ends timed_out.
func TestTimeoutCancelsAtRunPod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true, config: func(c *Config) { c.Timeout = 1500 * time.Millisecond }})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	j := h.wait("", id)
	if j.Status != StatusTimedOut || j.Error == nil || j.Error.Code != "timeout" || !strings.Contains(j.Error.Message, "cancelled at RunPod") {
		t.Fatalf("job: %+v %+v", j, j.Error)
	}
	if rj, ok := h.rp.Job(j.RunPodID); !ok || rj.Status != runpodtest.StatusCancelled {
		t.Fatalf("the job at RunPod: %+v", rj)
	}
}

// TestRefusedSubmissionsWait: /run answered 429 (RunPod certainly did not
// take the job) sends the job back to the queue, not to failure; when its
// deadline passes there, it times out without ever reaching RunPod.
func TestRefusedSubmissionsWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true, rpOpts: []runpod.Option{runpod.WithRetryPolicy(runpod.NoRetry())},
		config: func(c *Config) { c.Timeout = 1500 * time.Millisecond }})
	if _, err := h.rp.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultRateLimit}); err != nil {
		t.Fatal(err)
	}
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	j := h.wait("", id)
	if j.Status != StatusTimedOut || j.RunPodID != "" || j.Error.Code != "timeout" || !strings.Contains(j.Error.Message, "never sent to RunPod") ||
		!strings.Contains(j.Error.Message, "last attempt to send the job failed") {
		t.Fatalf("job: %+v %+v", j, j.Error)
	}
	if len(h.rp.Jobs()) != 0 || h.rp.Requests(runpodtest.OpRun) < 1 {
		t.Fatalf("jobs at RunPod: %d, /run calls: %d", len(h.rp.Jobs()), h.rp.Requests(runpodtest.OpRun))
	}
	if !strings.Contains(h.logs.String(), "submission failed; the job waits and is sent again") {
		t.Fatal("the refused submission is not logged")
	}
}

// TestWebhookEndsJobs: with polling out of the way, RunPod's webhook alone
// ends the job; the webhook route checks its secret and is idempotent.
func TestWebhookEndsJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, webhooks: true, config: func(c *Config) {
		c.PollMin, c.PollMax, c.WebhookPollMax = time.Hour, time.Hour, time.Hour
	}})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	j := h.wait("", id)
	if j.Status != StatusSucceeded {
		t.Fatalf("job: %+v", j)
	}
	if n := h.rp.Requests(runpodtest.OpStatus); n != 0 {
		t.Fatalf("%d status polls: the webhook should have ended the job", n)
	}
	// The control plane records the delivery once our answer reached it.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.rp.Await(ctx, func() bool { return len(h.rp.Webhooks()) == 1 }); err != nil {
		t.Fatal(err)
	}
	hooks := h.rp.Webhooks()
	if len(hooks) != 1 || !hooks[0].Delivered || !strings.HasPrefix(hooks[0].URL, h.url+"/v1/runpod/webhook/"+id+".") {
		t.Fatalf("webhooks: %+v", hooks)
	}
	path := strings.TrimPrefix(hooks[0].URL, h.url)
	// The same call again changes nothing.
	if code, b := h.do("POST", path, "", "application/json", hooks[0].Body); code != http.StatusOK {
		t.Fatalf("replayed webhook: %d %s", code, b)
	}
	if again := h.get("", id); again.Status != StatusSucceeded || len(again.Outputs) != 1 {
		t.Fatalf("after replay: %+v", again)
	}
	// A wrong secret, an unknown job, garbage: 404 without a hint.
	for _, p := range []string{
		"/v1/runpod/webhook/" + id + ".wrongsecret", "/v1/runpod/webhook/" + id, "/v1/runpod/webhook/zzzzzzzzzzzzzzzzzzzzzzzz.x", "/v1/runpod/webhook/abc",
	} {
		if code, _ := h.do("POST", p, "", "application/json", hooks[0].Body); code != http.StatusNotFound {
			t.Fatalf("POST %s: %d", p, code)
		}
	}
}

// TestNoJobWorkAfterStop: once Stop has begun, a webhook may not start
// work Stop would not wait for (and whose WaitGroup Add would race its Wait).
func TestNoJobWorkAfterStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true})
	if !h.svc.beginJobWork() {
		t.Fatal("a running service refused work")
	}
	h.svc.jobsWG.Done()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if h.svc.beginJobWork() {
		h.svc.jobsWG.Done()
		t.Fatal("a stopped service took work")
	}
}

// TestLostRunAnswer: RunPod takes the job but the answer to /run is lost.
// The job is never sent twice: with a webhook it still completes; without
// one it fails as unknown.
func TestLostRunAnswer(t *testing.T) {
	t.Parallel()
	for _, webhooks := range []bool{true, false} {
		name := map[bool]string{true: "webhook", false: "polling"}[webhooks]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, hopts{open: true, webhooks: webhooks})
			if _, err := h.rp.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultDropAnswer, Times: 1}); err != nil {
				t.Fatal(err)
			}
			id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
			j := h.wait("", id)
			if n := h.rp.Requests(runpodtest.OpRun); n != 1 {
				t.Fatalf("%d /run calls, want 1", n)
			}
			if webhooks {
				if j.Status != StatusSucceeded || j.RunPodID == "" {
					t.Fatalf("job: %+v %+v", j, j.Error)
				}
				return
			}
			if j.Status != StatusFailed || j.Error.Code != "submission_unknown" || !strings.Contains(j.Error.Message, "not sent again") {
				t.Fatalf("job: %+v %+v", j, j.Error)
			}
		})
	}
}

func TestOutputsOnS3(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, s3: true})
	paint := image.Rect(5, 5, 20, 20)
	id := h.submit("", brushForm(t, 48, 32, paint))
	j := h.wait("", id)
	checkBrushOutput(t, h, "", j, 48, 32, paint, 0)
	obj, err := h.blobs.Open(context.Background(), "jobs/"+id+"/0-brush_00001_.png")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if obj.ContentType != "image/png" || obj.Size != j.Outputs[0].Size {
		t.Fatalf("object: %+v", obj)
	}
	// Range requests are served from the store.
	code, b, _ := h.doHeader("GET", j.Outputs[0].URL, "", "", nil, http.Header{"Range": {"bytes=0-7"}})
	if code != http.StatusPartialContent || string(b) != "\x89PNG\r\n\x1a\n" {
		t.Fatalf("range: %d %q", code, b)
	}
}

// TestColdStartAndProgress: a job queued at RunPod with no worker up shows
// cold_start; once a worker takes it, its progress reports show.
func TestColdStartAndProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true, config: func(c *Config) { c.ColdStartAfter = 200 * time.Millisecond }})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	awaitCond(t, "cold_start", func() bool { return h.get("", id).Status == StatusColdStart })

	release := make(chan struct{})
	reported := make(chan struct{})
	w, err := h.rp.StartWorker(context.Background(), func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		if err := job.Progress(ctx, map[string]any{"stage": "running", "percent": 40, "value": 8, "max": 20}); err != nil {
			return nil, err
		}
		close(reported)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return brushWorker(ctx, job)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	<-reported
	awaitCond(t, "the progress report", func() bool {
		j := h.get("", id)
		return j.Status == StatusRunning && j.Progress != nil && j.Progress.Fraction != nil && *j.Progress.Fraction == 0.4
	})
	j := h.get("", id)
	if j.Progress.Message != "running" || j.StartedAt == nil {
		t.Fatalf("running job: %+v %+v", j, j.Progress)
	}
	close(release)
	if j := h.wait("", id); j.Status != StatusSucceeded || j.Progress != nil {
		t.Fatalf("final: %+v", j)
	}
	if !strings.Contains(h.logs.String(), "cold start") {
		t.Fatal("the cold start is not logged")
	}
}

// TestKeepWarm: with no worker up and nothing queued, the keep-warm submits
// a warm-up job of the package's workflow — not a job of the store.
func TestKeepWarm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true, config: func(c *Config) { c.KeepWarm = 50 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := h.rp.Await(ctx, func() bool { return len(h.rp.Jobs()) > 0 }); err != nil {
		t.Fatal(err)
	}
	warm := h.rp.Jobs()[0]
	if id := ourID(t, warm); id != "warmup" {
		t.Fatalf("the warm-up job's images are named for %q", id)
	}
	if warm.Policy.TTL != h.cfg.Timeout {
		t.Fatalf("warm-up TTL %s", warm.Policy.TTL)
	}
	if n, _ := h.st.CountActive(ctx); len(n) != 0 {
		t.Fatalf("the warm-up is in the store: %v", n)
	}
	if code, b := h.do("GET", "/metrics", "", "", nil); code != http.StatusOK || !strings.Contains(string(b), `comfypod_runpod_workers{state="idle"} 0`) {
		t.Fatalf("worker gauges: %d", code)
	}
}

// brokenOutputs is an output store that cannot be written, as a bucket that
// is down.
type brokenOutputs struct{ blob.Store }

func (brokenOutputs) Put(context.Context, string, io.Reader, string) (int64, error) {
	return 0, errors.New("the bucket does not answer")
}

// TestOutputsUnavailable: a job RunPod completed whose output cannot be
// stored is tried again, then failed with the reason once its deadline (and
// a grace period) passed.
func TestOutputsUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, config: func(c *Config) {
		c.Outputs = brokenOutputs{c.Outputs}
		c.Timeout, c.UnknownGrace = 1500*time.Millisecond, 200*time.Millisecond
	}})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	j := h.wait("", id)
	if j.Status != StatusFailed || j.Error.Code != "output_unavailable" || !strings.Contains(j.Error.Message, "the bucket does not answer") {
		t.Fatalf("job: %+v %+v", j, j.Error)
	}
	if rj, ok := h.rp.Job(j.RunPodID); !ok || rj.Status != runpodtest.StatusCompleted {
		t.Fatalf("at RunPod: %+v", rj)
	}
}

// TestFailedOutputsLeaveNoFiles: a job whose second output cannot be decoded
// fails, and the first output, already copied, is not left behind where no
// job lists it for retention.
func TestFailedOutputsLeaveNoFiles(t *testing.T) {
	t.Parallel()
	noise := image.NewGray(image.Rect(0, 0, 128, 128)) // 16 KB of PNG
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.Uint32())
	}
	good := base64.StdEncoding.EncodeToString(pngBytes(t, noise))
	// b.png starts as a PNG, so it is taken for one, and breaks near its end.
	bad := good[:len(good)-16] + "!!!!" + good[len(good)-12:]
	h := newHarness(t, hopts{open: true, handler: func(ctx context.Context, job *runpodtest.WorkerJob) (any, error) {
		return map[string]any{"images": []map[string]string{
			{"filename": "a.png", "type": "base64", "data": good},
			{"filename": "b.png", "type": "base64", "data": bad},
		}}, nil
	}})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	j := h.wait("", id)
	if j.Status != StatusFailed || !strings.Contains(j.Error.Message, "b.png cannot be decoded") {
		t.Fatalf("job: %+v %+v", j, j.Error)
	}
	if _, err := h.blobs.Open(context.Background(), "jobs/"+id+"/0-a.png"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the first output of a failed job is still stored: %v", err)
	}
}

// TestEventsResumeAndList: an event stream resumed with Last-Event-ID sends
// only newer versions; the job list pages newest first with a cursor.
func TestEventsResumeAndList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true})
	var ids []string
	for range 3 {
		ids = append(ids, h.submit("", brushForm(t, 32, 24, image.Rect(0, 0, 5, 5))))
	}
	evs := h.events("", ids[0], "")
	var last sseEvent
	for _, e := range evs {
		if e.event == "job" {
			last = e
		}
	}
	if got := h.events("", ids[0], last.id); len(got) != 1 || got[0].event != "end" {
		t.Fatalf("resumed after the last version: %+v", got)
	}
	if got := h.events("", ids[0], "1"); len(got) != 2 || got[0].id != last.id {
		t.Fatalf("resumed after version 1: %+v (last %s)", got, last.id)
	}
	for _, id := range ids[1:] {
		h.wait("", id)
	}
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/v1/jobs?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		code, b := h.do("GET", path, "", "", nil)
		var l JobList
		if err := json.Unmarshal(b, &l); code != http.StatusOK || err != nil {
			t.Fatalf("%s: %d %s", path, code, b)
		}
		for _, j := range l.Jobs {
			seen = append(seen, j.ID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(seen, want) {
		t.Fatalf("list: %v, want %v", seen, want)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=nope"} {
		if code, b := h.do("GET", "/v1/jobs?"+q, "", "", nil); code != http.StatusBadRequest {
			t.Fatalf("?%s: %d %s", q, code, b)
		}
	}
}

// TestReadiness: /readyz says which part is missing, without its error text.
func TestReadiness(t *testing.T) {
	t.Parallel()
	rp, err := runpodtest.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, hopts{open: true, rp: rp})
	if code, b := h.do("GET", "/readyz", "", "", nil); code != http.StatusOK {
		t.Fatalf("ready: %d %s", code, b)
	}
	rp.Close()
	h.svc.health.mu.Lock()
	h.svc.health.at = time.Time{} // forget the cached answer
	h.svc.health.mu.Unlock()
	code, b := h.do("GET", "/readyz", "", "", nil)
	var r readiness
	if err := json.Unmarshal(b, &r); code != http.StatusServiceUnavailable || err != nil || r.Checks["runpod"] != "RunPod cannot be reached" ||
		r.Checks["store"] != "ok" || strings.Contains(string(b), "127.0.0.1") {
		t.Fatalf("not ready: %d %s", code, b)
	}
	if code, _ := h.do("GET", "/healthz", "", "", nil); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}

// TestHealthCallerGaveUp: a /health call whose caller gave up (a readiness
// probe's timeout) is not cached as RunPod's answer.
func TestHealthCallerGaveUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.svc.health.check(gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("check with a cancelled context: %v", err)
	}
	hl, err := h.svc.health.check(context.Background())
	if err != nil || hl == nil {
		t.Fatalf("the next check saw the cancelled call's error: %v", err)
	}
	if code, b := h.do("GET", "/readyz", "", "", nil); code != http.StatusOK {
		t.Fatalf("readyz after a probe gave up: %d %s", code, b)
	}
}

// TestCancelAfterCompletion: a cancel that reaches RunPod after the job
// completed there delivers the job's outputs instead.
func TestCancelAfterCompletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, config: func(c *Config) { c.PollMin, c.PollMax = time.Hour, time.Hour }})
	id := h.submit("", brushForm(t, 64, 48, image.Rect(0, 0, 10, 10)))
	awaitCond(t, "the job submitted", func() bool { return h.get("", id).RunPodID != "" })
	rid := h.get("", id).RunPodID
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := h.rp.WaitStatus(ctx, rid, runpodtest.StatusCompleted); err != nil {
		t.Fatal(err)
	}
	if j := h.get("", id); j.Status.Final() {
		t.Fatalf("the service already knows: %+v", j)
	}
	code, b := h.do("DELETE", "/v1/jobs/"+id, "", "", nil)
	j := decodeJob(t, string(b))
	if code != http.StatusOK || j.Status != StatusSucceeded || len(j.Outputs) != 1 {
		t.Fatalf("cancel after completion: %d %s", code, b)
	}
}
