package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

func TestProgressOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		frac float64 // -1: none
		msg  string
	}{
		{`{"stage":"running","node":"9","value":3,"max":20,"percent":45}`, 0.45, "running"},
		{`{"value":5,"max":20}`, 0.25, ""},
		{`{"step":1,"steps":4,"message":"sampling"}`, 0.25, "sampling"},
		{`{"progress":0.3}`, 0.3, ""},
		{`{"progress":30}`, 0.3, ""},
		{`0.75`, 0.75, ""},
		{`40`, 0.4, ""},
		{`"loading the model"`, -1, "loading the model"},
		{`{"percent":250}`, -1, ""},
		{`{"value":1,"max":0}`, -1, ""},
		{`[1,2]`, -1, ""},
		{`not json`, -1, ""},
	} {
		p := progressOf(json.RawMessage(tc.raw))
		if (p.Fraction == nil) != (tc.frac < 0) || (p.Fraction != nil && *p.Fraction != tc.frac) || p.Message != tc.msg || string(p.Detail) != tc.raw {
			t.Errorf("progressOf(%s) = %+v (fraction %v)", tc.raw, p, p.Fraction)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	key := KeyPrefix + strings.Repeat("Ab9_-", 8)
	for _, tc := range []struct{ in, secret string }{
		{"key " + key + " refused", key[4:]},
		{"Authorization: Bearer sometoken123 sent", "sometoken123"},
		{"rpa_ABCDEFGH12345678 is RunPod's", "ABCDEFGH12345678"},
		{"POST http://h/v1/runpod/webhook/abcdefghijklmnopqrstuvwx.s3cr3t failed", "s3cr3t"},
		{"GET https://bucket.s3.amazonaws.com/o.png?X-Amz-Signature=deadbeef&X-Amz-Credential=AKID failed", "deadbeef"},
	} {
		out := scrub(tc.in)
		if strings.Contains(out, tc.secret) || !strings.Contains(out, "REDACTED") {
			t.Errorf("scrub(%q) = %q", tc.in, out)
		}
	}
	if got := scrub("plain message with no secret"); got != "plain message with no secret" {
		t.Errorf("scrub changed a plain message: %q", got)
	}
}

func TestSmallHelpers(t *testing.T) {
	t.Parallel()
	for i := 0; i < 100; i++ {
		if id := newJobID(); !validJobID(id) {
			t.Fatalf("newJobID() = %q is not valid", id)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("A", 24), strings.Repeat("a", 23) + "1", strings.Repeat("a", 25), "../../../../etc/passwd/aa"} {
		if validJobID(bad) {
			t.Errorf("validJobID(%q)", bad)
		}
	}
	for seq := int64(1); seq < 1<<40; seq *= 7 {
		if got, err := parseCursor(cursor(seq)); err != nil || got != seq {
			t.Fatalf("cursor round trip of %d: %d, %v", seq, got, err)
		}
	}
	for _, bad := range []string{"", "c", "x12", "c-5", "c0", "czzzzzzzzzzzzzzzzzzzz"} {
		if _, err := parseCursor(bad); err == nil {
			t.Errorf("parseCursor(%q): no error", bad)
		}
	}
	for in, want := range map[string]string{
		"ComfyUI_00001_.png": "ComfyUI_00001_.png", "../../etc/passwd": "passwd", `C:\x\y.png`: "y.png",
		"a b\"c.png": "a_b_c.png", "": "output-3", "..": "output-3", "é.png": "_.png",
	} {
		if got := safeName(in, 3); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
	now := time.Now()
	for st, want := range map[store.State]Status{
		store.StateQueued: StatusQueued, store.StateClaimed: StatusQueued, store.StateSubmitting: StatusQueued,
		store.StateInQueue: StatusQueued, store.StateRunning: StatusRunning, store.StateSucceeded: StatusSucceeded,
		store.StateFailed: StatusFailed, store.StateCancelled: StatusCancelled, store.StateTimedOut: StatusTimedOut,
	} {
		if got := statusOf(&store.Job{State: st, CreatedAt: now}); got != want {
			t.Errorf("statusOf(%s) = %s, want %s", st, got, want)
		}
	}
	if got := statusOf(&store.Job{State: store.StateInQueue, ColdStart: true}); got != StatusColdStart {
		t.Errorf("cold start: %s", got)
	}
}

func TestConfigChecks(t *testing.T) {
	t.Parallel()
	if _, err := New(&Config{}); err == nil || !strings.Contains(err.Error(), "Store is required") {
		t.Fatalf("New with nothing: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New(nil): no error")
	}
	c := (&Config{PollMin: time.Second, PollMax: time.Millisecond, PublicURL: "ftp://x", Concurrency: -1}).WithDefaults()
	err := c.validate()
	for _, want := range []string{"PollMax", "PublicURL", "Concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want it to name %s", err, want)
		}
	}
}

// TestWatcherSync: a renewal's view of the store does not drop what was
// added after it began, and does not take over this replica's own
// submissions in progress.
func TestWatcherSync(t *testing.T) {
	t.Parallel()
	s := fuzzService(t)
	w := s.watch
	now := time.Now()
	mk := func(id string, st store.State, rp string) *store.Job {
		return &store.Job{ID: id, State: st, RunPodID: rp, Deadline: now.Add(time.Hour), LeaseOwner: s.cfg.ReplicaID}
	}
	w.sync([]*store.Job{mk("submitting", store.StateSubmitting, ""), mk("claimed", store.StateClaimed, ""), mk("atrunpod", store.StateInQueue, "rp-1")}, now)
	if w.size() != 1 {
		t.Fatalf("watching %d jobs, want only the one at RunPod", w.size())
	}
	before := now.Add(-time.Second)
	w.add(mk("fresh", store.StateInQueue, "rp-2"))
	w.sync(nil, before) // a renewal that began before both were added
	if w.size() != 2 {
		t.Fatalf("watching %d jobs after a stale renewal", w.size())
	}
	w.sync(nil, time.Now().Add(time.Second))
	if w.size() != 0 {
		t.Fatalf("watching %d jobs after a renewal holding none", w.size())
	}
}

// A package with a video param is refused: the gateway uploads image and
// mask files only.
func TestLoadPackageRefusesVideoParams(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		ManifestFile: {Data: []byte(`{"workflows": {"default": "w.json"}, "params": [
		  {"name": "motion_video", "type": "video", "required": true, "bind": {"default": [{"node": "1", "input": "video", "class_type": "VHS_LoadVideo"}]}}]}`)},
		"w.json": {Data: []byte(`{"1": {"class_type": "VHS_LoadVideo", "inputs": {"video": "a.mp4"}}}`)},
	}
	if _, err := loadPackage(fsys, ""); err == nil || !strings.Contains(err.Error(), `param "motion_video" is a video; the gateway takes image and mask files only`) {
		t.Errorf("loadPackage: %v", err)
	}
}
