package hub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// reportFixture is a package with errors, a warning, an info and fixable
// findings, linted under the name pkg/brush.
func reportFixture(t *testing.T) *Report {
	t.Helper()
	m := edit(t, map[string][][2]string{
		".runpod/hub.json":   {{`"gpuIds": "ADA_24,AMPERE_24,-NVIDIA L4"`, `"gpuIds": "ADA_24, AMPERE_24"`}, {`"type": "huggingface"`, `"type": "huggingface_model"`}},
		".runpod/tests.json": {{`"gpuTypeId": "NVIDIA GeForce RTX 4090"`, `"gpuTypeId": "ADA_24"`}, {`["12.7", "12.6"]`, `["12.7", "12.6", "12.5"]`}},
		"Dockerfile":         {{"FROM --platform=linux/amd64 ", "FROM "}},
		"README.md":          {{"--platform linux/amd64 ", ""}},
	})
	res := lintFS(t, m)
	res.Dir = "pkg/brush"
	return &Report{Results: []*Result{res}}
}

func TestReportText(t *testing.T) {
	t.Parallel()
	r := reportFixture(t)
	var plain, color bytes.Buffer
	if err := r.WriteText(&plain, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("colour codes without Color")
	}
	compareGolden(t, "testdata/report/text.golden", plain.Bytes())
	if err := r.WriteText(&color, TextOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(color.String(), ansiRed) || !strings.Contains(color.String(), ansiYellow) {
		t.Error("no colour with Color")
	}
	var empty bytes.Buffer
	_ = (&Report{Results: []*Result{{Dir: "."}}}).WriteText(&empty, TextOptions{})
	if empty.String() != "no problems in 1 package\n" {
		t.Errorf("empty report = %q", empty.String())
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := reportFixture(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "testdata/report/json.golden", buf.Bytes())
}

// TestReportSARIF checks the parts of SARIF 2.1.0 that GitHub code scanning
// reads.
func TestReportSARIF(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := reportFixture(t).WriteSARIF(&buf, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "testdata/report/sarif.golden", buf.Bytes())
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name, Version string
					Rules         []struct {
						ID               string `json:"id"`
						ShortDescription struct{ Text string }
						HelpURI          string `json:"helpUri"`
					}
				}
			}
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           *struct{ StartLine, StartColumn int }
					}
				}
				Fixes []json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Version != "v1.2.3" {
		t.Fatalf("header: %+v", log)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != len(Rules()) {
		t.Errorf("%d rules in the driver, want %d", len(run.Tool.Driver.Rules), len(Rules()))
	}
	fixes := 0
	for _, r := range run.Results {
		if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("ruleIndex %d does not point at %s", r.RuleIndex, r.RuleID)
		}
		if r.Level != "error" && r.Level != "warning" && r.Level != "note" || r.Message.Text == "" || len(r.Locations) != 1 {
			t.Errorf("bad result %+v", r)
		}
		if uri := r.Locations[0].PhysicalLocation.ArtifactLocation.URI; !strings.HasPrefix(uri, "pkg/brush/") {
			t.Errorf("uri %q not relative to the repository", uri)
		}
		fixes += len(r.Fixes)
	}
	if fixes != 2 {
		t.Errorf("%d fixes in SARIF, want 2 (gpuIds spacing, CUDA sync)", fixes)
	}
}
