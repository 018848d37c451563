package comfy_test

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

// Workflow parsing, editing and encoding happen once per job in the worker;
// these benchmarks put numbers on that per-job cost, next to what
// encoding/json costs for the same document as a plain map (which loses key
// order and number forms).

func benchWorkflow(b *testing.B) []byte {
	b.Helper()
	data, err := os.ReadFile("testdata/image-brush/workflow_api.json")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkParseWorkflow(b *testing.B) {
	data := benchWorkflow(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := comfy.ParseWorkflow(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseWorkflowAsMap(b *testing.B) {
	data := benchWorkflow(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalWorkflow(b *testing.B) {
	wf, err := comfy.ParseWorkflow(benchWorkflow(b))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := wf.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalWorkflowAsMap(b *testing.B) {
	var m map[string]any
	if err := json.Unmarshal(benchWorkflow(b), &m); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareJob is the worker's per-job workflow work: clone the
// template, apply params through the manifest (checks included), make the
// prefixes unique, encode.
func BenchmarkPrepareJob(b *testing.B) {
	m := brushManifest(b)
	tmpl := brushWorkflows(b)["default"]
	info := conformanceInfo(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	params := map[string]any{"target": "input-1.png", "reference": "input-2.png", "mask": "mask.png",
		"prompt": "oil paint, thick strokes", "seed": "random", "strength": json.Number("0.8")}
	for b.Loop() {
		wf := tmpl.Clone()
		if _, err := m.Apply(wf, "default", params, comfy.ApplyOptions{Rand: rnd, Info: info}); err != nil {
			b.Fatal(err)
		}
		if _, err := wf.UniquePrefixes("job-0123456789"); err != nil {
			b.Fatal(err)
		}
		if _, err := wf.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateWithObjectInfo(b *testing.B) {
	wf := brushWorkflows(b)["default"]
	info := conformanceInfo(b)
	for b.Loop() {
		if err := wf.Validate(info); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConvertUI(b *testing.B) {
	data, err := os.ReadFile("testdata/ui/mixed.json")
	if err != nil {
		b.Fatal(err)
	}
	info := conformanceInfo(b)
	for b.Loop() {
		if _, err := comfy.ConvertUI(data, info); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEvent decodes every websocket message of the brush run (45
// messages, progress_state growing to 12 nodes) per iteration.
func BenchmarkDecodeEvent(b *testing.B) {
	f, err := os.Open(conformanceFile(b, "cases", "brush_422_590_698", "expected", "ws.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
		total += len(sc.Bytes())
	}
	b.SetBytes(int64(total))
	for b.Loop() {
		for _, l := range lines {
			if _, err := comfy.DecodeEvent(l); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkDecodeHistory(b *testing.B) {
	data, err := os.ReadFile(conformanceFile(b, "cases", "blend_modes_037", "expected", "history.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		hs, err := comfy.DecodeHistory(data)
		if err != nil || len(hs[0].Files()) != 6 {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunAgainstReplay is one whole Run (websocket, POST /prompt, 45
// messages, /history) against the replayed brush capture on loopback.
func BenchmarkRunAgainstReplay(b *testing.B) {
	wf := caseWorkflow(b, "brush_422_590_698")
	for b.Loop() {
		b.StopTimer()
		r := newReplay(b, "brush_422_590_698")
		c := newTestClient(b, r.srv.URL)
		b.StartTimer()
		res, err := c.Run(testCtx(b), wf, comfy.RunOptions{})
		if err != nil || !strings.HasPrefix(res.Files()[0].Filename, "out_") {
			b.Fatal(err)
		}
		b.StopTimer()
		r.srv.Close()
		b.StartTimer()
	}
}
