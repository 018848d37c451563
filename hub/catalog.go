package hub

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

//go:embed catalog.json
var catalogJSON []byte

// Catalog holds the values the linter checks against: GPU pools and GPU type
// ids, CUDA versions, CPU flavors, Hub categories and input types, and the
// test timeouts model sizes need. The copy built into comfypod comes from
// catalog.json, which says where each list comes from and when it was last
// checked; ParseCatalog reads an edited copy.
type Catalog struct {
	// Updated is the date the data was last checked (YYYY-MM-DD).
	Updated string
	// Categories are the hub.json category values.
	Categories []string
	// RunsOn are the config.runsOn values.
	RunsOn []string
	// EndpointTypes are the config.endpointType values.
	EndpointTypes []string
	// InputTypes are the env input types.
	InputTypes []string
	// UndocumentedInputKeys are env input keys accepted packages use although
	// the docs do not list them.
	UndocumentedInputKeys []string
	// CUDAVersions are the valid allowedCudaVersions values, lowest first.
	CUDAVersions []string
	// HubMaxCUDA is the highest CUDA version the Hub's test hosts have.
	HubMaxCUDA string
	// CPUFlavors are the endpoint cpuFlavor values; PodCPUFlavors exist for
	// Pods only.
	CPUFlavors, PodCPUFlavors []string
	// Pools are the GPU pool ids hub.json gpuIds takes.
	Pools []Pool
	// GPUs are the GPU type ids tests.json gpuTypeId takes.
	GPUs []GPU
	// Timeouts are the shortest test timeouts by model size, smallest first.
	Timeouts []TimeoutThreshold
	// VolumeModelFolders are ComfyUI model folders that belong under
	// /runpod-volume/models/.
	VolumeModelFolders []string

	pools map[string]*Pool
	gpus  map[string]*GPU
}

// Pool is a GPU pool: the unit hub.json gpuIds and endpoints select GPUs by.
type Pool struct {
	// ID is the pool id, e.g. "ADA_24".
	ID string
	// VRAMGB is the memory of its GPUs.
	VRAMGB int
	// Any means the pool takes every GPU.
	Any bool
	// DocsGPUs and FlashGPUs are its GPU type ids per RunPod's two doc
	// tables, which disagree; nil when a table does not list the pool.
	DocsGPUs, FlashGPUs []string
}

// Has reports whether gpu is in the pool according to either table.
func (p *Pool) Has(gpu string) bool {
	return p.Any || slices.Contains(p.DocsGPUs, gpu) || slices.Contains(p.FlashGPUs, gpu)
}

// Disputed reports whether the two doc tables disagree about gpu in this pool.
func (p *Pool) Disputed(gpu string) bool {
	if p.DocsGPUs == nil || p.FlashGPUs == nil {
		return false
	}
	return slices.Contains(p.DocsGPUs, gpu) != slices.Contains(p.FlashGPUs, gpu)
}

// GPUs returns the GPU type ids in the pool by either table.
func (p *Pool) GPUs() []string {
	out := slices.Clone(p.DocsGPUs)
	for _, g := range p.FlashGPUs {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// GPU is a GPU type id with what the linter needs to know about it.
type GPU struct {
	// ID is the GPU type id exactly as RunPod spells it.
	ID string
	// Arch is the architecture, e.g. "Ada Lovelace" or "Blackwell".
	Arch string
	// Vendor is "NVIDIA" or "AMD".
	Vendor string
	// VRAMGB is its memory.
	VRAMGB int
	// MinCUDA is the lowest CUDA version that runs it ("" for AMD).
	MinCUDA string
}

// Blackwell reports whether the GPU needs a CUDA 12.8+ driver.
func (g *GPU) Blackwell() bool { return g.Arch == "Blackwell" }

// TimeoutThreshold is the shortest test timeout for models of at least
// MinParamsB billion parameters.
type TimeoutThreshold struct {
	// MinParamsB is the model size, in billions of parameters, from which
	// the threshold applies.
	MinParamsB float64
	// MinTimeoutMs is the shortest test timeout for such models.
	MinTimeoutMs int
}

// DefaultCatalog returns the catalog built into comfypod.
func DefaultCatalog() *Catalog {
	c, err := ParseCatalog(catalogJSON)
	if err != nil {
		// catalog.json is checked by the tests; this cannot happen in a
		// released binary.
		panic("hub: built-in catalog.json: " + err.Error())
	}
	return c
}

// ParseCatalog reads a catalog in the format of catalog.json.
func ParseCatalog(data []byte) (*Catalog, error) {
	var raw struct {
		Updated               string   `json:"updated"`
		Categories            []string `json:"categories"`
		RunsOn                []string `json:"runsOn"`
		EndpointTypes         []string `json:"endpointTypes"`
		InputTypes            []string `json:"inputTypes"`
		UndocumentedInputKeys struct {
			Keys []string `json:"keys"`
		} `json:"undocumentedInputKeys"`
		CUDA struct {
			Versions []string `json:"versions"`
		} `json:"cudaVersions"`
		HubMaxCUDA struct {
			Version string `json:"version"`
		} `json:"hubMaxCuda"`
		CPU struct {
			Endpoint []string `json:"endpoint"`
			PodOnly  []string `json:"podOnly"`
		} `json:"cpuFlavors"`
		Pools []struct {
			ID     string   `json:"id"`
			VRAMGB int      `json:"vramGb"`
			Any    bool     `json:"any"`
			Docs   []string `json:"docs-gpu"`
			Flash  []string `json:"docs-flash"`
		} `json:"pools"`
		GPUs struct {
			List []struct {
				ID      string `json:"id"`
				Arch    string `json:"arch"`
				Vendor  string `json:"vendor"`
				VRAMGB  int    `json:"vramGb"`
				MinCUDA string `json:"minCuda"`
			} `json:"list"`
		} `json:"gpus"`
		Timeouts struct {
			Thresholds []struct {
				MinParamsB   float64 `json:"minParamsB"`
				MinTimeoutMs int     `json:"minTimeoutMs"`
			} `json:"thresholds"`
		} `json:"timeouts"`
		Volume struct {
			Folders []string `json:"folders"`
		} `json:"volumeModelFolders"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c := &Catalog{
		Updated:               raw.Updated,
		Categories:            raw.Categories,
		RunsOn:                raw.RunsOn,
		EndpointTypes:         raw.EndpointTypes,
		InputTypes:            raw.InputTypes,
		UndocumentedInputKeys: raw.UndocumentedInputKeys.Keys,
		CUDAVersions:          raw.CUDA.Versions,
		HubMaxCUDA:            raw.HubMaxCUDA.Version,
		CPUFlavors:            raw.CPU.Endpoint,
		PodCPUFlavors:         raw.CPU.PodOnly,
		VolumeModelFolders:    raw.Volume.Folders,
		pools:                 map[string]*Pool{},
		gpus:                  map[string]*GPU{},
	}
	var errs []error
	for _, g := range raw.GPUs.List {
		vendor := g.Vendor
		if vendor == "" {
			vendor = "NVIDIA"
		}
		if g.ID == "" {
			errs = append(errs, errors.New("a GPU has no id"))
			continue
		}
		if g.MinCUDA != "" {
			if _, ok := parseCUDA(g.MinCUDA); !ok {
				errs = append(errs, fmt.Errorf("GPU %q: minCuda %q is not a major.minor version", g.ID, g.MinCUDA))
			}
		}
		if _, dup := c.gpus[g.ID]; dup {
			errs = append(errs, fmt.Errorf("GPU %q is listed twice", g.ID))
		}
		c.GPUs = append(c.GPUs, GPU{ID: g.ID, Arch: g.Arch, Vendor: vendor, VRAMGB: g.VRAMGB, MinCUDA: g.MinCUDA})
		c.gpus[g.ID] = &c.GPUs[len(c.GPUs)-1]
	}
	// Re-point the index: appends may have moved the slice.
	for i := range c.GPUs {
		c.gpus[c.GPUs[i].ID] = &c.GPUs[i]
	}
	for _, p := range raw.Pools {
		if p.ID == "" {
			errs = append(errs, errors.New("a pool has no id"))
			continue
		}
		for _, g := range append(slices.Clone(p.Docs), p.Flash...) {
			if _, ok := c.gpus[g]; !ok {
				errs = append(errs, fmt.Errorf("pool %s lists %q, which is not in gpus", p.ID, g))
			}
		}
		c.Pools = append(c.Pools, Pool{ID: p.ID, VRAMGB: p.VRAMGB, Any: p.Any, DocsGPUs: p.Docs, FlashGPUs: p.Flash})
	}
	for i := range c.Pools {
		c.pools[c.Pools[i].ID] = &c.Pools[i]
	}
	for _, v := range c.CUDAVersions {
		if _, ok := parseCUDA(v); !ok {
			errs = append(errs, fmt.Errorf("cudaVersions: %q is not a major.minor version", v))
		}
	}
	if _, ok := parseCUDA(c.HubMaxCUDA); !ok {
		errs = append(errs, fmt.Errorf("hubMaxCuda: %q is not a major.minor version", c.HubMaxCUDA))
	}
	slices.SortFunc(c.CUDAVersions, compareCUDA)
	for _, t := range raw.Timeouts.Thresholds {
		if t.MinParamsB <= 0 || t.MinTimeoutMs <= 0 {
			errs = append(errs, fmt.Errorf("timeouts: minParamsB and minTimeoutMs must be positive, got %v and %d", t.MinParamsB, t.MinTimeoutMs))
			continue
		}
		c.Timeouts = append(c.Timeouts, TimeoutThreshold{MinParamsB: t.MinParamsB, MinTimeoutMs: t.MinTimeoutMs})
	}
	slices.SortFunc(c.Timeouts, func(a, b TimeoutThreshold) int {
		switch {
		case a.MinParamsB < b.MinParamsB:
			return -1
		case a.MinParamsB > b.MinParamsB:
			return 1
		}
		return 0
	})
	for name, list := range map[string][]string{"categories": c.Categories, "runsOn": c.RunsOn, "inputTypes": c.InputTypes, "cudaVersions": c.CUDAVersions, "cpuFlavors": c.CPUFlavors} {
		if len(list) == 0 {
			errs = append(errs, fmt.Errorf("%s is empty", name))
		}
	}
	if len(c.GPUs) == 0 || len(c.Pools) == 0 {
		errs = append(errs, errors.New("pools and gpus must not be empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return c, nil
}

// Pool returns the pool with id.
func (c *Catalog) Pool(id string) (*Pool, bool) {
	p, ok := c.pools[id]
	return p, ok
}

// GPU returns the GPU with type id id (exact match, as the server does).
func (c *Catalog) GPU(id string) (*GPU, bool) {
	g, ok := c.gpus[id]
	return g, ok
}

// PoolsOf returns the ids of the pools that hold gpu by either doc table.
func (c *Catalog) PoolsOf(gpu string) []string {
	var out []string
	for i := range c.Pools {
		if !c.Pools[i].Any && c.Pools[i].Has(gpu) {
			out = append(out, c.Pools[i].ID)
		}
	}
	return out
}

// KnownCUDA reports whether v is a valid CUDA version string.
func (c *Catalog) KnownCUDA(v string) bool { return slices.Contains(c.CUDAVersions, v) }

// MinTimeout returns the shortest test timeout for a model of paramsB
// billion parameters, or 0 when the table asks nothing of it.
func (c *Catalog) MinTimeout(paramsB float64) int {
	ms := 0
	for _, t := range c.Timeouts {
		if paramsB >= t.MinParamsB {
			ms = t.MinTimeoutMs
		}
	}
	return ms
}

// cudaVersion is a parsed major.minor CUDA version.
type cudaVersion struct{ major, minor int }

func (v cudaVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// parseCUDA parses "12.8" (numerically: 12.10 > 12.9).
func parseCUDA(s string) (cudaVersion, bool) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return cudaVersion{}, false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 || a > math.MaxInt16 || b > math.MaxInt16 {
		return cudaVersion{}, false
	}
	return cudaVersion{a, b}, true
}

// compareCUDA orders CUDA version strings numerically; unparseable ones sort
// first.
func compareCUDA(a, b string) int {
	va, oka := parseCUDA(a)
	vb, okb := parseCUDA(b)
	switch {
	case !oka || !okb:
		return boolCmp(oka, okb)
	case va.major != vb.major:
		return va.major - vb.major
	}
	return va.minor - vb.minor
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
