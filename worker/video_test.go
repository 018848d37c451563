package worker_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/worker"
)

// mediaServer serves video URL inputs.
func mediaServer(t testing.TB, files map[string][]byte) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for name, data := range files {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(data) })
	}
	mux.HandleFunc("/to-metadata", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/clip.mp4", http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// videoStack starts a stack serving the motion test package, with URL
// inputs allowed from ts: images up to 1 KB, videos up to 64 KB.
func videoStack(t testing.TB, ts *httptest.Server, tn *testNodes) *devstack.Stack {
	t.Helper()
	cfg := &devstack.Config{}
	motionManifest(t, &cfg.Worker)
	cfg.Worker.URLs = worker.URLPolicy{AllowHTTP: true, Allow: []string{strings.TrimPrefix(ts.URL, "http://")}, MaxBytes: 1000, MaxVideoBytes: 64000, Timeout: 10e9}
	return startStack(t, cfg, tn)
}

// A driving video goes in as a param — base64, a URL larger than an image
// may be, the name of a files entry — or as worker-comfyui clients send
// it, in images: each time the loader node reads, from ComfyUI's input
// folder, the very bytes sent, under a name unique to the job, and the job
// returns the video the workflow wrote in videos[]. Nothing is left on the
// ComfyUI side.
func TestWorkerVideoInputs(t *testing.T) {
	t.Parallel()
	clip := worker.TestMP4("isom", 1500, bytes.Repeat([]byte("frame"), 1600), "vide", "soun") // 8 KB: over the image limit
	webm := worker.TestWebM("webm", 2000, 1)
	ts := mediaServer(t, map[string][]byte{"clip.mp4": clip})
	tn := newTestNodes()
	st := videoStack(t, ts, tn)

	for _, tc := range []struct {
		name     string
		input    map[string]any
		sent     []byte
		wantName string // the end of the name the loader read
	}{
		{"base64 param", map[string]any{"params": map[string]any{"motion_video": b64(clip), "fps": 24}}, clip, "_motion_video.mp4"},
		{"data URI param", map[string]any{"params": map[string]any{"motion_video": "data:video/webm;base64," + b64(webm)}}, webm, "_motion_video.webm"},
		{"URL param", map[string]any{"params": map[string]any{"motion_video": ts.URL + "/clip.mp4"}}, clip, "_motion_video.mp4"},
		{"files entry named by the param", map[string]any{
			"files":  []any{map[string]any{"name": "dance.mp4", "file": ts.URL + "/clip.mp4"}},
			"params": map[string]any{"motion_video": "dance.mp4"}}, clip, "_dance.mp4"},
		{"animated GIF param", map[string]any{"params": map[string]any{"motion_video": b64(worker.TestGIF(t, 6, 8))}}, worker.TestGIF(t, 6, 8), "_motion_video.gif"},
		{"worker-comfyui style: the workflow and the video in images", map[string]any{
			"workflow": map[string]any{
				"7": map[string]any{"class_type": "VHS_LoadVideo", "inputs": map[string]any{"video": "pose.webm", "force_rate": 0, "frame_load_cap": 5}},
				"8": map[string]any{"class_type": "VHS_VideoCombine", "inputs": map[string]any{"images": []any{"7", 0}, "frame_rate": 8.0, "filename_prefix": "out/pose", "bytes": 3000}},
			},
			"images": []any{map[string]any{"name": "pose.webm", "image": b64(webm)}}}, webm, "_pose.webm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mustComplete(t, st, tc.input)
			got := tn.nextVideo(t)
			if !bytes.Equal(got.data, tc.sent) {
				t.Errorf("the loader read %d bytes, not the %d sent", len(got.data), len(tc.sent))
			}
			if !strings.HasSuffix(got.name, tc.wantName) || got.name == strings.TrimPrefix(tc.wantName, "_") {
				t.Errorf("the loader read %q, want a name unique to the job ending %q", got.name, tc.wantName)
			}
			if len(out.Videos) != 1 || len(out.Images) != 0 {
				t.Fatalf("videos %d images %d, want 1 and 0", len(out.Videos), len(out.Images))
			}
			v := out.Videos[0]
			data, err := base64.StdEncoding.DecodeString(v.Data)
			if err != nil || len(data) != 3000 || v.Format != "video/mp4" || v.Type != "base64" {
				t.Errorf("video %+v: %d bytes, %v", fileMeta(v), len(data), err)
			}
			if _, echoed := out.Params["motion_video"]; echoed {
				t.Errorf("the video param is echoed: %s", out.Params["motion_video"])
			}
			if files := engineFiles(t, st); len(files) != 0 {
				t.Errorf("files left on the ComfyUI side: %q", files)
			}
		})
	}
}

// Every kind of bad video input fails the job with a message that says
// what is wrong, before ComfyUI runs anything.
func TestWorkerVideoBadInputs(t *testing.T) {
	t.Parallel()
	clip := worker.TestMP4("isom", 1500, nil, "vide")
	long := worker.TestMP4("isom", 12000, nil, "vide")
	large := worker.TestMP4("isom", 1500, bytes.Repeat([]byte{1}, 210_000), "vide")
	huge := worker.TestMP4("isom", 1500, bytes.Repeat([]byte{1}, 70_000), "vide")
	ts := mediaServer(t, map[string][]byte{"huge.mp4": huge, "clip.mp4": clip})
	tn := newTestNodes()
	st := videoStack(t, ts, tn)
	png := pngBytes(t, 8, 8, 1)
	param := func(v string) map[string]any { return map[string]any{"params": map[string]any{"motion_video": v}} }
	loadImage := map[string]any{
		"1": map[string]any{"class_type": "LoadImage", "inputs": map[string]any{"image": "clip.mp4"}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "x"}},
	}
	for _, tc := range []struct {
		name  string
		input map[string]any
		want  []string
	}{
		{"an image as the video", param(b64(png)),
			[]string{"params.motion_video: this is a PNG image; param `motion_video` takes a video (MP4, MOV, WebM, MKV or an animated GIF)"}},
		{"audio as the video", param(b64(worker.TestWAV(8000, 800))), []string{"params.motion_video: this is a WAV audio file; param `motion_video` takes a video"}},
		{"an MP4 with sound only", param(b64(worker.TestMP4("isom", 1000, nil, "soun"))), []string{"this is an MP4 video with sound only; param `motion_video` takes a video"}},
		{"wrong magic", param(b64(bytes.Repeat([]byte{0xfa, 0x01}, 32))), []string{"params.motion_video: not a video ComfyUI can load", "starts with bytes fa 01"}},
		{"an error page", param(b64([]byte("<html>expired</html>"))), []string{"not a video: it is HTML or XML text (an error page?)"}},
		{"cut off", param(b64(clip[:len(clip)-4])), []string{"params.motion_video: the MP4 is cut off"}},
		{"too long for the param", param(b64(long)), []string{"params.motion_video: the file is 12.0 s long, above the max 10 s; trim it"}},
		{"too large for the param", param(b64(large)), []string{"params.motion_video: the file is 210.", "above the max 200.0 KB"}},
		{"URL over the video limit", param(ts.URL + "/huge.mp4"), []string{"params.motion_video: fetching", "over the 64.0 KB limit per video or audio file"}},
		{"SSRF to loopback", param("http://127.0.0.1:1/clip.mp4"), []string{"params.motion_video", "127.0.0.1, a loopback address"}},
		{"redirect to cloud metadata", param(ts.URL + "/to-metadata"), []string{"params.motion_video", "cloud metadata"}},
		{"a data: URI of another type", param("data:text/html;base64,PGh0bWw+"), []string{`a data: URI of type "text/html"`}},
		{"a name of no file", param("dance.mp4"), []string{`"dance.mp4" names no file of this job`}},
		{"a video for LoadImage", map[string]any{"workflow": loadImage, "files": []any{map[string]any{"name": "clip.mp4", "file": b64(clip)}}},
			[]string{"node 1 (LoadImage)", `loads "clip.mp4", which is an MP4 video, but LoadImage reads an image`, "VHS_LoadVideo", `"field":"files[0].file"`}},
		{"a files entry without its file", map[string]any{"files": []any{map[string]any{"name": "clip.mp4", "data": b64(clip)}}, "params": map[string]any{"motion_video": "clip.mp4"}},
			[]string{"files[0].file: missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, je := runJob(t, st, &runpod.Request{Input: tc.input})
			if je == nil {
				t.Fatal("the job completed")
			}
			for _, w := range tc.want {
				if !strings.Contains(je.Message, w) && !bytes.Contains(je.Details, []byte(w)) {
					t.Errorf("error %q\n(details %s)\ndoes not say %q", je.Message, je.Details, w)
				}
			}
			if testing.Verbose() {
				t.Logf("error: %s", je.Message)
			}
		})
	}
	select {
	case v := <-tn.videos:
		t.Errorf("ComfyUI loaded %q for a bad input", v.name)
	default:
	}
	if files := engineFiles(t, st); len(files) != 0 {
		t.Errorf("files left on the ComfyUI side: %q", files)
	}
}
