// Package comfy is comfypod's side of ComfyUI: the workflow model, the package
// manifest that names a workflow's inputs, and a client for a ComfyUI server.
// It knows nothing of RunPod.
//
// # Workflows
//
// ParseWorkflow reads the API format ComfyUI's "Export (API)" writes (node id →
// {class_type, inputs, _meta}), from a JSON object or from a JSON string that
// holds one, as clients that send JSON.stringify(workflow) do. A Workflow keeps
// key order, unknown fields and the exact text of every number, so a 20-digit
// seed or a 1.0 survives a round trip unchanged:
//
//	wf, err := comfy.ParseWorkflow(data)
//	err = wf.Set("689", "seed", 42)            // fails if node 689 or its input "seed" is gone
//	prefixes, err := wf.UniquePrefixes(jobID)  // "brush/out" → "brush/<jobID>_out"
//	wf.RandomizeSeeds(rnd, info)               // avoid ComfyUI's cache on resubmits
//	body, err := json.Marshal(wf)
//
// Workflow.Validate checks links and cycles, and with a server's /object_info
// (ParseObjectInfo) also classes, link types, required inputs, ranges and
// combo options, reporting every problem at once. A UI export (nodes/links) is
// refused by ParseWorkflow with ErrUIFormat; ConvertUI turns it into the API
// format when /object_info is at hand, the way the ComfyUI frontend does.
//
// # Manifests
//
// A Manifest (ParseManifest; format in docs/manifest.md) names the inputs a
// caller may set — seed, prompt, strength, target image, driving video —
// with their types, limits and defaults, and binds each to node inputs of
// each workflow the package ships, with the class each node must have. A
// file param (image, mask, video, audio, file) must bind to a loader of its
// kind of file: a video param to VHS_LoadVideo or LoadVideo (or LoadImage,
// for an animated GIF), an audio param to LoadAudio. Manifest.Check verifies
// the bindings against a workflow; Manifest.Apply checks the bindings and the
// values, collecting every problem, and only then writes the values:
//
//	m, err := comfy.ParseManifest(manifestJSON)
//	applied, err := m.Apply(wf, "default", map[string]any{"seed": "random", "prompt": "a cat"},
//		comfy.ApplyOptions{Rand: rnd})
//	// err: param `strength`: 12 is above the max 10
//
// # Client
//
// Client talks to a ComfyUI server (or comfy/engine) over HTTP and its
// websocket. Client.Run is the call a worker needs: it opens the websocket,
// queues the workflow with its own client and prompt ids, reports progress,
// survives a dropped websocket by reconnecting and polling /history, and
// returns the history entry with every output file (images, VHS videos, audio,
// text). Client.View streams an output file without buffering it.
//
//	c, err := comfy.NewClient("http://127.0.0.1:8188")
//	err = c.WaitReady(ctx, comfy.ReadyOptions{Alive: processAlive})
//	up, err := c.UploadImage(ctx, comfy.Upload{Name: "input-1.png", Data: r, Overwrite: true})
//	wf.RenameFile(nil, "input-1.png", up.Ref())
//	res, err := c.Run(ctx, wf, comfy.RunOptions{OnEvent: func(e comfy.Event) { … }})
//	for _, f := range res.Files() {
//		d, err := c.View(ctx, f.FileRef) // an io.ReadCloser over the body
//		…
//	}
//
// Lower-level calls are there too: QueuePrompt, Connect (the raw event
// stream), History, Queue, Cancel (delete or interrupt one prompt),
// Interrupt, Free, ObjectInfo, SystemStats, Features, UploadMask.
//
// Server errors come back typed: *PromptError for a refused prompt (400, with
// per-node errors), *ExecutionError for a node that failed while running,
// *APIError for any other unexpected status.
package comfy
