// Package engine is a ComfyUI-compatible server written in Go. It serves
// ComfyUI 0.3.64's HTTP and websocket API and executes the model-free core
// image and mask nodes (LoadImage, SaveImage, ImageScale, ImageBlend,
// GrowMask, …), so that ComfyUI clients — worker-comfyui, this module's comfy
// client and worker, ComfyUI's own script examples — run unchanged without a
// GPU, Python or models. It is the fake twin of a real ComfyUI in tests, and a
// fast executor for image-only workflows in production.
//
// # Running a server
//
// A Server is an http.Handler. New prepares the base folder (input/,
// output/, temp/, emptying temp/ as ComfyUI does at start); Start launches
// the executor goroutine that runs queued prompts one at a time; Stop lets
// the running prompt finish (or interrupts it when its context ends) and
// closes every websocket:
//
//	s, err := engine.New(&engine.Config{Dir: "/data/comfyui", Logger: logger})
//	if err != nil { … }
//	if err := s.Start(ctx); err != nil { … }
//	defer s.Stop(context.Background())
//	http.ListenAndServe("127.0.0.1:8188", s)
//
// The comfypod engine command does exactly this.
//
// # What is served
//
// Every route is registered at /X and at /api/X, as ComfyUI does: /ws,
// POST and GET /prompt, GET and POST /queue, GET /history[/{id}] (max_items,
// offset), POST /history, GET /view (annotated names, type, subfolder,
// preview, channel), POST /upload/image and /upload/mask, GET
// /object_info[/{class}], GET /system_stats, POST /interrupt, POST /free,
// GET /features, GET /models[/{folder}], GET /embeddings, and GET / (a short
// HTML page). Answers use ComfyUI's status codes, content types, JSON shapes,
// key order and number spellings (1.0 stays 1.0).
//
// Prompts are validated exactly like ComfyUI's validate_prompt: the same error
// types, messages and details, Python's int()/float()/bool() coercion (which
// the history shows), legacy combo lists checked and newer COMBO inputs not,
// partial acceptance when some outputs are valid. A workflow that needs a
// class the engine does not have — any model node such as KSampler or
// CLIPTextEncode — is refused with ComfyUI's invalid_prompt error.
//
// Execution follows ComfyUI's PromptExecutor: the same websocket messages in
// the same order (status, execution_start, execution_cached, progress_state,
// executing, executed, progress, execution_success, execution_error with
// traceback and current_inputs, execution_interrupted, executing null after
// the history is written), the same routing (to the prompt's client_id; some
// messages to everybody), and CLASSIC caching: a node runs again only when
// its class, IS_CHANGED value, constants or ancestors change, only the latest
// prompt's nodes stay cached, and POST /free {"free_memory": true} empties
// the cache.
//
// # Node classes
//
// The core classes live in engine/internal/corenodes. Config.Classes adds
// more, described by package node (an /object_info entry plus an Execute
// function): test doubles that fail, block or report progress, or stand-ins
// for custom nodes.
//
// # Where it differs from ComfyUI
//
// The conformance suite (testdata/conformance/comfyui) pins the behaviour
// against captures of a real server. The known differences are deliberate:
//
//   - Independent branches run in prompt order; ComfyUI's order depends on
//     Python's per-process string hashing.
//   - A request body that is not a JSON object, or has a malformed member,
//     gets a 400 with a ComfyUI-shaped error; ComfyUI fails with a 500.
//     Likewise for a bad max_items, an unknown upload type, or an upload name
//     that is not valid UTF-8.
//   - A dependency cycle is reported on the node that closes it (ComfyUI
//     recurses until RecursionError and reports no node error). Chains deeper
//     than 1000 nodes fail validation with RecursionError, as Python would.
//   - preview=webp on /view (the default preview format) is a lossless WebP;
//     ComfyUI's is lossy at the requested quality.
//   - When a client reconnects with the same clientId, closing the replaced
//     socket does not unregister the new one (in ComfyUI it does).
//   - Cache signatures are digests of the ancestry; two identical but
//     distinct upstream nodes are treated like one shared node, which
//     computes the same values.
//   - There are no binary preview frames: no core class samples.
//   - /system_stats reports the Go runtime and a "cpu" device.
package engine
