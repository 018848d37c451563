package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
)

// A job's life in the store, as the gateway drives it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	var st store.Store
	st, err := sqlite.Open(ctx, filepath.Join(dir, "jobs.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j := &store.Job{ID: "job1", Endpoint: "ep", CreatedAt: now, Deadline: now.Add(6 * time.Minute)}
	_ = st.CreateJob(ctx, j, []byte(`{"workflow": {}}`)) // durable before the 202
	claimed, _ := st.ClaimJobs(ctx, store.ClaimParams{Endpoint: "ep", Replica: "r1", Now: now, LeaseUntil: now.Add(30 * time.Second), Limit: 4, Max: 8})
	_, _ = st.MarkSubmitting(ctx, "job1", "r1", "", now) // before /run
	j, _ = st.MarkSubmitted(ctx, "job1", "rp-123", now)  // RunPod's id, kept at once
	fmt.Println(len(claimed), j.State, j.RunPodID)
	j, changed, _ := st.Finish(ctx, "job1", store.Finish{State: store.StateSucceeded, At: now.Add(time.Minute)})
	fmt.Println(j.State, changed, j.Version)
	// Output:
	// 1 in_queue rp-123
	// succeeded true 5
}
