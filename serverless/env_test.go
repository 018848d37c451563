package serverless

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(envFunc(map[string]string{
		"RUNPOD_WEBHOOK_GET_JOB":     "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=H100",
		"RUNPOD_WEBHOOK_POST_OUTPUT": " https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=H100 ",
		"RUNPOD_WEBHOOK_POST_STREAM": "https://api.runpod.ai/v2/ep/job-stream/$RUNPOD_POD_ID/$ID?gpu=H100",
		"RUNPOD_WEBHOOK_PING":        "https://api.runpod.ai/v2/ep/ping/$RUNPOD_POD_ID",
		"RUNPOD_AI_API_KEY":          "Bearer abc",
		"RUNPOD_POD_ID":              "pod-9",
		"RUNPOD_POD_HOSTNAME":        "pod-9-host",
		"RUNPOD_PING_INTERVAL":       "2500",
		"RUNPOD_ENDPOINT_ID":         "ep",
		"RUNPOD_LOG_LEVEL":           "warn",
		"RUNPOD_DEBUG_LEVEL":         "DEBUG",
		"RUNPOD_MAX_CONCURRENCY":     "8",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		TakeURL:      "https://api.runpod.ai/v2/ep/job-take/$ID?gpu=H100",
		DoneURL:      "https://api.runpod.ai/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=H100",
		StreamURL:    "https://api.runpod.ai/v2/ep/job-stream/$RUNPOD_POD_ID/$ID?gpu=H100",
		PingURL:      "https://api.runpod.ai/v2/ep/ping/$RUNPOD_POD_ID",
		APIKey:       "Bearer abc", // verbatim: some schedulers put "Bearer" in it
		WorkerID:     "pod-9",
		Hostname:     "pod-9-host",
		EndpointID:   "ep",
		PingInterval: 2500 * time.Millisecond,
		LogLevel:     slog.LevelWarn,
		Concurrency:  8,
	}
	if cfg.TakeURL != want.TakeURL || cfg.DoneURL != want.DoneURL || cfg.StreamURL != want.StreamURL ||
		cfg.PingURL != want.PingURL || cfg.APIKey != want.APIKey || cfg.WorkerID != want.WorkerID ||
		cfg.Hostname != want.Hostname || cfg.EndpointID != want.EndpointID || cfg.PingInterval != want.PingInterval ||
		cfg.LogLevel != want.LogLevel || cfg.Concurrency != want.Concurrency {
		t.Errorf("got %+v\nwant %+v", *cfg, want)
	}
	if cfg.Local() {
		t.Error("Local() with a take URL")
	}
}

func TestConfigFromEnvLocalAndFallbacks(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv(envFunc(map[string]string{
		"RUNPOD_WEBHOOK_JOB_STREAM": "http://h/stream/$ID",
		"RUNPOD_DEBUG_LEVEL":        "trace",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Local() || cfg.StreamURL != "http://h/stream/$ID" || cfg.LogLevel != LevelTrace {
		t.Errorf("%+v", cfg)
	}
	d := cfg.WithDefaults()
	if d.WorkerID == "" || len(d.WorkerID) != 36 || d.PingInterval != PingIntervalDefault || d.Concurrency != 1 {
		t.Errorf("defaults: worker %q interval %v concurrency %d", d.WorkerID, d.PingInterval, d.Concurrency)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	t.Parallel()
	_, err := ConfigFromEnv(envFunc(map[string]string{
		"RUNPOD_PING_INTERVAL":   "10s",
		"RUNPOD_LOG_LEVEL":       "LOUD",
		"RUNPOD_MAX_CONCURRENCY": "0",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`RUNPOD_PING_INTERVAL="10s": want a whole number of milliseconds`,
		`RUNPOD_LOG_LEVEL="LOUD": want NOTSET, TRACE, DEBUG, INFO, WARN or ERROR`,
		`RUNPOD_MAX_CONCURRENCY="0": want a whole number of jobs from 1 to 1024`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, v := range []string{"0", "-5", "99999999999999999999"} {
		if _, err := ConfigFromEnv(envFunc(map[string]string{"RUNPOD_PING_INTERVAL": v})); err == nil {
			t.Errorf("RUNPOD_PING_INTERVAL=%s accepted", v)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{
		"NOTSET": LevelOff, "0": LevelOff, "debug": slog.LevelDebug, "1": slog.LevelDebug,
		"TRACE": LevelTrace, "2": LevelTrace, "Info": slog.LevelInfo, "3": slog.LevelInfo,
		"WARN": slog.LevelWarn, "warning": slog.LevelWarn, "4": slog.LevelWarn, "ERROR": slog.LevelError, "5": slog.LevelError,
	} {
		got, err := ParseLogLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLogLevel("6"); err == nil {
		t.Error("6 accepted")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	h := func(ctx contextT, j *Job) (any, error) { return nil, nil }
	base := Config{
		Handler: h,
		TakeURL: "http://h/v2/ep/job-take/$ID",
		DoneURL: "http://h/v2/ep/job-done/$RUNPOD_POD_ID/$ID",
	}
	if _, err := New(&base); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no handler", func(c *Config) { c.Handler = nil }, "no handler"},
		{"two handlers", func(c *Config) {
			c.StreamHandler = func(contextT, *Job, func(any) error) error { return nil }
		}, "both Config.Handler and Config.StreamHandler"},
		{"stream without URL", func(c *Config) {
			c.Handler = nil
			c.StreamHandler = func(contextT, *Job, func(any) error) error { return nil }
		}, "RUNPOD_WEBHOOK_POST_STREAM"},
		{"negative duration", func(c *Config) { c.PingInterval = -time.Second }, "PingInterval is negative"},
		{"concurrency", func(c *Config) { c.Concurrency = 5000 }, "Concurrency 5000 is out of range"},
		{"retry", func(c *Config) { c.ResultRetry = RetryPolicy{Attempts: -1} }, "ResultRetry"},
		{"fitness", func(c *Config) { c.FitnessChecks = []FitnessCheck{{Name: "gpu"}} }, `FitnessChecks[0] ("gpu") has no Check`},
		{"local", func(c *Config) { c.TakeURL = "" }, "local mode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := base
			c.edit(&cc)
			_, err := New(&cc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to mention %q", err, c.want)
			}
		})
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
}
