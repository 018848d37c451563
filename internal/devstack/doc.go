// Package devstack runs the whole RunPod-and-ComfyUI trip on one machine, in
// one process: the local RunPod control plane (runpodtest), a number of
// serverless workers running the ComfyUI job handler (worker), and either
// comfypod's engine or a ComfyUI the caller points at. It is what
// `comfypod dev` serves and what the gateway embeds for its local mode; the
// worker's tests drive it the way production runs.
//
//	st, err := devstack.Start(ctx, &devstack.Config{Workers: 2})
//	if err != nil { … }
//	defer st.Close(context.Background())
//	c, _ := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
//
// Start brings the parts up in order — engine (or the given ComfyUI),
// control plane, the handler's start-up (readiness, the package's bindings,
// warm-up), then the workers — and stops whatever it started when a step
// fails. Close stops the workers first, letting running jobs finish until its
// context ends, then the control plane and the engine, and removes the
// engine's temporary folder.
//
// Config.ColdStart makes the stack behave like an endpoint scaled to zero:
// the workers start when the first job arrives and initialize for that long
// before they take it, so clients see the queue wait and /health of a cold
// start.
//
// Config.Worker is the handler's configuration (manifest, limits, S3,
// warm-up); ComfyURL, ComfyDir and Logger are filled in by the stack.
// Config.EngineClasses adds node classes to the engine (test doubles, or
// stand-ins for custom nodes), Config.Control and Config.Serverless adjust
// the control plane's and the workers' configurations.
package devstack
