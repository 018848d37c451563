// Package hub models RunPod Hub packages and checks them before a release:
// .runpod/hub.json (how the Hub lists and deploys the endpoint),
// .runpod/tests.json (the jobs it runs on every release), the Dockerfile,
// and the node ids a ComfyUI handler writes into its workflows.
//
// # Models
//
// Hub and Tests are the two files as Go values. ParseHub and ParseTests read
// them strictly; Encode writes them the way comfypod does, so a scaffold can
// produce files that pass the linter:
//
//	h := &hub.Hub{Title: "Image Brush", Type: "serverless", Category: "image",
//		Config: hub.HubConfig{RunsOn: "GPU", ContainerDiskInGb: 20, GPUCount: 1,
//			GPUIDs: "ADA_24,AMPERE_24", AllowedCUDAVersions: []string{"12.7", "12.6"}}}
//	data, err := h.Encode()
//
// # Linting
//
// A Linter checks a package folder and returns a Result: every Finding has
// a rule id (RP302) and name (cuda-mismatch), a severity, the file, line,
// column and JSON path (tests[2].timeout), and a message that says how to fix
// it. docs/lint.md is the rule catalogue.
//
//	l, err := hub.New(&hub.Config{Disable: []string{"boolean-values"}})
//	res, err := l.Lint(ctx, "packages/image-brush")
//	for _, f := range res.Findings { fmt.Println(f) }
//
// The JSON reader behind the linter keeps going past the mistakes found in
// real packages — trailing and missing commas, // comments, a JSON string's
// text pasted with literal \n escapes, stray zero-width spaces — reporting
// each at its exact position, so one typo does not hide every other finding.
// Files that do not parse cleanly are never rewritten.
//
// The checks that matter most are the ones the Hub gives no log for: a test
// GPU outside hub.json's pools or a pool id used as a GPU type, CUDA lists
// that differ between the two files or allow only versions the Hub's hosts do
// not have, Blackwell GPUs (RTX 5090, B200, RTX PRO 6000) that need CUDA 12.8,
// and test timeouts too short for the size of the model. The GPU pools, GPU
// type ids, CUDA versions and timeout table come from catalog.json (see
// Catalog), which is plain data with its sources, easy to update.
//
// # Output and fixes
//
// A Report writes findings as text for people (WriteText), as JSON with a
// stable schema (WriteJSON) or as SARIF 2.1.0 for GitHub code scanning
// (WriteSARIF). ApplyFixes applies the safe mechanical fixes — syncing
// tests.json's allowedCudaVersions to hub.json's, unwrapping {"input": …}
// test inputs, normalising gpuIds spacing — replacing only the affected JSON
// values.
package hub
