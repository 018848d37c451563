package comfy_test

import (
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/comfypod/comfypod/comfy"
)

func brushModel(t testing.TB) *comfy.Workflow {
	t.Helper()
	data, err := os.ReadFile("testdata/image-brush/workflow_api.json")
	if err != nil {
		t.Fatal(err)
	}
	wf, err := comfy.ParseWorkflow(data)
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func inputText(t testing.TB, wf *comfy.Workflow, id, input string) string {
	t.Helper()
	n, ok := wf.Node(id)
	if !ok {
		t.Fatalf("no node %s", id)
	}
	v, ok := n.Input(input)
	if !ok {
		t.Fatalf("node %s has no input %s", id, input)
	}
	return string(v)
}

func TestFileInputsAndRenameFile(t *testing.T) {
	t.Parallel()
	wf := brushModel(t)
	want := []comfy.FileInput{
		{Node: "590", Class: "LoadImage", Input: "image", Kind: "image", Value: "input-2.png"},
		{Node: "422", Class: "LoadImage", Input: "image", Kind: "image", Value: "input-1.png"},
		{Node: "698", Class: "LoadImage", Input: "image", Kind: "image", Value: "mask.png"},
	}
	for _, info := range []comfy.ObjectInfo{nil, conformanceInfo(t)} {
		if got := wf.FileInputs(info); !reflect.DeepEqual(got, want) {
			t.Errorf("FileInputs(info=%v) = %+v", info != nil, got)
		}
	}
	// The server renamed an upload: point the LoadImage at the new name.
	if got := wf.RenameFile(nil, "input-1.png", "input-1 (1).png"); !reflect.DeepEqual(got, []string{"422"}) {
		t.Errorf("RenameFile changed %v", got)
	}
	if got := inputText(t, wf, "422", "image"); got != `"input-1 (1).png"` {
		t.Errorf("422.image = %s", got)
	}
	if got := wf.RenameFile(nil, "nope.png", "x.png"); got != nil {
		t.Errorf("renamed %v for an absent name", got)
	}
	// Annotations survive.
	_ = wf.Set("590", "image", "ref.png [output]")
	wf.RenameFile(nil, "ref.png", "ref (2).png")
	if got := inputText(t, wf, "590", "image"); got != `"ref (2).png [output]"` {
		t.Errorf("590.image = %s", got)
	}
}

func TestOutputNodes(t *testing.T) {
	t.Parallel()
	wf, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
	  "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
	  "3": {"class_type": "MySaver", "inputs": {"images": ["1", 0]}},
	  "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ns []*comfy.Node) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.ID)
		}
		return out
	}
	if got := ids(wf.OutputNodes(nil)); !reflect.DeepEqual(got, []string{"2", "4"}) {
		t.Errorf("without info: %v", got)
	}
	info := conformanceInfo(t)
	info["MySaver"] = &comfy.ClassInfo{Name: "MySaver", OutputNode: true}
	if got := ids(wf.OutputNodes(info)); !reflect.DeepEqual(got, []string{"2", "3", "4"}) {
		t.Errorf("with info: %v", got)
	}
}

func TestUniquePrefixes(t *testing.T) {
	t.Parallel()
	wf, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
	  "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "brush/out"}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "plain"}},
	  "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "dir/"}},
	  "5": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": ""}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := wf.UniquePrefixes("job-1a2b")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"2": "brush/job-1a2b_out", "3": "job-1a2b_plain", "4": "dir/job-1a2b", "5": "job-1a2b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	for id, p := range want {
		if v := inputText(t, wf, id, "filename_prefix"); v != strconv.Quote(p) {
			t.Errorf("node %s prefix = %s", id, v)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "sp ace"} {
		if _, err := wf.UniquePrefixes(bad); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
}

func TestRandomizeSeeds(t *testing.T) {
	t.Parallel()
	info := conformanceInfo(t)
	wf := brushModel(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	changes := wf.RandomizeSeeds(rnd, info)
	if len(changes) != 1 || changes[0].Node != "689" || changes[0].Input != "seed" {
		t.Fatalf("changes = %+v", changes)
	}
	if changes[0].Seed > comfy.MaxSafeSeed {
		t.Errorf("seed %d above MaxSafeSeed", changes[0].Seed)
	}
	if got := inputText(t, wf, "689", "seed"); got != strconv.FormatUint(changes[0].Seed, 10) {
		t.Errorf("689.seed = %s, reported %d", got, changes[0].Seed)
	}
	// The same source gives the same seeds: tests and replays are repeatable.
	again := brushModel(t).RandomizeSeeds(rand.New(rand.NewPCG(1, 2)), info)
	if !reflect.DeepEqual(changes, again) {
		t.Errorf("not reproducible: %v vs %v", changes, again)
	}
	// Without info, noise_seed counts too and the range is 0..DefaultMaxSeed;
	// a linked seed is left alone.
	wf2, err := comfy.ParseWorkflow([]byte(`{
	  "1": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
	  "2": {"class_type": "KSampler", "inputs": {"seed": ["3", 0]}},
	  "3": {"class_type": "Seed", "inputs": {"value": 1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ch := wf2.RandomizeSeeds(rand.New(rand.NewPCG(3, 4)), nil)
	if len(ch) != 1 || ch[0].Node != "1" || ch[0].Seed > comfy.DefaultMaxSeed {
		t.Errorf("changes = %+v", ch)
	}
	if got := inputText(t, wf2, "2", "seed"); got != `["3",0]` {
		t.Errorf("linked seed changed to %s", got)
	}
}
