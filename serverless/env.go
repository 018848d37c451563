package serverless

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// Log levels beyond slog's four, matching runpod-python's TRACE and NOTSET.
const (
	// LevelTrace is below slog.LevelDebug (RUNPOD_LOG_LEVEL=TRACE).
	LevelTrace = slog.LevelDebug - 4
	// LevelOff disables logging (RUNPOD_LOG_LEVEL=NOTSET).
	LevelOff = slog.Level(math.MaxInt32)
)

// ConfigFromEnv builds a Config from the variables RunPod sets in a
// serverless worker's environment, read through getenv (os.Getenv in a
// command, a map in tests). An unset RUNPOD_WEBHOOK_GET_JOB means local mode,
// as in runpod-python. Malformed values are reported together, each naming
// the variable and what it should hold. The handler, logger and any other
// field are left for the caller to set before New.
func ConfigFromEnv(getenv func(string) string) (*Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg := &Config{
		TakeURL:    get("RUNPOD_WEBHOOK_GET_JOB"),
		DoneURL:    get("RUNPOD_WEBHOOK_POST_OUTPUT"),
		StreamURL:  get("RUNPOD_WEBHOOK_POST_STREAM"),
		PingURL:    get("RUNPOD_WEBHOOK_PING"),
		APIKey:     get("RUNPOD_AI_API_KEY"),
		WorkerID:   get("RUNPOD_POD_ID"),
		Hostname:   get("RUNPOD_POD_HOSTNAME"),
		EndpointID: get("RUNPOD_ENDPOINT_ID"),
	}
	if cfg.StreamURL == "" {
		// runpod-python's own fixtures use this misspelt name.
		cfg.StreamURL = get("RUNPOD_WEBHOOK_JOB_STREAM")
	}
	var errs []error
	if v := get("RUNPOD_PING_INTERVAL"); v != "" {
		d, err := parseMillis(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("RUNPOD_PING_INTERVAL=%q: %w", v, err))
		}
		cfg.PingInterval = d
	}
	level := get("RUNPOD_LOG_LEVEL")
	name := "RUNPOD_LOG_LEVEL"
	if level == "" {
		level, name = get("RUNPOD_DEBUG_LEVEL"), "RUNPOD_DEBUG_LEVEL"
	}
	if level != "" {
		lv, err := ParseLogLevel(level)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, level, err))
		}
		cfg.LogLevel = lv
	}
	if v := get("RUNPOD_MAX_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ConcurrencyLimit {
			errs = append(errs, fmt.Errorf("RUNPOD_MAX_CONCURRENCY=%q: want a whole number of jobs from 1 to %d", v, ConcurrencyLimit))
		} else {
			cfg.Concurrency = n
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("serverless: bad environment: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// maxMillis keeps a millisecond count from overflowing time.Duration.
const maxMillis = int64(math.MaxInt64 / int64(time.Millisecond))

// parseMillis reads a positive whole number of milliseconds.
func parseMillis(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New("want a whole number of milliseconds, such as 10000")
	}
	if n <= 0 || n > maxMillis {
		return 0, fmt.Errorf("want a positive number of milliseconds up to %d, such as 10000", maxMillis)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// ParseLogLevel reads a runpod-python log level: NOTSET, TRACE, DEBUG, INFO,
// WARN (or WARNING) or ERROR in any case, or Python's index into
// NOTSET, DEBUG, TRACE, INFO, WARN, ERROR.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "NOTSET", "0":
		return LevelOff, nil
	case "TRACE", "2":
		return LevelTrace, nil
	case "DEBUG", "1":
		return slog.LevelDebug, nil
	case "INFO", "3":
		return slog.LevelInfo, nil
	case "WARN", "WARNING", "4":
		return slog.LevelWarn, nil
	case "ERROR", "5":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, errors.New("want NOTSET, TRACE, DEBUG, INFO, WARN or ERROR")
}
