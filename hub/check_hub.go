package hub

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/comfypod/comfypod/internal/suggest"
)

func hubFields() []field {
	return []field{
		{"title", []string{"name"}},
		{"description", []string{"desc", "summary"}},
		{"type", nil},
		{"category", []string{"categories"}},
		{"iconUrl", []string{"icon", "icon_url", "iconURL", "logo", "image"}},
		{"config", []string{"configuration", "settings"}},
	}
}

func configFields() []field {
	return []field{
		{"runsOn", []string{"runs_on", "compute", "computeType"}},
		{"endpointType", []string{"endpoint_type"}},
		{"containerDiskInGb", []string{"containerDisk", "containerDiskSizeGb", "containerDiskSize", "disk", "diskSize"}},
		{"cpuFlavor", []string{"cpu", "cpuFlavorId", "cpu_flavor"}},
		{"gpuCount", []string{"gpus", "gpu_count", "numGpus"}},
		{"gpuIds", []string{"gpuId", "gpu", "gpu_ids", "gpuTypeIds", "gpuTypes", "gpuTypeId"}},
		{"allowedCudaVersions", []string{"cudaVersions", "cuda", "allowedCUDAVersions", "minCudaVersion"}},
		{"env", []string{"envs", "environment", "environment_variables", "env_vars", "envVars"}},
		{"presets", nil},
	}
}

// configKeys are keys people put at the top of hub.json that belong in config.
func configKeys() []string {
	keys := []string{"gpu", "gpus"}
	for _, f := range configFields() {
		keys = append(keys, f.name)
	}
	return keys
}

// atMissing records a finding about a member missing from obj.
func (c *pkgCtx) atMissing(d *jsonDoc, obj *node, key, rule, format string, args ...any) *Finding {
	line, col := d.position(obj.start)
	return c.add(rule, d.file, line, col, childPath(obj.path, key), fmt.Sprintf(format, args...))
}

// hubRoot returns hub.json's root object, if it can be checked.
func (c *pkgCtx) hubRoot() *node {
	if !usable(c.hub) || !c.hub.root.is(kObject) {
		return nil
	}
	return c.hub.root
}

// hubConfig returns hub.json's config object, if any.
func (c *pkgCtx) hubConfig() *node {
	if cfg := c.hubRoot().get("config"); cfg.is(kObject) {
		return cfg
	}
	return nil
}

func (c *pkgCtx) checkHub() {
	d := c.hub
	if !usable(d) {
		return
	}
	root := d.root
	if !root.is(kObject) {
		c.atNode(d, root, ruleHubNotObject, "hub.json must be a JSON object {\"title\", \"description\", \"type\", \"category\", \"config\"}, got %s", describe(root))
		return
	}
	hints := map[string]string{}
	for _, k := range configKeys() {
		hints[k] = fmt.Sprintf("%q belongs inside \"config\"; move it there", k)
	}
	hints["name"] = `the Hub reads "title"; rename it`
	hints["version"] = "the Hub takes versions from GitHub releases, not from hub.json; delete it"
	c.checkUnknown(d, root, "hub.json", hubFields(), []string{"$schema"}, hints)

	required := map[string]string{
		"title":       "the listing's name",
		"description": "the listing's one-paragraph summary",
		"type":        `"serverless"`,
		"category":    "one of " + strings.Join(c.cat.Categories, ", "),
		"config":      "the endpoint to deploy: runsOn, containerDiskInGb, gpuIds, gpuCount…",
	}
	for _, k := range []string{"title", "description", "type", "category", "config"} {
		if root.get(k) == nil {
			c.atMissing(d, root, k, ruleRequired, "%q is missing; add it: %s", k, required[k])
		}
	}
	for _, k := range []string{"title", "description", "iconUrl"} {
		c.expect(d, root.get(k), kString, "")
	}
	if t := root.get("type"); c.expect(d, t, kString, "write \"serverless\"") && t.str != "serverless" {
		msg := fmt.Sprintf("type is %q; a Hub serverless package has \"type\": \"serverless\"", t.str)
		if strings.EqualFold(t.str, "pod") {
			msg += " (Pod listings are not built from .runpod/hub.json packages this linter checks)"
		}
		c.atNode(d, t, ruleTypeServerless, "%s", msg)
	}
	if cat := root.get("category"); c.expect(d, cat, kString, "") && !slices.Contains(c.cat.Categories, cat.str) {
		msg := fmt.Sprintf("category %q is not a Hub category; use one of %s", cat.str, strings.Join(c.cat.Categories, ", "))
		if i := slices.IndexFunc(c.cat.Categories, func(s string) bool { return strings.EqualFold(s, cat.str) }); i >= 0 {
			msg = fmt.Sprintf("category %q must be lower case: %q", cat.str, c.cat.Categories[i])
		}
		c.atNode(d, cat, ruleCategory, "%s", msg)
	}
	cfg := root.get("config")
	if cfg == nil || !c.expect(d, cfg, kObject, "") {
		return
	}
	c.checkConfig(d, cfg)
}

func (c *pkgCtx) checkConfig(d *jsonDoc, cfg *node) {
	c.checkUnknown(d, cfg, "config", configFields(), nil, map[string]string{
		"gpuTypeId":      "hub.json takes pools in \"gpuIds\" (\"ADA_24,AMPERE_24\"); gpuTypeId belongs in tests.json",
		"minCudaVersion": "hub.json takes \"allowedCudaVersions\": [\"12.7\", \"12.6\", …]",
		"runtime":        "execution and idle timeouts are endpoint settings the Hub does not read from hub.json; delete it",
	})
	runsOn := cfg.get("runsOn")
	switch {
	case runsOn == nil:
		c.atMissing(d, cfg, "runsOn", ruleRequired, "\"runsOn\" is missing; add \"runsOn\": \"GPU\" or \"CPU\"")
	case c.expect(d, runsOn, kString, `write "GPU" or "CPU"`) && !slices.Contains(c.cat.RunsOn, runsOn.str):
		msg := fmt.Sprintf("runsOn %q is not \"GPU\" or \"CPU\"", runsOn.str)
		if up := strings.ToUpper(runsOn.str); slices.Contains(c.cat.RunsOn, up) {
			msg += fmt.Sprintf("; write %q in upper case", up)
		}
		c.atNode(d, runsOn, ruleRunsOn, "%s", msg)
	}

	if disk := cfg.get("containerDiskInGb"); disk == nil {
		c.atMissing(d, cfg, "containerDiskInGb", ruleRequired, "\"containerDiskInGb\" is missing; add the container disk size in GB, e.g. 20 (it must hold the image's models and outputs)")
	} else if v, ok := disk.integer(); !ok || v <= 0 {
		hint := "a whole number of GB, e.g. 20"
		if disk.is(kString) {
			if n, err := strconv.Atoi(strings.TrimSpace(disk.str)); err == nil && n > 0 {
				hint = fmt.Sprintf("write %d without quotes", n)
			}
		}
		c.atNode(d, disk, ruleContainerDisk, "containerDiskInGb must be a positive integer, got %s; %s", describe(disk), hint)
	}

	if et := cfg.get("endpointType"); c.expect(d, et, kString, "") && !slices.Contains(c.cat.EndpointTypes, et.str) {
		msg := fmt.Sprintf("endpointType %q is unknown: write \"LB\" for a load-balancing endpoint, or omit it for a queue endpoint", et.str)
		if strings.EqualFold(et.str, "lb") {
			msg = fmt.Sprintf("endpointType %q must be upper case: \"LB\"", et.str)
		}
		c.atNode(d, et, ruleEndpointType, "%s", msg)
	}

	gpuCount := cfg.get("gpuCount")
	if gpuCount != nil {
		if v, ok := gpuCount.integer(); !ok || v <= 0 {
			c.atNode(d, gpuCount, ruleGPUCount, "gpuCount must be a positive integer (GPUs per worker), got %s", describe(gpuCount))
		}
	}
	c.expect(d, cfg.get("cpuFlavor"), kString, "")
	if runsOn.text() == "GPU" {
		var missing []string
		if cfg.get("gpuIds") == nil {
			missing = append(missing, `"gpuIds" (pools, e.g. "ADA_24,AMPERE_24")`)
		}
		if gpuCount == nil {
			missing = append(missing, `"gpuCount" (e.g. 1)`)
		}
		if len(missing) > 0 {
			c.atMissing(d, cfg, "gpuIds", ruleGPUMissing, "a GPU package without %s: the deployed endpoint gets RunPod's defaults instead of GPUs that fit the model; add them",
				strings.Join(missing, " and "))
		}
	}
	if runsOn.text() == "CPU" {
		c.checkCPUFlavor(d, cfg)
	}
	c.checkEnv(d, cfg)
}

func (c *pkgCtx) checkCPUFlavor(d *jsonDoc, cfg *node) {
	fl := cfg.get("cpuFlavor")
	if fl == nil {
		c.atMissing(d, cfg, "cpuFlavor", ruleCPUFlavor, "a CPU package (runsOn \"CPU\") needs \"cpuFlavor\", one of %s", strings.Join(c.cat.CPUFlavors, ", "))
		return
	}
	if !fl.is(kString) || validCPUFlavor(c.cat, fl.str) {
		return
	}
	msg := fmt.Sprintf("cpuFlavor %q is not a CPU flavor; use one of %s (or an instance id such as cpu3c-2-4)", fl.str, strings.Join(c.cat.CPUFlavors, ", "))
	if slices.Contains(c.cat.PodCPUFlavors, strings.SplitN(fl.str, "-", 2)[0]) {
		msg = fmt.Sprintf("cpuFlavor %q exists for Pods only; serverless endpoints take %s", fl.str, strings.Join(c.cat.CPUFlavors, ", "))
	}
	c.atNode(d, fl, ruleCPUFlavorBad, "%s", msg)
}

// validCPUFlavor accepts a flavor (cpu3c) or an instance id (cpu3g-4-16).
func validCPUFlavor(cat *Catalog, s string) bool {
	parts := strings.Split(s, "-")
	if !slices.Contains(cat.CPUFlavors, parts[0]) {
		return false
	}
	if len(parts) == 1 {
		return true
	}
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts[1:] {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 {
			return false
		}
	}
	return true
}

// envKey is one env entry's key with where it is.
type envKey struct {
	key   string
	node  *node
	input *node // nil for a static value
}

// hubEnv returns the well-formed env entries of hub.json.
func hubEnv(cfg *node) []envKey {
	env := cfg.get("env")
	if !env.is(kArray) {
		return nil
	}
	var out []envKey
	for _, e := range env.elems {
		k := e.get("key")
		if !k.is(kString) || k.str == "" {
			continue
		}
		in := e.get("input")
		if !in.is(kObject) {
			in = nil
		}
		out = append(out, envKey{key: k.str, node: k, input: in})
	}
	return out
}

func envEntryFields() []field {
	return []field{{"key", []string{"name", "variable", "env"}}, {"value", []string{"default", "val"}}, {"input", nil}}
}

func inputFields() []field {
	return []field{
		{"name", []string{"label", "title"}}, {"type", nil}, {"description", []string{"desc", "help"}},
		{"default", []string{"defaultValue", "value"}}, {"required", nil}, {"advanced", nil},
		{"options", []string{"choices", "enum", "values"}}, {"min", []string{"minimum"}}, {"max", []string{"maximum"}},
		{"trueValue", []string{"true_value"}}, {"falseValue", []string{"false_value"}},
	}
}

func (c *pkgCtx) checkEnv(d *jsonDoc, cfg *node) {
	env := cfg.get("env")
	presetKeys := c.checkPresets(d, cfg)
	if env == nil {
		return
	}
	if !c.expect(d, env, kArray, `write a list of {"key": …, "value": …} or {"key": …, "input": {…}} entries`) {
		return
	}
	seen := map[string]*node{}
	for _, e := range env.elems {
		if !e.is(kObject) {
			c.atNode(d, e, ruleEnvEntry, "an env entry must be an object {\"key\": …, \"value\": …} or {\"key\": …, \"input\": {…}}, got %s", describe(e))
			continue
		}
		c.checkUnknown(d, e, "an env entry", envEntryFields(), nil, map[string]string{
			"name": `an env entry's variable name goes in "key"; a label for the user goes in input.name`,
		})
		key := e.get("key")
		switch {
		case key == nil:
			hint := ""
			if n := e.get("name"); n.is(kString) {
				hint = fmt.Sprintf(` (it has "name": %q; rename that to "key")`, n.str)
			}
			c.atNode(d, e, ruleEnvEntry, "an env entry has no \"key\"%s; every entry needs the variable name in \"key\"", hint)
		case !key.is(kString) || strings.TrimSpace(key.str) == "":
			c.atNode(d, key, ruleEnvEntry, "an env key must be a non-empty string, got %s", describe(key))
		default:
			if prev, dup := seen[key.str]; dup {
				line, _ := d.position(prev.start)
				c.atNode(d, key, ruleEnvDuplicate, "env key %q is also defined on line %d; the Hub keeps one of them, so delete the other", key.str, line)
			}
			seen[key.str] = key
		}
		value, input := e.get("value"), e.get("input")
		switch {
		case value != nil && input != nil:
			c.atNode(d, e, ruleEnvEntry, "an env entry has both \"value\" and \"input\"; keep \"value\" for a fixed variable or \"input\" for one the user sets")
		case value == nil && input == nil:
			c.atNode(d, e, ruleEnvEntry, "env entry %s has neither \"value\" nor \"input\"; add \"value\": \"…\" for a fixed variable or \"input\": {…} for one the user sets", quoteShort(key.text(), 40))
		case value != nil && !value.is(kString):
			f := c.atNode(d, value, ruleFieldType, "an env value is a string; write %s in quotes", describe(value))
			f.Severity = Warning
		case input != nil:
			if c.expect(d, input, kObject, "") {
				c.checkInput(d, key.text(), input, presetKeys)
			}
		}
	}
}

func (c *pkgCtx) checkInput(d *jsonDoc, key string, in *node, presetKeys map[string]bool) {
	c.checkUnknown(d, in, "an env input", inputFields(), c.cat.UndocumentedInputKeys, nil)
	for _, k := range []string{"name", "description", "trueValue", "falseValue"} {
		c.expect(d, in.get(k), kString, "")
	}
	for _, k := range []string{"required", "advanced"} {
		c.expect(d, in.get(k), kBool, "write true or false without quotes")
	}
	typ := in.get("type")
	switch {
	case typ == nil:
		c.atMissing(d, in, "type", ruleRequired, "input of %q has no \"type\"; add one of %s", key, strings.Join(c.cat.InputTypes, ", "))
	case !c.expect(d, typ, kString, ""):
	case !slices.Contains(c.cat.InputTypes, typ.str):
		c.atNode(d, typ, ruleInputType, "input type %q is unknown; %s", typ.str, inputTypeHint(c.cat, typ.str))
	}
	def := in.get("default")
	opts := in.get("options")
	if opts != nil && c.expect(d, opts, kArray, `write a list of {"label": …, "value": …}`) {
		var values []string
		for _, o := range opts.elems {
			if !o.is(kObject) {
				c.atNode(d, o, ruleFieldType, "an option must be an object {\"label\": …, \"value\": …}, got %s", describe(o))
				continue
			}
			c.checkUnknown(d, o, "an option", []field{{"label", []string{"name", "title"}}, {"value", nil}}, nil, nil)
			if v := o.get("value"); v == nil {
				c.atMissing(d, o, "value", ruleRequired, "an option has no \"value\"")
			} else {
				values = append(values, scalarText(v))
			}
		}
		if def != nil && !def.is(kNull) && !slices.Contains(values, scalarText(def)) {
			f := c.atNode(d, def, ruleSelectDefault, "the default %s of %q is not one of its options (%s); the form starts invalid. Use one of the option values or add an option for it",
				describe(def), key, quoteList(values))
			if def.text() == "" && def.is(kString) {
				f.Severity = Warning
				f.Message = fmt.Sprintf("the default \"\" of %q is not one of its options (%s); add {\"label\": \"None\", \"value\": \"\"} or drop the default", key, quoteList(values))
			}
		}
	}
	switch typ.text() {
	case "boolean":
		if in.get("trueValue") == nil || in.get("falseValue") == nil {
			c.atNode(d, in, ruleBooleanValues, "boolean input %q has no trueValue/falseValue; add e.g. \"trueValue\": \"true\", \"falseValue\": \"false\" so the env value the worker reads is defined", key)
		}
		if def != nil && !def.is(kBool) && !(def.is(kString) && (def.str == "true" || def.str == "false")) {
			c.atNode(d, def, ruleDefaultType, "the default of boolean input %q should be true or false, got %s", key, describe(def))
		}
	case "number":
		c.checkNumberInput(d, key, in, def)
	case "string", "huggingface":
		if def != nil && !def.is(kString) && opts == nil {
			c.atNode(d, def, ruleDefaultType, "the default of string input %q should be a string, got %s; quote it", key, describe(def))
		}
	}
	if req := in.get("required"); req.is(kBool) && req.str == "true" && emptyDefault(def) && !presetKeys[key] {
		c.atNode(d, in, ruleRequiredDefault, "input %q is required but has no default and no preset sets it, so a one-click deploy starts with an empty required field; add a default or a preset that sets it", key)
	}
}

// inputTypeHint suggests the input type meant by an unknown one.
func inputTypeHint(cat *Catalog, t string) string {
	switch strings.ToLower(t) {
	case "huggingface_model", "hf", "hf_model", "model", "huggingface-model", "hugging_face":
		return `write "huggingface"`
	case "int", "integer", "float", "double", "decimal":
		return `write "number"`
	case "bool":
		return `write "boolean"`
	case "text", "str", "password", "secret", "url":
		return `write "string"`
	case "select", "enum", "dropdown":
		return `a select is "type": "string" with "options"`
	}
	return "use one of " + strings.Join(cat.InputTypes, ", ")
}

func (c *pkgCtx) checkNumberInput(d *jsonDoc, key string, in, def *node) {
	num := func(n *node) (*big.Rat, bool) {
		if n.is(kNumber) {
			return new(big.Rat).SetString(n.str)
		}
		if n.is(kString) {
			return new(big.Rat).SetString(strings.TrimSpace(n.str))
		}
		return nil, false
	}
	var lo, hi *big.Rat
	for _, k := range []string{"min", "max"} {
		n := in.get(k)
		if n == nil {
			continue
		}
		v, ok := num(n)
		if !ok || !n.is(kNumber) {
			c.atNode(d, n, ruleDefaultType, "%s of number input %q should be a number, got %s", k, key, describe(n))
			continue
		}
		if k == "min" {
			lo = v
		} else {
			hi = v
		}
	}
	if lo != nil && hi != nil && lo.Cmp(hi) > 0 {
		c.atNode(d, in, ruleDefaultType, "number input %q has min above max; swap them", key)
	}
	if def == nil {
		return
	}
	v, ok := num(def)
	if !ok {
		c.atNode(d, def, ruleDefaultType, "the default of number input %q should be a number, got %s; give a number or drop the default", key, describe(def))
		return
	}
	if lo != nil && v.Cmp(lo) < 0 || hi != nil && v.Cmp(hi) > 0 {
		c.atNode(d, def, ruleDefaultType, "the default %s of number input %q is outside its min/max", def.str, key)
	}
}

func emptyDefault(def *node) bool {
	return def == nil || def.is(kNull) || def.is(kString) && strings.TrimSpace(def.str) == ""
}

// scalarText is a comparable text of a scalar value: strings by content,
// numbers and booleans by their literal.
func scalarText(n *node) string {
	switch n.kind {
	case kString:
		return n.str
	case kNumber, kBool:
		return n.str
	case kNull:
		return "null"
	}
	return n.kind.String()
}

// checkPresets checks config.presets and returns the env keys they set.
func (c *pkgCtx) checkPresets(d *jsonDoc, cfg *node) map[string]bool {
	keys := map[string]bool{}
	presets := cfg.get("presets")
	if presets == nil || !c.expect(d, presets, kArray, `write a list of {"name": …, "defaults": {…}}`) {
		return keys
	}
	envKeys := map[string]bool{}
	var envNames []string
	for _, e := range hubEnv(cfg) {
		envKeys[e.key] = true
		envNames = append(envNames, e.key)
	}
	for _, p := range presets.elems {
		if !c.expect(d, p, kObject, "") {
			continue
		}
		c.checkUnknown(d, p, "a preset", []field{{"name", []string{"title", "label"}}, {"defaults", []string{"env", "variables", "values", "default", "settings"}}}, nil, nil)
		c.expect(d, p.get("name"), kString, "")
		defs := p.get("defaults")
		if defs == nil {
			c.atMissing(d, p, "defaults", ruleRequired, "preset %s has no \"defaults\" object of env key → value", quoteShort(p.get("name").text(), 40))
			continue
		}
		if !c.expect(d, defs, kObject, "write an object of env key → value") {
			continue
		}
		for _, m := range defs.members {
			keys[m.key] = true
			if !m.value.is(kString) && !m.value.is(kNumber) && !m.value.is(kBool) {
				c.atNode(d, m.value, ruleFieldType, "a preset value must be a string, number or boolean, got %s", describe(m.value))
			}
			if envKeys[m.key] {
				continue
			}
			name := quoteShort(p.get("name").text(), 40)
			if len(envKeys) == 0 {
				c.atKey(d, m, rulePresetKey, "preset %s sets %q, but config has no env entries, so the Hub ignores it; add an env entry for it", name, m.key)
				continue
			}
			msg := fmt.Sprintf("preset %s sets %q, which is not an env key, so the Hub ignores it", name, m.key)
			if s := closestName(m.key, envNames); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; add an env entry for it or remove it from the preset"
			}
			c.atKey(d, m, rulePresetKey, "%s", msg)
		}
	}
	return keys
}

// closestName returns the candidate closest to s within a small distance.
func closestName(s string, candidates []string) string {
	best, bestD := "", 4
	for _, cand := range candidates {
		d := suggest.Distance(strings.ToLower(s), strings.ToLower(cand))
		if d < bestD || strings.HasPrefix(cand, s) && d < 8 && bestD > 2 {
			best, bestD = cand, d
		}
	}
	return best
}
