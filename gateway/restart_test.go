package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway/blob/disk"
	"github.com/comfypod/comfypod/gateway/store"
	"github.com/comfypod/comfypod/gateway/store/postgres"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/internal/testenv"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// childEnv, when set, makes the test binary run the service as a child
// process (see TestRestart). The child's configuration comes in the
// variables below.
const childEnv = "COMFYPOD_GATEWAY_CHILD"

const (
	childSQLite   = "GW_SQLITE"    // database file, or
	childPGDSN    = "GW_PG_DSN"    // Postgres DSN
	childPGSchema = "GW_PG_SCHEMA" // and schema
	childOutputs  = "GW_OUTPUTS"
	childAddr     = "GW_ADDR"
	childRPBase   = "GW_RP_BASE"
	childRPKey    = "GW_RP_KEY"
	childRPID     = "GW_RP_ENDPOINT"
	childReplica  = "GW_REPLICA"
	childWebhooks = "GW_WEBHOOKS"
	childConc     = "GW_CONCURRENCY"
	childTimeout  = "GW_TIMEOUT"
)

// childMain runs the service until SIGTERM (a graceful stop) or SIGKILL (the
// test's crash). It prints "READY" once it serves.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var st store.Store
	var err error
	if p := os.Getenv(childSQLite); p != "" {
		st, err = sqlite.Open(ctx, p, &sqlite.Options{SyncNormal: true})
	} else {
		st, err = postgres.Open(ctx, os.Getenv(childPGDSN), &postgres.Options{Schema: os.Getenv(childPGSchema)})
	}
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	outputs, err := disk.New(os.Getenv(childOutputs))
	if err != nil {
		return fail(err)
	}
	client, err := runpod.New(os.Getenv(childRPID), runpod.WithAPIKey(os.Getenv(childRPKey)), runpod.WithBaseURL(os.Getenv(childRPBase)),
		runpod.WithLongPoll(0))
	if err != nil {
		return fail(err)
	}
	addr := os.Getenv(childAddr)
	conc, _ := strconv.Atoi(os.Getenv(childConc))
	cfg := &Config{
		Store: st, Outputs: outputs, RunPod: client, Package: packages.ImageBrushFS(), Open: true,
		ReplicaID: os.Getenv(childReplica), Concurrency: conc,
		PollMin: 50 * time.Millisecond, PollMax: 200 * time.Millisecond, WebhookPollMax: time.Second,
		DispatchInterval: 100 * time.Millisecond, EventsInterval: 100 * time.Millisecond, LeaseTTL: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if d, err := time.ParseDuration(os.Getenv(childTimeout)); err == nil {
		cfg.Timeout, cfg.UnknownGrace = d, time.Second
	}
	if os.Getenv(childWebhooks) != "" {
		cfg.PublicURL = "http://" + addr
	}
	svc, err := New(cfg)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(err)
	}
	if err := svc.Start(ctx); err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: svc}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println("READY")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = svc.Stop(sctx)
	_ = srv.Shutdown(sctx)
	return 0
}

// child is the service running in another process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

// startChild runs the test binary as the service and waits until it serves.
func startChild(t *testing.T, env map[string]string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), logs: &syncBuffer{}}
	cmd.Stderr = c.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "READY" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	select {
	case ok := <-ready:
		if !ok {
			<-c.done
			t.Fatalf("the service did not start:\n%s", c.logs)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the service did not start in time:\n%s", c.logs)
	}
	return c
}

// kill ends the child with SIGKILL: no graceful stop, no lease handed back.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// ourID finds the gateway job id a RunPod job was made for, from its image
// names ("<id>-target.png").
func ourID(t testing.TB, j runpodtest.Job) string {
	t.Helper()
	var in struct {
		Images []workerImage `json:"images"`
	}
	if err := json.Unmarshal(j.Input, &in); err != nil || len(in.Images) == 0 {
		t.Fatalf("RunPod job %s has no images: %v", j.ID, err)
	}
	id, _, _ := strings.Cut(in.Images[0].Name, "-")
	return id
}

// checkOncePerJob proves from the control plane's counters that each job
// was sent once: as many /run calls as jobs, and one RunPod job per job.
func checkOncePerJob(t *testing.T, rp *runpodtest.Server, ids []string) {
	t.Helper()
	if n := rp.Requests(runpodtest.OpRun); n != len(ids) {
		t.Fatalf("%d /run calls for %d jobs", n, len(ids))
	}
	seen := map[string]int{}
	for _, j := range rp.Jobs() {
		seen[ourID(t, j)]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("job %s ran %d times at RunPod", id, seen[id])
		}
	}
}

// TestRestart kills the service (SIGKILL) with jobs at RunPod and more in its
// queue, lets RunPod finish some while it is down, restarts it on the same
// database, and checks that every job ends exactly once.
func TestRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		postgres bool
		webhooks bool
	}{
		{"sqlite-polling", false, false},
		{"sqlite-webhooks", false, true},
		{"postgres-webhooks", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{childOutputs: filepath.Join(t.TempDir(), "outputs"), childAddr: freeAddr(t),
				childReplica: "replica-a", childConc: "4"}
			if tc.postgres {
				dsn := testenv.PostgresDSN(t)
				env[childPGDSN], env[childPGSchema] = dsn, freshSchema(t, dsn)
			} else {
				env[childSQLite] = filepath.Join(t.TempDir(), "comfypod.db")
			}
			if tc.webhooks {
				env[childWebhooks] = "1"
			}
			rp, err := runpodtest.NewServer(&runpodtest.Config{WorkerPollWait: 2 * time.Second, WebhookRetryDelay: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rp.Close)
			env[childRPBase], env[childRPKey], env[childRPID] = rp.BaseURL(), rp.APIKey(), rp.EndpointID()

			first := startChild(t, env)
			h := &harness{t: t, rp: rp, url: "http://" + env[childAddr], hc: &http.Client{Transport: &http.Transport{}}, logs: first.logs}
			t.Cleanup(h.hc.CloseIdleConnections)
			f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
			var ids []string
			for range 8 {
				ids = append(ids, h.submit("", f))
			}
			// Four are at RunPod (the concurrency) with their ids stored, four
			// wait in the queue: kill it now.
			awaitCond(t, "four jobs at RunPod with their ids stored", func() bool {
				n := 0
				for _, id := range ids {
					if h.get("", id).RunPodID != "" {
						n++
					}
				}
				return n == 4
			})
			first.kill(t)

			// RunPod works on while the service is down.
			w, err := rp.StartWorker(context.Background(), brushWorker, &runpodtest.WorkerOptions{Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Stop)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := rp.Await(ctx, func() bool {
				done := 0
				for _, j := range rp.Jobs() {
					if j.Status.Terminal() {
						done++
					}
				}
				return done == 4
			}); err != nil {
				t.Fatal(err)
			}

			second := startChild(t, env)
			h.logs = second.logs
			for _, id := range ids {
				if j := h.wait("", id); j.Status != StatusSucceeded {
					t.Fatalf("job %s after the restart: %+v %+v\nlogs:\n%s", id, j, j.Error, second.logs)
				}
			}
			checkOncePerJob(t, rp, ids)
			if !strings.Contains(second.logs.String(), "took over jobs") {
				t.Fatalf("the restarted service did not take its jobs back:\n%s", second.logs)
			}
		})
	}
}

// TestRestartDuringSubmissions kills the service while /run calls are in the
// air (RunPod answers slowly). With webhooks, every job that reached RunPod
// completes once; none is sent twice; a job whose /run never arrived fails
// as unknown rather than being resent blindly.
func TestRestartDuringSubmissions(t *testing.T) {
	t.Parallel()
	env := map[string]string{childOutputs: filepath.Join(t.TempDir(), "outputs"), childAddr: freeAddr(t),
		childReplica: "replica-a", childConc: "8", childWebhooks: "1", childSQLite: filepath.Join(t.TempDir(), "comfypod.db"),
		childTimeout: "10s"}
	rp, err := runpodtest.NewServer(&runpodtest.Config{WorkerPollWait: 2 * time.Second, WebhookRetryDelay: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rp.Close)
	env[childRPBase], env[childRPKey], env[childRPID] = rp.BaseURL(), rp.APIKey(), rp.EndpointID()
	// Every /run is held a while before RunPod takes the job.
	if _, err := rp.AddFault(runpodtest.Fault{Op: runpodtest.OpRun, Action: runpodtest.FaultLatency, Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	first := startChild(t, env)
	h := &harness{t: t, rp: rp, url: "http://" + env[childAddr], hc: &http.Client{Transport: &http.Transport{}}, logs: first.logs}
	t.Cleanup(h.hc.CloseIdleConnections)
	f := brushForm(t, 64, 48, image.Rect(8, 8, 24, 24))
	var ids []string
	for range 6 {
		ids = append(ids, h.submit("", f))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := rp.AwaitWaiting(ctx, runpodtest.OpRun, 1); err != nil {
		t.Fatal(err)
	}
	first.kill(t)
	rp.ClearFaults()
	w, err := rp.StartWorker(context.Background(), brushWorker, &runpodtest.WorkerOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	second := startChild(t, env)
	h.logs = second.logs

	var mu sync.Mutex
	final := map[string]Job{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			j := h.wait("", id)
			mu.Lock()
			final[id] = j
			mu.Unlock()
		})
	}
	wg.Wait()
	perJob := map[string]int{}
	for _, j := range rp.Jobs() {
		perJob[ourID(t, j)]++
	}
	for _, id := range ids {
		j := final[id]
		t.Logf("job %s: %d RunPod job(s), ended %s", id, perJob[id], j.Status)
		switch {
		case perJob[id] > 1:
			t.Fatalf("job %s ran %d times at RunPod", id, perJob[id])
		case perJob[id] == 1 && j.Status != StatusSucceeded:
			t.Fatalf("job %s reached RunPod but ended %s: %+v", id, j.Status, j.Error)
		case perJob[id] == 0 && (j.Status != StatusFailed || j.Error.Code != "submission_unknown"):
			t.Fatalf("job %s never reached RunPod but ended %s: %+v", id, j.Status, j.Error)
		}
	}
}
