package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/url"
	"testing"
)

// The benchmarks time one job the way a client runs it, through the HTTP and
// websocket API on loopback: upload the inputs (new bytes every job, so no
// node is served from the cache), post the prompt, wait for `executing`
// null, read the history and download the output through /view. Allocations
// are those of the whole process, client included.
//
// CPU ComfyUI 0.3.64 takes a median of about 0.26 s end to end for the
// invert job at 1024×1024.

// benchImage returns a w×h photo-like PNG (smooth gradients with texture);
// variant changes every pixel. alpha adds a soft transparent disc.
func benchImage(tb testing.TB, w, h, variant int, alpha bool) []byte {
	tb.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			t := float64(variant) * 0.7
			img.Pix[i] = uint8(127 + 120*math.Sin(6*fx+t))
			img.Pix[i+1] = uint8(127 + 120*math.Cos(5*fy-t))
			img.Pix[i+2] = uint8((x*3 + y*5 + variant*17 + (x*y)%7) & 0xff)
			img.Pix[i+3] = 255
			if alpha {
				d := math.Hypot(fx-0.5, fy-0.5)
				img.Pix[i+3] = uint8(math.Min(255, math.Max(0, (d-0.25)*1020)))
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

type benchInput struct {
	name     string
	variants [2][]byte
}

func runBenchJobs(b *testing.B, workflow string, inputs []benchInput, classes ...string) {
	e := newTestEnv(b, &Config{DisableMetadata: true})
	requireClasses(b, e, classes...)
	ws := e.dial("bench")
	ws.next()
	job := func(i int) {
		for _, in := range inputs {
			if s, body := e.upload("/upload/image", in.name, in.variants[i%2], map[string]string{"overwrite": "true"}); s != 200 {
				b.Fatalf("upload: %d %s", s, body)
			}
		}
		s, data := e.postJSON("/prompt", `{"prompt": `+workflow+`, "client_id": "bench"}`)
		if s != 200 {
			b.Fatalf("POST /prompt = %d %s", s, data)
		}
		var q struct {
			PromptID string `json:"prompt_id"`
		}
		if err := json.Unmarshal(data, &q); err != nil {
			b.Fatal(err)
		}
		msgs := ws.untilDone(q.PromptID)
		for _, m := range msgs {
			if m.Type == "execution_error" || m.Type == "execution_cached" && len(m.data()["nodes"].([]any)) > 0 {
				b.Fatalf("job %d: %s", i, m.Raw)
			}
		}
		var hist map[string]struct {
			Outputs map[string]map[string][]struct{ Filename, Subfolder, Type string } `json:"outputs"`
		}
		e.getJSON("/history/"+q.PromptID, &hist)
		n := 0
		for _, out := range hist[q.PromptID].Outputs {
			for _, f := range out["images"] {
				v := url.Values{"filename": {f.Filename}, "subfolder": {f.Subfolder}, "type": {f.Type}}
				if s, _, body := e.do("GET", "/view?"+v.Encode(), nil, ""); s != 200 || len(body) == 0 {
					b.Fatalf("view %s = %d", f.Filename, s)
				}
				n++
			}
		}
		if n != 1 {
			b.Fatalf("job %d produced %d images", i, n)
		}
	}
	job(0) // warm up: connections, file system
	b.ReportAllocs()
	b.ResetTimer()
	i := 1
	for b.Loop() {
		job(i)
		i++
	}
}

// BenchmarkInvert1024 is LoadImage → ImageInvert → SaveImage at 1024×1024.
func BenchmarkInvert1024(b *testing.B) {
	in := benchInput{name: "bench_in.png", variants: [2][]byte{benchImage(b, 1024, 1024, 0, false), benchImage(b, 1024, 1024, 1, false)}}
	runBenchJobs(b, `{"1": {"class_type": "LoadImage", "inputs": {"image": "bench_in.png"}},
		"2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
		"3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench/invert"}}}`,
		[]benchInput{in}, "LoadImage", "ImageInvert", "SaveImage")
}

// BenchmarkBrush1024 is the image-brush job at 1024×1024: three LoadImage
// (target, reference, mask with alpha), ImageScale of the reference,
// ImageBlend, FeatherMask of the mask, ImageCompositeMasked and SaveImage.
func BenchmarkBrush1024(b *testing.B) {
	inputs := []benchInput{
		{name: "bench_target.png", variants: [2][]byte{benchImage(b, 1024, 1024, 0, false), benchImage(b, 1024, 1024, 1, false)}},
		{name: "bench_ref.png", variants: [2][]byte{benchImage(b, 900, 760, 2, false), benchImage(b, 900, 760, 3, false)}},
		{name: "bench_mask.png", variants: [2][]byte{benchImage(b, 1024, 1024, 4, true), benchImage(b, 1024, 1024, 5, true)}},
	}
	runBenchJobs(b, `{"422": {"class_type": "LoadImage", "inputs": {"image": "bench_target.png"}},
		"590": {"class_type": "LoadImage", "inputs": {"image": "bench_ref.png"}},
		"698": {"class_type": "LoadImage", "inputs": {"image": "bench_mask.png"}},
		"4": {"class_type": "ImageScale", "inputs": {"image": ["590", 0], "upscale_method": "bilinear", "width": 1024, "height": 1024, "crop": "center"}},
		"5": {"class_type": "ImageBlend", "inputs": {"image1": ["422", 0], "image2": ["4", 0], "blend_factor": 0.8, "blend_mode": "normal"}},
		"6": {"class_type": "FeatherMask", "inputs": {"mask": ["698", 1], "left": 32, "top": 32, "right": 32, "bottom": 32}},
		"7": {"class_type": "ImageCompositeMasked", "inputs": {"destination": ["422", 0], "source": ["5", 0], "x": 0, "y": 0, "resize_source": false, "mask": ["6", 0]}},
		"9": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "brush/out"}}}`,
		inputs, "LoadImage", "ImageScale", "ImageBlend", "FeatherMask", "ImageCompositeMasked", "SaveImage")
}

// BenchmarkValidate measures POST /prompt validation alone (no execution) of
// a 200-node chain.
func BenchmarkValidate(b *testing.B) {
	tc := newTestClasses(b)
	s, err := New(&Config{Dir: b.TempDir(), Classes: tc.classes})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Stop(b.Context()) })
	var buf bytes.Buffer
	buf.WriteString(`{"prompt": {"0": {"class_type": "TestConst", "inputs": {"value": 1}}`)
	for i := 1; i < 200; i++ {
		fmt.Fprintf(&buf, `, "%d": {"class_type": "TestAdd", "inputs": {"a": ["%d", 0], "b": "2"}}`, i, i-1)
	}
	buf.WriteString(`, "out": {"class_type": "TestOut", "inputs": {"value": ["199", 0]}}}}`)
	body := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		rec := serve(s, "POST", "/prompt", "application/json", body)
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body.Bytes())
		}
		s.q.wipe()
	}
}
