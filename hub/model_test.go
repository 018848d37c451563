package hub

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseHubAndTests(t *testing.T) {
	t.Parallel()
	m := readTree(t, cleanPackage)
	h, err := ParseHub(m[".runpod/hub.json"].Data)
	if err != nil {
		t.Fatal(err)
	}
	if h.Config.GPUIDs != "ADA_24,AMPERE_24,-NVIDIA L4" || h.Config.ContainerDiskInGb != 20 || len(h.Config.Env) != 5 {
		t.Errorf("hub = %+v", h.Config)
	}
	if e := h.Config.Env[0]; e.Key != "OUTPUT_FORMAT" || e.Value != "png" || e.Input != nil {
		t.Errorf("static env = %+v", e)
	}
	if in := h.Config.Env[1].Input; in == nil || len(in.Options) != 3 || string(in.Default) != `"INFO"` {
		t.Errorf("select input = %+v", in)
	}
	if in := h.Config.Env[3].Input; in.Min == nil || in.Min.String() != "64" {
		t.Errorf("number input = %+v", in)
	}
	tests, err := ParseTests(m[".runpod/tests.json"].Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests.Tests) != 1 || tests.Tests[0].TimeoutMs != 300000 || tests.Config.GPUTypeID != "NVIDIA GeForce RTX 4090" {
		t.Errorf("tests = %+v", tests)
	}

	_, err = ParseHub([]byte("{\n  \"title\": \"x\",\n}"))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || se.Column != 15 {
		t.Errorf("err = %v, want a syntax error at 2:15", err)
	}
	_, err = ParseHub([]byte(`{"config": {"gpuIds": ["ADA_24"]}}`))
	if err == nil || !strings.Contains(err.Error(), "config.gpuIds") {
		t.Errorf("err = %v, want one naming config.gpuIds", err)
	}
	if _, err := ParseTests([]byte(`[]`)); err == nil {
		t.Error("an array accepted as tests.json")
	}
}

// TestScaffoldPassesLint builds a package from the models alone, as
// comfypod init will, and checks that the linter finds nothing.
func TestScaffoldPassesLint(t *testing.T) {
	t.Parallel()
	min, max := json.Number("64"), json.Number("4096")
	h := &Hub{
		Title: "Image Brush", Description: "Paints a reference into a masked region.", Type: "serverless", Category: "image",
		Config: HubConfig{
			RunsOn: "GPU", ContainerDiskInGb: 20, GPUCount: 1, GPUIDs: "ADA_24,AMPERE_24",
			AllowedCUDAVersions: []string{"12.7", "12.6"},
			Presets:             []Preset{{Name: "Big", Defaults: map[string]json.RawMessage{"MAX_SIDE": json.RawMessage("4096")}}},
			Env: []EnvEntry{
				{Key: "OUTPUT_FORMAT", Value: "png"},
				{Key: "MAX_SIDE", Input: &EnvInput{Name: "Largest side", Type: "number", Default: json.RawMessage("2048"), Min: &min, Max: &max}},
				{Key: "REFRESH_WORKER", Input: &EnvInput{Name: "Refresh", Type: "boolean", Default: json.RawMessage("false"), TrueValue: "true", FalseValue: "false"}},
			},
		},
	}
	tests := &Tests{
		Tests:  []Test{{Name: "brush", Input: json.RawMessage(`{"params": {"seed": 1}}`), TimeoutMs: 300000}},
		Config: TestsConfig{GPUTypeID: "NVIDIA GeForce RTX 4090", GPUCount: 1, AllowedCUDAVersions: []string{"12.7", "12.6"}},
	}
	hubData, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	testsData, err := tests.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m := readTree(t, cleanPackage)
	m[".runpod/hub.json"] = &fstest.MapFile{Data: hubData}
	m[".runpod/tests.json"] = &fstest.MapFile{Data: testsData}
	for _, f := range lintFS(t, m).Findings {
		t.Errorf("scaffolded package: %s", f)
	}
	back, err := ParseHub(hubData)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Encode()
	if string(again) != string(hubData) {
		t.Errorf("hub.json does not round-trip:\n%s\n%s", hubData, again)
	}
}

func TestEnvEntryNeedsValueOrInput(t *testing.T) {
	t.Parallel()
	var e EnvEntry
	if err := json.Unmarshal([]byte(`{"key": "A"}`), &e); err == nil {
		t.Error("an entry without value or input accepted")
	}
	if err := json.Unmarshal([]byte(`{"key": "A", "value": 3}`), &e); err != nil || e.Value != "3" {
		t.Errorf("numeric value: %+v, %v", e, err)
	}
}
