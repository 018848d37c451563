// Package gateway is the Image Brush service: an http.Handler that takes
// image-to-image jobs (a target, a style reference and a mask), runs a
// ComfyUI package's workflow on a RunPod Serverless endpoint, and hands back
// the painted image. `comfypod serve` runs it; docs/service.md is the
// operator's guide.
//
// # The trip of one job
//
//	POST /v1/jobs ──▶ checked, images turned upright and normalised, params applied
//	    ──▶ images kept in the output store ──▶ store (durable) ──▶ 202
//	dispatcher ──claim (≤ Concurrency over all replicas)──▶ submitting ──/run──▶ RunPod
//	watcher ──status polls (bounded pool, paced) and webhooks──▶ cold start, progress, end
//	end ──outputs copied to the output store──▶ GET /v1/jobs/{id}/outputs/{n}
//	Retention after the end ──▶ the job and its files deleted
//
// A client that lost the answer to its POST retries it with the same
// Idempotency-Key and gets the job the first one created. The images a job
// was submitted with, as its workers got them, stay beside its outputs
// (GET /v1/jobs/{id}/inputs/{name}), so a client can show before and after.
//
// The gateway applies the manifest's params to the package workflow itself
// and sends worker-comfyui's input, {"workflow": …, "images": [{name,
// image}]}, so the same service drives comfypod's worker and a stock
// worker-comfyui endpoint.
//
// # Never lost, never twice
//
// A job is in the store before its 202. It is marked submitting before /run
// is sent and never sent again after that: when RunPod's answer is lost the
// job waits for its webhook, and fails as "submission_unknown" only when its
// fate cannot be known. RunPod's job id is stored as soon as it is known,
// and a replica that restarts (or another one, when a replica dies and its
// leases expire) takes over watching every job in flight.
//
// # Pieces
//
//	svc, err := gateway.New(&gateway.Config{
//		Store:   st,      // gateway/store/sqlite or gateway/store/postgres
//		Outputs: outputs, // gateway/blob/disk or gateway/blob/s3
//		RunPod:  client,  // runpod.New(endpointID, runpod.WithAPIKey(key))
//		Package: pkgFS,   // comfypod.json and its workflows
//	})
//	err = svc.Start(ctx)
//	http.ListenAndServe(addr, svc)
//	err = svc.Stop(ctx)
//
// Callers authenticate with API keys (NewKey makes one; only its hash is
// stored). The API is described by OpenAPI, served at /openapi.json.
package gateway
