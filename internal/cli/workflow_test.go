package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfypod/comfypod/internal/testenv"
)

func testFactory() (*Factory, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	ios, in, out, errOut := TestIO()
	return &Factory{
		IO:         ios,
		Getenv:     func(string) string { return "" },
		HTTPClient: &http.Client{},
		Now:        time.Now,
		logLevel:   "info",
		logFormat:  "text",
	}, in, out, errOut
}

func brushCase(t testing.TB) string {
	return filepath.Join(testenv.Conformance(t), "cases", "brush_422_590_698", "workflow.json")
}

func TestWorkflowCheckParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var got *WorkflowCheckOptions
	cmd := NewCmdWorkflowCheck(f, func(_ context.Context, o *WorkflowCheckOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"wf.json", "--manifest", "m.json", "--object-info", "http://h:8188", "--workflow", "preview", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := WorkflowCheckOptions{File: "wf.json", Manifest: "m.json", ObjectInfo: "http://h:8188", Workflow: "preview", JSON: true}
	if got == nil || got.File != want.File || got.Manifest != want.Manifest || got.ObjectInfo != want.ObjectInfo || got.Workflow != want.Workflow || !got.JSON {
		t.Errorf("options = %+v", got)
	}
	if code := Run(context.Background(), f, []string{"workflow", "check"}); code != ExitUsage {
		t.Errorf("no FILE: exit %d, want %d", code, ExitUsage)
	}
}

func TestWorkflowCheckCleanWorkflow(t *testing.T) {
	t.Parallel()
	f, _, out, errOut := testFactory()
	oi := filepath.Join(testenv.Conformance(t), "object_info")
	code := Run(context.Background(), f, []string{"workflow", "check", brushCase(t), "--object-info", oi})
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s; stdout: %s", code, errOut, out)
	}
	for _, w := range []string{"API format, 12 nodes; output nodes: 9", "422   LoadImage", "712   ImageCompositeMasked", `698.image (LoadImage) = "mask_200x160.png"`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(errOut.String(), "no problems found") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestWorkflowCheckReportsProblemsAndExits1(t *testing.T) {
	t.Parallel()
	f, _, out, errOut := testFactory()
	file := filepath.Join(testenv.Conformance(t), "cases", "fail_bad_values", "workflow.json")
	oi := filepath.Join(testenv.Conformance(t), "object_info")
	code := Run(context.Background(), f, []string{"workflow", "check", file, "--object-info", oi})
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	for _, w := range []string{
		`node 1 (EmptyImage) input "width": want a number (INT), got "abc"`,
		`node 3 (SolidMask) input "value": value -0.5 is below the minimum 0.0`,
		`node 7 (ImageInvert) input "image": a link must be ["<node id>", <output index>], got 3 elements`,
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(errOut.String(), "3 problem(s) found") || strings.Contains(errOut.String(), "comfypod:") {
		t.Errorf("stderr: %q", errOut)
	}
}

func TestWorkflowCheckManifestBindings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "comfy", "testdata", "image-brush", "workflow_api.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Break two bindings: 658 becomes a KSampler, 689 loses its seed.
	broken := strings.Replace(string(src), `"class_type": "CLIPTextEncode"`, `"class_type": "KSampler"`, 1)
	broken = strings.Replace(broken, `"seed": 123456789012345678, `, ``, 1)
	for name, data := range map[string]string{"workflow_api.json": broken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest, _ := os.ReadFile(filepath.Join("..", "..", "comfy", "testdata", "image-brush", "comfypod.json"))
	if err := os.WriteFile(filepath.Join(dir, "comfypod.json"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}

	f, _, out, _ := testFactory()
	code := Run(context.Background(), f, []string{"workflow", "check", filepath.Join(dir, "workflow_api.json"), "--manifest", filepath.Join(dir, "comfypod.json")})
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, w := range []string{
		`workflow "default"`,
		"seed",
		"param `prompt`: node 658 is KSampler, expected CLIPTextEncode",
		"param `seed`: node 689 has no input `seed`",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
}

func TestWorkflowCheckJSONWithObjectInfoURL(t *testing.T) {
	t.Parallel()
	// A server answering /object_info with the captured classes.
	all := map[string]json.RawMessage{}
	files, _ := filepath.Glob(filepath.Join(testenv.Conformance(t), "object_info", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var part map[string]json.RawMessage
		if err := json.Unmarshal(data, &part); err != nil {
			t.Fatal(err)
		}
		for k, v := range part {
			all[k] = v
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/object_info" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(all)
	}))
	t.Cleanup(srv.Close)

	f, _, out, _ := testFactory()
	file := filepath.Join(testenv.Conformance(t), "cases", "runtime_blend_bad_mode", "workflow.json")
	code := Run(context.Background(), f, []string{"workflow", "check", file, "--object-info", srv.URL, "--json"})
	if code != ExitFailed {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var rep struct {
		Format   string `json:"format"`
		Nodes    []struct{ ID, ClassType string }
		Problems []struct {
			Node, Input, Message string
		} `json:"problems"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if rep.OK || rep.Format != "api" || len(rep.Nodes) != 3 || len(rep.Problems) != 1 || rep.Problems[0].Node != "2" || rep.Problems[0].Input != "blend_mode" {
		t.Errorf("report = %+v", rep)
	}

	// A dead URL is an error that does not leak credentials.
	f2, _, _, errOut := testFactory()
	code = Run(context.Background(), f2, []string{"workflow", "check", file, "--object-info", "http://user:secret@127.0.0.1:1/?token=abc"})
	if code != ExitFailed || strings.Contains(errOut.String(), "secret") || strings.Contains(errOut.String(), "abc") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestWorkflowCheckUIExport(t *testing.T) {
	t.Parallel()
	ui := filepath.Join("..", "..", "comfy", "testdata", "ui", "mixed.json")
	f, _, out, _ := testFactory()
	if code := Run(context.Background(), f, []string{"workflow", "check", ui}); code != ExitFailed {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "Export (API)") {
		t.Errorf("no export hint:\n%s", out)
	}
}

func TestWorkflowConvert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, src := range []string{
		filepath.Join(testenv.Conformance(t), "object_info"),
		filepath.Join("..", "..", "comfy", "testdata"),
	} {
		files, _ := filepath.Glob(filepath.Join(src, "*.json"))
		for _, file := range files {
			data, _ := os.ReadFile(file)
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(file)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, _, out, errOut := testFactory()
	ui := filepath.Join("..", "..", "comfy", "testdata", "ui", "mixed.json")
	if code := Run(context.Background(), f, []string{"workflow", "convert", ui, "--object-info", dir}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, _ := os.ReadFile(filepath.Join("..", "..", "comfy", "testdata", "ui", "mixed.api.json"))
	if !bytes.Equal(bytes.TrimSpace(out.Bytes()), bytes.TrimSpace(want)) {
		t.Errorf("stdout differs from mixed.api.json:\n%s", out)
	}
	f2, _, _, _ := testFactory()
	if code := Run(context.Background(), f2, []string{"workflow", "convert", ui}); code != ExitUsage {
		t.Errorf("without --object-info: exit %d", code)
	}
}
