package comfy_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

// motionWorkflow loads a video with VideoHelperSuite and a GIF with
// LoadImage, and an audio track with LoadAudio.
const motionWorkflow = `{
  "1": {"class_type": "VHS_LoadVideo", "inputs": {"video": "dance.mp4", "force_rate": 16, "custom_width": 0, "custom_height": 0, "frame_load_cap": 81, "skip_first_frames": 0, "select_every_nth": 1}},
  "2": {"class_type": "LoadImage", "inputs": {"image": "dance.gif"}},
  "3": {"class_type": "LoadAudio", "inputs": {"audio": "song.wav"}},
  "4": {"class_type": "LoadVideo", "inputs": {"file": "clip.webm"}},
  "5": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
}`

// motionInfo is /object_info for the loaders of motionWorkflow, as the
// servers declare them: VHS lists its files as a plain combo, core
// ComfyUI's loaders carry upload flags.
const motionInfo = `{
  "VHS_LoadVideo": {"input": {"required": {"video": [["a.mp4"]], "force_rate": ["FLOAT", {"default": 0, "min": 0, "max": 60}],
    "custom_width": ["INT", {"default": 0, "min": 0}], "custom_height": ["INT", {"default": 0, "min": 0}],
    "frame_load_cap": ["INT", {"default": 0, "min": 0}], "skip_first_frames": ["INT", {"default": 0, "min": 0}], "select_every_nth": ["INT", {"default": 1, "min": 1}]}},
    "input_order": {"required": ["video", "force_rate", "custom_width", "custom_height", "frame_load_cap", "skip_first_frames", "select_every_nth"]},
    "output": ["IMAGE", "INT", "AUDIO", "VHS_VIDEOINFO"], "output_is_list": [false, false, false, false], "output_name": ["IMAGE", "frame_count", "audio", "video_info"],
    "name": "VHS_LoadVideo", "display_name": "Load Video (Upload)", "description": "", "python_module": "custom_nodes.vhs", "category": "vhs", "output_node": false},
  "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": true}]}}, "input_order": {"required": ["image"]},
    "output": ["IMAGE", "MASK"], "output_is_list": [false, false], "output_name": ["IMAGE", "MASK"],
    "name": "LoadImage", "display_name": "Load Image", "description": "", "python_module": "nodes", "category": "image", "output_node": false},
  "LoadAudio": {"input": {"required": {"audio": [["a.wav"], {"audio_upload": true}]}}, "input_order": {"required": ["audio"]},
    "output": ["AUDIO"], "output_is_list": [false], "output_name": ["AUDIO"],
    "name": "LoadAudio", "display_name": "Load Audio", "description": "", "python_module": "comfy_extras.nodes_audio", "category": "audio", "output_node": false},
  "LoadVideo": {"input": {"required": {"file": [["a.mp4"], {"video_upload": true}]}}, "input_order": {"required": ["file"]},
    "output": ["VIDEO"], "output_is_list": [false], "output_name": ["VIDEO"],
    "name": "LoadVideo", "display_name": "Load Video", "description": "", "python_module": "comfy_extras.nodes_video", "category": "image/video", "output_node": false},
  "PreviewImage": {"input": {"required": {"images": ["IMAGE"]}}, "input_order": {"required": ["images"]},
    "output": [], "output_is_list": [], "output_name": [],
    "name": "PreviewImage", "display_name": "Preview Image", "description": "", "python_module": "nodes", "category": "image", "output_node": true}
}`

func motion(t testing.TB) (*comfy.Workflow, comfy.ObjectInfo) {
	t.Helper()
	wf, err := comfy.ParseWorkflow([]byte(motionWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	info, err := comfy.ParseObjectInfo([]byte(motionInfo))
	if err != nil {
		t.Fatal(err)
	}
	return wf, info
}

func TestManifestFileParams(t *testing.T) {
	t.Parallel()
	m, err := comfy.ParseManifest([]byte(`{"workflows": {"default": "w.json"}, "params": [
	  {"name": "motion_video", "type": "video", "required": true, "max_bytes": 100000000, "max_seconds": 30,
	   "bind": {"default": [{"node": "1", "input": "video", "class_type": "VHS_LoadVideo"}, {"node": "2", "input": "image", "class_type": "LoadImage"}]}},
	  {"name": "song", "type": "audio", "max_seconds": 12.5, "bind": {"default": [{"node": "3", "input": "audio", "class_type": "LoadAudio"}]}},
	  {"name": "clip", "type": "file", "media": ["video", "audio"], "max_bytes": 5000000, "bind": {"default": [{"node": "4", "input": "file", "class_type": "LoadVideo"}]}},
	  {"name": "fps", "type": "int", "min": 1, "max": 60, "bind": {"default": [{"node": "1", "input": "force_rate", "class_type": "VHS_LoadVideo"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := m.Param("motion_video")
	a, _ := m.Param("song")
	f, _ := m.Param("clip")
	fps, _ := m.Param("fps")
	if !v.IsFile() || !a.IsFile() || !f.IsFile() || fps.IsFile() {
		t.Errorf("IsFile: video %v audio %v file %v int %v", v.IsFile(), a.IsFile(), f.IsFile(), fps.IsFile())
	}
	for _, tc := range []struct {
		p    *comfy.Param
		want []string
	}{{v, []string{"video"}}, {a, []string{"audio"}}, {f, []string{"video", "audio"}}, {fps, nil}} {
		if got := tc.p.Accepts(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s accepts %v, want %v", tc.p.Name, got, tc.want)
		}
	}
	if v.MaxBytes != 100000000 || v.MaxSeconds != 30 || a.MaxSeconds != 12.5 || !reflect.DeepEqual(f.Media, []string{"video", "audio"}) {
		t.Errorf("limits: video %d B %g s, audio %g s, file media %v", v.MaxBytes, v.MaxSeconds, a.MaxSeconds, f.Media)
	}

	// The bindings fit, with and without the server's declarations: the
	// video also feeds a LoadImage (an animated GIF's frames).
	wf, info := motion(t)
	for _, in := range []comfy.ObjectInfo{nil, info} {
		if err := m.Check(wf, "default", in); err != nil {
			t.Errorf("Check (info %v): %v", in != nil, err)
		}
	}
	applied, err := m.Apply(wf, "default", map[string]any{"motion_video": "tag_motion_video.mp4", "song": "s.flac", "clip": "c.webm"}, comfy.ApplyOptions{Info: info})
	if err != nil {
		t.Fatal(err)
	}
	if got := inputText(t, wf, "1", "video"); got != `"tag_motion_video.mp4"` {
		t.Errorf("1.video = %s", got)
	}
	if len(applied.Inputs) != 4 {
		t.Errorf("wrote %+v", applied.Inputs)
	}
	// The file params' values are file names.
	if err := m.CheckParams(map[string]any{"motion_video": 12, "song": "../x.wav"}); err == nil ||
		!strings.Contains(err.Error(), "param `motion_video`: want the name of an uploaded file, got a number") ||
		!strings.Contains(err.Error(), "param `song`: file name \"../x.wav\" must not contain ..") {
		t.Errorf("bad values: %v", err)
	}
	if err := m.CheckParams(map[string]any{}); err == nil || !strings.Contains(err.Error(), "param `motion_video`: is required (video)") {
		t.Errorf("required: %v", err)
	}

	// The limits.
	if err := v.CheckFileSize(100000000); err != nil {
		t.Error(err)
	}
	if err := v.CheckFileSize(123456789); err == nil || err.Error() != "param `motion_video`: the file is 123.5 MB, above the max 100.0 MB" {
		t.Errorf("CheckFileSize: %v", err)
	}
	if err := a.CheckDuration(12.5); err != nil {
		t.Error(err)
	}
	if err := a.CheckDuration(40.04); err == nil || err.Error() != "param `song`: the file is 40.0 s long, above the max 12.5 s; trim it" {
		t.Errorf("CheckDuration: %v", err)
	}
	if err := fps.CheckFileSize(1 << 40); err != nil {
		t.Errorf("a param without max_bytes: %v", err)
	}

	// The manifest re-encodes to an equivalent one.
	out, err := m.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := comfy.ParseManifest(out)
	if err != nil {
		t.Fatalf("re-parsing %s: %v", out, err)
	}
	if f2, _ := m2.Param("clip"); !reflect.DeepEqual(f2, f) {
		t.Errorf("round trip: %+v, want %+v", f2, f)
	}
	if !json.Valid(out) || !strings.Contains(string(out), `"max_seconds":12.5`) {
		t.Errorf("encoded %s", out)
	}
}

func TestManifestFileParamMismatches(t *testing.T) {
	t.Parallel()
	wf, info := motion(t)
	m, err := comfy.ParseManifest([]byte(`{"workflows": {"default": "w.json"}, "params": [
	  {"name": "clip", "type": "video", "bind": {"default": [{"node": "3", "input": "audio", "class_type": "LoadAudio"}]}},
	  {"name": "song", "type": "audio", "bind": {"default": [{"node": "2", "input": "image", "class_type": "LoadImage"}]}},
	  {"name": "still", "type": "image", "bind": {"default": [{"node": "1", "input": "video", "class_type": "VHS_LoadVideo"}]}},
	  {"name": "any", "type": "file", "media": ["audio"], "bind": {"default": [{"node": "4", "input": "file", "class_type": "LoadVideo"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	withInfo := []string{
		"param `clip`: node 3 input `audio` is audio upload on the server, which a video param cannot fill",
		"param `song`: node 2 input `image` is image upload on the server, which an audio param cannot fill",
		"param `still`: node 1 input `video` loads video files (VHS_LoadVideo), which an image param cannot fill",
		"param `any`: node 4 input `file` is video upload on the server, which a file param cannot fill",
	}
	withoutInfo := []string{
		"param `clip`: node 3 input `audio` loads audio files (LoadAudio), which a video param cannot fill",
		"param `song`: node 2 input `image` loads image files (LoadImage), which an audio param cannot fill",
		"param `still`: node 1 input `video` loads video files (VHS_LoadVideo), which an image param cannot fill",
		"param `any`: node 4 input `file` loads video files (LoadVideo), which a file param cannot fill",
	}
	for _, tc := range []struct {
		info comfy.ObjectInfo
		want []string
	}{{info, withInfo}, {nil, withoutInfo}} {
		err := m.Check(wf, "default", tc.info)
		var pe *comfy.ParamsError
		if !errors.As(err, &pe) || len(pe.Problems) != len(tc.want) {
			t.Errorf("info %v: %v", tc.info != nil, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("info %v: missing %q in:\n%v", tc.info != nil, w, err)
			}
		}
	}
}

func TestParseManifestFileParamErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{"name": "x", "type": "int", "max_bytes": 10, "bind": {"default": []}}`, "params[0] (x).max_bytes: only file params (image, mask, video, audio, file) have max_bytes"},
		{`{"name": "x", "type": "video", "max_bytes": 0, "bind": {"default": []}}`, "params[0] (x).max_bytes: want a positive integer (bytes), got 0"},
		{`{"name": "x", "type": "video", "max_bytes": "1GB", "bind": {"default": []}}`, `params[0] (x).max_bytes: want a positive integer (bytes), got "1GB"`},
		{`{"name": "x", "type": "image", "max_seconds": 5, "bind": {"default": []}}`, "params[0] (x).max_seconds: only video, audio and file params have max_seconds"},
		{`{"name": "x", "type": "audio", "max_seconds": -1, "bind": {"default": []}}`, "params[0] (x).max_seconds: want a positive number of seconds, got -1"},
		{`{"name": "x", "type": "video", "media": ["video"], "bind": {"default": []}}`, "params[0] (x).media: only file params have media"},
		{`{"name": "x", "type": "file", "media": ["movie"], "bind": {"default": []}}`, `params[0] (x).media: unknown kind "movie"; one of image, video, audio`},
		{`{"name": "x", "type": "file", "media": ["audio", "audio"], "bind": {"default": []}}`, `params[0] (x).media: "audio" is listed twice`},
		{`{"name": "x", "type": "file", "media": [], "bind": {"default": []}}`, "params[0] (x).media: is empty"},
		{`{"name": "x", "type": "video", "max_side": 512, "bind": {"default": []}}`, "params[0] (x).max_side: only image params have max_side"},
		{`{"name": "x", "type": "video", "default": 3, "bind": {"default": []}}`, "params[0] (x).default: want the name of an uploaded file, got a number"},
		{`{"name": "x", "type": "vidoe", "bind": {"default": []}}`, `unknown type "vidoe"; one of int, float, string, bool, enum, image, mask, video, audio, file`},
	} {
		_, err := comfy.ParseManifest([]byte(`{"workflows": {"default": "w.json"}, "params": [` + tc.in + `]}`))
		if !errors.Is(err, comfy.ErrInvalidManifest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n%v\nwant %q", tc.in, err, tc.want)
		}
	}
}

// A loader whose server entry has no upload flag (VideoHelperSuite's
// plain list of input files) is a file input all the same, and its list,
// made before the job's upload, is not held against the workflow.
func TestFileInputsOfLoadersWithoutUploadFlag(t *testing.T) {
	t.Parallel()
	wf, info := motion(t)
	want := []comfy.FileInput{
		{Node: "1", Class: "VHS_LoadVideo", Input: "video", Kind: "video", Value: "dance.mp4"},
		{Node: "2", Class: "LoadImage", Input: "image", Kind: "image", Value: "dance.gif"},
		{Node: "3", Class: "LoadAudio", Input: "audio", Kind: "audio", Value: "song.wav"},
		{Node: "4", Class: "LoadVideo", Input: "file", Kind: "video", Value: "clip.webm"},
	}
	for _, in := range []comfy.ObjectInfo{nil, info} {
		if got := wf.FileInputs(in); !reflect.DeepEqual(got, want) {
			t.Errorf("FileInputs(info %v) = %+v", in != nil, got)
		}
	}
	if got := wf.RenameFile(info, "dance.mp4", "tag_dance.mp4"); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("RenameFile changed %v", got)
	}
	if err := wf.Validate(info); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
