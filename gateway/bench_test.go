package gateway

import (
	"context"
	"image"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// BenchmarkGetJob measures GET /v1/jobs/{id} through the handler, with an
// API key: from the read cache, and from the store when the cache is
// emptied before each request.
func BenchmarkGetJob(b *testing.B) {
	h := newHarness(b, hopts{noWorker: true, config: func(c *Config) { c.Concurrency = 1 }})
	key, _ := newKeyIn(b, h, "bench")
	var ids []string
	for range 50 {
		ids = append(ids, h.submit(key, brushForm(b, 32, 24, image.Rect(0, 0, 8, 8))))
	}
	run := func(b *testing.B, cold bool) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rnd := rand.New(rand.NewPCG(1, 2))
			for pb.Next() {
				id := ids[rnd.IntN(len(ids))]
				if cold {
					h.svc.cache.mu.Lock()
					delete(h.svc.cache.m, id)
					h.svc.cache.mu.Unlock()
				}
				req := httptest.NewRequest("GET", "/v1/jobs/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				rec := httptest.NewRecorder()
				h.svc.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
	b.Run("cached", func(b *testing.B) { run(b, false) })
	b.Run("store", func(b *testing.B) { run(b, true) })
}

// BenchmarkPrepare measures checking and preparing a job's input: three
// 512×384 images decoded, the mask normalised, params applied.
func BenchmarkPrepare(b *testing.B) {
	s := fuzzService(b)
	f := brushForm(b, 512, 384, image.Rect(100, 100, 300, 250))
	sub := &submission{files: f.files, params: map[string]any{"prompt": "oil", "seed": "42"}}
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, aerr := s.prepare(newJobID(), sub, rnd); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

// BenchmarkStoreGetJob is the store read behind an uncached GET.
func BenchmarkStoreGetJob(b *testing.B) {
	st := openStore(b, hopts{})
	j := newBenchJob()
	if err := st.CreateJob(context.Background(), j, []byte("{}")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.GetJob(context.Background(), j.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newBenchJob() *store.Job {
	now := time.Now()
	return &store.Job{ID: newJobID(), Endpoint: "ep", CreatedAt: now, Deadline: now.Add(time.Hour), Params: []byte(`{"seed":1}`)}
}
