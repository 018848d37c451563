// Package serverless is a RunPod Serverless worker runtime in Go: what
// runpod.serverless.start is in runpod-python 1.12, speaking the same worker
// protocol to RunPod's control plane. It knows nothing of what the jobs do;
// a handler function does the work.
//
// # Running a worker
//
// On RunPod the configuration comes from the environment the platform sets
// (RUNPOD_WEBHOOK_GET_JOB and friends); the command reads it and starts the
// worker, which blocks until its context ends:
//
//	cfg, err := serverless.ConfigFromEnv(os.Getenv)
//	if err != nil { ... }
//	cfg.Logger = cfg.NewLogger(os.Stdout) // JSON lines on RunPod, text elsewhere
//	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
//	err = serverless.Start(ctx, handler, cfg)
//
// Start takes jobs with the job-take long-poll (90 s), a batch at a time when
// more than one slot is free, runs them, and posts each result to job-done.
// Beside the take loop run the heartbeat (a ping every RUNPOD_PING_INTERVAL
// listing the jobs in flight, on its own goroutine and HTTP client, so a busy
// handler or a full connection pool cannot delay it) and the job-stop
// long-poll, through which RunPod cancels a job's context when its client
// cancels it or it times out.
//
// When the context ends (SIGTERM), the worker stops taking jobs and lets the
// running ones finish for Config.ShutdownGrace while the heartbeat keeps them
// alive. A job-take already under way gets Config.TakeGrace to be answered,
// and a job it brings is run with the others: RunPod may hand a job out just
// as the worker stops, and a take cancelled then would leave that job
// IN_PROGRESS until RunPod missed the worker's pings. Then it cancels the rest, with context.Cause giving
// ErrWorkerShutdown, and reports them FAILED ("worker shut down before the
// job finished") so no client waits for a timeout. The Worker type gives the
// same with an explicit lifecycle: New, Start, Stop (soft, escalating to hard
// when its context ends) and StopAndCancel (hard).
//
// # Handlers and results
//
// A Handler returns the job's result or an error:
//
//	func handler(ctx context.Context, job *serverless.Job) (any, error) {
//		var in Input
//		if err := json.Unmarshal(job.Input, &in); err != nil {
//			return nil, serverless.Fail("input: %v", err) // FAILED, plain message
//		}
//		_ = job.Progress(ctx, map[string]int{"percent": 50}) // IN_PROGRESS update
//		return Output{...}, nil                              // COMPLETED
//	}
//
// The job-done body follows runpod-python exactly:
//
//	return value                          posted body
//	"x", 42, []T, a struct, …             {"output": <value>}
//	map/struct with a truthy "error"      {"output": <rest>, "error": "<error>"}  (FAILED)
//	map/struct with refresh_worker: true  {"output": <rest>, "stopPod": true}
//	an empty object                       {}
//	Result{Output, Error, RefreshWorker}  exactly that, nothing lifted
//	error *JobError (Fail)                {"error": "<message>"}[, "output": …]
//	any other error, or a panic           {"error": "{\"error_type\": …, \"error_traceback\": …}"}
//
// The last form is runpod-python's report of an exception: "error" is a
// string holding JSON with error_type, error_message, error_traceback (the
// stack of a panic, the error chain otherwise), hostname, worker_id and
// runpod_version. A panic fails the job and the worker goes on serving.
// Config.RefreshWorker adds stopPod to every result and makes the worker
// exit once drained after its first job.
//
// A result over Config.MaxResultBytes (20 MB, the size at which RunPod's
// job-done answers 400) is not posted: the job fails with an error that says
// the output is too large and to upload it to S3 (worker-comfyui's BUCKET_*
// variables, or the job's s3Config), so the client never sees COMPLETED with
// no output. A 400 from job-done to any result is answered with a small
// FAILED body quoting RunPod's message, so the job does not stay IN_PROGRESS.
// Result posts that fail are retried per Config.ResultRetry (a bounded
// policy); a 404 means RunPod no longer knows the job (its TTL passed) and
// the result is let go.
//
// A job's input is a slice of the job-take answer, found with a structural
// scan rather than decoded, and outputs are encoded straight into the
// job-done body; an output that implements JSONAppender writes itself there
// (the ComfyUI worker's does), so megabytes of base64 are copied once.
//
// Progress updates go to job-done as {"status": "IN_PROGRESS", "output": v},
// one at a time, and never after the final result: the result waits for an
// update under way, and later updates return ErrJobFinished unposted.
//
// A StreamHandler (see StartStream) emits chunks, each posted at once to
// job-stream as {"output": chunk}; the final job-done post has isStream=true
// and {"output": []}, or every chunk with Config.ReturnAggregateStream.
//
// # Concurrency
//
// Config.Concurrency (RUNPOD_MAX_CONCURRENCY) jobs run at once, one goroutine
// each. Config.ConcurrencyModifier, when set, is asked before every take for
// the new target given the current one; lowering it never interrupts running
// jobs, it only delays the next take.
//
// # Logging
//
// The worker logs to Config.Logger. NewLogHandler writes runpod-python's
// lines: on RunPod (RUNPOD_ENDPOINT_ID set) one JSON object per line,
// {"requestId": <job id|null>, "message": …, "level": …}, which the console
// files under the request; elsewhere "LEVEL  | job id | message". Messages
// over 4096 characters are cut in the middle. The API key, S3 secrets of jobs
// and presigned-URL signatures are removed from every log line and error the
// worker writes or posts.
//
// # Local modes
//
// Without RUNPOD_WEBHOOK_GET_JOB the config is local (Config.Local): Start
// runs one job from Config.TestInput or test_input.json and returns
// ErrJobFailed if it failed, as --test_input does; RunLocal does the same and
// returns the result. LocalAPI serves RunPod's /run, /runsync, /status and
// /stream routes in-process, like --rp_serve_api, with several jobs at once.
//
// # Where it differs from runpod-python
//
//   - A handler error posts the exception JSON for both plain and streaming
//     handlers (runpod-python posts a plain "handler: …" string for
//     generators), and *JobError gives a plain message on purpose.
//   - A non-string truthy "error" in a result map is posted as its JSON text,
//     since RunPod's error is a string.
//   - A job missing its input but carrying an id is reported FAILED on
//     RunPod, not only logged, so its client does not wait forever.
//   - A job-take answer is parsed as JSON whatever its Content-Type.
//   - The default log level is INFO (runpod-python's code says DEBUG, its
//     documentation INFO).
//   - runpod_version is reported as 1.12.0, the protocol level implemented
//     (Config.RunpodVersion); the User-Agent names this runtime.
//   - The local modes run stream handlers too, and the local API runs jobs
//     concurrently (runpod-python#335).
//   - Fitness checks are a hook (Config.FitnessChecks); the built-in memory,
//     disk, network and GPU checks are not included.
package serverless
