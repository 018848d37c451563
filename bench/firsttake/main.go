// Command firsttake measures how long a serverless worker takes from start
// to its first job-take request, as the control plane sees it:
//
//	process   exec of a fresh worker process → first take (what a cold
//	          container adds on top of its image start)
//	in-proc   New + Worker.Start in a running process → first take (the
//	          runtime's own share)
//
// It runs the control plane (runpodtest) in this process, re-executes itself
// as the worker for the process rows, and prints a table of min, median, p90
// and max over -n runs.
//
//	go run ./bench/firsttake -n 30
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/comfypod/comfypod/bench/internal/plane"
	"github.com/comfypod/comfypod/serverless"
)

func main() {
	child := flag.Bool("child", false, "run as the worker process (internal)")
	n := flag.Int("n", 20, "runs per row")
	flag.Parse()
	if *child {
		os.Exit(runChild())
	}
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "firsttake:", err)
		os.Exit(1)
	}
}

// runChild is the worker process: the environment RunPod would set, a
// handler that returns at once, Start until SIGTERM.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := serverless.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.LogLevel = serverless.LevelOff
	cfg.Logger = cfg.NewLogger(os.Stderr)
	h := func(context.Context, *serverless.Job) (any, error) { return nil, nil }
	if err := serverless.Start(ctx, h, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func run(n int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := plane.New()
	if err != nil {
		return err
	}
	defer p.Close()

	var procs, inproc []time.Duration
	for i := range n {
		id := fmt.Sprintf("proc-%d", i)
		first := p.Expect(id)
		cmd := exec.Command(exe, "-child")
		cmd.Env = os.Environ()
		for k, v := range p.Server().WorkerEnv(id) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		select {
		case t1 := <-first:
			procs = append(procs, t1.Sub(t0))
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("worker process %d sent no take within 30 s", i)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("worker process %d: %w", i, err)
		}
	}
	for i := range n {
		id := fmt.Sprintf("inproc-%d", i)
		first := p.Expect(id)
		env := p.Server().WorkerEnv(id)
		cfg, err := serverless.ConfigFromEnv(func(k string) string { return env[k] })
		if err != nil {
			return err
		}
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.Handler = func(context.Context, *serverless.Job) (any, error) { return nil, nil }
		t0 := time.Now()
		w, err := serverless.New(cfg)
		if err != nil {
			return err
		}
		if err := w.Start(context.Background()); err != nil {
			return err
		}
		t1 := <-first
		inproc = append(inproc, t1.Sub(t0))
		_ = w.Stop(context.Background())
	}

	fmt.Printf("start → first job-take (%d runs each)\n\n", n)
	fmt.Printf("| %-9s | %9s | %9s | %9s | %9s |\n", "mode", "min", "median", "p90", "max")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11))
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"process", procs}, {"in-proc", inproc}} {
		slices.Sort(row.d)
		q := func(f float64) time.Duration { return row.d[int(f*float64(len(row.d)-1))] }
		fmt.Printf("| %-9s | %9s | %9s | %9s | %9s |\n", row.name, fmtDur(row.d[0]), fmtDur(q(0.5)), fmtDur(q(0.9)), fmtDur(row.d[len(row.d)-1]))
	}
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}
