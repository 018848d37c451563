// Command gateway measures comfypod serve, the Image Brush service, on this
// machine:
//
//  1. in-flight tracking: N jobs (10,000 by default) posted and left queued
//     at a local RunPod control plane that has no worker, so every one of
//     them is in flight and watched; it reports the service's peak resident
//     set size (the kernel's VmHWM), its goroutines, and the status calls per
//     second it makes while it watches them all;
//  2. reads: GET /v1/jobs/{id} with an API key, from concurrent clients, on
//     random jobs among those N: requests per second and latency percentiles.
//
// It builds comfypod (or takes -bin), runs `comfypod serve` as a child
// process against the control plane it serves itself, and prints a table.
// Client and service share the machine's cores.
//
//	go run ./bench/gateway                       # 10,000 jobs, SQLite
//	go run ./bench/gateway -jobs 2000 -clients 16 -duration 5s
//	go run ./bench/gateway -db postgres://postgres@127.0.0.1:5432/test
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/comfypod/comfypod/bench/internal/proc"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

func main() {
	jobs := flag.Int("jobs", 10000, "jobs to post and keep in flight")
	posters := flag.Int("posters", 8, "concurrent clients posting jobs")
	clients := flag.Int("clients", 32, "concurrent clients of the read benchmark")
	duration := flag.Duration("duration", 10*time.Second, "length of the read benchmark")
	settle := flag.Duration("settle", 15*time.Second, "time spent watching every job before measuring")
	db := flag.String("db", "", "the service's --db (default: SQLite in a temporary folder)")
	bin := flag.String("bin", "", "comfypod binary (default: build ./cmd/comfypod)")
	flag.Parse()
	if err := run(*jobs, *posters, *clients, *duration, *settle, *db, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gateway:", err)
		os.Exit(1)
	}
}

// row is one line of the results table.
type row struct{ what, value, note string }

func run(n, posters, clients int, duration, settle time.Duration, db, bin string) error {
	tmp, err := os.MkdirTemp("", "bench-gateway-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		if bin, err = proc.Build(tmp); err != nil {
			return err
		}
	}
	if db == "" {
		db = "sqlite:" + filepath.Join(tmp, "comfypod.db")
	}
	rp, err := runpodtest.NewServer(&runpodtest.Config{MaxRunBytes: 64 << 20})
	if err != nil {
		return err
	}
	defer rp.Close()

	keyOut, err := exec.Command(bin, "keys", "create", "--name", "bench", "--db", db).Output()
	if err != nil {
		return fmt.Errorf("comfypod keys create: %w", err)
	}
	key := strings.TrimSpace(string(keyOut))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", db, "--data-dir", tmp, "--concurrency", strconv.Itoa(n*2),
		"--timeout", "2h", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "RUNPOD_API_KEY="+rp.APIKey(), "RUNPOD_ENDPOINT_ID="+rp.EndpointID(), "RUNPOD_ENDPOINT_BASE_URL="+rp.BaseURL())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "listening on") {
				once.Do(func() { close(ready) })
			}
			if strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "comfypod:") {
				fmt.Fprintln(os.Stderr, "service:", line)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Minute):
		return errors.New("the service did not start")
	}
	base := "http://" + addr
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()

	var rows []row
	body := jobBody()
	rows = append(rows, row{"service", "comfypod serve, " + storeName(db) + ", polling", fmt.Sprintf("%d jobs, %d posters, no webhooks", n, posters)})

	// Post n jobs.
	ids := make([]string, n)
	var next atomic.Int64
	var postErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range posters {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id, err := post(hc, base, key, body)
				if err != nil {
					errOnce.Do(func() { postErr = err })
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if postErr != nil {
		return postErr
	}
	postTook := time.Since(start)
	rows = append(rows, row{"POST /v1/jobs", fmt.Sprintf("%.0f jobs/s", float64(n)/postTook.Seconds()), fmt.Sprintf("%d accepted in %s", n, postTook.Round(time.Millisecond))})

	// Wait until every job is at RunPod and watched.
	for {
		if rp.Requests(runpodtest.OpRun) >= n {
			m, err := metrics(hc, base)
			if err == nil && m["comfypod_jobs_in_flight"] >= float64(n) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	dispatchTook := time.Since(start)
	rows = append(rows, row{"all jobs at RunPod and watched", dispatchTook.Round(time.Millisecond).String(),
		fmt.Sprintf("%.0f submissions/s end to end", float64(n)/dispatchTook.Seconds())})

	// Watch them all for a while.
	s0 := rp.Requests(runpodtest.OpStatus)
	t0 := time.Now()
	time.Sleep(settle)
	statusRate := float64(rp.Requests(runpodtest.OpStatus)-s0) / time.Since(t0).Seconds()
	m, err := metrics(hc, base)
	if err != nil {
		return err
	}
	rss, hwm, err := proc.Mem(cmd.Process.Pid)
	if err != nil {
		return err
	}
	rows = append(rows,
		row{"jobs in flight, watched", fmt.Sprintf("%.0f", m["comfypod_jobs_in_flight"]), "each at RunPod, IN_QUEUE"},
		row{"status calls while watching", fmt.Sprintf("%.0f /s", statusRate), fmt.Sprintf("paced; each job checked every ~%.0f s", float64(n)/max(statusRate, 1))},
		row{"service goroutines", fmt.Sprintf("%.0f", m["go_goroutines"]), "not one per job"},
		row{"service RSS while watching", mib(rss), ""},
	)

	// Reads.
	lat, reqs, readErrs := readBench(hc, base, key, ids, clients, duration)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	rows = append(rows,
		row{"GET /v1/jobs/{id}", fmt.Sprintf("%.0f req/s", float64(reqs)/duration.Seconds()), fmt.Sprintf("%d clients, %s, %d errors", clients, duration, readErrs)},
		row{"GET latency p50 / p99 / p99.9", fmt.Sprintf("%s / %s / %s", ms(pct(0.50)), ms(pct(0.99)), ms(pct(0.999))), "with the API key check"},
	)
	_, hwm2, err := proc.Mem(cmd.Process.Pid)
	if err != nil {
		return err
	}
	hwm = max(hwm, hwm2)

	// Stop it gracefully; the kernel's peak of the whole run comes with it.
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		hwm = max(hwm, ru.Maxrss<<10)
	}
	rows = append(rows, row{"service peak RSS (VmHWM)", mib(hwm), "whole run: posting, dispatch, watching, reads"})

	fmt.Printf("bench/gateway (%s, %d CPUs shared by client and service)\n\n", time.Now().Format(time.DateOnly), numCPU())
	fmt.Printf("| %-30s | %-34s | %-46s |\n", "measure", "value", "note")
	fmt.Printf("|%s|%s|%s|\n", strings.Repeat("-", 32), strings.Repeat("-", 36), strings.Repeat("-", 48))
	for _, r := range rows {
		fmt.Printf("| %-30s | %-34s | %-46s |\n", r.what, r.value, r.note)
	}
	return nil
}

func storeName(db string) string {
	if strings.HasPrefix(db, "sqlite:") {
		return "SQLite"
	}
	return "Postgres"
}

// jobBody is a small valid job: 32×24 target and mask, 16×16 reference.
func jobBody() []byte {
	enc := func(w, h int, f func(x, y int) color.NRGBA) string {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.SetNRGBA(x, y, f(x, y))
			}
		}
		var b bytes.Buffer
		_ = png.Encode(&b, img)
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	body, _ := json.Marshal(map[string]any{
		"target":    enc(32, 24, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x * 8), uint8(y * 10), 40, 255} }),
		"reference": enc(16, 16, func(x, y int) color.NRGBA { return color.NRGBA{200, 30, uint8(x * 16), 255} }),
		"mask":      enc(32, 24, func(x, y int) color.NRGBA { return color.NRGBA{A: uint8(255 * (x / 16))} }),
		"prompt":    "oil paint",
		"seed":      "random",
	})
	return body
}

func post(hc *http.Client, base, key string, body []byte) (string, error) {
	req, _ := http.NewRequest("POST", base+"/v1/jobs", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/jobs: %d %s", resp.StatusCode, b)
	}
	var a struct{ ID string }
	if err := json.Unmarshal(b, &a); err != nil {
		return "", err
	}
	return a.ID, nil
}

var metricLine = regexp.MustCompile(`^([a-z_]+) ([0-9.e+]+)$`)

// metrics reads the unlabelled metrics of /metrics.
func metrics(hc *http.Client, base string) (map[string]float64, error) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out, sc.Err()
}

// readBench runs clients that GET random jobs for d and returns every
// latency, the number of answers and of errors.
func readBench(hc *http.Client, base, key string, ids []string, clients int, d time.Duration) ([]time.Duration, int, int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 42))
			local := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", base+"/v1/jobs/"+ids[rnd.IntN(len(ids))], nil)
				req.Header.Set("Authorization", "Bearer "+key)
				t := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, len(all), int(errs.Load())
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
