// Package worker is comfypod's ComfyUI job handler: the serverless.Handler
// that turns a RunPod job into a ComfyUI run and its outputs into the job's
// result. It replaces worker-comfyui's handler.py and accepts the same jobs,
// so that worker's clients work unchanged; it is the only package that joins
// serverless (the RunPod side) and comfy (the ComfyUI side).
//
// # Running it
//
//	h, err := worker.New(&worker.Config{ComfyURL: "http://127.0.0.1:8188", ComfyDir: "/comfyui", PIDFile: "/tmp/comfyui.pid"})
//	if err != nil { … }
//	cfg, _ := serverless.ConfigFromEnv(os.Getenv)
//	cfg.FitnessChecks = append(cfg.FitnessChecks, h.FitnessCheck()) // wait for ComfyUI, check the package, warm up
//	err = serverless.Start(ctx, h.Handle, cfg)
//
// comfypod worker does this (and more: signals, the local modes, worker-comfyui's
// environment variables); comfypod dev and package devstack run it against
// the built-in engine.
//
// # A job
//
// The input (DecodeInput) is worker-comfyui's plus what it lacked:
//
//	{"workflow": {…API format…} | "<the same as a JSON string>",
//	 "images":   [{"name": "input-1.png", "image": "<base64 | data:image/png;base64,… | https://…>"}],
//	 "files":    [{"name": "pose.mp4", "file": "<base64 | data:video/mp4;base64,… | https://…>"}],
//	 "params":   {"seed": 42, "prompt": "…", "target": "<an images or files name, base64, data: URI or URL>"},
//	 "output":   {"format": "png|jpeg|webp", "upload": "s3|base64", "include_temp": false},
//	 "comfy_org_api_key": "…"}
//
// Before anything is sent to ComfyUI, every part is checked and every
// problem reported at once: the JSON (read without copying the image
// strings, so megabytes of base64 cost milliseconds), file names (no
// folders, no odd characters, no duplicates), input files (base64; the
// format by the first bytes, never the name: images, videos — MP4/MOV,
// WebM/MKV, GIF — and audio; truncation and checksums; an image's size read
// from its header so decompression bombs are refused unread, a video's or
// audio file's length and tracks from its index; limits, with a larger one
// for videos), URL inputs (fetched under an SSRF guard that checks the
// address actually dialed, redirects included), params against the package
// manifest and its node bindings (a video param takes a video), that every
// file a loader node names (LoadImage, VHS_LoadVideo, LoadAudio, …) comes
// with the job and is of a kind it reads, and the workflow against the
// server's node schemas (unknown classes, links, ranges).
//
// Then the files are uploaded (ComfyUI's /upload/image stores any file in
// input/) under names unique to the job, the
// workflow's filename_prefix inputs made unique too, and the prompt queued
// and followed over ComfyUI's websocket (reconnecting, or polling /history
// when it drops). Progress goes to RunPod at most once per
// Config.ProgressInterval, from the end of the first interval on (a quick
// job posts none). Config.JobTimeout, and RunPod's job-stop (the
// job's context ending), interrupt ComfyUI.
//
// # The result
//
// Every output family comes back, which worker-comfyui drops: images
// (animated ones marked), VHS videos and GIFs, audio, other files and text,
// as Output:
//
//	{"images": [{"filename": "ComfyUI_00001_.png", "type": "base64", "data": "…", "format": "image/png", "node": "9"}],
//	 "videos": [{"filename": "dance_00001.mp4", "type": "s3_url", "data": "https://…"}],
//	 "params": {"seed": 123}, "errors": ["warnings…"]}
//
// Files stream from ComfyUI's /view into base64 (holding only the encoded
// text) or into S3 (worker-comfyui's BUCKET_* settings as Config.S3, or the
// job's s3Config) as presigned or public URLs. Inline outputs that would
// exceed RunPod's 20 MB result limit fail the job early with a message that
// says to configure S3.
//
// A job that cannot run fails with an *Error: a headline and its problems,
// each naming the input field or the node, class and input it concerns,
// posted as the job's error with {"details": [problems…]} as its output.
// ComfyUI's own refusals and node failures are translated the same way,
// never passed on as raw lists. Secrets (the S3 secret, a job's
// comfy_org_api_key, presigned URLs) are kept out of every message.
//
// After each job its uploaded inputs, outputs and history entry are
// deleted (Config.ComfyDir, when ComfyUI runs on the same machine), so a
// long-lived worker's disk does not fill, and the handler is ready for the
// next job whatever happened to this one.
//
// # Where it differs from worker-comfyui
//
//   - Outputs of every family are returned, not only "images"; temporary
//     previews are left out unless asked for, as there.
//   - Inputs may be URLs, manifest params, videos and audio; everything is
//     validated first.
//   - REFRESH_WORKER works (comfypod worker passes it to the runtime).
//   - A loader node (LoadImage, VHS_LoadVideo, LoadAudio, …) of a file the
//     job did not send is an error unless Config.AllowServerFiles is set.
//   - Images are checked for structure and size, not decoded, unless
//     Limits.DecodeImages is set.
package worker
