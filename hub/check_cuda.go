package hub

import (
	"fmt"
	"slices"
	"strings"
)

// cudaList is an allowedCudaVersions array and its string values.
type cudaList struct {
	doc      *jsonDoc
	node     *node
	versions []string // the string elements, in order
}

func (l *cudaList) present() bool { return l != nil && l.node != nil }

// has reports whether the list allows v.
func (l *cudaList) has(v string) bool { return slices.Contains(l.versions, v) }

// lowest and highest return the extreme versions (by number).
func (l *cudaList) lowest() string {
	vs := l.sorted()
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func (l *cudaList) highest() string {
	vs := l.sorted()
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func (l *cudaList) sorted() []string {
	var vs []string
	for _, v := range l.versions {
		if _, ok := parseCUDA(v); ok {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, compareCUDA)
	return vs
}

// readCUDA reads allowedCudaVersions of a config object, reporting values
// of the wrong type and unknown versions.
func (c *pkgCtx) readCUDA(d *jsonDoc, cfg *node) *cudaList {
	n := cfg.get("allowedCudaVersions")
	if n == nil {
		return nil
	}
	l := &cudaList{doc: d}
	if !c.expect(d, n, kArray, `write a list of strings such as ["12.7", "12.6"]`) {
		return l
	}
	l.node = n
	for _, e := range n.elems {
		switch {
		case e.is(kNumber):
			c.atNode(d, e, ruleFieldType, "CUDA versions are strings: write \"%s\"; a number loses the difference between 12.1 and 12.10", e.str)
		case !c.expect(d, e, kString, ""):
		case !c.cat.KnownCUDA(e.str):
			msg := fmt.Sprintf("CUDA version %q is not one RunPod offers (%s)", e.str, strings.Join(c.cat.CUDAVersions, ", "))
			if e.str == "11.7" {
				msg += "; 11.7 is in the docs' template but not in the API, so it never matches a host: delete it"
			} else {
				msg += "; delete it"
			}
			c.atNode(d, e, ruleCUDAUnknown, "%s", msg)
			l.versions = append(l.versions, e.str)
		default:
			l.versions = append(l.versions, e.str)
		}
	}
	return l
}

func (c *pkgCtx) checkCUDA() {
	var hub, tests *cudaList
	if cfg := c.hubConfig(); cfg != nil {
		hub = c.readCUDA(c.hub, cfg)
	}
	var testsCfg *node
	if root := c.testsRoot(); root != nil {
		if cfg := root.get("config"); cfg.is(kObject) {
			testsCfg = cfg
			tests = c.readCUDA(c.tests, cfg)
		}
	}
	c.checkCUDASync(hub, tests, testsCfg)
	maxHub := c.cat.HubMaxCUDA
	for _, l := range []*cudaList{hub, tests} {
		if !l.present() || len(l.sorted()) == 0 {
			continue
		}
		if compareCUDA(l.lowest(), maxHub) > 0 {
			c.atNode(l.doc, l.node, ruleCUDAOnlyNew, "allowedCudaVersions %s allows only CUDA %s and newer, but the Hub's test hosts have at most %s: the test never gets a machine and waits forever, with no log. "+
				"Allow %s and older (with a base image built for them), or skip the Hub and deploy a serverless endpoint directly with these versions",
				quoteArray(l.versions), l.lowest(), maxHub, maxHub)
			continue
		}
		if compareCUDA(l.highest(), maxHub) > 0 && l == hub {
			var newer []string
			for _, v := range l.sorted() {
				if compareCUDA(v, maxHub) > 0 {
					newer = append(newer, v)
				}
			}
			c.atNode(l.doc, l.node, ruleCUDAHubNew, "allowedCudaVersions lists %s, newer than the %s the Hub's test hosts have; Hub tests use the older versions, so the image must run on CUDA %s",
				strings.Join(newer, ", "), maxHub, l.lowest())
		}
	}
	c.checkBlackwell(hub, tests)
}

func quoteArray(vs []string) string { return "[" + quoteList(vs) + "]" }

// checkCUDASync compares tests.json's allowedCudaVersions with hub.json's.
func (c *pkgCtx) checkCUDASync(hub, tests *cudaList, testsCfg *node) {
	if !hub.present() || len(hub.versions) == 0 || testsCfg == nil {
		return
	}
	fixable := len(c.hub.problems) == 0 && len(c.tests.problems) == 0
	want := quoteArray(hub.versions)
	if !tests.present() {
		if tests != nil {
			return // not an array: reported as field-type
		}
		f := c.atMissing(c.tests, testsCfg, "allowedCudaVersions", ruleCUDASubset, "tests.json has no allowedCudaVersions, so the test may run on a host the endpoint's %s excludes; copy hub.json's: \"allowedCudaVersions\": %s",
			want, want)
		if fixable {
			f.Fix = c.insertMemberFix(c.tests, testsCfg, "allowedCudaVersions", want, "copy hub.json's allowedCudaVersions")
		}
		return
	}
	var extra, missing []string
	for _, v := range tests.versions {
		if !hub.has(v) {
			extra = append(extra, v)
		}
	}
	for _, v := range hub.versions {
		if !tests.has(v) {
			missing = append(missing, v)
		}
	}
	var f *Finding
	switch {
	case len(extra) > 0:
		f = c.atNode(c.tests, tests.node, ruleCUDAMismatch, "tests.json allows CUDA %s, which hub.json's allowedCudaVersions %s does not: the Hub tests on a machine the endpoint cannot use and the test waits forever, with no log; make the lists equal: %s",
			strings.Join(extra, ", "), want, want)
	case len(missing) > 0:
		f = c.atNode(c.tests, tests.node, ruleCUDASubset, "tests.json allows fewer CUDA versions than hub.json (missing %s); keep the two lists equal so the test runs where the endpoint runs: %s",
			strings.Join(missing, ", "), want)
	default:
		return
	}
	if fixable {
		f.Fix = c.replaceFix(c.tests, tests.node, want, "copy hub.json's allowedCudaVersions to tests.json")
	}
}

// insertMemberFix adds "key": value as the last member of obj, indented
// like the member before it.
func (c *pkgCtx) insertMemberFix(d *jsonDoc, obj *node, key, value, desc string) *Fix {
	member := jsonString(key) + ": " + value
	if len(obj.members) == 0 {
		return &Fix{Description: desc, Edits: []Edit{c.edit(d, obj.start, obj.end, "{"+member+"}")}}
	}
	last := obj.members[len(obj.members)-1]
	sep := ", "
	if ls, _ := d.position(last.keyStart); ls != lineOf(d, obj.start) {
		sep = ",\n" + indentOf(d.text, last.keyStart)
		if strings.Contains(string(d.text[obj.start:last.keyStart]), "\r\n") {
			sep = ",\r\n" + indentOf(d.text, last.keyStart)
		}
	}
	at := last.value.end
	return &Fix{Description: desc, Edits: []Edit{c.edit(d, at, at, sep+member)}}
}

func lineOf(d *jsonDoc, off int) int {
	l, _ := d.position(off)
	return l
}

// indentOf returns the whitespace that starts the line holding off.
func indentOf(text []byte, off int) string {
	start := off
	for start > 0 && text[start-1] != '\n' {
		start--
	}
	end := start
	for end < len(text) && (text[end] == ' ' || text[end] == '\t') {
		end++
	}
	return string(text[start:end])
}

// checkBlackwell reports Blackwell GPUs (minimum CUDA 12.8) combined with
// CUDA versions that cannot run them, or with Hub testing, which cannot.
func (c *pkgCtx) checkBlackwell(hub, tests *cudaList) {
	if root := c.testsRoot(); root != nil {
		id := root.get("config").get("gpuTypeId")
		if g, ok := c.cat.GPU(id.text()); ok && g.MinCUDA != "" && compareCUDA(g.MinCUDA, c.cat.HubMaxCUDA) > 0 {
			allowed := tests
			if !allowed.present() {
				allowed = hub
			}
			alt := c.nonBlackwellExample()
			if allowed.present() && len(allowed.sorted()) > 0 && compareCUDA(allowed.highest(), g.MinCUDA) < 0 {
				c.atNode(c.tests, id, ruleBlackwell, "the test GPU %q (%s) needs CUDA %s or newer, but allowedCudaVersions %s stop at %s: no machine matches and the test waits forever. "+
					"Test on %s, and deploy Blackwell GPUs as a direct serverless endpoint with CUDA %s+",
					g.ID, g.Arch, g.MinCUDA, quoteArray(allowed.versions), allowed.highest(), alt, g.MinCUDA)
			} else {
				c.atNode(c.tests, id, ruleBlackwell, "the test GPU %q (%s) needs CUDA %s, which the Hub's test hosts do not have (they stop at %s): the test cannot run on the Hub. "+
					"Test on %s, and deploy Blackwell GPUs as a direct serverless endpoint (docker build --platform linux/amd64, then a custom-image endpoint) with CUDA %s+",
					g.ID, g.Arch, g.MinCUDA, c.cat.HubMaxCUDA, alt, g.MinCUDA)
			}
		}
	}
	if !hub.present() || len(hub.sorted()) == 0 {
		return
	}
	n, toks := c.gpuIDs()
	for _, t := range toks {
		if t.exclude {
			continue
		}
		var min string
		var what string
		switch {
		case t.gpu != nil && t.gpu.MinCUDA != "":
			min, what = t.gpu.MinCUDA, t.gpu.ID
		case t.pool != nil && !t.pool.Any:
			min = poolMinCUDA(c.cat, t.pool)
			what = "pool " + t.pool.ID
		}
		if min == "" || compareCUDA(min, c.cat.HubMaxCUDA) <= 0 || compareCUDA(hub.highest(), min) >= 0 {
			continue
		}
		f := c.atOffset(c.hub, t.off, n.path, ruleBlackwell, "%s holds Blackwell GPUs, which need CUDA %s or newer, but allowedCudaVersions stop at %s, so workers never start there; "+
			"drop %s from gpuIds for the Hub, and deploy Blackwell GPUs as a direct serverless endpoint with CUDA %s+", what, min, hub.highest(), t.id, min)
		f.Severity = Warning
	}
}

// poolMinCUDA returns the lowest CUDA version every GPU of the pool runs, or
// "" when any GPU of it runs on older ones.
func poolMinCUDA(cat *Catalog, p *Pool) string {
	min := ""
	for _, id := range p.GPUs() {
		g, ok := cat.GPU(id)
		if !ok || g.MinCUDA == "" || compareCUDA(g.MinCUDA, cat.HubMaxCUDA) <= 0 {
			return ""
		}
		if min == "" || compareCUDA(g.MinCUDA, min) < 0 {
			min = g.MinCUDA
		}
	}
	return min
}

// nonBlackwellExample suggests a test GPU the Hub can run: one from
// hub.json's pools if there is one, else the RTX 4090.
func (c *pkgCtx) nonBlackwellExample() string {
	_, toks := c.gpuIDs()
	for _, t := range toks {
		if t.exclude || t.pool == nil {
			continue
		}
		for _, id := range t.pool.GPUs() {
			if g, ok := c.cat.GPU(id); ok && g.MinCUDA != "" && compareCUDA(g.MinCUDA, c.cat.HubMaxCUDA) <= 0 {
				return fmt.Sprintf("%q from %s", g.ID, t.pool.ID)
			}
		}
	}
	return `an Ada or Ampere GPU such as "NVIDIA GeForce RTX 4090" (ADA_24)`
}
