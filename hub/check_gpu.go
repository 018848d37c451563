package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/comfypod/comfypod/internal/suggest"
)

// gpuToken is one item of hub.json's gpuIds.
type gpuToken struct {
	text    string // as written, trimmed
	exclude bool   // starts with '-'
	id      string // text without the '-'
	off     int    // offset of the token in the document text
	pool    *Pool  // set when id is a pool
	gpu     *GPU   // set when id is a GPU type id
}

// gpuIDs returns the gpuIds tokens of hub.json, or nil when there are none
// or gpuIds is not a string.
func (c *pkgCtx) gpuIDs() (*node, []gpuToken) {
	n := c.hubConfig().get("gpuIds")
	if !n.is(kString) {
		return n, nil
	}
	raw := c.hub.text[n.start:n.end]
	plain := bytes.IndexByte(raw, '\\') < 0
	var toks []gpuToken
	pos := 0
	for _, part := range strings.Split(n.str, ",") {
		t := strings.TrimSpace(part)
		lead := len(part) - len(strings.TrimLeftFunc(part, unicode.IsSpace))
		off := n.start
		if plain {
			off = n.start + 1 + pos + lead
		}
		pos += len(part) + 1
		if t == "" {
			continue
		}
		tok := gpuToken{text: t, id: t, off: off}
		if strings.HasPrefix(t, "-") {
			tok.exclude = true
			tok.id = strings.TrimSpace(t[1:])
		}
		tok.pool, _ = c.cat.Pool(tok.id)
		tok.gpu, _ = c.cat.GPU(tok.id)
		toks = append(toks, tok)
	}
	return n, toks
}

// normalizedGPUIDs returns gpuIds without stray spaces and empty items.
func normalizedGPUIDs(s string) string {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if strings.HasPrefix(p, "-") {
			p = "-" + strings.TrimSpace(p[1:])
		}
		if p != "" && p != "-" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ",")
}

func (c *pkgCtx) checkGPUIDs() {
	cfg := c.hubConfig()
	if cfg == nil {
		return
	}
	d := c.hub
	n := cfg.get("gpuIds")
	if n == nil {
		return
	}
	if !n.is(kString) {
		hint := `write one string of comma-separated pool ids, e.g. "ADA_24,AMPERE_24"`
		if n.is(kArray) {
			var pools []string
			for _, e := range n.elems {
				if g, ok := c.cat.GPU(e.text()); ok {
					for _, p := range c.cat.PoolsOf(g.ID) {
						if !slices.Contains(pools, p) {
							pools = append(pools, p)
						}
					}
				} else if _, ok := c.cat.Pool(e.text()); ok && !slices.Contains(pools, e.text()) {
					pools = append(pools, e.text())
				}
			}
			if len(pools) > 0 {
				hint = fmt.Sprintf("write one string of pool ids; the GPUs listed are in %q", strings.Join(pools, ","))
			}
		}
		c.atNode(d, n, ruleGPUIDsType, "gpuIds must be a string, got %s; %s", describe(n), hint)
		return
	}
	if strings.TrimSpace(n.str) == "" {
		c.atNode(d, n, ruleGPUIDsUnknown, "gpuIds is empty; list the pools the endpoint may use, e.g. \"ADA_24,AMPERE_24\"")
		return
	}
	if norm := normalizedGPUIDs(n.str); norm != n.str {
		f := c.atNode(d, n, ruleGPUIDsSpacing, "gpuIds has spaces or empty items, and ids are matched exactly; write %q", norm)
		if len(d.problems) == 0 {
			f.Fix = c.replaceFix(d, n, jsonString(norm), "normalise gpuIds")
		}
	}
	_, toks := c.gpuIDs()
	var includes int
	for _, t := range toks {
		switch {
		case t.exclude && t.gpu != nil:
		case t.exclude && t.pool != nil:
			c.atOffset(d, t.off, n.path, ruleGPUIDsUnknown, "%q excludes a pool; exclusions take GPU type ids (\"-NVIDIA GeForce RTX 4090\"); to leave out the pool, drop %s from the list", t.text, t.id)
		case t.exclude:
			c.atOffset(d, t.off, n.path, ruleGPUIDsUnknown, "%q excludes %q, which is not a GPU type id%s", t.text, t.id, c.suggestGPU(t.id))
		case t.pool != nil:
			includes++
		case t.gpu != nil:
			includes++
			pools := c.cat.PoolsOf(t.gpu.ID)
			hint := "it is in no pool; pick a pool from " + c.poolList()
			if len(pools) > 0 {
				hint = fmt.Sprintf("use its pool %s", strings.Join(pools, " or "))
			}
			c.atOffset(d, t.off, n.path, ruleGPUIDsTypeID, "%q is a GPU type id; gpuIds takes pool ids: %s", t.id, hint)
		default:
			includes++
			c.atOffset(d, t.off, n.path, ruleGPUIDsUnknown, "%q is not a GPU pool%s", t.id, c.suggestPool(t.id))
		}
	}
	if includes == 0 && len(toks) > 0 {
		c.atNode(d, n, ruleGPUIDsUnknown, "gpuIds only excludes GPUs; list at least one pool first, e.g. \"ADA_24,-NVIDIA L4\"")
	}
}

func (c *pkgCtx) poolList() string {
	ids := make([]string, 0, len(c.cat.Pools))
	for _, p := range c.cat.Pools {
		if !p.Any {
			ids = append(ids, p.ID)
		}
	}
	return strings.Join(ids, ", ")
}

// gpuWords splits a GPU name into upper-case words that carry a model number
// (4090, A100, H100, A4000).
func gpuWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToUpper(s), func(r rune) bool { return r == ' ' || r == '_' || r == '-' || r == '/' }) {
		if strings.ContainsAny(w, "0123456789") && w != "NVIDIA" {
			out = append(out, w)
		}
	}
	return out
}

// squash removes vendor words and punctuation: "NVIDIA GeForce RTX 5090" →
// "RTX5090".
func squash(s string) string {
	s = strings.ToUpper(s)
	for _, w := range []string{"NVIDIA", "GEFORCE", "TESLA"} {
		s = strings.ReplaceAll(s, w, "")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
}

// similarGPUs returns GPU type ids that a mistyped one probably means.
func (c *pkgCtx) similarGPUs(s string) []string {
	var exact, byWord []string
	sq := squash(s)
	words := gpuWords(s)
	for _, g := range c.cat.GPUs {
		if sq != "" && squash(g.ID) == sq {
			exact = append(exact, g.ID)
			continue
		}
		gw := gpuWords(g.ID)
		for _, w := range words {
			if slices.Contains(gw, w) {
				byWord = append(byWord, g.ID)
				break
			}
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return byWord
}

func (c *pkgCtx) suggestGPU(s string) string {
	gs := c.similarGPUs(s)
	switch {
	case len(gs) == 0:
		return "; use a GPU type id exactly as RunPod spells it, e.g. \"NVIDIA GeForce RTX 4090\""
	case len(gs) > 3:
		gs = gs[:3]
	}
	return fmt.Sprintf("; did you mean %s?", strings.Join(quoted(gs), " or "))
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// suggestPool names the pool a mistyped pool id probably means.
func (c *pkgCtx) suggestPool(s string) string {
	var pools []string
	add := func(p string) {
		if !slices.Contains(pools, p) {
			pools = append(pools, p)
		}
	}
	up := strings.ToUpper(s)
	parts := strings.Split(up, "_")
	var near []string
	for _, p := range c.cat.Pools {
		if p.Any {
			continue
		}
		if up == p.ID {
			add(p.ID)
			continue
		}
		pp := strings.Split(p.ID, "_")
		match := len(parts) <= len(pp)
		for i := 0; match && i < len(parts); i++ {
			match = strings.HasPrefix(pp[i], parts[i]) && parts[i] != ""
		}
		if match {
			add(p.ID)
		} else if suggest.Distance(up, p.ID) <= 2 {
			near = append(near, p.ID)
		}
	}
	if len(pools) == 0 {
		pools = near
	}
	if len(pools) > 0 {
		if len(pools) == 1 && strings.EqualFold(pools[0], s) {
			return fmt.Sprintf("; pool ids are upper case: %q", pools[0])
		}
		return fmt.Sprintf("; did you mean %s?", strings.Join(pools, " or "))
	}
	for _, g := range c.similarGPUs(s) {
		for _, p := range c.cat.PoolsOf(g) {
			add(p)
		}
	}
	if len(pools) > 0 {
		return fmt.Sprintf("; that GPU is in pool %s", strings.Join(pools, " or "))
	}
	return "; known pools: " + c.poolList()
}

// isGPUPackage reports whether hub.json says the package runs on GPUs.
func (c *pkgCtx) isGPUPackage() bool {
	return c.hubConfig().get("runsOn").text() == "GPU"
}

// testsRoot returns tests.json's root object, if it can be checked.
func (c *pkgCtx) testsRoot() *node {
	if !usable(c.tests) || !c.tests.root.is(kObject) {
		return nil
	}
	return c.tests.root
}

func (c *pkgCtx) checkTestGPU() {
	root := c.testsRoot()
	if root == nil {
		return
	}
	d := c.tests
	cfg := root.get("config")
	if cfg != nil && !cfg.is(kObject) {
		return // reported by checkTests
	}
	id := cfg.get("gpuTypeId")
	if id == nil {
		if !c.isGPUPackage() {
			return
		}
		at := cfg
		if at == nil {
			at = root
		}
		msg := "a GPU package's tests.json needs \"config\": {\"gpuTypeId\": …, \"gpuCount\": 1} naming one GPU type id from hub.json's pools"
		for _, alias := range []string{"gpuId", "gpuIds", "gpuType", "gpu"} {
			if a := cfg.get(alias); a != nil {
				msg = fmt.Sprintf("tests.json config has %q but the Hub reads \"gpuTypeId\": one GPU type id (not a pool), e.g. \"NVIDIA GeForce RTX 4090\"", alias)
				break
			}
		}
		if ex := c.exampleTestGPU(); ex != "" {
			msg += fmt.Sprintf("; for this package: %q", ex)
		}
		c.atMissing(d, at, "gpuTypeId", ruleTestGPUMissing, "%s", msg)
		return
	}
	if !c.expect(d, id, kString, "") {
		return
	}
	if _, ok := c.cat.Pool(id.str); ok {
		msg := fmt.Sprintf("gpuTypeId %q is a pool id; tests run on one GPU type, so name one GPU of the pool", id.str)
		if p, _ := c.cat.Pool(id.str); len(p.GPUs()) > 0 {
			msg += fmt.Sprintf(", e.g. %q", p.GPUs()[0])
		}
		msg += " (the Hub waits forever, with no log, for a machine of a GPU type that does not exist)"
		c.atNode(d, id, ruleTestGPUPool, "%s", msg)
		return
	}
	g, ok := c.cat.GPU(id.str)
	if !ok {
		c.atNode(d, id, ruleTestGPUUnknown, "gpuTypeId %q is not a RunPod GPU type id, so no machine matches and the test never starts%s", id.str, c.suggestGPU(id.str))
		return
	}
	if n := cfg.get("gpuCount"); n == nil {
		c.atMissing(d, cfg, "gpuCount", ruleTestGPUCount, "tests.json config has gpuTypeId but no gpuCount; add \"gpuCount\": %d", max(1, c.hubGPUCount()))
	} else if v, ok := n.integer(); !ok || v <= 0 {
		c.atNode(d, n, ruleGPUCount, "gpuCount must be a positive integer, got %s", describe(n))
	} else if hc := c.hubGPUCount(); hc > 0 && int(v) > hc {
		c.atNode(d, n, ruleTestGPUCount, "tests ask for %d GPUs but hub.json's gpuCount is %d; the test machine must look like the endpoint, so use %d", v, hc, hc)
	}
	_, toks := c.gpuIDs()
	var pools []string
	excluded := false
	anyPool := false
	for _, t := range toks {
		switch {
		case t.exclude && t.id == g.ID:
			excluded = true
		case t.exclude:
		case t.pool != nil && t.pool.Any:
			anyPool = true
		case t.pool != nil:
			if t.pool.Has(g.ID) {
				anyPool = true
			}
			pools = append(pools, t.id)
		case t.gpu != nil:
			if t.gpu.ID == g.ID {
				anyPool = true
			}
			pools = append(pools, t.id)
		}
		// Unknown tokens are reported on hub.json; they say nothing here.
	}
	switch {
	case excluded:
		c.atNode(d, id, ruleTestGPUExcluded, "the test GPU %q is excluded by hub.json's gpuIds (-%s), so the test waits forever, with no log, for a machine the endpoint may not use; test on a GPU the endpoint allows%s",
			g.ID, g.ID, c.exampleFor(pools))
	case !anyPool && len(pools) > 0:
		where := "in no pool"
		if ps := c.cat.PoolsOf(g.ID); len(ps) > 0 {
			where = "in pool " + strings.Join(ps, " / ")
		}
		c.atNode(d, id, ruleTestGPUOutside, "the test GPU %q (%s) is not in hub.json's gpuIds (%s): the Hub tests on a machine the endpoint cannot use and the test waits forever with no log; "+
			"test on a GPU from those pools%s, or add its pool to gpuIds", g.ID, where, strings.Join(pools, ","), c.exampleFor(pools))
	}
}

// hubGPUCount returns hub.json's gpuCount, or 0.
func (c *pkgCtx) hubGPUCount() int {
	v, ok := c.hubConfig().get("gpuCount").integer()
	if !ok || v <= 0 || v > 1<<16 {
		return 0
	}
	return int(v)
}

// exampleFor names a GPU type id of the first of pools, as advice.
func (c *pkgCtx) exampleFor(pools []string) string {
	for _, id := range pools {
		if p, ok := c.cat.Pool(id); ok && len(p.GPUs()) > 0 {
			gs := p.GPUs()
			return fmt.Sprintf(" (e.g. %q from %s)", gs[0], id)
		}
		if g, ok := c.cat.GPU(id); ok {
			return fmt.Sprintf(" (e.g. %q)", g.ID)
		}
	}
	return ""
}

// exampleTestGPU suggests a test GPU from hub.json's pools.
func (c *pkgCtx) exampleTestGPU() string {
	_, toks := c.gpuIDs()
	for _, t := range toks {
		if t.exclude {
			continue
		}
		if t.gpu != nil {
			return t.gpu.ID
		}
		if t.pool != nil && len(t.pool.GPUs()) > 0 {
			gs := t.pool.GPUs()
			return gs[0]
		}
	}
	return ""
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
