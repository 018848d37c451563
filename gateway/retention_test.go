package gateway

import (
	"errors"
	"image"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/blob"
	"github.com/comfypod/comfypod/gateway/store"
)

// TestRetention: a job that ended more than Retention ago is deleted with
// its inputs, outputs and thumbnail. (Which jobs go is the store's contract:
// storetest's Prune.)
func TestRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    hopts
	}{{"sqlite", hopts{}}, {"postgres", hopts{postgres: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.o
			o.config = func(c *Config) { c.Retention, c.PruneInterval = 3*time.Second, 50*time.Millisecond }
			h := newHarness(t, o)
			key, _ := newKeyIn(t, h, "k")
			id := h.submit(key, brushForm(t, 64, 48, image.Rect(8, 8, 24, 24)))
			j := h.wait(key, id)
			if code, _ := h.do("GET", j.Outputs[0].URL+"/thumbnail", key, "", nil); code != http.StatusOK {
				t.Fatalf("thumbnail: %d", code)
			}
			stored, err := h.st.GetJob(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			files := jobFiles(stored)
			if len(files) != 5 { // output, thumbnail, three inputs
				t.Fatalf("files %+v", files)
			}
			for _, f := range files {
				obj, err := h.blobs.Open(t.Context(), f.Key)
				if err != nil {
					t.Fatalf("%s before pruning: %v", f.Key, err)
				}
				_ = obj.Close()
			}
			awaitCond(t, "the job to be pruned", func() bool {
				code, _ := h.do("GET", "/v1/jobs/"+id, key, "", nil)
				return code == http.StatusNotFound
			})
			if _, err := h.st.GetJob(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the job is still stored: %v", err)
			}
			for _, f := range files {
				if obj, err := h.blobs.Open(t.Context(), f.Key); !errors.Is(err, blob.ErrNotFound) {
					if err == nil {
						_ = obj.Close()
					}
					t.Fatalf("%s after pruning: %v", f.Key, err)
				}
			}
			if code, _ := h.do("GET", j.Outputs[0].URL, key, "", nil); code != http.StatusNotFound {
				t.Fatalf("output of a pruned job: %d", code)
			}
			if !strings.Contains(h.logs.String(), "pruned ended jobs") {
				t.Error("pruning is not logged")
			}
			code, b := h.do("GET", "/metrics", "", "", nil)
			if code != http.StatusOK || !strings.Contains(string(b), "comfypod_jobs_pruned_total 1") {
				t.Errorf("metrics: %d, no comfypod_jobs_pruned_total 1", code)
			}
		})
	}
}
