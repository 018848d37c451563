package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/comfypod/comfypod/gateway"
	"github.com/comfypod/comfypod/gateway/blob/disk"
	"github.com/comfypod/comfypod/gateway/store/sqlite"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/runpod/runpodtest"
)

// pngOf encodes a w×h image whose pixels f gives.
func pngOf(w, h int, f func(x, y int) color.NRGBA) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, f(x, y))
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// The service in one process: a local RunPod control plane with a worker
// standing in for the image-brush endpoint, a SQLite store and a folder for
// outputs. A job goes in as a form and comes out as a PNG.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gateway-example")
	defer os.RemoveAll(dir)

	rp, _ := runpodtest.NewServer(nil)
	defer rp.Close()
	// A worker that returns the target as it is: enough to show the trip.
	_, _ = rp.StartWorker(ctx, func(_ context.Context, job *runpodtest.WorkerJob) (any, error) {
		var in struct {
			Images []struct{ Name, Image string }
		}
		_ = json.Unmarshal(job.Input, &in)
		return map[string]any{"images": []map[string]string{{"filename": "out.png", "type": "base64", "data": in.Images[0].Image}}}, nil
	}, nil)

	st, err := sqlite.Open(ctx, filepath.Join(dir, "comfypod.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	outputs, _ := disk.New(filepath.Join(dir, "outputs"))
	client, _ := runpod.New(rp.EndpointID(), runpod.WithAPIKey(rp.APIKey()), runpod.WithBaseURL(rp.BaseURL()))
	svc, err := gateway.New(&gateway.Config{
		Store: st, Outputs: outputs, RunPod: client, Package: packages.ImageBrushFS(), Open: true,
		PollMin: 50 * time.Millisecond, PollMax: 100 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	defer svc.Stop(ctx)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, data := range map[string][]byte{
		"target":    pngOf(32, 24, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x * 8), uint8(y * 10), 0, 255} }),
		"reference": pngOf(16, 16, func(x, y int) color.NRGBA { return color.NRGBA{0, 0, 255, 255} }),
		"mask":      pngOf(32, 24, func(x, y int) color.NRGBA { return color.NRGBA{A: uint8(255 * (x / 16))} }),
	} {
		w, _ := mw.CreateFormFile(name, name+".png")
		_, _ = w.Write(data)
	}
	_ = mw.WriteField("prompt", "oil paint")
	_ = mw.Close()
	resp, err := http.Post(srv.URL+"/v1/jobs", mw.FormDataContentType(), &body)
	if err != nil {
		log.Fatal(err)
	}
	var accepted gateway.Accepted
	_ = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, accepted.Status)

	// Follow the job's events until it ends.
	resp, err = http.Get(srv.URL + "/v1/jobs/" + accepted.ID + "/events")
	if err != nil {
		log.Fatal(err)
	}
	var job gateway.Job
	events := new(bytes.Buffer)
	_, _ = events.ReadFrom(resp.Body) // the stream ends with the job
	resp.Body.Close()
	for _, line := range strings.Split(events.String(), "\n") {
		if data, ok := strings.CutPrefix(line, "data: "); ok && data != "{}" {
			_ = json.Unmarshal([]byte(data), &job)
		}
	}
	fmt.Println(job.Status, len(job.Outputs), job.Outputs[0].ContentType)
	// Output:
	// 202 queued
	// succeeded 1 image/png
}

// Keys are made once and shown once; the store keeps their hash.
func ExampleNewKey() {
	secret, k, err := gateway.NewKey("web frontend", time.Now())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(secret, gateway.KeyPrefix), k.Name, k.Hash == gateway.HashKey(secret), strings.Contains(k.Hash, secret))
	// Output: true web frontend true false
}
