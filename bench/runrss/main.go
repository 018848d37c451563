// Command runrss measures the peak memory of `comfypod run --out DIR` on a job
// whose output carries one large file, inline as base64 and as an s3_url.
//
// It builds comfypod, serves a local stand-in for a RunPod endpoint and a
// bucket on 127.0.0.1, runs the binary against them, and reads the child's
// peak resident set size (getrusage's ru_maxrss, the kernel's VmHWM) when it
// exits. It checks that the file written is byte for byte the one served.
//
//	go run ./bench/runrss            # 200 MiB file
//	go run ./bench/runrss -size 50   # 50 MiB
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/comfypod/comfypod/bench/internal/proc"
)

func main() {
	sizeMiB := flag.Int("size", 200, "size of the output file in MiB")
	bin := flag.String("bin", "", "comfypod binary to measure (default: build ./cmd/comfypod)")
	flag.Parse()
	if err := run(*sizeMiB, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "runrss:", err)
		os.Exit(1)
	}
}

func run(sizeMiB int, bin string) error {
	tmp, err := os.MkdirTemp("", "runrss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		if bin, err = proc.Build(tmp); err != nil {
			return err
		}
	}
	size := int64(sizeMiB) << 20
	want, err := digest(size)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &endpoint{size: size, base: "http://" + ln.Addr().String()}}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	input := filepath.Join(tmp, "input.json")
	if err := os.WriteFile(input, []byte(`{"prompt":"dance"}`), 0o644); err != nil {
		return err
	}
	fmt.Printf("comfypod run --out DIR, one output file of %d MiB (%s)\n\n", sizeMiB, time.Now().Format(time.DateOnly))
	fmt.Printf("| %-16s | %10s | %13s | %9s | %-8s |\n", "output", "file", "peak RSS", "wall", "content")
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 18), strings.Repeat("-", 12), strings.Repeat("-", 15), strings.Repeat("-", 11), strings.Repeat("-", 10))
	for _, mode := range []string{"inline base64", "s3_url"} {
		out := filepath.Join(tmp, "out-"+strings.ReplaceAll(mode, " ", "-"))
		cmd := exec.Command(bin, "run", "--input", input, "--out", out, "--timeout", "10m")
		cmd.Env = append(os.Environ(),
			"RUNPOD_ENDPOINT_ID="+map[string]string{"inline base64": "inline", "s3_url": "s3"}[mode],
			"RUNPOD_API_KEY=rpa_bench",
			"RUNPOD_ENDPOINT_BASE_URL=http://"+ln.Addr().String()+"/v2",
			"TMPDIR="+tmp,
		)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", mode, err, stderr.String())
		}
		wall := time.Since(start)
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			return errors.New("no rusage on this system")
		}
		peak := ru.Maxrss << 10 // KiB on Linux
		got, n, err := fileDigest(filepath.Join(out, "dance_00001.mp4"))
		if err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		check := "ok"
		if n != size || got != want {
			check = "MISMATCH"
		}
		fmt.Printf("| %-16s | %6d MiB | %9.1f MiB | %8.1fs | %-8s |\n", mode, n>>20, float64(peak)/(1<<20), wall.Seconds(), check)
		if check != "ok" {
			return fmt.Errorf("%s: the file written differs from the one served", mode)
		}
		_ = os.RemoveAll(out)
	}
	fmt.Println("\ntarget: peak RSS <= 64 MiB")
	return nil
}

// content writes size deterministic bytes: an MP4 header, then a 1 MiB
// pseudo-random block repeated.
func content(w io.Writer, size int64) error {
	block := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range block {
		block[i] = byte(r.Uint32())
	}
	copy(block, "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
	for size > 0 {
		n := min(size, int64(len(block)))
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		size -= n
		block[0x20]++ // vary the blocks a little
	}
	return nil
}

func digest(size int64) (string, error) {
	h := sha256.New()
	if err := content(h, size); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func fileDigest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	var h hash.Hash = sha256.New()
	n, err := io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil)), n, err
}

// endpoint answers /run at once and /status-sync with a COMPLETED job whose
// output is the big file: inline (endpoint "inline") or as a URL to /bucket
// (endpoint "s3"). Bodies are generated while they are sent.
type endpoint struct {
	size int64
	base string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "bucket":
		if r.URL.Query().Get("X-Amz-Signature") == "" {
			http.Error(w, "unsigned", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", fmt.Sprint(e.size))
		_ = content(w, e.size)
	case len(parts) >= 3 && parts[0] == "v2" && parts[2] == "run":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"job-1","status":"IN_QUEUE"}`)
	case len(parts) >= 3 && parts[0] == "v2" && parts[2] == "status-sync":
		w.Header().Set("Content-Type", "application/json")
		bw := bufio.NewWriterSize(w, 64<<10)
		if parts[1] == "s3" {
			fmt.Fprintf(bw, `{"id":"job-1","status":"COMPLETED","output":{"videos":[{"filename":"dance_00001.mp4","type":"s3_url","data":"%s/bucket/dance_00001.mp4?X-Amz-Signature=abc"}]}}`, e.base)
		} else {
			_, _ = io.WriteString(bw, `{"id":"job-1","status":"COMPLETED","delayTime":10,"executionTime":20,"output":{"videos":[{"filename":"dance_00001.mp4","type":"base64","data":"`)
			enc := base64.NewEncoder(base64.StdEncoding, bw)
			_ = content(enc, e.size)
			_ = enc.Close()
			_, _ = io.WriteString(bw, `"}],"errors":[]}}`)
		}
		_ = bw.Flush()
	default:
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
	}
}
