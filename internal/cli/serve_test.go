package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/gateway"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func TestServeParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *ServeOptions
	run := func(_ context.Context, o *ServeOptions) error { got = o; return nil }
	cmd := NewCmdServe(f, run)
	cmd.SetArgs([]string{"--addr", "0.0.0.0:9000", "--db", "postgres://u:pw@db/x", "--storage", "s3://b/p", "--package", "pkg",
		"--workflow", "default", "--public-url", "https://brush.example.com", "--concurrency", "7", "--keep-warm", "1m",
		"--timeout", "5m", "--max-side", "1024", "--replica-id", "r1", "--workers", "3", "--shutdown-grace", "2s"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Addr != "0.0.0.0:9000" || got.DB != "postgres://u:pw@db/x" || got.Storage != "s3://b/p" || got.Package != "pkg" ||
		got.Workflow != "default" || got.PublicURL != "https://brush.example.com" || got.Concurrency != 7 || got.KeepWarm != time.Minute ||
		got.Timeout != 5*time.Minute || got.MaxSide != 1024 || got.ReplicaID != "r1" || got.Workers != 3 || got.Grace != 2*time.Second {
		t.Fatalf("options: %+v", got)
	}

	cmd = NewCmdServe(f, run)
	cmd.SetArgs([]string{"--cold-start", "20s", "--cold-start-after", "2s", "--retention", "48h"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ColdStart != 20*time.Second || got.ColdStartAfter != 2*time.Second || got.Retention != 48*time.Hour {
		t.Fatalf("cold start and retention: %+v", got)
	}

	// Defaults, and the environment's.
	cmd = NewCmdServe(f, run)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.ColdStart != 0 || got.ColdStartAfter != gateway.ColdStartAfterDefault || got.Retention != gateway.RetentionDefault {
		t.Fatalf("cold start and retention defaults: %+v", got)
	}
	if got.Addr != "127.0.0.1:8080" || got.DB != "sqlite:"+filepath.Join(dataDirDefault, "comfypod.db") ||
		got.Storage != filepath.Join(dataDirDefault, "outputs") || got.Concurrency != gateway.ConcurrencyDefault ||
		got.Timeout != gateway.TimeoutDefault || got.KeepWarm != 0 || got.PublicURL != "" {
		t.Fatalf("defaults: %+v", got)
	}
	g, _, _, _ := testFactory()
	g.Getenv = func(k string) string {
		return map[string]string{envDataDir: "/srv/brush", envPublicURL: "https://x.example", envReplicaID: "pod-1"}[k]
	}
	cmd = NewCmdServe(g, run)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.DB != "sqlite:/srv/brush/comfypod.db" || got.Storage != "/srv/brush/outputs" || got.PublicURL != "https://x.example" || got.ReplicaID != "pod-1" {
		t.Fatalf("from the environment: %+v", got)
	}

	for _, args := range [][]string{
		{"serve", "--addr", "8080"},
		{"serve", "--db", "mysql://x"},
		{"serve", "--db", "sqlite:"},
		{"serve", "--public-url", "brush.example.com"},
		{"serve", "--public-url", "https://user:pw@x"},
		{"serve", "--concurrency", "0"},
		{"serve", "--timeout", "1s"},
		{"serve", "--keep-warm", "5s"},
		{"serve", "--max-side", "10"},
		{"serve", "--workers", "0"},
		{"serve", "--shutdown-grace", "-1s"},
		{"serve", "--cold-start", "-1s"},
		{"serve", "--cold-start-after", "0s"},
		{"serve", "--retention", "10s"},
		{"serve", "--retention", "-1h"},
		{"serve", "extra"},
	} {
		g, _, _, errOut := testFactory()
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
	// A password in --db stays out of the message.
	g, _, _, errOut := testFactory()
	Run(context.Background(), g, []string{"serve", "--db", "mysql://u:hunter2@db/x"})
	if strings.Contains(errOut.String(), "hunter2") {
		t.Fatalf("the password is in the message: %s", errOut)
	}
}

// serveBrushForm is a small job: target, reference and a mask painting the
// middle.
func serveBrushForm(t *testing.T) (string, []byte) {
	t.Helper()
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	target := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	ref := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	mask := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			target.SetNRGBA(x, y, color.NRGBA{uint8(x * 4), uint8(y * 5), 60, 255})
			a := uint8(255)
			if x > 20 && x < 40 && y > 10 && y < 30 {
				a = 0
			}
			mask.SetNRGBA(x, y, color.NRGBA{A: a})
		}
	}
	for i := range ref.Pix {
		ref.Pix[i] = 200
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, img := range map[string]image.Image{"target": target, "reference": ref, "mask": mask} {
		w, _ := mw.CreateFormFile(name, name+".png")
		_, _ = w.Write(enc(img))
	}
	_ = mw.WriteField("prompt", "oil paint")
	_ = mw.Close()
	return mw.FormDataContentType(), body.Bytes()
}

// serveOnce runs comfypod serve with args until a job has gone through it,
// then stops it, and returns the status output.
func serveOnce(t *testing.T, getenv func(string) string, key string, args ...string) string {
	t.Helper()
	status, _ := serveJob(t, getenv, key, args...)
	return status
}

// serveJob is serveOnce that also returns the job's event stream.
func serveJob(t *testing.T, getenv func(string) string, key string, args ...string) (string, string) {
	t.Helper()
	f, _, _, _ := testFactory()
	status := &syncBuffer{}
	f.IO.ErrOut = status
	if getenv != nil {
		f.Getenv = getenv
	}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := NewCmdServe(f, func(ctx context.Context, o *ServeOptions) error {
		o.Ready = func(url string) { ready <- url }
		return runServe(ctx, o)
	})
	cmd.SetArgs(args)
	exit := make(chan error, 1)
	go func() { exit <- cmd.ExecuteContext(ctx) }()
	var url string
	select {
	case url = <-ready:
	case err := <-exit:
		t.Fatalf("serve ended early: %v\n%s", err, status)
	case <-time.After(time.Minute):
		t.Fatalf("serve did not start:\n%s", status)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ct, body := serveBrushForm(t)
	req, _ := http.NewRequest("POST", url+"/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc gateway.Accepted
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/jobs: %d\n%s", resp.StatusCode, status)
	}
	// Follow the events to the end.
	req, _ = http.NewRequest("GET", url+"/v1/jobs/"+acc.ID+"/events", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(events), `"status":"succeeded"`) {
		t.Fatalf("the job did not succeed:\n%s\n%s", events, status)
	}
	cancel()
	select {
	case err := <-exit:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, status)
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop:\n%s", status)
	}
	return status.String(), string(events)
}

// comfypod serve with no RunPod variables: the local stack, said loudly
// first; open on loopback; a job goes through the built-in engine.
func TestServeLocalStack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := serveOnce(t, nil, "", "--addr", "127.0.0.1:0", "--data-dir", dir, "--workers", "1")
	first, _, _ := strings.Cut(out, "\n")
	if !strings.Contains(first, "LOCAL STACK") || !strings.Contains(first, `workflow "preview"`) {
		t.Fatalf("first line: %s", first)
	}
	for _, want := range []string{"OPEN: no API key", "webhooks: RunPod reports", filepath.Join(dir, "comfypod.db"), "stopped",
		"retention: jobs and their images are deleted 7 days after they end"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// With --cold-start the local stack is a cold endpoint: the first job waits
// for the workers to load, and the service reports it as a cold start.
func TestServeLocalStackColdStart(t *testing.T) {
	t.Parallel()
	status, events := serveJob(t, nil, "", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--workers", "1",
		"--cold-start", "3s", "--cold-start-after", "200ms", "--retention", "0")
	if !strings.Contains(status, "cold start: the workers start on the first job and load for 3s") ||
		!strings.Contains(status, "retention: off") {
		t.Fatalf("status:\n%s", status)
	}
	cold, done := strings.Index(events, `"status":"cold_start"`), strings.Index(events, `"status":"succeeded"`)
	if cold < 0 || cold > done {
		t.Fatalf("no cold start reported before the result:\n%s", events)
	}
}

// With RunPod's variables set, jobs go to that endpoint, said first; with
// a key created, the service wants it.
func TestServeRunPodWithKeys(t *testing.T) {
	t.Parallel()
	rp, err := runpodtest.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	w, err := rp.StartWorker(context.Background(), func(_ context.Context, job *runpodtest.WorkerJob) (any, error) {
		var in struct {
			Images []struct{ Name, Image string }
		}
		if err := json.Unmarshal(job.Input, &in); err != nil {
			return nil, err
		}
		return map[string]any{"images": []map[string]string{{"filename": "out.png", "type": "base64", "data": in.Images[0].Image}}}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	dir := t.TempDir()
	env := map[string]string{envEndpointID: rp.EndpointID(), envAPIKey: rp.APIKey(), envBaseURL: rp.BaseURL(), envDataDir: dir}
	getenv := func(k string) string { return env[k] }

	f, _, out, errOut := testFactory()
	f.Getenv = getenv
	if code := Run(context.Background(), f, []string{"keys", "create", "--name", "ci"}); code != ExitOK {
		t.Fatalf("keys create: %d %s", code, errOut)
	}
	key := strings.TrimSpace(out.String())
	status := serveOnce(t, getenv, key, "--addr", "127.0.0.1:0")
	first, _, _ := strings.Cut(status, "\n")
	if !strings.Contains(first, `RUNPOD endpoint "`+rp.EndpointID()+`"`) || !strings.Contains(first, rp.BaseURL()) {
		t.Fatalf("first line: %s", first)
	}
	if !strings.Contains(status, "API keys required (1 active)") || strings.Contains(status, key) || strings.Contains(status, rp.APIKey()) {
		t.Fatalf("status:\n%s", status)
	}
	if n := rp.Requests(runpodtest.OpRun); n != 1 {
		t.Fatalf("%d /run calls", n)
	}

	// Half the RunPod variables is a mistake, not the local stack.
	g, _, _, errOut := testFactory()
	g.Getenv = func(k string) string {
		return map[string]string{envAPIKey: "rpa_X", envDataDir: dir}[k]
	}
	if code := Run(context.Background(), g, []string{"serve", "--addr", "127.0.0.1:0"}); code != ExitUsage ||
		!strings.Contains(errOut.String(), "RUNPOD_ENDPOINT_ID is not") {
		t.Fatalf("half the variables: %d %s", code, errOut)
	}
	// A RunPod endpoint has cold starts of its own.
	g, _, _, errOut = testFactory()
	g.Getenv = getenv
	if code := Run(context.Background(), g, []string{"serve", "--addr", "127.0.0.1:0", "--cold-start", "5s"}); code != ExitUsage ||
		!strings.Contains(errOut.String(), "--cold-start is for the local stack") {
		t.Fatalf("--cold-start on RunPod: %d %s", code, errOut)
	}
}

// On an address others can reach, a service without keys refuses to start
// and says how to make one.
func TestServeRefusesOpenNetwork(t *testing.T) {
	t.Parallel()
	f, _, _, errOut := testFactory()
	dir := t.TempDir()
	code := Run(context.Background(), f, []string{"serve", "--addr", "0.0.0.0:0", "--data-dir", dir})
	if code != ExitUsage || !strings.Contains(errOut.String(), "comfypod keys create") || !strings.Contains(errOut.String(), "not a loopback address") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestServeHelpers(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "0.0.0.0:80": false,
		":8080": false, "10.0.0.1:80": false, "bad": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%q) != %v", addr, want)
		}
	}
	for d, want := range map[time.Duration]string{24 * time.Hour: "1 day", 7 * 24 * time.Hour: "7 days", 36 * time.Hour: "36h0m0s", time.Minute: "1m0s"} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%s) = %s, want %s", d, got, want)
		}
	}
	if got := loopbackOf("0.0.0.0:8080"); got != "127.0.0.1:8080" {
		t.Errorf("loopbackOf = %s", got)
	}
	if got := loopbackOf("[::]:8080"); got != "127.0.0.1:8080" {
		t.Errorf("loopbackOf = %s", got)
	}
	if got := redactDSN("postgres://u:secret@db:5432/x?sslmode=disable"); strings.Contains(got, "secret") || !strings.Contains(got, "db:5432") {
		t.Errorf("redactDSN = %s", got)
	}
	env := map[string]string{envS3Key: "AKID", envS3Secret: "topsecret", envS3Region: "eu-west-1"}
	st, desc, err := openStorage("s3://bucket/pre", func(k string) string { return env[k] })
	if err != nil || st == nil || !strings.Contains(desc, "s3.eu-west-1.amazonaws.com") || strings.Contains(desc, "topsecret") {
		t.Errorf("openStorage: %v %s", err, desc)
	}
	if _, _, err := openStorage("s3://key:secret@bucket", func(string) string { return "" }); err == nil || strings.Contains(err.Error(), "secret@") {
		t.Errorf("credentials in the URL: %v", err)
	}
}
