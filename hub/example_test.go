package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing/fstest"

	"github.com/comfypod/comfypod/hub"
)

// A package as the seed guide's first draft had it: the tests name a pool,
// and both files allow only CUDA 12.8.
func seedDraft() fstest.MapFS {
	return fstest.MapFS{
		".runpod/hub.json": {Data: []byte(`{
  "title": "Dance",
  "description": "Dance videos from one image.",
  "type": "serverless",
  "category": "video",
  "config": {
    "runsOn": "GPU",
    "containerDiskInGb": 50,
    "gpuCount": 1,
    "gpuIds": "ADA_24,ADA_32_PRO",
    "allowedCudaVersions": ["12.8"]
  }
}`)},
		".runpod/tests.json": {Data: []byte(`{
  "tests": [{"name": "dance", "input": {"prompt": "a person dancing"}, "timeout": 900000}],
  "config": {"gpuTypeId": "ADA_24", "gpuCount": 1, "allowedCudaVersions": ["12.8"]}
}`)},
		"Dockerfile": {Data: []byte("FROM --platform=linux/amd64 nvidia/cuda:12.8.0-runtime-ubuntu22.04\n")},
		"handler.py": {Data: []byte("import runpod\n")},
		"README.md":  {Data: []byte("# Dance\n")},
	}
}

// Lint a package and print what is wrong, one finding per line.
func ExampleLinter_LintFS() {
	l, err := hub.New(nil)
	if err != nil {
		panic(err)
	}
	res, err := l.LintFS(context.Background(), seedDraft(), "dance")
	if err != nil {
		panic(err)
	}
	for _, f := range res.Findings {
		fmt.Printf("%s:%d:%d %s %s %s\n", f.File, f.Line, f.Column, f.Rule, f.Severity, f.Path)
	}
	// Output:
	// .runpod/hub.json:11:28 RP305 error config.allowedCudaVersions
	// .runpod/tests.json:3:27 RP210 error config.gpuTypeId
	// .runpod/tests.json:3:75 RP305 error config.allowedCudaVersions
}

// Write the findings as the JSON document comfypod lint --format json prints.
func ExampleReport_WriteJSON() {
	l, _ := hub.New(&hub.Config{Disable: []string{"cuda-only-new"}})
	res, _ := l.LintFS(context.Background(), seedDraft(), "dance")
	var buf jsonBuffer
	_ = (&hub.Report{Results: []*hub.Result{res}}).WriteJSON(&buf)
	var doc struct {
		Packages []struct {
			Findings []struct {
				Rule, Name, Severity, File, Path string
				Line, Column                     int
			}
		}
		Summary struct{ Errors, Warnings int }
	}
	if err := json.Unmarshal(buf.b, &doc); err != nil {
		panic(err)
	}
	f := doc.Packages[0].Findings[0]
	fmt.Println(f.Rule, f.Name, f.Severity, f.File, f.Line, f.Column, f.Path)
	fmt.Println("errors:", doc.Summary.Errors)
	// Output:
	// RP210 tests-gpu-pool error .runpod/tests.json 3 27 config.gpuTypeId
	// errors: 1
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }

// Build hub.json and tests.json as Go values, the way a scaffold does, and
// write them.
func ExampleHub_Encode() {
	h := &hub.Hub{
		Title:       "Image Brush",
		Description: "Paints a reference image into a masked region.",
		Type:        "serverless",
		Category:    "image",
		Config: hub.HubConfig{
			RunsOn:              "GPU",
			ContainerDiskInGb:   20,
			GPUCount:            1,
			GPUIDs:              "ADA_24,AMPERE_24",
			AllowedCUDAVersions: []string{"12.7", "12.6"},
			Env:                 []hub.EnvEntry{{Key: "OUTPUT_FORMAT", Value: "png"}},
		},
	}
	data, err := h.Encode()
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(data)
	// Output:
	// {
	//   "title": "Image Brush",
	//   "description": "Paints a reference image into a masked region.",
	//   "type": "serverless",
	//   "category": "image",
	//   "config": {
	//     "runsOn": "GPU",
	//     "containerDiskInGb": 20,
	//     "gpuCount": 1,
	//     "gpuIds": "ADA_24,AMPERE_24",
	//     "allowedCudaVersions": [
	//       "12.7",
	//       "12.6"
	//     ],
	//     "env": [
	//       {
	//         "key": "OUTPUT_FORMAT",
	//         "value": "png"
	//       }
	//     ]
	//   }
	// }
}

// Look up GPUs and pools in the built-in catalog.
func ExampleCatalog() {
	cat := hub.DefaultCatalog()
	g, _ := cat.GPU("NVIDIA GeForce RTX 5090")
	fmt.Println(g.Arch, g.MinCUDA, cat.PoolsOf(g.ID))
	p, _ := cat.Pool("AMPERE_24")
	fmt.Println(p.Has("NVIDIA RTX A4500"), p.Disputed("NVIDIA RTX A4500"))
	fmt.Println(cat.MinTimeout(14))
	// Output:
	// Blackwell 12.8 [ADA_32_PRO]
	// true true
	// 900000
}
