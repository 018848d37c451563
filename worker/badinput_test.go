package worker_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/worker"
)

// imageServer serves the URL inputs of the bad-input cases.
func imageServer(t testing.TB) *httptest.Server {
	t.Helper()
	ok := pngBytes(t, 8, 8, 11)
	big := make([]byte, 300<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok.png", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(ok) })
	mux.HandleFunc("/big.png", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) })
	bigVideo := worker.TestMP4("isom", 1000, make([]byte, 350<<10), "vide")
	mux.HandleFunc("/big.mp4", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bigVideo) })
	mux.HandleFunc("/slow.png", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/to-private", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/ok.png", http.StatusFound)
	})
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// pngChunk appends a PNG chunk with its CRC.
func pngChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// bombPNG is a well-formed 12000×12000 PNG header with a few bytes of data:
// decoding it would allocate 432 MB.
func bombPNG() []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, 12000)
	ihdr = binary.BigEndian.AppendUint32(ihdr, 12000)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	b = pngChunk(b, "IHDR", ihdr)
	b = pngChunk(b, "IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	return pngChunk(b, "IEND", nil)
}

// Every kind of bad input fails the job with a message that says what is
// wrong, and the same worker serves a good job right after.
func TestWorkerBadInputs(t *testing.T) {
	t.Parallel()
	imgs := imageServer(t)
	cfg := &devstack.Config{}
	brushManifest(t, &cfg.Worker)
	cfg.Worker.Limits.MaxImageBytes = 256 << 10
	cfg.Worker.Limits.MaxVideoBytes = 300 << 10
	cfg.Worker.Limits.MaxInputBytes = 400 << 10
	cfg.Worker.MaxResultBytes = 1_000_000
	cfg.Worker.URLs = worker.URLPolicy{AllowHTTP: true, Allow: []string{strings.TrimPrefix(imgs.URL, "http://")}, MaxBytes: 200 << 10, Timeout: 300e6}
	st := startStack(t, cfg, newTestNodes())

	png := b64(pngBytes(t, 16, 16, 2))
	img := func(name, data string) []any { return []any{map[string]any{"name": name, "image": data}} }
	invert := invertWorkflow("in.png")
	withNode := func(id string, node map[string]any) map[string]any {
		wf := map[string]any{}
		for k, v := range invert {
			wf[k] = v
		}
		wf[id] = node
		return wf
	}
	through := func(class string, extra map[string]any) map[string]any {
		inputs := map[string]any{"image": []any{"1", 0}}
		for k, v := range extra {
			inputs[k] = v
		}
		return map[string]any{
			"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": "in.png"}},
			"2": map[string]any{"class_type": class, "inputs": inputs},
			"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "x"}},
		}
	}
	video := func(n int) map[string]any {
		return map[string]any{
			"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
			"2": map[string]any{"class_type": "VHS_VideoCombine", "inputs": map[string]any{"images": []any{"1", 0}, "frame_rate": 8.0, "filename_prefix": "v", "bytes": n}},
		}
	}
	notLoadImage := map[string]any{
		"422": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"9":   map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"422", 0}, "filename_prefix": "x"}},
	}
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	good := pngBytes(t, 16, 16, 2)
	bigPNG := pngBytes(t, 300, 300, 3) // about 100 KB: one channel is noise
	mp4 := worker.TestMP4("isom", 1000, []byte("frames"), "vide")
	file := func(name, data string) []any { return []any{map[string]any{"name": name, "file": data}} }
	loadVideo := func(name string) map[string]any {
		return map[string]any{
			"7": map[string]any{"class_type": "VHS_LoadVideo", "inputs": map[string]any{"video": name, "force_rate": 0, "frame_load_cap": 4}},
			"8": map[string]any{"class_type": "VHS_VideoCombine", "inputs": map[string]any{"images": []any{"7", 0}, "frame_rate": 8.0, "filename_prefix": "v", "bytes": 64}},
		}
	}

	cases := []struct {
		name  string
		input any
		s3    *runpod.S3Config
		want  []string
	}{
		{"input is not an object", []any{1, 2}, nil, []string{"invalid job input: the input is an array"}},
		{"no workflow", map[string]any{"images": img("in.png", png)}, nil, nil}, // the package's default runs: see "missing required params"
		{"missing required params", map[string]any{}, nil, []string{"3 problems", "params.target: is required (image: The image to paint on", "params.mask: is required"}},
		{"workflow not JSON", map[string]any{"workflow": "{not json"}, nil, []string{"workflow:"}},
		{"workflow of the wrong type", map[string]any{"workflow": 42}, nil, []string{"workflow: want an API-format workflow object", "got a number"}},
		{"UI-format workflow", map[string]any{"workflow": map[string]any{"last_node_id": 3, "nodes": []any{map[string]any{"id": 1, "type": "LoadImage"}}, "links": []any{}}}, nil,
			[]string{"UI workflow", "Export (API)"}},
		{"unknown class", map[string]any{"workflow": withNode("4", map[string]any{"class_type": "NoSuchNode", "inputs": map[string]any{}}), "images": img("in.png", png)}, nil,
			[]string{"node 4 (NoSuchNode)", "not installed"}},
		{"value out of range", map[string]any{"workflow": through("ImageScale", map[string]any{"upscale_method": "bilinear", "width": 99999, "height": 8, "crop": "disabled"}), "images": img("in.png", png)}, nil,
			[]string{"invalid workflow", "node 2 (ImageScale)", "width", "16384"}},
		{"validation error from ComfyUI", map[string]any{"workflow": through("TestValidated", map[string]any{"mode": "bad"}), "images": img("in.png", png)}, nil,
			[]string{"ComfyUI refused the workflow", "node 2 (TestValidated)", `mode "bad" cannot be used`}},
		{"image not base64", map[string]any{"workflow": invert, "images": img("in.png", "@@@not base64@@@")}, nil, []string{"images[0].image", "not valid base64", `unexpected '@' at offset 0`}},
		{"base64 with spaces", map[string]any{"workflow": invert, "images": img("in.png", strings.ReplaceAll(png, "+", " ")+" a+b")}, nil, []string{"images[0].image", "not valid base64"}},
		{"not an image", map[string]any{"workflow": invert, "images": img("in.png", b64([]byte("<html><body>Access denied</body></html>")))}, nil, []string{"images[0].image", "not an image", "HTML"}},
		{"truncated PNG", map[string]any{"workflow": invert, "images": img("in.png", b64(good[:len(good)/2]))}, nil, []string{"images[0].image", "PNG is cut off"}},
		{"corrupt PNG", map[string]any{"workflow": invert, "images": img("in.png", b64(flipByte(good, len(good)/2)))}, nil, []string{"images[0].image", "checksum", "wrong"}},
		{"decompression bomb", map[string]any{"workflow": invert, "images": img("in.png", b64(bombPNG()))}, nil, []string{"images[0].image", "12000x12000", "megapixel limit"}},
		{"too many bytes in all", map[string]any{"workflow": invert, "images": []any{
			map[string]any{"name": "in.png", "image": b64(bigPNG)}, map[string]any{"name": "b.png", "image": b64(bigPNG)},
			map[string]any{"name": "c.png", "image": b64(bigPNG)}, map[string]any{"name": "d.png", "image": b64(bigPNG)},
			map[string]any{"name": "e.png", "image": b64(bigPNG)}}}, nil, []string{"images: the job's images come to more than the 409.6 KB limit per job"}},
		{"oversize image", map[string]any{"workflow": invert, "images": img("in.png", b64(random))}, nil, []string{"images[0].image", "limit per image"}},
		{"../ name", map[string]any{"workflow": invert, "images": img("../in.png", png)}, nil, []string{`images[0].name: "../in.png" holds a folder`}},
		{"absolute name", map[string]any{"workflow": invert, "images": img("/etc/passwd", png)}, nil, []string{`images[0].name: "/etc/passwd" holds a folder`}},
		{"odd character in name", map[string]any{"workflow": invert, "images": img("in*.png", png)}, nil, []string{"images[0].name", `holds '*'`}},
		{"missing name", map[string]any{"workflow": invert, "images": []any{map[string]any{"image": png}}}, nil, []string{"images[0].name: missing"}},
		{"duplicate names", map[string]any{"workflow": invert, "images": append(img("in.png", png), img("in.png", png)...)}, nil, []string{"images[1].name", "also the name of images[0]"}},
		{"missing image for a LoadImage", map[string]any{"workflow": invert, "images": img("other.png", png)}, nil, []string{"node 1 (LoadImage)", `loads "in.png"`, `"other.png"`}},
		{"unknown param", map[string]any{"params": map[string]any{"targte": png}}, nil, []string{"unknown param `targte`", "did you mean `target`"}},
		{"wrong param type", map[string]any{"params": map[string]any{"steps": "many"}}, nil, []string{"params.steps", `"many"`}},
		{"out-of-range param", map[string]any{"params": map[string]any{"strength": 12}}, nil, []string{"params.strength", "above the max 10"}},
		{"image param naming no image", map[string]any{"params": map[string]any{"target": "missing.png"}}, nil, []string{"params.target", `"missing.png" names no image`}},
		{"binding mismatch", map[string]any{"workflow": notLoadImage, "workflow_name": "preview", "params": map[string]any{"strength": 1}}, nil,
			[]string{"node 422", "expected LoadImage"}},
		{"unknown workflow name", map[string]any{"workflow_name": "previe"}, nil, []string{"workflow_name", "default, preview"}},
		{"SSRF to 127.0.0.1", map[string]any{"workflow": invert, "images": img("in.png", "http://127.0.0.1:1/x.png")}, nil, []string{"images[0].image", "127.0.0.1, a loopback address"}},
		{"SSRF to cloud metadata", map[string]any{"workflow": invert, "images": img("in.png", "http://169.254.169.254/latest/meta-data/")}, nil, []string{"169.254.169.254, the cloud metadata address"}},
		{"redirect to a private address", map[string]any{"workflow": invert, "images": img("in.png", imgs.URL+"/to-private")}, nil, []string{"127.0.0.1, a loopback address"}},
		{"redirect to cloud metadata", map[string]any{"workflow": invert, "images": img("in.png", imgs.URL+"/to-metadata")}, nil, []string{"cloud metadata"}},
		{"URL too large", map[string]any{"workflow": invert, "images": img("in.png", imgs.URL+"/big.png")}, nil, []string{"images[0].image", "over the 204.8 KB limit"}},
		{"URL timeout", map[string]any{"workflow": invert, "images": img("in.png", imgs.URL+"/slow.png?sig=secret")}, nil, []string{"timed out after 300ms"}},
		{"404 URL", map[string]any{"workflow": invert, "images": img("in.png", imgs.URL+"/gone.png")}, nil, []string{"404 Not Found"}},
		{"video of no known format", map[string]any{"workflow": invert, "images": img("in.png", png), "files": file("clip.mp4", b64(bytes.Repeat([]byte{0xfa, 0x01, 0x9c}, 1000)))}, nil,
			[]string{"files[0].file", "not an image, a video or an audio file ComfyUI can load"}},
		{"video over the video limit", map[string]any{"workflow": invert, "images": img("in.png", png), "files": file("clip.mp4", b64(worker.TestMP4("isom", 1000, make([]byte, 320<<10), "vide")))}, nil,
			[]string{"files[0].file", "over the 307.2 KB limit per file"}},
		{"video URL over the video limit", map[string]any{"workflow": invert, "images": img("in.png", png), "files": file("clip.mp4", imgs.URL+"/big.mp4")}, nil,
			[]string{"files[0].file", "over the 307.2 KB limit per video or audio file"}},
		{"video URL to cloud metadata", map[string]any{"workflow": loadVideo("clip.mp4"), "files": file("clip.mp4", "http://169.254.169.254/clip.mp4")}, nil,
			[]string{"files[0].file", "169.254.169.254, the cloud metadata address"}},
		{"video loaded by LoadImage", map[string]any{"workflow": invertWorkflow("in.mp4"), "images": img("in.mp4", b64(mp4))}, nil,
			[]string{"node 1 (LoadImage)", `loads "in.mp4", which is an MP4 video, but LoadImage reads an image`}},
		{"image loaded by VHS_LoadVideo", map[string]any{"workflow": loadVideo("pose.mp4"), "images": img("pose.mp4", png)}, nil,
			[]string{"node 7 (VHS_LoadVideo)", `loads "pose.mp4", which is a PNG image, but VHS_LoadVideo reads a video`}},
		{"video the workflow loads is not sent", map[string]any{"workflow": loadVideo("pose.mp4"), "images": img("in.png", png)}, nil,
			[]string{"node 7 (VHS_LoadVideo)", `loads "pose.mp4", which is not among the job's images and files`}},
		{"video as an image param", map[string]any{"params": map[string]any{"target": b64(mp4), "reference": png, "mask": png}}, nil,
			[]string{"params.target: this is an MP4 video; param `target` takes an image (PNG, JPEG, WebP, GIF, BMP or TIFF)"}},
		{"video URL as an image param", map[string]any{"params": map[string]any{"target": imgs.URL + "/big.mp4", "reference": png, "mask": png}}, nil,
			[]string{"params.target", "over the 204.8 KB limit per image"}},
		{"runtime node error", map[string]any{"workflow": through("TestFail", nil), "images": img("in.png", png)}, nil,
			[]string{"the workflow failed in ComfyUI: node 2 (TestFail): ValueError: the test node failed on purpose"}},
		{"output too large without S3", map[string]any{"workflow": video(900_000)}, nil, []string{"over the 1.0 MB RunPod accepts", "BUCKET_ENDPOINT_URL"}},
		{"bad output format", map[string]any{"workflow": invert, "images": img("in.png", png), "output": map[string]any{"format": "gif"}}, nil, []string{"output.format", `"gif"`, "png, jpeg or webp"}},
		{"bad output quality", map[string]any{"workflow": invert, "images": img("in.png", png), "output": map[string]any{"format": "jpeg", "quality": 101}}, nil, []string{"output.quality"}},
		{"S3 asked without a bucket", map[string]any{"workflow": invert, "images": img("in.png", png), "output": map[string]any{"upload": "s3"}}, nil, []string{"output.upload", "no bucket"}},
		{"bad s3Config", map[string]any{"workflow": invert, "images": img("in.png", png)}, &runpod.S3Config{AccessID: "a", AccessSecret: "s3cr3t-value", EndpointURL: "https://storage.example.com"}, []string{"s3Config", "set bucketName"}},
		{"s3Config to a private address", map[string]any{"workflow": invert, "images": img("in.png", png)}, &runpod.S3Config{AccessID: "a", AccessSecret: "s3cr3t-value", BucketName: "bucket1", EndpointURL: "http://127.0.0.1:1"}, []string{"could not be uploaded to S3: s3Config:", "refused: the endpoint is at 127.0.0.1, a loopback address"}},
	}
	var count int
	for _, tc := range cases {
		if tc.want == nil {
			continue
		}
		count++
		t.Run(tc.name, func(t *testing.T) {
			_, je := runJob(t, st, &runpod.Request{Input: tc.input, S3Config: tc.s3})
			if je == nil {
				t.Fatal("the job completed")
			}
			for _, w := range tc.want {
				if !strings.Contains(je.Message, w) {
					t.Errorf("error %q\ndoes not say %q", je.Message, w)
				}
			}
			for _, secret := range []string{"s3cr3t-value", "sig=secret"} {
				if strings.Contains(je.Message, secret) || bytes.Contains(je.Details, []byte(secret)) {
					t.Errorf("the error shows a secret: %s", je.Message)
				}
			}
			if testing.Verbose() {
				t.Logf("error: %s\ndetails: %s", je.Message, je.Details)
			}
			assertServesNext(t, st)
		})
	}
	if count < 25 {
		t.Errorf("only %d kinds of bad input", count)
	}
	if files := engineFiles(t, st); len(files) != 0 {
		t.Errorf("files left on the ComfyUI side: %q", files)
	}
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}
