// Package runpodtest is a local RunPod Serverless control plane, in the style
// of net/http/httptest and Pub/Sub's pstest: a real HTTP server on loopback
// that speaks both faces of a queue-based endpoint, keeps every job in memory
// under one mutex, and lets tests inspect it, drive it and break it on
// purpose. Nothing needs a GPU or an API key.
//
// # Starting a server
//
//	srv, err := runpodtest.NewServer(nil) // 127.0.0.1:0, endpoint "local", a random key
//	if err != nil { ... }
//	defer srv.Close()
//
//	base := srv.BaseURL()      // what a client uses as RUNPOD_ENDPOINT_BASE_URL
//	key := srv.APIKey()        // Authorization: Bearer <key> (or the bare key)
//	ep := srv.EndpointID()     // "local"
//
// New builds the same server without a listener, for mounting in an
// http.Server of your own (the Server is an http.Handler). Close returns only
// when every goroutine the server started has returned.
//
// # The client face
//
// Under /v2/{endpoint_id}/ the server answers run, runsync[?wait=ms],
// status/{id} (GET and POST), status-sync/{id}?wait=ms, stream/{id}[?wait=ms]
// (GET and POST), cancel/{id}, retry/{id}, purge-queue and health, with the
// request bodies, answer shapes, limits, status codes and {"error": "…"}
// bodies RunPod documents: ids shaped <uuid>-u1 and sync-<uuid>-u1, statuses
// IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED and TIMED_OUT,
// policy.executionTimeout and policy.ttl, 30 min (/run) and 1 min (/runsync)
// retention after a job finishes, 10 MB and 20 MB payload limits, and
// webhooks retried twice 10 s apart. An unknown endpoint id answers 404, a
// missing or wrong key 401.
//
// # The worker face
//
// Workers use the protocol runpod-python 1.12 speaks: GET job-take/{worker}
// (a long-poll, 204 when nothing comes), GET job-take-batch/{worker}?batch_size=N,
// POST job-done/{worker}/{job}?isStream=… with {output}, {error},
// {output,error}, stopPod or a progress update {"status":"IN_PROGRESS",…}
// (in whatever content type; the SDK labels JSON as form data), POST
// job-stream/{worker}/{job}, GET ping/{worker}?job_id=a,b and the job-stop
// long-poll. Server.WorkerEnv hands out the environment RunPod sets in a
// worker container (RUNPOD_WEBHOOK_GET_JOB and friends, with the $ID and
// $RUNPOD_POD_ID placeholders and a ?gpu= query as in production), so a real
// worker runtime runs against the server unchanged. A worker that sends no
// request for Config.PingTimeout loses its jobs: each goes back to the queue
// once (retries+1) and fails the second time.
//
// StartWorker runs a small in-process worker over that same HTTP protocol for
// tests that need a job actually worked.
//
// # Inspecting and driving
//
// Jobs, Job, Workers, Requests, Webhooks and Health read the state (a job's
// History lists every status it went through); Enqueue, StartJob,
// ProgressJob, StreamJob, CompleteJob, FailJob and ExpireJob move a job
// without any worker, so a client test decides exactly when a job finishes (a
// worker holding the job is told to stop through job-stop). Await and
// WaitStatus block until the state is as wanted, and AwaitWaiting until a
// long-poll (or a latency fault) holds a request open, which is when a test
// may advance a fake clock past its wait. The same is served as JSON under
// /_emulator/ (with the API key) for tests running out of process:
//
//	GET    /_emulator/jobs                 live jobs
//	POST   /_emulator/jobs                 queue a job: a /run body plus "endpoint" and "sync"
//	GET    /_emulator/jobs/{id}            one job, recently deleted ones included
//	POST   /_emulator/jobs/{id}/start      IN_QUEUE → IN_PROGRESS
//	POST   /_emulator/jobs/{id}/progress   {"output": …}
//	POST   /_emulator/jobs/{id}/stream     {"output": …}
//	POST   /_emulator/jobs/{id}/complete   {"output": …}
//	POST   /_emulator/jobs/{id}/fail       {"error": "…"}
//	POST   /_emulator/jobs/{id}/expire
//	GET    /_emulator/workers              workers
//	GET    /_emulator/requests             request counters per operation
//	GET    /_emulator/webhooks             webhook delivery attempts
//	GET    /_emulator/faults               installed faults with counters
//	POST   /_emulator/faults               install a Fault (JSON, durations in ms)
//	DELETE /_emulator/faults[/{id}]        remove all faults, or one
//
// # Time and faults
//
// Every delay runs on Config.Clock. With a *clockwork.FakeClock (github.com/jonboulle/clockwork) a test moves time by hand
// and ttl, retention, execution timeouts, long-poll waits, cold starts,
// webhook retries and worker liveness follow deterministically. Config.Rand
// seeds ids and probabilistic faults.
//
// AddFault installs rules, matched by operation (run, runsync, status,
// status-sync, stream, cancel, retry, purge, health, take, done, stream-post,
// ping, stop), that add latency, answer 429 with Retry-After or a 5xx, drop the
// connection, truncate the answer, do the work and then drop the answer (for
// /run: the job exists but the client never learns its id), or expire the
// job (404). Config.ColdStart keeps each new worker initializing, and unserved,
// for a while, and /health shows it so.
//
// # Where it differs from RunPod
//
// The emulator follows shared notes on RunPod's documentation, SDKs and
// issue reports. Where those are silent it chooses, and says so here:
//
//   - Everything lives in memory in one process; there are no regions,
//     scaling, GPUs or billing. Workers are whatever connects; lowPriority is
//     recorded and forwarded only. Rate limits apply only as injected faults.
//   - /health job counters completed, failed (FAILED and TIMED_OUT) and
//     retried count since the server started; RunPod's window is not
//     documented. Worker counters: initializing is within its cold start, idle
//     and running are warm workers without and with jobs, ready is idle plus
//     running, unhealthy is a worker that went silent holding jobs or reported
//     a failed fitness check, throttled is always 0.
//   - A ttl that runs out deletes the job in any state (then 404) without a
//     webhook; jobs never go TIMED_OUT while still queued. /purge-queue
//     deletes the queued jobs (404 afterwards). Cancelling a finished job
//     answers its status unchanged.
//   - Policy values outside RunPod's documented ranges (executionTimeout
//     5 s–7 d, ttl 10 s–7 d) are refused with 400 rather than clamped; use a
//     fake clock for short timeouts. The ?ttl= query form is not read.
//   - status-sync and stream accept wait from 0 to 300000 ms; status-sync
//     waits 90 s when none is given, stream answers at once.
//   - A result or stream chunk from a worker that no longer holds the job
//     (unknown, expired, cancelled, timed out, requeued, or held by another
//     worker) answers 404 and is discarded. RunPod has been seen to show
//     COMPLETED with no output after a failed result post
//     (runpod-python#309) and to let a late progress update win a race
//     (runpod-python#250); the emulator reproduces neither: such a job stays
//     IN_PROGRESS until its execution timeout.
//   - Stream chunks are not split at 1 MB; job-done and job-stream bodies are
//     capped at Config.MaxResultBytes (20 MB), answered 400 above it. Every
//     limit counts MB as MiB.
//   - The error bodies of 401, 404, 405 and 429 are {"error": "…"} with a
//     message saying what to fix; RunPod documents none of them verbatim.
//   - A webhook counts as delivered on 200 only. Deliveries still pending at
//     Close are abandoned.
//   - Liveness counts any worker request, not only pings, and a request held
//     open keeps a worker alive. A worker reappearing after it was lost, or
//     refreshed by stopPod, goes through its cold start again.
//   - The ping answer is {"status":"pong"}, as runpod-python's local
//     simulator answers; job_id lists are recorded, not acted on.
//   - job-stop lists a job once, for the worker that held it, when it is
//     cancelled, timed out, deleted, finished by a test, or requeued because
//     the worker went silent; at most 1024 ids wait for a worker that never
//     asks.
//   - job_in_progress=1 on a take counts the worker as running in /health;
//     the take is held open either way.
//   - /openai, /requests and /batch are not served (404).
package runpodtest
