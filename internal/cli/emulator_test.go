package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRunpodEmulatorParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *EmulatorOptions
	cmd := newCmdRunpodEmulator(f, func(_ context.Context, o *EmulatorOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"--addr", "127.0.0.1:8765", "--endpoint-id", "ep1,ep2", "--endpoint-id", "ep3", "--api-key", "rpa_K",
		"--worker-id", "pod-7", "--gpu", "NVIDIA A40", "--ping-interval", "2s", "--ping-timeout", "9s", "--cold-start", "20s"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := &EmulatorOptions{IO: f.IO, Addr: "127.0.0.1:8765", EndpointIDs: []string{"ep1", "ep2", "ep3"}, APIKey: "rpa_K",
		WorkerID: "pod-7", GPUName: "NVIDIA A40", PingInterval: 2 * time.Second, PingTimeout: 9 * time.Second, ColdStart: 20 * time.Second}
	got.Logger = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("options\n got %+v\nwant %+v", got, want)
	}

	cmd = newCmdRunpodEmulator(f, func(_ context.Context, o *EmulatorOptions) error { got = o; return nil })
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Addr != "127.0.0.1:0" || !reflect.DeepEqual(got.EndpointIDs, []string{"local"}) || got.APIKey != "" ||
		got.PingInterval != 10*time.Second || got.PingTimeout != 0 || got.WorkerID != "local-worker" {
		t.Fatalf("defaults: %+v", got)
	}

	for _, args := range [][]string{
		{"runpod-emulator", "--addr", "8765"},
		{"runpod-emulator", "--endpoint-id", "bad/id"},
		{"runpod-emulator", "--worker-id", "a b"},
		{"runpod-emulator", "--ping-interval", "0s"},
		{"runpod-emulator", "--cold-start", "-1s"},
		{"runpod-emulator", "extra"},
	} {
		g, _, _, errOut := testFactory()
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
}

func TestRunpodEmulatorRuns(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	pr, pw := io.Pipe()
	defer pr.Close()
	status := &syncBuffer{}
	f.IO.Out, f.IO.ErrOut = pw, status

	emulator := startCommand(t, func(ctx context.Context) error {
		if code := Run(ctx, f, []string{"runpod-emulator", "--endpoint-id", "ep1", "--api-key", "rpa_CLI", "--worker-id", "pod-1"}); code != ExitOK {
			return fmt.Errorf("exit %d; status: %s", code, status)
		}
		return nil
	})

	// The variables arrive at once, before anything else happens.
	lines := readLines(emulator, pr, len(emulatorEnvOrder))
	file := filepath.Join(t.TempDir(), "emulator.env")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := sourceEnv(t, file)
	base := env["RUNPOD_ENDPOINT_BASE_URL"]
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/v2") || env["RUNPOD_ENDPOINT_ID"] != "ep1" ||
		env["RUNPOD_API_KEY"] != "rpa_CLI" || env["RUNPOD_AI_API_KEY"] != "rpa_CLI" || env["RUNPOD_POD_ID"] != "pod-1" || env["RUNPOD_PING_INTERVAL"] != "10000" {
		t.Fatalf("environment: %v", env)
	}
	if want := base + "/ep1/job-take/$ID?gpu=NVIDIA+GeForce+RTX+4090"; env["RUNPOD_WEBHOOK_GET_JOB"] != want {
		t.Fatalf("RUNPOD_WEBHOOK_GET_JOB = %q, want %q", env["RUNPOD_WEBHOOK_GET_JOB"], want)
	}

	// A job goes through the client API and the printed worker templates.
	client := &http.Client{}
	defer client.CloseIdleConnections()
	call := func(method, url, auth, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, run := call("POST", base+"/ep1/run", "Bearer "+env["RUNPOD_API_KEY"], `{"input":{"n":1}}`)
	id, _ := run["id"].(string)
	if code != 200 || id == "" {
		t.Fatalf("/run: %d %v", code, run)
	}
	take := strings.ReplaceAll(env["RUNPOD_WEBHOOK_GET_JOB"], "$ID", env["RUNPOD_POD_ID"]) + "&job_in_progress=0"
	if code, job := call("GET", take, env["RUNPOD_AI_API_KEY"], ""); code != 200 || job["id"] != id {
		t.Fatalf("job-take: %d %v", code, job)
	}
	done := strings.ReplaceAll(strings.ReplaceAll(env["RUNPOD_WEBHOOK_POST_OUTPUT"], "$RUNPOD_POD_ID", env["RUNPOD_POD_ID"]), "$ID", id) + "&isStream=false"
	if code, _ := call("POST", done, env["RUNPOD_AI_API_KEY"], `{"output":"ok"}`); code != 200 {
		t.Fatalf("job-done: %d", code)
	}
	if code, st := call("GET", base+"/ep1/status/"+id, env["RUNPOD_API_KEY"], ""); code != 200 || st["status"] != "COMPLETED" || st["output"] != "ok" {
		t.Fatalf("status: %d %v", code, st)
	}

	if err := emulator.stop(); err != nil {
		t.Fatal(err)
	}
	s := status.String()
	if !strings.Contains(s, "listening on http://127.0.0.1:") || !strings.Contains(s, "stopped") || strings.Contains(s, "rpa_CLI") {
		t.Fatalf("status stream: %s", s)
	}
}

// sourceEnv loads a KEY='VALUE' file the way a user's shell would and
// returns the variables it set.
func sourceEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh to source the environment with: %v", err)
	}
	out, err := exec.Command(sh, "-c", `set -a; . "$1"; set +a; env`, "sh", file).Output()
	if err != nil {
		t.Fatalf("sourcing %s: %v", file, err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "RUNPOD_") {
			env[k] = v
		}
	}
	return env
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"local":                   "local",
		"http://h:1/v2":           "http://h:1/v2",
		"":                        "''",
		"a/$ID?gpu=X+Y":           "'a/$ID?gpu=X+Y'",
		"it's":                    `'it'\''s'`,
		"rpa_ABC-123":             "rpa_ABC-123",
		"two words":               "'two words'",
		"`cmd` $(x) *":            "'`cmd` $(x) *'",
		"NVIDIA+GeForce+RTX+4090": "NVIDIA+GeForce+RTX+4090",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
