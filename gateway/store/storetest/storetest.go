package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// Opener opens a handle on one database; each call opens another handle, as
// another process would.
type Opener func() (store.Store, error)

// Fresh makes a new, empty database for one test and returns its Opener.
// Handles the suite opens are closed by the suite.
type Fresh func(t testing.TB) Opener

// t0 is the suite's epoch: times are passed explicitly, never read from a
// clock.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const endpoint = "ep1"

// Run runs the contract suite against the stores fresh makes.
func Run(t *testing.T, fresh Fresh) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"List", testList},
		{"ClaimOrderAndLimit", testClaimOrderAndLimit},
		{"ClaimConcurrent", testClaimConcurrent},
		{"SubmitFlow", testSubmitFlow},
		{"Requeue", testRequeue},
		{"UpdateFencedByLease", testUpdate},
		{"FinishFirstWins", testFinish},
		{"Cancel", testCancel},
		{"ExpireQueued", testExpireQueued},
		{"Leases", testLeases},
		{"CountActive", testCountActive},
		{"Keys", testKeys},
		{"Reopen", testReopen},
		{"InputsKept", testInputsKept},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"Prune", testPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, fresh(t))
		})
	}
}

func open(t testing.TB, o Opener) store.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return s
}

func newJob(id, owner string, created time.Time) *store.Job {
	return &store.Job{
		ID: id, Owner: owner, Endpoint: endpoint,
		CreatedAt: created, Deadline: created.Add(6 * time.Minute),
		Params: json.RawMessage(`{"seed":18446744073709551615,"prompt":"a cat"}`),
	}
}

func create(t testing.TB, s store.Store, j *store.Job, input string) *store.Job {
	t.Helper()
	if err := s.CreateJob(context.Background(), j, []byte(input)); err != nil {
		t.Fatalf("CreateJob(%s): %v", j.ID, err)
	}
	return j
}

func get(t testing.TB, s store.Store, id string) *store.Job {
	t.Helper()
	j, err := s.GetJob(context.Background(), id)
	if err != nil {
		t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

func claim(t testing.TB, s store.Store, replica string, now time.Time, limit, max int) []*store.Job {
	t.Helper()
	jobs, err := s.ClaimJobs(context.Background(), store.ClaimParams{
		Endpoint: endpoint, Replica: replica, Now: now, LeaseUntil: now.Add(30 * time.Second), Limit: limit, Max: max,
	})
	if err != nil {
		t.Fatalf("ClaimJobs: %v", err)
	}
	return jobs
}

func ids(jobs []*store.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// submit takes a job from claimed to in_queue with RunPod id "rp-"+id.
func submit(t testing.TB, s store.Store, id, replica string, now time.Time) *store.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := s.MarkSubmitting(ctx, id, replica, "hash-"+id, now); err != nil {
		t.Fatalf("MarkSubmitting(%s): %v", id, err)
	}
	j, err := s.MarkSubmitted(ctx, id, "rp-"+id, now)
	if err != nil {
		t.Fatalf("MarkSubmitted(%s): %v", id, err)
	}
	return j
}

func testCreateAndGet(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	j := create(t, s, newJob("j1", "k1", t0.Add(123*time.Millisecond)), "input-1")
	if j.Seq <= 0 || j.State != store.StateQueued || j.Version != 1 {
		t.Fatalf("after CreateJob: seq %d state %s version %d", j.Seq, j.State, j.Version)
	}
	got := get(t, s, "j1")
	want := &store.Job{Seq: j.Seq, ID: "j1", Owner: "k1", Endpoint: endpoint, State: store.StateQueued, Version: 1,
		CreatedAt: t0.Add(123 * time.Millisecond), Deadline: t0.Add(123*time.Millisecond + 6*time.Minute),
		Params: json.RawMessage(`{"seed":18446744073709551615,"prompt":"a cat"}`)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetJob:\n got %+v\nwant %+v", got, want)
	}
	in, err := s.JobInput(ctx, "j1")
	if err != nil || string(in) != "input-1" {
		t.Fatalf("JobInput = %q, %v", in, err)
	}
	if err := s.CreateJob(ctx, newJob("j1", "k2", t0), []byte("x")); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate CreateJob: %v, want ErrDuplicate", err)
	}
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetJob(nope): %v, want ErrNotFound", err)
	}
	if _, err := s.JobInput(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("JobInput(nope): %v, want ErrNotFound", err)
	}
	// A large input round-trips byte for byte.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	create(t, s, newJob("j2", "k1", t0), string(big))
	if in, err := s.JobInput(ctx, "j2"); err != nil || !slices.Equal(in, big) {
		t.Fatalf("large JobInput: %d bytes, %v", len(in), err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testList(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	for i := range 7 {
		create(t, s, newJob(fmt.Sprintf("a%d", i), "alice", t0.Add(time.Duration(i)*time.Second)), "x")
		create(t, s, newJob(fmt.Sprintf("b%d", i), "bob", t0.Add(time.Duration(i)*time.Second)), "x")
	}
	var seen []string
	var before int64
	for page := 0; ; page++ {
		jobs, err := s.ListJobs(ctx, store.ListParams{Owner: "alice", Before: before, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		seen = append(seen, ids(jobs)...)
		before = jobs[len(jobs)-1].Seq
	}
	if want := []string{"a6", "a5", "a4", "a3", "a2", "a1", "a0"}; !slices.Equal(seen, want) {
		t.Fatalf("alice's jobs: %v, want %v", seen, want)
	}
	if jobs, err := s.ListJobs(ctx, store.ListParams{Owner: "carol", Limit: 10}); err != nil || len(jobs) != 0 {
		t.Fatalf("carol's jobs: %v, %v", ids(jobs), err)
	}
	if _, err := s.ListJobs(ctx, store.ListParams{Owner: "alice"}); err == nil {
		t.Fatal("ListJobs with no limit: no error")
	}
}

func testClaimOrderAndLimit(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	for i := range 6 {
		create(t, s, newJob(fmt.Sprintf("j%d", i), "k", t0), "x")
	}
	other := newJob("other", "k", t0)
	other.Endpoint = "ep2"
	create(t, s, other, "x")

	got := claim(t, s, "r1", t0, 4, 2)
	if want := []string{"j0", "j1"}; !slices.Equal(ids(got), want) {
		t.Fatalf("first claim: %v, want %v", ids(got), want)
	}
	for _, j := range got {
		if j.State != store.StateClaimed || j.LeaseOwner != "r1" || !j.LeaseUntil.Equal(t0.Add(30*time.Second)) || j.Version != 2 {
			t.Fatalf("claimed job: %+v", j)
		}
	}
	// Only two more fit under the limit of 4, whatever Max says.
	got = claim(t, s, "r2", t0, 4, 10)
	if want := []string{"j2", "j3"}; !slices.Equal(ids(got), want) {
		t.Fatalf("second claim: %v, want %v", ids(got), want)
	}
	if got := claim(t, s, "r1", t0, 4, 10); len(got) != 0 {
		t.Fatalf("claim at the limit: %v", ids(got))
	}
	// Submitted and running jobs still count; ended ones do not.
	submit(t, s, "j0", "r1", t0)
	if got := claim(t, s, "r1", t0, 4, 10); len(got) != 0 {
		t.Fatalf("claim with a submitted job in flight: %v", ids(got))
	}
	if _, _, err := s.Finish(ctx, "j0", store.Finish{State: store.StateSucceeded, At: t0}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "r1", t0, 4, 10); !slices.Equal(ids(got), []string{"j4"}) {
		t.Fatalf("claim after a job ended: %v, want [j4]", ids(got))
	}
	// A requeued job waits for NotBefore.
	if _, err := s.Requeue(ctx, "j4", "r1", store.Requeue{NotBefore: t0.Add(time.Minute), Error: "429"}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "r1", t0.Add(30*time.Second), 4, 10); !slices.Equal(ids(got), []string{"j5"}) {
		t.Fatalf("claim before NotBefore: %v, want [j5]", ids(got))
	}
	if _, _, err := s.Finish(ctx, "j5", store.Finish{State: store.StateFailed, At: t0}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "r1", t0.Add(time.Minute), 4, 10); !slices.Equal(ids(got), []string{"j4"}) {
		t.Fatalf("claim after NotBefore: %v, want [j4]", ids(got))
	}
	if got := get(t, s, "other"); got.State != store.StateQueued {
		t.Fatalf("a job of another endpoint was claimed: %+v", got)
	}
	if got := claim(t, s, "r1", t0, 0, 10); got != nil {
		t.Fatalf("claim with limit 0: %v", ids(got))
	}
}

// testClaimConcurrent claims from several handles and goroutines at once:
// no job is claimed twice, and the limit holds across all of them.
func testClaimConcurrent(t *testing.T, o Opener) {
	handles := []store.Store{open(t, o), open(t, o)}
	ctx := context.Background()
	const jobs, limit = 120, 7
	for i := range jobs {
		create(t, handles[0], newJob(fmt.Sprintf("j%03d", i), "k", t0), "x")
	}
	var (
		mu       sync.Mutex
		claimed  = map[string]string{}
		inFlight atomic.Int64 // a lower bound of the jobs in flight
		maxSeen  atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		errs     = make(chan error, 16)
	)
	for w := range 8 {
		s := handles[w%len(handles)]
		replica := fmt.Sprintf("r%d", w)
		wg.Go(func() {
			for idle := 0; done.Load() < jobs && idle < 2000; {
				got, err := s.ClaimJobs(ctx, store.ClaimParams{Endpoint: endpoint, Replica: replica, Now: t0,
					LeaseUntil: t0.Add(time.Minute), Limit: limit, Max: 3})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					idle++
					continue
				}
				n := inFlight.Add(int64(len(got)))
				for old := maxSeen.Load(); n > old && !maxSeen.CompareAndSwap(old, n); old = maxSeen.Load() {
				}
				mu.Lock()
				for _, j := range got {
					if prev, dup := claimed[j.ID]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("job %s claimed by %s and %s", j.ID, prev, replica)
						return
					}
					claimed[j.ID] = replica
				}
				mu.Unlock()
				for _, j := range got {
					inFlight.Add(-1)
					if _, _, err := s.Finish(ctx, j.ID, store.Finish{State: store.StateSucceeded, At: t0}); err != nil {
						errs <- err
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != jobs {
		t.Fatalf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	if m := maxSeen.Load(); m > limit {
		t.Fatalf("%d jobs in flight at once, limit %d", m, limit)
	}
}

func testSubmitFlow(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	create(t, s, newJob("j1", "k", t0), "input")
	claim(t, s, "r1", t0, 10, 10)
	if _, err := s.MarkSubmitting(ctx, "j1", "r2", "h", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("MarkSubmitting by a replica without the lease: %v, want ErrConflict", err)
	}
	j, err := s.MarkSubmitting(ctx, "j1", "r1", "h1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.StateSubmitting || j.WebhookHash != "h1" || j.Version != 3 {
		t.Fatalf("after MarkSubmitting: %+v", j)
	}
	if _, err := s.MarkSubmitting(ctx, "j1", "r1", "h1", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("MarkSubmitting twice: %v, want ErrConflict", err)
	}
	// The input is still there while the answer is awaited.
	if _, err := s.JobInput(ctx, "j1"); err != nil {
		t.Fatalf("input while submitting: %v", err)
	}
	j, err = s.MarkSubmitted(ctx, "j1", "rp-1", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.StateInQueue || j.RunPodID != "rp-1" || !j.SubmittedAt.Equal(t0.Add(time.Second)) || j.LeaseOwner != "r1" {
		t.Fatalf("after MarkSubmitted: %+v", j)
	}
	if _, err := s.JobInput(ctx, "j1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("input after MarkSubmitted: %v, want ErrNotFound", err)
	}
	if _, err := s.MarkSubmitted(ctx, "j1", "rp-2", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("MarkSubmitted twice: %v, want ErrConflict", err)
	}
	if _, err := s.MarkSubmitted(ctx, "nope", "rp-2", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MarkSubmitted(nope): %v, want ErrNotFound", err)
	}

	// MarkSubmitted is not fenced: the id is kept even after another replica
	// adopted the job.
	create(t, s, newJob("j2", "k", t0), "input")
	claim(t, s, "r1", t0, 10, 10)
	if _, err := s.MarkSubmitting(ctx, "j2", "r1", "", t0); err != nil {
		t.Fatal(err)
	}
	adopted, err := s.AdoptJobs(ctx, store.AdoptParams{Endpoint: endpoint, Replica: "r2", Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour), Max: 10})
	if err != nil || !slices.Contains(ids(adopted), "j2") {
		t.Fatalf("adopting j2: %v, %v", ids(adopted), err)
	}
	j, err = s.MarkSubmitted(ctx, "j2", "rp-2", t0)
	if err != nil || j.RunPodID != "rp-2" || j.LeaseOwner != "r2" || j.WebhookHash != "" {
		t.Fatalf("MarkSubmitted after adoption: %+v, %v", j, err)
	}
}

func testRequeue(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	create(t, s, newJob("j1", "k", t0), "input")
	claim(t, s, "r1", t0, 10, 10)
	if _, err := s.Requeue(ctx, "j1", "r2", store.Requeue{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Requeue without the lease: %v, want ErrConflict", err)
	}
	if _, err := s.MarkSubmitting(ctx, "j1", "r1", "h", t0); err != nil {
		t.Fatal(err)
	}
	j, err := s.Requeue(ctx, "j1", "r1", store.Requeue{NotBefore: t0.Add(5 * time.Second), Error: "RunPod answered 503"})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.StateQueued || j.Attempts != 1 || !j.NotBefore.Equal(t0.Add(5*time.Second)) ||
		j.Error != "RunPod answered 503" || j.LeaseOwner != "" || j.WebhookHash != "" {
		t.Fatalf("after Requeue: %+v", j)
	}
	if in, err := s.JobInput(ctx, "j1"); err != nil || string(in) != "input" {
		t.Fatalf("input after Requeue: %q, %v", in, err)
	}
	// Once RunPod has the job, it can never go back to the queue.
	claim(t, s, "r1", t0.Add(5*time.Second), 10, 10)
	submit(t, s, "j1", "r1", t0)
	if _, err := s.Requeue(ctx, "j1", "r1", store.Requeue{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Requeue of a submitted job: %v, want ErrConflict", err)
	}
	if j := get(t, s, "j1"); j.Error != "" {
		t.Fatalf("the error of the failed attempt survived the submission: %q", j.Error)
	}
}

func testUpdate(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	create(t, s, newJob("j1", "k", t0), "x")
	claim(t, s, "r1", t0, 10, 10)
	if _, err := s.UpdateJob(ctx, "j1", "r1", store.Update{State: store.StateRunning}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateJob of a claimed job: %v, want ErrConflict", err)
	}
	v := submit(t, s, "j1", "r1", t0).Version
	j, err := s.UpdateJob(ctx, "j1", "r1", store.Update{State: store.StateInQueue, ColdStart: true})
	if err != nil || !j.ColdStart || j.Version != v+1 {
		t.Fatalf("cold start: %+v, %v", j, err)
	}
	j, err = s.UpdateJob(ctx, "j1", "r1", store.Update{State: store.StateRunning, Progress: json.RawMessage(`{"percent":40}`), StartedAt: t0.Add(time.Second)})
	if err != nil || j.ColdStart || j.State != store.StateRunning || string(j.Progress) != `{"percent":40}` || !j.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("running: %+v, %v", j, err)
	}
	j, err = s.UpdateJob(ctx, "j1", "r1", store.Update{State: store.StateRunning, StartedAt: t0.Add(9 * time.Second)})
	if err != nil || string(j.Progress) != `{"percent":40}` || !j.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("an update without progress or with a later start changed them: %+v, %v", j, err)
	}
	if _, err := s.UpdateJob(ctx, "j1", "r2", store.Update{State: store.StateRunning}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateJob by a replica without the lease: %v, want ErrConflict", err)
	}
	if _, err := s.UpdateJob(ctx, "j1", "r1", store.Update{State: store.StateSucceeded}); err == nil {
		t.Fatal("UpdateJob to a terminal state: no error")
	}
	if _, err := s.UpdateJob(ctx, "nope", "r1", store.Update{State: store.StateRunning}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateJob(nope): %v, want ErrNotFound", err)
	}
}

func testFinish(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	create(t, s, newJob("j1", "k", t0), "x")
	claim(t, s, "r1", t0, 10, 10)
	if _, err := s.MarkSubmitting(ctx, "j1", "r1", "h", t0); err != nil {
		t.Fatal(err)
	}
	// A webhook may end a job whose id was not stored yet.
	outs := []store.Output{{Name: "out.png", ContentType: "image/png", Key: "jobs/j1/0-out.png", Size: 1234}}
	j, changed, err := s.Finish(ctx, "j1", store.Finish{State: store.StateSucceeded, At: t0.Add(time.Minute), Outputs: outs,
		RunPodID: "rp-hook", StartedAt: t0.Add(10 * time.Second)})
	if err != nil || !changed {
		t.Fatalf("Finish: changed %v, %v", changed, err)
	}
	if j.State != store.StateSucceeded || j.RunPodID != "rp-hook" || !j.FinishedAt.Equal(t0.Add(time.Minute)) ||
		!reflect.DeepEqual(j.Outputs, outs) || j.LeaseOwner != "" || !j.StartedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("after Finish: %+v", j)
	}
	if _, err := s.JobInput(ctx, "j1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("input after Finish: %v, want ErrNotFound", err)
	}
	j2, changed, err := s.Finish(ctx, "j1", store.Finish{State: store.StateFailed, At: t0.Add(2 * time.Minute), Error: "late"})
	if err != nil || changed || j2.State != store.StateSucceeded || j2.Version != j.Version || j2.Error != "" {
		t.Fatalf("second Finish: changed %v, %+v, %v", changed, j2, err)
	}
	if _, err := s.MarkSubmitted(ctx, "j1", "rp-late", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("MarkSubmitted after Finish: %v, want ErrConflict", err)
	}
	if got := get(t, s, "j1"); !reflect.DeepEqual(got, j) {
		t.Fatalf("GetJob after Finish:\n got %+v\nwant %+v", got, j)
	}
	if _, _, err := s.Finish(ctx, "j1", store.Finish{State: store.StateRunning}); err == nil {
		t.Fatal("Finish with a state that is not terminal: no error")
	}
	if _, _, err := s.Finish(ctx, "nope", store.Finish{State: store.StateFailed}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Finish(nope): %v, want ErrNotFound", err)
	}
	create(t, s, newJob("j2", "k", t0), "x")
	j, _, err = s.Finish(ctx, "j2", store.Finish{State: store.StateFailed, At: t0, Error: "bad input", ErrorCode: "invalid_input"})
	if err != nil || j.Error != "bad input" || j.ErrorCode != "invalid_input" || j.Outputs != nil {
		t.Fatalf("failed job: %+v, %v", j, err)
	}
}

func testCancel(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	cancel := store.Finish{State: store.StateCancelled, At: t0.Add(time.Second), Error: "cancelled by its owner", ErrorCode: "cancelled"}
	for _, id := range []string{"queued", "claimed", "submitted", "ended"} {
		create(t, s, newJob(id, "k", t0), "x")
	}
	claim(t, s, "r1", t0, 10, 3)
	submit(t, s, "submitted", "r1", t0)
	if _, _, err := s.Finish(ctx, "ended", store.Finish{State: store.StateSucceeded, At: t0}); err != nil {
		t.Fatal(err)
	}
	// "queued" was claimed above (the three oldest); put it back.
	if _, err := s.Requeue(ctx, "queued", "r1", store.Requeue{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"queued", "claimed"} {
		j, err := s.RequestCancel(ctx, id, cancel)
		if err != nil || j.State != store.StateCancelled || j.Error != "cancelled by its owner" || !j.FinishedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("cancelling %s: %+v, %v", id, j, err)
		}
		if _, err := s.JobInput(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("input of cancelled %s: %v", id, err)
		}
	}
	if _, err := s.MarkSubmitting(ctx, "claimed", "r1", "", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("MarkSubmitting a cancelled job: %v, want ErrConflict", err)
	}
	before := get(t, s, "submitted")
	j, err := s.RequestCancel(ctx, "submitted", cancel)
	if err != nil || j.State != store.StateInQueue || !j.CancelRequested || j.Version != before.Version+1 {
		t.Fatalf("cancelling a submitted job: %+v, %v", j, err)
	}
	j, err = s.RequestCancel(ctx, "submitted", cancel)
	if err != nil || j.Version != before.Version+1 {
		t.Fatalf("cancelling a submitted job twice: %+v, %v", j, err)
	}
	j, err = s.RequestCancel(ctx, "ended", cancel)
	if err != nil || j.State != store.StateSucceeded {
		t.Fatalf("cancelling an ended job: %+v, %v", j, err)
	}
	if _, err := s.RequestCancel(ctx, "nope", cancel); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestCancel(nope): %v, want ErrNotFound", err)
	}
	// A claimed job with a cancel request cannot be submitted.
	create(t, s, newJob("late", "k", t0), "x")
	claim(t, s, "r1", t0, 10, 10)
	submitting, err := s.MarkSubmitting(ctx, "late", "r1", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := s.RequestCancel(ctx, "late", cancel); err != nil || !j.CancelRequested || j.State != submitting.State {
		t.Fatalf("cancelling a submitting job: %+v, %v", j, err)
	}
}

func testExpireQueued(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	create(t, s, newJob("inflight", "k", t0.Add(-2*time.Minute)), "x")
	claim(t, s, "r1", t0, 10, 1)
	create(t, s, newJob("old", "k", t0), "x")
	create(t, s, newJob("new", "k", t0.Add(time.Minute)), "x")
	create(t, s, newJob("older", "k", t0.Add(-time.Minute)), "x")
	// "older" was sent once and refused: its error is kept.
	older := claim(t, s, "r1", t0, 10, 10)
	for _, j := range older {
		msg := ""
		if j.ID == "older" {
			msg = "RunPod answered 429"
		}
		if _, err := s.Requeue(ctx, j.ID, "r1", store.Requeue{Error: msg}); err != nil {
			t.Fatal(err)
		}
	}
	f := store.Finish{State: store.StateTimedOut, At: t0.Add(6*time.Minute + time.Second), Error: "no free slot", ErrorCode: "timeout"}
	got, err := s.ExpireQueued(ctx, endpoint, f, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"old", "older"}; !slices.Equal(ids(got), want) {
		t.Fatalf("expired: %v, want %v", ids(got), want)
	}
	for _, j := range got {
		want := "no free slot"
		if j.ID == "older" {
			want = "no free slot — RunPod answered 429"
		}
		if j.State != store.StateTimedOut || j.Error != want || j.ErrorCode != "timeout" || !j.FinishedAt.Equal(f.At) {
			t.Fatalf("expired job: %+v", j)
		}
		if _, err := s.JobInput(ctx, j.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("input of expired %s: %v", j.ID, err)
		}
	}
	if j := get(t, s, "new"); j.State != store.StateQueued {
		t.Fatalf("a job before its deadline expired: %+v", j)
	}
	if j := get(t, s, "inflight"); j.State != store.StateClaimed {
		t.Fatalf("a job in flight expired from the queue: %+v", j)
	}
	if got, err := s.ExpireQueued(ctx, endpoint, f, 10); err != nil || len(got) != 0 {
		t.Fatalf("expiring again: %v, %v", ids(got), err)
	}
}

func testLeases(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	for i := range 4 {
		create(t, s, newJob(fmt.Sprintf("j%d", i), "k", t0), "x")
	}
	claim(t, s, "r1", t0, 10, 3) // j0 j1 j2, leased until t0+30s
	submit(t, s, "j0", "r1", t0)
	submit(t, s, "j1", "r1", t0)
	if _, _, err := s.Finish(ctx, "j1", store.Finish{State: store.StateSucceeded, At: t0}); err != nil {
		t.Fatal(err)
	}
	held, err := s.RenewLeases(ctx, endpoint, "r1", t0.Add(40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"j0", "j2"}; !slices.Equal(ids(held), want) {
		t.Fatalf("renewed: %v, want %v", ids(held), want)
	}
	for _, j := range held {
		if !j.LeaseUntil.Equal(t0.Add(40 * time.Second)) {
			t.Fatalf("lease not renewed: %+v", j)
		}
	}
	adopt := func(replica string, now time.Time, own bool) []string {
		t.Helper()
		got, err := s.AdoptJobs(ctx, store.AdoptParams{Endpoint: endpoint, Replica: replica, Now: now,
			LeaseUntil: now.Add(30 * time.Second), Max: 10, IncludeOwn: own})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range got {
			if j.LeaseOwner != replica {
				t.Fatalf("adopted job not leased to %s: %+v", replica, j)
			}
		}
		return ids(got)
	}
	if got := adopt("r2", t0.Add(39*time.Second), false); len(got) != 0 {
		t.Fatalf("adopted live leases: %v", got)
	}
	if got := adopt("r1", t0.Add(39*time.Second), true); !slices.Equal(got, []string{"j0", "j2"}) {
		t.Fatalf("adopting own leases at start-up: %v", got)
	}
	// r1 dies; its leases run out and r2 takes the jobs over.
	if got := adopt("r2", t0.Add(70*time.Second), false); !slices.Equal(got, []string{"j0", "j2"}) {
		t.Fatalf("adopting expired leases: %v", got)
	}
	if held, err := s.RenewLeases(ctx, endpoint, "r1", t0.Add(100*time.Second)); err != nil || len(held) != 0 {
		t.Fatalf("the dead replica still renews: %v, %v", ids(held), err)
	}
	if _, err := s.UpdateJob(ctx, "j0", "r1", store.Update{State: store.StateRunning}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the dead replica still updates: %v", err)
	}
	if _, err := s.UpdateJob(ctx, "j0", "r2", store.Update{State: store.StateRunning}); err != nil {
		t.Fatalf("the new holder cannot update: %v", err)
	}

	// A graceful stop hands jobs over at once; claimed ones go back to the
	// queue.
	claim(t, s, "r2", t0.Add(70*time.Second), 10, 10) // j3
	if err := s.ReleaseLeases(ctx, endpoint, "r2", t0.Add(71*time.Second)); err != nil {
		t.Fatal(err)
	}
	if j := get(t, s, "j3"); j.State != store.StateQueued || j.LeaseOwner != "" {
		t.Fatalf("claimed job after ReleaseLeases: %+v", j)
	}
	if j := get(t, s, "j2"); j.State != store.StateQueued {
		t.Fatalf("an adopted claimed job after ReleaseLeases: %+v", j)
	}
	if got := adopt("r3", t0.Add(72*time.Second), false); !slices.Equal(got, []string{"j0"}) {
		t.Fatalf("adopting released jobs: %v", got)
	}
}

func testCountActive(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	for i := range 5 {
		create(t, s, newJob(fmt.Sprintf("j%d", i), "k", t0), "x")
	}
	claim(t, s, "r1", t0, 10, 3)
	submit(t, s, "j0", "r1", t0)
	if _, _, err := s.Finish(ctx, "j1", store.Finish{State: store.StateFailed, At: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CountActive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.State]int{store.StateQueued: 2, store.StateClaimed: 1, store.StateInQueue: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CountActive = %v, want %v", got, want)
	}
}

func testKeys(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	if n, err := s.CountActiveKeys(ctx); err != nil || n != 0 {
		t.Fatalf("CountActiveKeys on an empty store: %d, %v", n, err)
	}
	k1 := &store.Key{ID: "key1", Name: "alice", Hash: "h1", Prefix: "cpk_ab", CreatedAt: t0}
	k2 := &store.Key{ID: "key2", Name: "", Hash: "h2", Prefix: "cpk_cd", CreatedAt: t0.Add(time.Second)}
	for _, k := range []*store.Key{k1, k2} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateKey(ctx, &store.Key{ID: "key3", Hash: "h1", CreatedAt: t0}); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("a key with a taken hash: %v, want ErrDuplicate", err)
	}
	if err := s.CreateKey(ctx, &store.Key{ID: "key1", Hash: "h9", CreatedAt: t0}); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("a key with a taken id: %v, want ErrDuplicate", err)
	}
	got, err := s.KeyByHash(ctx, "h2")
	if err != nil || !reflect.DeepEqual(got, k2) {
		t.Fatalf("KeyByHash: %+v, %v", got, err)
	}
	if _, err := s.KeyByHash(ctx, "h9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("KeyByHash(unknown): %v, want ErrNotFound", err)
	}
	r, err := s.RevokeKey(ctx, "key1", t0.Add(time.Hour))
	if err != nil || !r.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("RevokeKey: %+v, %v", r, err)
	}
	if r, err := s.RevokeKey(ctx, "key1", t0.Add(2*time.Hour)); err != nil || !r.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revoking twice: %+v, %v", r, err)
	}
	if _, err := s.RevokeKey(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RevokeKey(nope): %v, want ErrNotFound", err)
	}
	if got, err := s.KeyByHash(ctx, "h1"); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("a revoked key is still found, marked revoked: %+v, %v", got, err)
	}
	list, err := s.ListKeys(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "key1" || list[1].ID != "key2" {
		t.Fatalf("ListKeys: %v, %v", list, err)
	}
	if n, err := s.CountActiveKeys(ctx); err != nil || n != 1 {
		t.Fatalf("CountActiveKeys: %d, %v", n, err)
	}
}

// testReopen checks that what one handle writes, another one opened later
// reads: the state lives in the database, not in the handle.
func testReopen(t *testing.T, o Opener) {
	s1, err := o()
	if err != nil {
		t.Fatal(err)
	}
	create(t, s1, newJob("j1", "k", t0), "input")
	claim(t, s1, "r1", t0, 10, 10)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, o)
	j := get(t, s2, "j1")
	if j.State != store.StateClaimed || j.LeaseOwner != "r1" {
		t.Fatalf("after reopening: %+v", j)
	}
	if in, err := s2.JobInput(context.Background(), "j1"); err != nil || string(in) != "input" {
		t.Fatalf("input after reopening: %q, %v", in, err)
	}
}

// testInputsKept: the images a job was submitted with are listed with it
// for its whole life.
func testInputsKept(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	j := newJob("j1", "k", t0)
	j.Inputs = []store.Output{
		{Name: "target", ContentType: "image/jpeg", Key: "jobs/j1/inputs/target.jpg", Size: 1000},
		{Name: "mask", ContentType: "image/png", Key: "jobs/j1/inputs/mask.png", Size: 200},
	}
	create(t, s, j, "x")
	if got := get(t, s, "j1"); !reflect.DeepEqual(got.Inputs, j.Inputs) {
		t.Fatalf("inputs %+v, want %+v", got.Inputs, j.Inputs)
	}
	claim(t, s, "r1", t0, 10, 10)
	submit(t, s, "j1", "r1", t0)
	ended, _, err := s.Finish(ctx, "j1", store.Finish{State: store.StateSucceeded, At: t0.Add(time.Minute),
		Outputs: []store.Output{{Name: "out.png", ContentType: "image/png", Key: "jobs/j1/0-out.png", Size: 5}}})
	if err != nil || !reflect.DeepEqual(ended.Inputs, j.Inputs) {
		t.Fatalf("inputs after Finish %+v, %v", ended.Inputs, err)
	}
	jobs, err := s.ListJobs(ctx, store.ListParams{Owner: "k", Limit: 5})
	if err != nil || len(jobs) != 1 || !reflect.DeepEqual(jobs[0].Inputs, j.Inputs) {
		t.Fatalf("listed: %+v, %v", jobs, err)
	}
}

// testIdempotencyKeys: one job per owner and idempotency key, found again by
// the key; other owners and jobs without a key are not affected.
func testIdempotencyKeys(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	keyed := func(id, owner, key, hash string) *store.Job {
		j := newJob(id, owner, t0)
		j.IdempotencyKey, j.RequestHash = key, hash
		return j
	}
	first := create(t, s, keyed("j1", "alice", "order-17", "h1"), "x")
	if err := s.CreateJob(ctx, keyed("j2", "alice", "order-17", "h2"), []byte("x")); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("a second job with alice's key: %v, want ErrDuplicate", err)
	}
	if _, err := s.GetJob(ctx, "j2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused job was stored: %v", err)
	}
	if _, err := s.JobInput(ctx, "j2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused job's input was stored: %v", err)
	}
	create(t, s, keyed("j3", "bob", "order-17", "h3"), "x")
	create(t, s, keyed("j4", "alice", "order-18", "h4"), "x")
	create(t, s, newJob("j5", "alice", t0), "x")
	create(t, s, newJob("j6", "alice", t0), "x")
	for _, c := range []struct{ owner, key, id, hash string }{
		{"alice", "order-17", "j1", "h1"}, {"bob", "order-17", "j3", "h3"}, {"alice", "order-18", "j4", "h4"},
	} {
		j, err := s.JobByIdempotencyKey(ctx, c.owner, c.key)
		if err != nil || j.ID != c.id || j.IdempotencyKey != c.key || j.RequestHash != c.hash {
			t.Fatalf("JobByIdempotencyKey(%s, %s) = %+v, %v; want %s", c.owner, c.key, j, err, c.id)
		}
	}
	if got := get(t, s, "j1"); got.IdempotencyKey != "order-17" || got.RequestHash != "h1" || got.Seq != first.Seq {
		t.Fatalf("GetJob: %+v", got)
	}
	for _, c := range [][2]string{{"carol", "order-17"}, {"alice", "order-19"}, {"alice", ""}} {
		if _, err := s.JobByIdempotencyKey(ctx, c[0], c[1]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("JobByIdempotencyKey(%s, %q): %v, want ErrNotFound", c[0], c[1], err)
		}
	}
	// Racing creations with one key: exactly one wins, whichever handle.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		h := open(t, o)
		wg.Go(func() {
			err := h.CreateJob(ctx, keyed(fmt.Sprintf("race%d", i), "alice", "race", fmt.Sprint(i)), []byte("x"))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrDuplicate):
				t.Errorf("racing CreateJob: %v", err)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d racing jobs with one key were created, want 1", n)
	}
}

// testPrune: the jobs retention removes are those of the endpoint that ended
// before the cut, oldest first; DeleteJobs removes only those, and twice is
// harmless.
func testPrune(t *testing.T, o Opener) {
	s := open(t, o)
	ctx := context.Background()
	end := func(id string, state store.State, at time.Time) {
		t.Helper()
		if _, _, err := s.Finish(ctx, id, store.Finish{State: state, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	// Ended at t0+1h … t0+4h, in another order than created.
	for i, st := range []store.State{store.StateSucceeded, store.StateFailed, store.StateCancelled, store.StateTimedOut} {
		create(t, s, newJob(fmt.Sprintf("old%d", i), "k", t0), "x")
		end(fmt.Sprintf("old%d", i), st, t0.Add(time.Duration(4-i)*time.Hour))
	}
	create(t, s, newJob("queued", "k", t0), "x")
	create(t, s, newJob("running", "k", t0), "x")
	claim(t, s, "r1", t0, 10, 1) // the oldest still queued: "queued"
	create(t, s, newJob("recent", "k", t0), "x")
	end("recent", store.StateSucceeded, t0.Add(10*time.Hour))
	other := newJob("other-endpoint", "k", t0)
	other.Endpoint = "ep2"
	create(t, s, other, "x")
	end("other-endpoint", store.StateSucceeded, t0.Add(time.Hour))

	cut := t0.Add(5 * time.Hour)
	jobs, err := s.EndedBefore(ctx, endpoint, cut, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(jobs), []string{"old3", "old2", "old1"}; !slices.Equal(got, want) {
		t.Fatalf("EndedBefore, 3 at most: %v, want %v (those that ended first)", got, want)
	}
	if jobs, err = s.EndedBefore(ctx, endpoint, cut, 100); err != nil || len(jobs) != 4 {
		t.Fatalf("EndedBefore: %v, %v", ids(jobs), err)
	}
	// A job that has not ended, or ended after the cut, is never deleted,
	// even when named.
	n, err := s.DeleteJobs(ctx, []string{"old0", "old1", "queued", "running", "recent", "nope"}, cut)
	if err != nil || n != 2 {
		t.Fatalf("DeleteJobs: %d, %v; want 2", n, err)
	}
	for _, id := range []string{"old0", "old1"} {
		if _, err := s.GetJob(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s after DeleteJobs: %v", id, err)
		}
	}
	for _, id := range []string{"old2", "old3", "queued", "running", "recent", "other-endpoint"} {
		get(t, s, id)
	}
	// Another replica deleting the same jobs changes nothing.
	if n, err := open(t, o).DeleteJobs(ctx, []string{"old0", "old1"}, cut); err != nil || n != 0 {
		t.Fatalf("DeleteJobs again: %d, %v", n, err)
	}
	if n, err := s.DeleteJobs(ctx, nil, cut); err != nil || n != 0 {
		t.Fatalf("DeleteJobs(nil): %d, %v", n, err)
	}
	if jobs, err := s.EndedBefore(ctx, endpoint, cut, 100); err != nil || !slices.Equal(ids(jobs), []string{"old3", "old2"}) {
		t.Fatalf("EndedBefore after deleting: %v, %v", ids(jobs), err)
	}
	// The list pages past deleted jobs.
	listed, err := s.ListJobs(ctx, store.ListParams{Owner: "k", Limit: 10})
	if err != nil || len(listed) != 6 {
		t.Fatalf("ListJobs: %v, %v", ids(listed), err)
	}
	if counts, err := s.CountActive(ctx); err != nil || counts[store.StateQueued]+counts[store.StateClaimed] != 2 {
		t.Fatalf("CountActive: %v, %v", counts, err)
	}
}
