package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/devstack"
)

// testMP4 is a small MP4 of one video track, as the worker's checks read
// one: ftyp, a moov index (its length in mvhd, the track's handler) and an
// mdat.
func testMP4() []byte {
	box := func(typ string, parts ...[]byte) []byte {
		body := bytes.Join(parts, nil)
		return append(append(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), typ...), body...)
	}
	mvhd := make([]byte, 100)
	binary.BigEndian.PutUint32(mvhd[12:], 1000) // timescale
	binary.BigEndian.PutUint32(mvhd[16:], 2000) // 2 s
	hdlr := append(append(make([]byte, 8), "vide"...), make([]byte, 13)...)
	trak := box("trak", box("tkhd", make([]byte, 84)), box("mdia", box("mdhd", make([]byte, 24)), box("hdlr", hdlr)))
	return bytes.Join([][]byte{box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41")), box("moov", box("mvhd", mvhd), trak),
		box("mdat", bytes.Repeat([]byte{0x5a}, 3000))}, nil)
}

func TestRunParsesFileFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := jobsFactory("http://127.0.0.1:1/v2")
	var got *RunOptions
	cmd := NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--input", "job.json", "--file", "motion.mp4=dance.mp4", "--file", "song.wav"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || strings.Join(got.Files, ",") != "motion.mp4=dance.mp4,song.wav" || got.InputFile != "job.json" {
		t.Errorf("options = %+v", got)
	}
	// --file alone is something to send.
	cmd = NewCmdRun(f, func(_ context.Context, o *RunOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--file", "a.mp4"})
	if err := cmd.Execute(); err != nil {
		t.Errorf("--file alone: %v", err)
	}
}

func TestRunFileUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clip := filepath.Join(dir, "dance.mp4")
	if err := os.WriteFile(clip, testMP4(), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.mp4")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 16<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--file", "=x.mp4"}, "--file \"=x.mp4\": want NAME=PATH, e.g. motion.mp4=./dance.mp4"},
		{[]string{"run", "--file", "a.mp4=" + filepath.Join(dir, "missing.mp4")}, "missing.mp4"},
		{[]string{"run", "--file", "a.mp4=" + big}, "more than the 15.0 MiB RunPod takes in a request once encoded as base64; put the file at an https URL"},
		{[]string{"run", "--image", "motion.mp4=" + clip}, "not a PNG, JPEG, GIF or WEBP image; send videos, audio and other files with --file motion.mp4=" + clip},
	} {
		f, _, _, errOut := jobsFactory("http://127.0.0.1:1/v2")
		f.Getenv = func(k string) string {
			return map[string]string{envEndpointID: "ep1", envAPIKey: cliTestKey}[k]
		}
		if code := Run(context.Background(), f, tc.args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %s", tc.args, code, ExitUsage, errOut)
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, errOut, tc.want)
		}
	}
}

// TestRunSendsAVideo runs comfypod run --file against the local stack: the
// worker takes the MP4 from input.images, uploads it, and the workflow's
// video loader reads, from ComfyUI's input folder, the very bytes of the
// file; its frames come back as images.
func TestRunSendsAVideo(t *testing.T) {
	t.Parallel()
	read := make(chan []byte, 1)
	var info node.Info
	if err := json.Unmarshal([]byte(`{"input": {"required": {"video": [[]]}}, "input_order": {"required": ["video"]},
	  "output": ["IMAGE"], "output_is_list": [false], "output_name": ["IMAGE"], "name": "VHS_LoadVideo", "display_name": "Load Video (Upload)",
	  "description": "", "python_module": "test", "category": "test", "output_node": false}`), &info); err != nil {
		t.Fatal(err)
	}
	loader := &node.Class{
		Info:          &info,
		ValidateSkips: []string{"video"},
		Execute: func(ctx context.Context, env *node.Env, in node.Inputs) (*node.Result, error) {
			p, err := env.InputPath(in.String("video"))
			if err != nil {
				return nil, err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			read <- data
			return &node.Result{Outputs: []any{node.NewImage(2, 4, 4, 3)}}, nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, &devstack.Config{EngineClasses: []*node.Class{loader}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	dir := t.TempDir()
	clip := testMP4()
	path := filepath.Join(dir, "dance.mp4")
	if err := os.WriteFile(path, clip, 0o644); err != nil {
		t.Fatal(err)
	}
	wf := writeFile(t, dir, "wf.json", `{"1": {"class_type": "VHS_LoadVideo", "inputs": {"video": "motion.mp4"}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "frame"}}}`)
	outDir := filepath.Join(dir, "out")
	f, out, errOut := lintFactory(st.Env())
	if code := Run(ctx, f, []string{"run", "--workflow", wf, "--file", "motion.mp4=" + path, "--out", outDir, "--timeout", "1m"}); code != ExitOK {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case got := <-read:
		if !bytes.Equal(got, clip) {
			t.Errorf("the loader read %d bytes, not the file's %d", len(got), len(clip))
		}
	default:
		t.Fatal("the video loader did not run")
	}
	if saved := strings.Fields(out.String()); len(saved) != 2 {
		t.Errorf("saved %q, want the two frames", saved)
	}
	if b64 := base64.StdEncoding.EncodeToString(clip); strings.Contains(errOut.String(), b64[:32]) {
		t.Error("the file's data was printed")
	}
}
