// Package runpod is a client for RunPod Serverless endpoints: submit jobs,
// wait for them, stream their chunks, cancel, retry and purge them, and save
// the files they produce.
//
// # A job, start to finish
//
// A Client talks to one endpoint:
//
//	c, err := runpod.New(endpointID, runpod.WithAPIKey(apiKey))
//	job, err := c.Run(ctx, &runpod.Request{Input: input})
//	st, err := job.Wait(ctx, nil)        // the terminal status
//	defer st.Close()
//	files, err := st.WriteOutputs(ctx, "out")
//
// RunSync does the same with /runsync, and keeps waiting on the job when
// RunPod's own wait ends first. Status, Stream, Cancel, Retry, PurgeQueue and
// Health map one to one onto RunPod's operations; Client.Job makes a handle on
// a job submitted elsewhere.
//
// # Waiting
//
// Wait long-polls /status-sync, so it learns that a job ended within moments
// rather than at the next poll; when an endpoint has no such route (404/405)
// it polls /status, fast at first and backing off. Wait reports state
// changes, progress outputs and cold starts through WaitOptions.OnEvent: a job
// that sits in the queue longer than ColdStartAfter (30 s) while /health shows
// no worker up means a worker is starting and loading its model.
//
// Wait gives up after WaitOptions.Timeout (6 minutes by default) or when its
// context is done, and then cancels the job at RunPod so nobody pays for
// abandoned work. errors.Is(err, ErrTimeout) tells the client-side timeout
// from everything else.
//
// # Errors
//
// Every HTTP error goes through one function and comes back typed: an
// *APIError (status, message, the start of the body) matching ErrUnauthorized,
// ErrEndpointNotFound, ErrJobNotFound or ErrPayloadTooLarge, or a
// *RateLimitError with RunPod's Retry-After. A job that ends FAILED,
// CANCELLED or TIMED_OUT returns its status together with a *JobError, which
// decodes the error the worker sent (including the Python worker's JSON in a
// string: exception type, message, traceback, worker id).
//
// Calls are retried on 429 and, when safe to repeat, on 5xx and lost
// connections, with exponential backoff and jitter that honours Retry-After
// (see RetryPolicy). A submission is never sent twice: when the answer to
// /run or /runsync is lost after RunPod may have taken the job, the error
// matches ErrMaybeSubmitted instead.
//
// # Outputs
//
// Status.Outputs finds the files in a job's output in every shape workers
// use (worker-comfyui's images/videos lists of base64 or s3_url entries,
// older "images", "image", "message" keys, bare base64 strings, data: URIs),
// and Status.WriteOutputs streams them to disk. Responses larger than
// WithMemoryLimit are spooled to a temporary file and decoded from there, so a
// 200 MB video costs a few megabytes of memory, not three copies of itself.
//
// EncodeImage and EncodeImageFile prepare input images: base64, with or
// without a data: URI prefix, optionally downscaled.
//
// # Sharing an endpoint
//
// A Limiter bounds the jobs in flight across any number of clients, and a
// KeepWarm watches an endpoint's health and can submit a warm-up job when no
// worker is up.
//
// Secrets stay out of logs and errors: the API key is only ever sent in the
// Authorization header, and presigned output URLs are shown without their
// query.
package runpod
