package gateway

import (
	"encoding/json"
	"image"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/comfypod/comfypod/gateway/blob/disk"
)

// TestIdempotentSubmission: a POST retried with its Idempotency-Key gets the
// job the first one created, even when the retries race; the key is the
// caller's own; reusing it for another submission is refused.
func TestIdempotentSubmission(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    hopts
	}{{"sqlite", hopts{noWorker: true}}, {"postgres", hopts{noWorker: true, postgres: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.o)
			alice, _ := newKeyIn(t, h, "alice")
			bob, _ := newKeyIn(t, h, "bob")
			post := func(key, idem string, f form) (int, Accepted, http.Header, []byte) {
				t.Helper()
				ct, body := f.body(t) // a new multipart boundary each time
				code, b, hdr := h.doHeader("POST", "/v1/jobs", key, ct, body, http.Header{IdempotencyHeader: {idem}})
				var a Accepted
				if code < 300 {
					if err := json.Unmarshal(b, &a); err != nil {
						t.Fatal(err)
					}
				}
				return code, a, hdr, b
			}
			f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
			f.fields["seed"] = "random"
			code, first, _, b := post(alice, "order-17", f)
			if code != http.StatusAccepted {
				t.Fatalf("first POST: %d %s", code, b)
			}
			code, again, hdr, b := post(alice, "order-17", f)
			if code != http.StatusOK || again.ID != first.ID || hdr.Get("Idempotent-Replayed") != "true" ||
				hdr.Get("Location") != "/v1/jobs/"+first.ID || string(again.Params["seed"]) != string(first.Params["seed"]) {
				t.Fatalf("retry: %d %+v %v %s; first %+v", code, again, hdr, b, first)
			}
			// The quoted form of the key is the same key.
			if code, q, _, _ := post(alice, `"order-17"`, f); code != http.StatusOK || q.ID != first.ID {
				t.Fatalf("quoted key: %d %+v", code, q)
			}
			other := with(f, func(f *form) { f.fields["prompt"] = "watercolour" })
			code, _, _, b = post(alice, "order-17", other)
			if e := errorOf(t, b); code != http.StatusUnprocessableEntity || e.Code != "idempotency_key_reused" ||
				e.Field != IdempotencyHeader || !strings.Contains(e.Message, first.ID) {
				t.Fatalf("the key with another submission: %d %+v", code, e)
			}
			// Keys are per API key.
			code, bobs, _, b := post(bob, "order-17", f)
			if code != http.StatusAccepted || bobs.ID == first.ID {
				t.Fatalf("bob's POST with alice's key: %d %s", code, b)
			}
			if code, _ := h.do("GET", "/v1/jobs/"+first.ID, bob, "", nil); code != http.StatusNotFound {
				t.Fatalf("bob reads alice's job: %d", code)
			}

			// JSON: the same fields in another order are the same submission.
			doc := map[string]any{"target": f.files["target"], "reference": f.files["reference"], "mask": f.files["mask"],
				"prompt": "oil paint", "strength": 0.8, "seed": 42}
			b1 := mustJSON(t, doc)
			b2 := []byte(`{"seed": 42, "strength": 0.8, "prompt": "oil paint", "mask": ` + string(mustJSON(t, f.files["mask"])) +
				`, "reference": ` + string(mustJSON(t, f.files["reference"])) + `, "target": ` + string(mustJSON(t, f.files["target"])) + `}`)
			idem := http.Header{IdempotencyHeader: {"json-1"}}
			c1, r1, _ := h.doHeader("POST", "/v1/jobs", alice, "application/json", b1, idem)
			c2, r2, _ := h.doHeader("POST", "/v1/jobs", alice, "application/json", b2, idem)
			var a1, a2 Accepted
			_ = json.Unmarshal(r1, &a1)
			_ = json.Unmarshal(r2, &a2)
			if c1 != http.StatusAccepted || c2 != http.StatusOK || a1.ID == "" || a1.ID != a2.ID {
				t.Fatalf("JSON retry: %d %s / %d %s", c1, r1, c2, r2)
			}

			// Racing retries create one job; the others answer with it and
			// leave no files behind.
			const n = 6
			codes := make([]int, n)
			got := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					ct, body := f.body(t)
					code, b, _ := h.doHeader("POST", "/v1/jobs", alice, ct, body, http.Header{IdempotencyHeader: {"race"}})
					var a Accepted
					_ = json.Unmarshal(b, &a)
					codes[i], got[i] = code, a.ID
				})
			}
			wg.Wait()
			created := 0
			for i := range n {
				if got[i] == "" || got[i] != got[0] {
					t.Fatalf("racing retries: codes %v, jobs %v", codes, got)
				}
				if codes[i] == http.StatusAccepted {
					created++
				} else if codes[i] != http.StatusOK {
					t.Fatalf("racing retries: codes %v", codes)
				}
			}
			if created != 1 {
				t.Fatalf("racing retries: codes %v, want one 202", codes)
			}
			winner := got[0]
			var list JobList
			code, b = h.do("GET", "/v1/jobs?limit=100", alice, "", nil)
			if err := json.Unmarshal(b, &list); err != nil || code != http.StatusOK {
				t.Fatalf("list: %d %s", code, b)
			}
			if len(list.Jobs) != 3 {
				t.Fatalf("alice has %d jobs, want 3 (order-17, json-1, race)", len(list.Jobs))
			}
			jobs := map[string]bool{}
			for _, j := range list.Jobs {
				jobs[j.ID] = true
			}
			if !jobs[winner] || !jobs[first.ID] || !jobs[a1.ID] {
				t.Fatalf("alice's jobs %v", jobs)
			}
			// Inputs on disk belong to the jobs that exist.
			dir := h.blobs.(*disk.Store).Dir()
			_ = filepath.WalkDir(filepath.Join(dir, "jobs"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(dir, "jobs"), p)
				if id := strings.Split(rel, string(filepath.Separator))[0]; !jobs[id] && id != bobs.ID {
					t.Errorf("file %s of a job that does not exist", rel)
				}
				return nil
			})
		})
	}
}

func TestIdempotencyKeyChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{open: true, noWorker: true})
	ct, body := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24)).body(t)
	for _, bad := range [][]string{{""}, {strings.Repeat("k", 256)}, {"two", "keys"}, {"tab\there"}, {"é"}} {
		code, b, _ := h.doHeader("POST", "/v1/jobs", "", ct, body, http.Header{IdempotencyHeader: bad})
		if e := errorOf(t, b); code != http.StatusBadRequest || e.Field != IdempotencyHeader {
			t.Fatalf("Idempotency-Key %q: %d %+v", bad, code, e)
		}
	}
	code, b, _ := h.doHeader("POST", "/v1/jobs", "", ct, body, http.Header{IdempotencyHeader: {strings.Repeat("k", 255)}})
	if code != http.StatusAccepted {
		t.Fatalf("a 255-character key: %d %s", code, b)
	}
}
