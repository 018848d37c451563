package comfy_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func TestDecodeEventEveryCapturedMessage(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(conformanceFile(t, "cases", "*", "expected", "ws.jsonl"))
	more, _ := filepath.Glob(conformanceFile(t, "cases", "*", "expected", "run2", "ws.jsonl"))
	files = append(files, more...)
	seen := map[string]int{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			e, err := comfy.DecodeEvent(sc.Bytes())
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			seen[e.Type]++
			typed := e.Status != nil || e.Start != nil || e.Cached != nil || e.Executing != nil || e.Progress != nil ||
				e.ProgressState != nil || e.Executed != nil || e.Success != nil || e.Error != nil || e.Interrupted != nil
			if !typed {
				t.Errorf("%s: %s decoded to no typed field", f, e.Type)
			}
			if e.Type != comfy.EventStatus && e.PromptID != "PROMPT_ID" {
				t.Errorf("%s: %s has prompt id %q", f, e.Type, e.PromptID)
			}
			if e.Error != nil && (e.Error.NodeID == "" || e.Error.ExceptionType == "" || len(e.Error.Traceback) == 0) {
				t.Errorf("%s: execution_error = %+v", f, e.Error)
			}
		}
		fh.Close()
	}
	for _, typ := range []string{"status", "execution_start", "execution_cached", "executing", "progress_state", "executed", "execution_success", "execution_error"} {
		if seen[typ] == 0 {
			t.Errorf("no %s message in the captures", typ)
		}
	}
}

func TestDecodeEventShapes(t *testing.T) {
	t.Parallel()
	e, err := comfy.DecodeEvent([]byte(`{"type": "executing", "data": {"node": null, "prompt_id": "p"}}`))
	if err != nil || e.Executing == nil || !e.Executing.Done || e.PromptID != "p" {
		t.Errorf("executing null: %+v %v", e, err)
	}
	// A reconnect re-sends executing without a prompt id.
	e, _ = comfy.DecodeEvent([]byte(`{"type": "executing", "data": {"node": "7"}}`))
	if e.Executing.Done || e.Executing.Node != "7" || e.PromptID != "" {
		t.Errorf("reconnect executing: %+v", e.Executing)
	}
	e, _ = comfy.DecodeEvent([]byte(`{"type": "progress", "data": {"value": 3, "max": 20, "prompt_id": "p", "node": "13"}}`))
	if e.Progress.Value != 3 || e.Progress.Max != 20 || e.Progress.Node != "13" {
		t.Errorf("progress: %+v", e.Progress)
	}
	e, _ = comfy.DecodeEvent([]byte(`{"type": "execution_interrupted", "data": {"prompt_id": "p", "node_id": "13", "node_type": "KSampler", "executed": ["1"], "timestamp": 5}}`))
	if e.Interrupted == nil || !errors.Is(e.Interrupted, comfy.ErrInterrupted) || e.Interrupted.Error() != "ComfyUI interrupted the prompt at node 13 (KSampler)" {
		t.Errorf("interrupted: %+v", e.Interrupted)
	}
	e, _ = comfy.DecodeEvent([]byte(`{"type": "executed", "data": {"node": "9", "output": null, "prompt_id": "p"}}`))
	if e.Executed == nil || e.Executed.Output != nil {
		t.Errorf("cached output node with null output: %+v", e.Executed)
	}
	e, _ = comfy.DecodeEvent([]byte(`{"type": "logs", "data": {"entries": [{"t": "2025-10-11T10:00:00", "m": "loading model\n"}], "size": {"cols": 80, "rows": 24}}}`))
	if e.Logs == nil || len(e.Logs.Entries) != 1 || e.Logs.Entries[0].Message != "loading model\n" {
		t.Errorf("logs: %+v", e.Logs)
	}
	e, _ = comfy.DecodeEvent([]byte(`{"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600.0}}`))
	if string(e.FeatureFlags["max_upload_size"]) != "104857600.0" {
		t.Errorf("feature flags: %+v", e.FeatureFlags)
	}
	e, err = comfy.DecodeEvent([]byte(`{"type": "crystools.monitor", "data": [1, 2]}`))
	if err != nil || e.Type != "crystools.monitor" || string(e.Data) != "[1, 2]" {
		t.Errorf("unknown type: %+v %v", e, err)
	}
	for _, bad := range []string{`not json`, `{"data": {}}`, `{"type": "progress", "data": {"value": "x"}}`, `{"type": "executing", "data": "9"}`} {
		if _, err := comfy.DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func binaryFrame(typ uint32, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, typ)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestDecodeBinaryEvent(t *testing.T) {
	t.Parallel()
	png := []byte("\x89PNG\r\n\x1a\n...")
	e, err := comfy.DecodeBinaryEvent(binaryFrame(1, binary.BigEndian.AppendUint32(nil, 2), png))
	if err != nil || e.Type != comfy.EventPreview || e.Preview.MediaType != "image/png" || string(e.Preview.Image) != string(png) {
		t.Errorf("type 1: %+v %v", e, err)
	}
	meta := []byte(`{"node_id": "13", "prompt_id": "p", "display_node_id": "13", "parent_node_id": null, "real_node_id": "13", "image_type": "image/jpeg"}`)
	e, err = comfy.DecodeBinaryEvent(binaryFrame(4, binary.BigEndian.AppendUint32(nil, uint32(len(meta))), meta, []byte("\xff\xd8jpeg")))
	if err != nil || e.PromptID != "p" || e.Preview.NodeID != "13" || e.Preview.MediaType != "image/jpeg" || string(e.Preview.Image) != "\xff\xd8jpeg" {
		t.Errorf("type 4: %+v %v", e, err)
	}
	e, err = comfy.DecodeBinaryEvent(binaryFrame(3, binary.BigEndian.AppendUint32(nil, 2), []byte("12"), []byte("512x512")))
	if err != nil || e.Type != comfy.EventProgressText || e.Text.NodeID != "12" || e.Text.Text != "512x512" {
		t.Errorf("type 3: %+v %v", e, err)
	}
	e, err = comfy.DecodeBinaryEvent(binaryFrame(9, []byte("x")))
	if err != nil || e.Type != "binary_9" {
		t.Errorf("unknown binary: %+v %v", e, err)
	}
	for _, bad := range [][]byte{{0, 0}, binaryFrame(1), binaryFrame(3, binary.BigEndian.AppendUint32(nil, 99), []byte("x")), binaryFrame(4, binary.BigEndian.AppendUint32(nil, 3), []byte("{x}"))} {
		if _, err := comfy.DecodeBinaryEvent(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeHistoryOutputFamilies(t *testing.T) {
	t.Parallel()
	// The output dicts of A10: images (output and temp), VHS gifs with
	// format/frame_rate, animated booleans, audio, text, a custom key, and
	// entries without filename.
	data := []byte(`{"p1": {
	  "prompt": [7, "p1", {"1": {"class_type": "X", "inputs": {}}}, {"client_id": "c"}, ["9", "15"]],
	  "outputs": {
	    "9": {"images": [{"filename": "a_00001_.png", "subfolder": "brush", "type": "output"}, {"filename": "ComfyUI_temp_abcde_00001_.png", "subfolder": "", "type": "temp"}]},
	    "15": {"gifs": [{"filename": "scail_00001.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4", "frame_rate": 16.0, "workflow": "scail_00001.png", "fullpath": "/srv/out/scail_00001.mp4"}]},
	    "16": {"images": [{"filename": "anim_00001_.webp", "subfolder": "", "type": "output"}], "animated": [true]},
	    "17": {"audio": [{"filename": "ComfyUI_00001_.flac", "subfolder": "audio", "type": "output"}]},
	    "18": {"text": ["a caption", "another"]},
	    "19": {"3d": [{"filename": "mesh.glb", "type": "output"}], "status": ["ok"], "latents": [{"note": "no file"}]}
	  },
	  "status": {"status_str": "success", "completed": true, "messages": [["execution_start", {"prompt_id": "p1", "timestamp": 1}], ["execution_success", {"prompt_id": "p1", "timestamp": 2}]]},
	  "meta": {"9": {"node_id": "9"}}}}`)
	hs, err := comfy.DecodeHistory(data)
	if err != nil || len(hs) != 1 {
		t.Fatal(hs, err)
	}
	h := hs[0]
	if h.Number != "7" || string(h.ExtraData) != `{"client_id":"c"}` || len(h.OutputsToExecute) != 2 || h.Err() != nil {
		t.Errorf("entry: %+v", h)
	}
	got := fileKeys(h.Files())
	want := []string{
		"15 gifs output /scail_00001.mp4",
		"16 images output /anim_00001_.webp",
		"17 audio output audio/ComfyUI_00001_.flac",
		"19 3d output /mesh.glb",
		"9 images output brush/a_00001_.png",
		"9 images temp /ComfyUI_temp_abcde_00001_.png",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s", strings.Join(got, "\n"))
	}
	vid, _ := h.Output("15")
	if vid.Files[0].Format != "video/h264-mp4" || vid.Files[0].FrameRate != 16 || vid.Files[0].Fullpath != "/srv/out/scail_00001.mp4" {
		t.Errorf("gifs entry: %+v", vid.Files[0])
	}
	anim, _ := h.Output("16")
	txt, _ := h.Output("18")
	if len(anim.Animated) != 1 || !anim.Animated[0] || len(txt.Text) != 2 || txt.Text[0] != "a caption" {
		t.Errorf("animated %v text %v", anim.Animated, txt.Text)
	}
	img, _ := h.Output("9")
	if img.Files[0].IsTemp() || !img.Files[1].IsTemp() {
		t.Error("IsTemp")
	}
}

func TestHistoryErrOfFailedRuns(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile(conformanceFile(t, "cases", "runtime_blend_bad_mode", "expected", "history.json"))
	hs, err := comfy.DecodeHistory(data)
	if err != nil {
		t.Fatal(err)
	}
	var ee *comfy.ExecutionError
	if !errors.As(hs[0].Err(), &ee) || ee.NodeID != "2" || ee.ExceptionMessage != "Unsupported blend mode: bogus\n" {
		t.Errorf("Err = %v", hs[0].Err())
	}
	interrupted := []byte(`{"p": {"prompt": [], "outputs": {}, "status": {"status_str": "error", "completed": false,
	  "messages": [["execution_start", {"prompt_id": "p"}], ["execution_interrupted", {"prompt_id": "p", "node_id": "3", "node_type": "KSampler", "executed": []}]]}}}`)
	hs, _ = comfy.DecodeHistory(interrupted)
	if !errors.Is(hs[0].Err(), comfy.ErrInterrupted) {
		t.Errorf("interrupted: %v", hs[0].Err())
	}
	bare := []byte(`{"p": {"outputs": {}, "status": {"status_str": "error", "completed": false, "messages": []}}}`)
	hs, _ = comfy.DecodeHistory(bare)
	if !errors.Is(hs[0].Err(), comfy.ErrExecution) {
		t.Errorf("error without message: %v", hs[0].Err())
	}
	if hs, err := comfy.DecodeHistory([]byte(`{}`)); err != nil || len(hs) != 0 {
		t.Errorf("{}: %v %v", hs, err)
	}
}

func TestDecodeQueueSortsPending(t *testing.T) {
	t.Parallel()
	q, err := comfy.DecodeQueue([]byte(`{"queue_running": [[3, "run", {}, {"client_id": "c"}, ["9"]]],
	  "queue_pending": [[5, "b", {}, {}, []], [-1.0, "front", {}, {}, []], [4, "a", {}, {}, ["2"]]]}`))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, it := range q.Pending {
		order = append(order, it.PromptID)
	}
	if strings.Join(order, ",") != "front,a,b" || !q.Contains("run") || q.Contains("zzz") || q.Running[0].OutputsToExecute[0] != "9" {
		t.Errorf("queue: %+v", q)
	}
	if _, err := comfy.DecodeQueue([]byte(`{"queue_running": [[1]]}`)); err == nil {
		t.Error("short item accepted")
	}
}

func TestPromptErrorText(t *testing.T) {
	t.Parallel()
	pe, err := comfy.DecodePromptError(400, []byte(`{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
	  "node_errors": {"10": {"errors": [{"type": "value_not_in_list", "message": "Value not in list", "details": "ckpt_name: 'sdxl.safetensors' not in ['a.safetensors', 'b.safetensors']", "extra_info": {"input_name": "ckpt_name"}}], "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"},
	                  "2": {"errors": [{"type": "required_input_missing", "message": "Required input is missing", "details": "images", "extra_info": {"input_name": "images"}}], "dependent_outputs": ["2"], "class_type": "SaveImage"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "ComfyUI refused the prompt: Prompt outputs failed validation\n" +
		"  - node 10 (CheckpointLoaderSimple) input \"ckpt_name\": Value not in list: ckpt_name: 'sdxl.safetensors' not in ['a.safetensors', 'b.safetensors']\n" +
		"  - node 2 (SaveImage) input \"images\": Required input is missing"
	if pe.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", pe.Error(), want)
	}
	if pe.NodeErrors[0].NodeID != "10" || pe.NodeErrors[1].DependentOutputs[0] != "2" {
		t.Errorf("order/fields: %+v", pe.NodeErrors)
	}
	legacy, err := comfy.DecodePromptError(400, []byte(`{"error": "no prompt", "node_errors": []}`))
	if err != nil || len(legacy.NodeErrors) != 0 || legacy.Error() != "ComfyUI refused the prompt: no prompt" {
		t.Errorf("empty node_errors list: %v %v", legacy, err)
	}
	if _, err := comfy.DecodePromptError(400, []byte(`{"error": {}, "node_errors": [1]}`)); err == nil {
		t.Error("node_errors as a non-empty list accepted")
	}
	legacy, err = comfy.DecodePromptError(400, []byte(`{"error": "something broke"}`))
	if err != nil || legacy.Error() != "ComfyUI refused the prompt: something broke" {
		t.Errorf("string error: %v %v", legacy, err)
	}
}
