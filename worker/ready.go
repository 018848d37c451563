package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/truncate"
)

// WaitReady waits until ComfyUI answers. While its process is known to live
// (Config.Alive or Config.PIDFile) it waits as long as ctx allows, since
// loading custom nodes can take minutes; when the process dies it fails at
// once. Without a way to tell, it gives up after Config.ReadyAttempts polls,
// as worker-comfyui does.
func (h *Handler) WaitReady(ctx context.Context) error {
	opts := comfy.ReadyOptions{Interval: h.cfg.ReadyInterval, Alive: h.alive}
	start := h.now()
	gaveUp := false
	if h.alive == nil {
		// Count the polls through the liveness hook, which WaitReady calls
		// after every failed poll.
		polls := 0
		opts.Alive = func() error {
			polls++
			if polls >= h.cfg.ReadyAttempts {
				gaveUp = true
				return errGaveUp
			}
			return nil
		}
	}
	err := h.client.WaitReady(ctx, opts)
	switch {
	case err == nil:
		h.log.Info("ComfyUI is ready", "url", redactURL(h.client.BaseURL()), "waited", h.now().Sub(start).Round(1e6))
		return nil
	case gaveUp:
		return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("ComfyUI at %s did not answer after %d polls %s apart (COMFY_API_AVAILABLE_MAX_RETRIES): %s",
			redactURL(h.client.BaseURL()), h.cfg.ReadyAttempts, h.cfg.ReadyInterval, lastPoll(err))}
	case errors.Is(err, comfy.ErrNotReady):
		return &Error{Kind: ErrComfyUnavailable, Message: fmt.Sprintf("ComfyUI at %s will not start: %v", redactURL(h.client.BaseURL()), err)}
	case ctx.Err() != nil:
		return fmt.Errorf("waiting for ComfyUI at %s: %w", redactURL(h.client.BaseURL()), context.Cause(ctx))
	}
	return &Error{Kind: ErrComfyUnavailable, Message: err.Error()}
}

var errGaveUp = errors.New("gave up waiting")

// lastPoll extracts what the last readiness poll saw from WaitReady's error.
func lastPoll(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "last poll: "); i >= 0 {
		return "the last poll got " + s[i+len("last poll: "):]
	}
	return s
}

// pidAlive returns a liveness check reading ComfyUI's PID from file. A
// missing or empty file means the process has not started yet, which
// counts as alive (the entrypoint writes it right after launching ComfyUI);
// a PID whose process is gone or a zombie counts as dead.
func pidAlive(file string) func() error {
	return func() error {
		data, err := os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) || err == nil && len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading ComfyUI's PID file: %w", err)
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("ComfyUI's PID file %s holds %q, not a process id", file, truncate.Bytes(string(data), 20))
		}
		return processAlive(pid)
	}
}

// processAlive reports whether process pid runs. Zombies (a ComfyUI that
// exited but whose parent, this worker after the entrypoint's exec, has not
// reaped it) count as dead.
func processAlive(pid int) error {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil {
		// The state follows the command name, which is in parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
			switch stat[i+2] {
			case 'Z', 'X', 'x':
				return fmt.Errorf("ComfyUI (pid %d) has exited", pid)
			}
		}
		return nil
	}
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat("/proc/self"); statErr == nil {
			return fmt.Errorf("ComfyUI (pid %d) has exited", pid)
		}
	}
	// No /proc: ask the kernel.
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("ComfyUI (pid %d) has exited", pid)
	}
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("ComfyUI (pid %d) has exited", pid)
	}
	return nil
}
