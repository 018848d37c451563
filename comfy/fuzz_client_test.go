package comfy_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func FuzzDecodeHistory(f *testing.F) {
	files, _ := filepath.Glob(conformanceFile(f, "cases", "*", "expected", "history.json"))
	for _, file := range files[:min(len(files), 8)] {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	f.Add([]byte(`{"p": {"prompt": [1.5, "p"], "outputs": {"1": {"gifs": [{"filename": "v.mp4", "frame_rate": "x"}], "animated": [true, 1], "text": [1, "t"]}}, "status": {"messages": [["a"], ["b", 1, 2], [1, {}]]}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := comfy.DecodeHistory(data)
		if err != nil {
			return
		}
		for _, h := range hs {
			for _, file := range h.Files() {
				if file.Filename == "" && file.Raw == nil {
					t.Fatalf("a file entry without a name or raw entry: %+v", file)
				}
			}
			if err := h.Err(); err != nil && !errors.Is(err, comfy.ErrExecution) && !errors.Is(err, comfy.ErrInterrupted) {
				t.Fatalf("Err returned an unclassified error: %v", err)
			}
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"brush_422_590_698", "runtime_blend_bad_mode", "cache_resubmit"} {
		fh, err := os.Open(conformanceFile(f, "cases", name, "expected", "ws.jsonl"))
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			f.Add(append([]byte(nil), sc.Bytes()...))
		}
		fh.Close()
	}
	f.Add([]byte(`{"type": "logs", "data": {"entries": [{"t": 1}]}}`))
	f.Add([]byte(`{"type": "executed", "data": {"node": "1", "output": {"images": [1, {"filename": null}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := comfy.DecodeEvent(data)
		if err != nil {
			return
		}
		if e.Type == "" {
			t.Fatal("an event without a type")
		}
		if e.Executing != nil && e.Executing.Done && e.Executing.Node != "" {
			t.Fatalf("executing both done and at node %q", e.Executing.Node)
		}
	})
}

func FuzzDecodeBinaryEvent(f *testing.F) {
	f.Add(binaryFrame(1, binary.BigEndian.AppendUint32(nil, 1), []byte("\xff\xd8")))
	meta := []byte(`{"node_id": "1", "prompt_id": "p", "image_type": "image/png"}`)
	f.Add(binaryFrame(4, binary.BigEndian.AppendUint32(nil, uint32(len(meta))), meta, []byte("png")))
	f.Add(binaryFrame(3, binary.BigEndian.AppendUint32(nil, 1), []byte("9hello")))
	f.Add(binaryFrame(3, binary.BigEndian.AppendUint32(nil, 0xffffffff)))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := comfy.DecodeBinaryEvent(data)
		if err != nil {
			return
		}
		if e.Preview != nil && len(e.Preview.Image) > len(data) {
			t.Fatal("a preview larger than its frame")
		}
	})
}

func FuzzDecodePromptError(f *testing.F) {
	files, _ := filepath.Glob(conformanceFile(f, "cases", "fail_*", "expected", "prompt_response.json"))
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data) // the whole capture; its "body" is below too
	}
	f.Add([]byte(`{"error": {"type": "x", "message": "m", "details": "d", "extra_info": {"input_name": 5}}, "node_errors": {"1": {"errors": [{"extra_info": {"received_value": [1]}}], "class_type": 3}}}`))
	f.Add([]byte(`{"error": "text", "node_errors": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pe, err := comfy.DecodePromptError(400, data)
		if err != nil {
			return
		}
		if !errors.Is(pe, comfy.ErrInvalidPrompt) || pe.Error() == "" {
			t.Fatal("a PromptError that does not classify or describe itself")
		}
	})
}

func FuzzDecodeQueue(f *testing.F) {
	f.Add([]byte(`{"queue_running": [[0, "p", {}, {"client_id": "c"}, ["9"]]], "queue_pending": [[2, "b"], [1.5, "a", {}, {}, []]]}`))
	f.Add([]byte(`{"queue_running": [], "queue_pending": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := comfy.DecodeQueue(data)
		if err != nil {
			return
		}
		_ = q.Contains("p")
	})
}
