// Command comfypod runs ComfyUI workflows as RunPod Serverless jobs and owns both
// ends of that trip: a RunPod client and CLI, a serverless worker that drives
// ComfyUI, package tooling, the Image Brush service, and local emulators of RunPod
// and ComfyUI. See the README for a tour.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/comfypod/comfypod/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
