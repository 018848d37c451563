// Package proc holds what the benchmark programs do to the comfypod process
// they measure: build the binary the way the worker image does, and read a
// process's resident set size from /proc.
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Build compiles ./cmd/comfypod into dir as the worker image builds it
// (static, trimmed, without symbol tables) and returns the binary's path.
// It must run from the repository's root.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "comfypod")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/comfypod")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building comfypod (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

// Mem reads a process's current (VmRSS) and peak (VmHWM) resident set
// size, in bytes.
func Mem(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}
