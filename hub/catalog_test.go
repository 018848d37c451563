package hub

import (
	"strings"
	"testing"
)

func TestDefaultCatalog(t *testing.T) {
	t.Parallel()
	cat := DefaultCatalog()
	if cat.Updated == "" || len(cat.GPUs) < 49 || len(cat.Pools) < 11 {
		t.Fatalf("catalog: updated %q, %d GPUs, %d pools", cat.Updated, len(cat.GPUs), len(cat.Pools))
	}
	for _, id := range []string{"NVIDIA  RTX A4500", "NVIDIA  A30", "NVIDIA GeForce RTX 3080TI", "AMD Instinct MI300X OAM"} {
		if _, ok := cat.GPU(id); !ok {
			t.Errorf("GPU %q missing", id)
		}
	}
	for _, id := range []string{"NVIDIA GeForce RTX 5090", "NVIDIA B200", "NVIDIA RTX PRO 6000 Blackwell Server Edition",
		"NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"} {
		g, ok := cat.GPU(id)
		if !ok || !g.Blackwell() || g.MinCUDA != "12.8" {
			t.Errorf("%s: %+v, want Blackwell with min CUDA 12.8", id, g)
		}
	}
	if g, _ := cat.GPU("NVIDIA GeForce RTX 4090"); g.Blackwell() || compareCUDA(g.MinCUDA, "12.0") > 0 {
		t.Errorf("4090 = %+v", g)
	}
	// The two doc tables disagree; either placement counts.
	for gpu, pools := range map[string][]string{
		"NVIDIA RTX A4500": {"AMPERE_16", "AMPERE_24"},
		"NVIDIA L4":        {"AMPERE_24", "ADA_24"},
	} {
		if got := cat.PoolsOf(gpu); strings.Join(got, ",") != strings.Join(pools, ",") {
			t.Errorf("PoolsOf(%s) = %v, want %v", gpu, got, pools)
		}
		for _, p := range pools {
			if pool, _ := cat.Pool(p); !pool.Disputed(gpu) {
				t.Errorf("%s in %s should be marked disputed", gpu, p)
			}
		}
	}
	if !cat.KnownCUDA("11.8") || !cat.KnownCUDA("13.0") || cat.KnownCUDA("11.7") {
		t.Error("CUDA list wrong")
	}
	if cat.CUDAVersions[0] != "11.8" || cat.CUDAVersions[len(cat.CUDAVersions)-1] != "13.0" {
		t.Errorf("CUDA versions not sorted numerically: %v", cat.CUDAVersions)
	}
	if cat.MinTimeout(0.35) != 0 || cat.MinTimeout(14) != 900000 || cat.MinTimeout(13) != 600000 {
		t.Error("timeout table wrong")
	}
}

func TestCompareCUDA(t *testing.T) {
	t.Parallel()
	if compareCUDA("12.10", "12.9") <= 0 || compareCUDA("13.0", "12.9") <= 0 || compareCUDA("12.6", "12.6") != 0 || compareCUDA("x", "11.8") >= 0 {
		t.Error("compareCUDA must compare numerically")
	}
}

func TestParseCatalogErrors(t *testing.T) {
	t.Parallel()
	good := string(catalogJSON)
	for name, tc := range map[string]struct{ from, to, want string }{
		"not json":        {good, "{", "catalog:"},
		"unknown gpu":     {`"docs-gpu": ["NVIDIA GeForce RTX 4090"]`, `"docs-gpu": ["NVIDIA RTX 9999"]`, `lists "NVIDIA RTX 9999"`},
		"bad version":     {`"12.9", "13.0"]`, `"12.9", "13"]`, `"13" is not a major.minor`},
		"bad timeout":     {`{"minParamsB": 1, "minTimeoutMs": 120000}`, `{"minParamsB": 1, "minTimeoutMs": -1}`, "must be positive"},
		"duplicate gpu":   {`{"id": "NVIDIA A40",`, `{"id": "NVIDIA RTX A5000",`, "listed twice"},
		"no categories":   {`"categories": ["audio", "embedding", "language", "video", "image"]`, `"categories": []`, "categories is empty"},
		"bad hub max":     {`"version": "12.7"`, `"version": "twelve"`, "hubMaxCuda"},
		"pool without id": {`{"id": "ANY", "any": true,`, `{"any": true,`, "a pool has no id"},
	} {
		if !strings.Contains(good, tc.from) {
			t.Fatalf("%s: %q not in catalog.json", name, tc.from)
		}
		_, err := ParseCatalog([]byte(strings.Replace(good, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
