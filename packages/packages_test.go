package packages_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/hub"
	"github.com/comfypod/comfypod/internal/devstack"
	"github.com/comfypod/comfypod/packages"
	"github.com/comfypod/comfypod/runpod"
	"github.com/comfypod/comfypod/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFS(t *testing.T) {
	t.Parallel()
	for _, name := range packages.Names() {
		fsys, err := packages.FS(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{".runpod/hub.json", ".runpod/tests.json", "comfypod.json", "workflow_api.json", "preview_api.json", "Dockerfile", "README.md", "test_input.json", "warmup.json"} {
			if _, err := fs.Stat(fsys, f); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if _, err := packages.FS("image_brush"); err == nil {
		t.Error("FS of an unknown package did not fail")
	}
	for name, fsys := range map[string]fs.FS{packages.ImageBrush: packages.ImageBrushFS(), packages.DanceSCAIL: packages.DanceSCAILFS()} {
		want, err := os.ReadFile(name + "/comfypod.json")
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(fsys, "comfypod.json")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: embedded comfypod.json differs from the folder's (%v)", name, err)
		}
	}
}

// TestLintClean lints both packages, from the folder and as embedded in the
// binary: not a single finding, not even an info.
func TestLintClean(t *testing.T) {
	t.Parallel()
	l, err := hub.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range packages.Names() {
		res, err := l.Lint(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			t.Errorf("%s: %s", name, f)
		}
		fsys, _ := packages.FS(name)
		res, err = l.LintFS(context.Background(), fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			t.Errorf("%s (embedded): %s", name, f)
		}
	}
}

// load reads a package's manifest and workflows.
func load(t testing.TB, name string) (*comfy.Manifest, map[string]*comfy.Workflow) {
	t.Helper()
	fsys, err := packages.FS(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "comfypod.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := comfy.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	wfs, err := m.LoadWorkflows(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return m, wfs
}

// TestManifests checks every binding against every workflow, the way
// comfypod workflow check --manifest and the worker at start-up do, and
// checks the params of the Hub tests and of test_input.json against the
// manifest.
func TestManifests(t *testing.T) {
	t.Parallel()
	for _, name := range packages.Names() {
		m, wfs := load(t, name)
		if m.Name != name {
			t.Errorf("%s: manifest name %q", name, m.Name)
		}
		if !slices.Equal(m.Workflows(), []string{"default", "preview"}) {
			t.Errorf("%s: workflows %v, want default and preview", name, m.Workflows())
		}
		for _, w := range m.Workflows() {
			if err := m.Check(wfs[w], w, nil); err != nil {
				t.Errorf("%s workflow %s: %v", name, w, err)
			}
			if err := wfs[w].Validate(nil); err != nil {
				t.Errorf("%s workflow %s: %v", name, w, err)
			}
		}
		fsys, _ := packages.FS(name)
		tests := readTests(t, fsys)
		for _, tc := range tests.Tests {
			var in struct {
				Params map[string]json.RawMessage `json:"params"`
			}
			if err := json.Unmarshal(tc.Input, &in); err != nil {
				t.Fatal(err)
			}
			if err := m.CheckParams(rawParams(in.Params)); err != nil {
				t.Errorf("%s: Hub test %s: %v", name, tc.Name, err)
			}
		}
		// The warm-up job the Dockerfile sets runs the default workflow.
		data, err := fs.ReadFile(fsys, "warmup.json")
		if err != nil {
			t.Fatal(err)
		}
		var wu struct {
			WorkflowName string                     `json:"workflow_name"`
			Params       map[string]json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(data, &wu); err != nil {
			t.Fatal(err)
		}
		if wu.WorkflowName != "" {
			t.Errorf("%s: warmup.json runs %q, want the default workflow", name, wu.WorkflowName)
		}
		if err := m.CheckParams(rawParams(wu.Params)); err != nil {
			t.Errorf("%s: warmup.json: %v", name, err)
		}
		docker, err := fs.ReadFile(fsys, "Dockerfile")
		if err != nil || !bytes.Contains(docker, []byte("ENV COMFYPOD_WARMUP=/package/warmup.json")) {
			t.Errorf("%s: the Dockerfile does not set the warm-up job (%v)", name, err)
		}
		in := testInput(t, fsys)
		var ti struct {
			WorkflowName string                     `json:"workflow_name"`
			Params       map[string]json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(in, &ti); err != nil {
			t.Fatal(err)
		}
		if ti.WorkflowName != "preview" {
			t.Errorf("%s: test_input.json runs %q, want the model-free preview", name, ti.WorkflowName)
		}
		if err := m.CheckParams(rawParams(ti.Params)); err != nil {
			t.Errorf("%s: test_input.json: %v", name, err)
		}
	}
}

func rawParams(p map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		out[k] = v
	}
	return out
}

func readTests(t testing.TB, fsys fs.FS) *hub.Tests {
	t.Helper()
	data, err := fs.ReadFile(fsys, ".runpod/tests.json")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := hub.ParseTests(data)
	if err != nil {
		t.Fatal(err)
	}
	return tests
}

// TestHubSettings pins the deployment settings the packages promise: Ada
// GPUs, a 4090 test machine, the same CUDA list in both files and nothing
// the Hub lacks, and test timeouts for a 12B (FLUX.1 Fill) and a 14B
// (SCAIL) model.
func TestHubSettings(t *testing.T) {
	t.Parallel()
	cat := hub.DefaultCatalog()
	minTimeout := map[string]int{packages.ImageBrush: 600000, packages.DanceSCAIL: 900000}
	for _, name := range packages.Names() {
		fsys, _ := packages.FS(name)
		data, err := fs.ReadFile(fsys, ".runpod/hub.json")
		if err != nil {
			t.Fatal(err)
		}
		h, err := hub.ParseHub(data)
		if err != nil {
			t.Fatal(err)
		}
		tests := readTests(t, fsys)
		if !slices.Equal(h.Config.AllowedCUDAVersions, tests.Config.AllowedCUDAVersions) {
			t.Errorf("%s: CUDA %v in hub.json, %v in tests.json", name, h.Config.AllowedCUDAVersions, tests.Config.AllowedCUDAVersions)
		}
		for _, v := range h.Config.AllowedCUDAVersions {
			if v > cat.HubMaxCUDA {
				t.Errorf("%s: CUDA %s is above the Hub's %s", name, v, cat.HubMaxCUDA)
			}
		}
		gpu, ok := cat.GPU(tests.Config.GPUTypeID)
		if !ok || gpu.Arch != "Ada Lovelace" {
			t.Errorf("%s: test GPU %q is not an Ada GPU", name, tests.Config.GPUTypeID)
		}
		inPool := false
		for _, pool := range cat.PoolsOf(tests.Config.GPUTypeID) {
			if slices.Contains(splitComma(h.Config.GPUIDs), pool) {
				inPool = true
			}
		}
		if !inPool {
			t.Errorf("%s: test GPU %q in none of %s", name, tests.Config.GPUTypeID, h.Config.GPUIDs)
		}
		for _, tc := range tests.Tests {
			if tc.TimeoutMs < minTimeout[name] {
				t.Errorf("%s: test %s timeout %d ms, want at least %d", name, tc.Name, tc.TimeoutMs, minTimeout[name])
			}
		}
	}
}

func splitComma(s string) []string {
	var out []string
	for len(s) > 0 {
		i := bytes.IndexByte([]byte(s), ',')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return out
}

// testInput returns the job input of a package's test_input.json.
func testInput(t testing.TB, fsys fs.FS) json.RawMessage {
	t.Helper()
	data, err := fs.ReadFile(fsys, "test_input.json")
	if err != nil {
		t.Fatal(err)
	}
	var ti struct {
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(data, &ti); err != nil || len(ti.Input) == 0 {
		t.Fatalf("test_input.json: want {\"input\": {…}}: %v", err)
	}
	return ti.Input
}

// runTestInput runs a package's test_input.json through the local stack —
// the RunPod control plane, a worker running the package, the comfypod
// engine — with the runpod client, and returns the output images.
func runTestInput(t *testing.T, name string) []image.Image {
	t.Helper()
	m, wfs := load(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Config{Worker: worker.Config{Manifest: m, Workflows: wfs}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c, err := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
	if err != nil {
		t.Fatal(err)
	}
	fsys, _ := packages.FS(name)
	job, err := c.Run(ctx, &runpod.Request{Input: testInput(t, fsys)})
	if err != nil {
		t.Fatal(err)
	}
	status, err := job.Wait(ctx, nil)
	if err != nil {
		t.Fatalf("job: %v", err)
	}
	defer status.Close()
	files, err := status.Outputs()
	if err != nil {
		t.Fatal(err)
	}
	var imgs []image.Image
	for _, f := range files {
		rc, err := f.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("output %s is not a PNG: %v", f, err)
		}
		imgs = append(imgs, img)
	}
	return imgs
}

// inputImage decodes one of the images of a package's test_input.json.
func inputImage(t testing.TB, name, file string) image.Image {
	t.Helper()
	fsys, _ := packages.FS(name)
	var in struct {
		Images []struct {
			Name  string `json:"name"`
			Image []byte `json:"image"` // base64, decoded by encoding/json
		} `json:"images"`
	}
	if err := json.Unmarshal(testInput(t, fsys), &in); err != nil {
		t.Fatal(err)
	}
	for _, im := range in.Images {
		if im.Name == file {
			img, _, err := image.Decode(bytes.NewReader(im.Image))
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("no image %s in %s's test_input.json", file, name)
	return nil
}

// TestImageBrushPreview runs image-brush's test input (the preview
// workflow) through the local stack: the result is the target's size, equal
// to the target away from the mask, and changed inside it.
func TestImageBrushPreview(t *testing.T) {
	t.Parallel()
	outs := runTestInput(t, packages.ImageBrush)
	if len(outs) != 1 {
		t.Fatalf("%d output images, want 1", len(outs))
	}
	out := outs[0]
	target := inputImage(t, packages.ImageBrush, "input-1.png")
	mask := inputImage(t, packages.ImageBrush, "mask.png")
	if out.Bounds() != target.Bounds() {
		t.Fatalf("output is %v, the target %v", out.Bounds(), target.Bounds())
	}
	// The preview grows the mask by 8 px and feathers it with a 4 px blur:
	// pixels farther than that from any transparent mask pixel are the
	// target's, exactly.
	const reach = 8 + 4 + 1
	b := target.Bounds()
	var masked []image.Point
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := mask.At(x, y).RGBA(); a == 0 {
				masked = append(masked, image.Pt(x, y))
			}
		}
	}
	if len(masked) == 0 {
		t.Fatal("the test mask has no transparent pixel")
	}
	near := func(p image.Point) bool {
		for _, q := range masked {
			if abs(p.X-q.X) <= reach && abs(p.Y-q.Y) <= reach {
				return true
			}
		}
		return false
	}
	changed, outside := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := image.Pt(x, y)
			eq := rgb8(out.At(x, y)) == rgb8(target.At(x, y))
			switch {
			case !near(p):
				outside++
				if !eq {
					t.Fatalf("pixel %v outside the mask is %v, the target's is %v", p, rgb8(out.At(x, y)), rgb8(target.At(x, y)))
				}
			case slices.Contains(masked, p) && !eq:
				changed++
			}
		}
	}
	if outside == 0 {
		t.Fatal("the test mask leaves no pixel outside its reach")
	}
	t.Logf("%d pixels outside the mask's reach kept, %d of %d masked pixels changed", outside, changed, len(masked))
	if changed < len(masked)/2 {
		t.Errorf("only %d of %d masked pixels changed", changed, len(masked))
	}
}

// TestDanceSCAILPreview runs dance-scail's test input (the preview
// workflow) through the local stack: one frame per requested video frame,
// at half the video size, with the character inset.
func TestDanceSCAILPreview(t *testing.T) {
	t.Parallel()
	outs := runTestInput(t, packages.DanceSCAIL)
	fsys, _ := packages.FS(packages.DanceSCAIL)
	var in struct {
		Params struct {
			Frames int `json:"frames"`
		} `json:"params"`
	}
	if err := json.Unmarshal(testInput(t, fsys), &in); err != nil {
		t.Fatal(err)
	}
	if in.Params.Frames == 0 || len(outs) != in.Params.Frames {
		t.Fatalf("%d frames, want %d", len(outs), in.Params.Frames)
	}
	for i, f := range outs {
		if f.Bounds() != image.Rect(0, 0, 256, 448) {
			t.Errorf("frame %d is %v, want 256x448", i, f.Bounds())
		}
	}
	// The inset is the same character in every frame; the driving frames
	// behind it move.
	if rgb8(outs[0].At(72, 40)) != rgb8(outs[len(outs)-1].At(72, 40)) {
		t.Error("the character inset differs between frames")
	}
	moved := false
	for y := 240; y < 448 && !moved; y++ {
		for x := 0; x < 256; x++ {
			if rgb8(outs[0].At(x, y)) != rgb8(outs[4].At(x, y)) {
				moved = true
				break
			}
		}
	}
	if !moved {
		t.Error("the driving frames do not move")
	}
}

func rgb8(c interface{ RGBA() (r, g, b, a uint32) }) [3]uint8 {
	r, g, b, _ := c.RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// vhsLoadVideo is VHS_LoadVideo as VideoHelperSuite declares it in
// /object_info: its files a plain list of the input folder's videos,
// force_rate a FLOAT up to 60.
const vhsLoadVideo = `{"VHS_LoadVideo": {"input": {"required": {"video": [["dance.mp4"]],
  "force_rate": ["FLOAT", {"default": 0, "min": 0, "max": 60, "step": 1, "disable": 0}],
  "custom_width": ["INT", {"default": 0, "min": 0, "max": 8192, "disable": 0}], "custom_height": ["INT", {"default": 0, "min": 0, "max": 8192, "disable": 0}],
  "frame_load_cap": ["INT", {"default": 0, "min": 0, "max": 9223372036854775807, "step": 1, "disable": 0}],
  "skip_first_frames": ["INT", {"default": 0, "min": 0, "max": 9223372036854775807, "step": 1}],
  "select_every_nth": ["INT", {"default": 1, "min": 1, "max": 9223372036854775807, "step": 1}]},
  "optional": {"meta_batch": ["VHS_BatchManager"], "vae": ["VAE"]}, "hidden": {"unique_id": "UNIQUE_ID"}},
  "input_order": {"required": ["video", "force_rate", "custom_width", "custom_height", "frame_load_cap", "skip_first_frames", "select_every_nth"], "optional": ["meta_batch", "vae"]},
  "output": ["IMAGE", "INT", "AUDIO", "VHS_VIDEOINFO"], "output_is_list": [false, false, false, false], "output_name": ["IMAGE", "frame_count", "audio", "video_info"],
  "name": "VHS_LoadVideo", "display_name": "Load Video (Upload)", "description": "", "python_module": "custom_nodes.ComfyUI-VideoHelperSuite",
  "category": "Video Helper Suite", "output_node": false}}`

// TestDanceSCAILMotionVideo: the driving video is a video param, read by
// VHS_LoadVideo in the default workflow (its bindings fit the node as
// VideoHelperSuite declares it) and by LoadImage, which reads animated
// GIFs, in the preview; the job files send it as a GIF, which both read.
func TestDanceSCAILMotionVideo(t *testing.T) {
	t.Parallel()
	m, wfs := load(t, packages.DanceSCAIL)
	p, ok := m.Param("motion_video")
	if !ok || p.Type != comfy.ParamVideo || !p.Required {
		t.Fatalf("motion_video = %+v", p)
	}
	if got := p.Bindings["default"]; !slices.Equal(got, []comfy.Binding{{Node: "20", Input: "video", ClassType: "VHS_LoadVideo"}}) {
		t.Errorf("default binding %v", got)
	}
	if got := p.Bindings["preview"]; !slices.Equal(got, []comfy.Binding{{Node: "20", Input: "image", ClassType: "LoadImage"}}) {
		t.Errorf("preview binding %v", got)
	}
	info, err := comfy.ParseObjectInfo([]byte(vhsLoadVideo))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(wfs["default"], "default", info); err != nil {
		t.Errorf("the default workflow against VHS_LoadVideo's declaration: %v", err)
	}
	fsys, _ := packages.FS(packages.DanceSCAIL)
	for _, file := range []string{"test_input.json", "warmup.json", ".runpod/tests.json"} {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"motion_video": "motion.gif"`)) || !bytes.Contains(data, []byte(`"name": "motion.gif"`)) {
			t.Errorf("%s does not send the driving motion as motion.gif", file)
		}
	}
}

// TestDanceSCAILPreviewRefusesMP4: the preview reads the driving clip with
// LoadImage, so an MP4 sent to it is refused before ComfyUI runs, with a
// message that says what to send instead.
func TestDanceSCAILPreviewRefusesMP4(t *testing.T) {
	t.Parallel()
	box := func(typ string, parts ...[]byte) []byte {
		body := bytes.Join(parts, nil)
		return append(append(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), typ...), body...)
	}
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000)
	binary.BigEndian.PutUint32(mvhd[16:], 2000)
	hdlr := append(append(make([]byte, 8), "vide"...), make([]byte, 13)...)
	mp4 := bytes.Join([][]byte{box("ftyp", []byte("isom\x00\x00\x02\x00isom")),
		box("moov", box("mvhd", mvhd), box("trak", box("mdia", box("hdlr", hdlr)))), box("mdat", make([]byte, 100))}, nil)

	m, wfs := load(t, packages.DanceSCAIL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Config{Worker: worker.Config{Manifest: m, Workflows: wfs}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c, err := runpod.New(st.EndpointID(), runpod.WithBaseURL(st.BaseURL()), runpod.WithAPIKey(st.APIKey()))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Images []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"images"`
	}
	fsys, _ := packages.FS(packages.DanceSCAIL)
	if err := json.Unmarshal(testInput(t, fsys), &in); err != nil {
		t.Fatal(err)
	}
	job, err := c.Run(ctx, &runpod.Request{Input: map[string]any{
		"workflow_name": "preview",
		"params":        map[string]any{"character": in.Images[0].Image, "motion_video": base64.StdEncoding.EncodeToString(mp4), "frames": 17},
	}})
	if err != nil {
		t.Fatal(err)
	}
	status, err := job.Wait(ctx, nil)
	if status != nil {
		defer status.Close()
	}
	var je *runpod.JobError
	if !errors.As(err, &je) {
		t.Fatalf("the job did not fail: %v", err)
	}
	for _, w := range []string{"node 20 (LoadImage)", "loads the file of params.motion_video, which is an MP4 video, but LoadImage reads an image", "send an animated GIF"} {
		if !strings.Contains(je.Message, w) {
			t.Errorf("error %q\ndoes not say %q", je.Message, w)
		}
	}
}
