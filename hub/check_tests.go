package hub

import (
	"fmt"
	"strings"
)

func testsFields() []field {
	return []field{{"tests", []string{"test", "cases", "testCases"}}, {"config", []string{"configuration", "settings"}}}
}

func testFields() []field {
	return []field{
		{"name", []string{"title", "id"}},
		{"input", []string{"payload", "data", "request", "inputs"}},
		{"timeout", []string{"timeoutMs", "timeout_ms", "timeoutInSeconds", "timeout_seconds"}},
	}
}

func testsConfigFields() []field {
	return []field{
		{"gpuTypeId", []string{"gpuId", "gpuType", "gpu", "gpuTypeIds", "gpuIds"}},
		{"gpuCount", []string{"gpus", "gpu_count"}},
		{"cpuFlavor", []string{"cpu", "cpuFlavorId"}},
		{"env", []string{"environment", "envs", "env_vars"}},
		{"allowedCudaVersions", []string{"cudaVersions", "cuda"}},
	}
}

// lbTestKeys are the keys of the HTTP checks load-balancing packages use.
func lbTestKeys() []string {
	return []string{"method", "path", "expectedStatus", "expected_status", "headers", "body", "expectStatus"}
}

// isLB reports whether hub.json declares a load-balancing endpoint.
func (c *pkgCtx) isLB() bool { return c.hubConfig().get("endpointType").text() == "LB" }

func (c *pkgCtx) checkTests() {
	d := c.tests
	if !usable(d) {
		return
	}
	root := d.root
	switch {
	case root.is(kArray):
		c.atNode(d, root, ruleTestsNotObject, "tests.json is an array; it must be an object {\"tests\": [ … ], \"config\": {\"gpuTypeId\": …, \"gpuCount\": 1}}: wrap this array as \"tests\" and add the config")
		c.checkTestList(d, root)
		return
	case !root.is(kObject):
		c.atNode(d, root, ruleTestsNotObject, "tests.json must be an object {\"tests\": [ … ], \"config\": { … }}, got %s", describe(root))
		return
	}
	c.checkUnknown(d, root, "tests.json", testsFields(), []string{"$schema"}, map[string]string{
		"loadTests": "the Hub runs only \"tests\"; delete it or move load tests out of .runpod/",
	})
	tests := root.get("tests")
	switch {
	case tests == nil:
		c.atMissing(d, root, "tests", ruleTestsEmpty, "tests.json has no \"tests\"; add at least one test with a real input, so each release is checked before it is listed")
	case !c.expect(d, tests, kArray, ""):
	case len(tests.elems) == 0:
		c.atNode(d, tests, ruleTestsEmpty, "\"tests\" is empty: the Hub accepts it but then checks nothing; add one test with a real input and a timeout long enough to load the model")
	default:
		c.checkTestList(d, tests)
	}
	cfg := root.get("config")
	if cfg == nil || !c.expect(d, cfg, kObject, "") {
		return
	}
	c.checkUnknown(d, cfg, "tests.json config", testsConfigFields(), nil, map[string]string{
		"containerDiskInGb": "tests use hub.json's containerDiskInGb; delete it here",
		"gpuIds":            "tests run on one GPU: write \"gpuTypeId\": one GPU type id such as \"NVIDIA GeForce RTX 4090\"",
		"gpuId":             "tests run on one GPU: write \"gpuTypeId\": one GPU type id such as \"NVIDIA GeForce RTX 4090\"",
	})
	c.expect(d, cfg.get("cpuFlavor"), kString, "")
	if env := cfg.get("env"); env != nil && c.expect(d, env, kArray, `write a list of {"key": …, "value": …}`) {
		for _, e := range env.elems {
			c.checkTestEnv(d, e)
		}
	}
}

func (c *pkgCtx) checkTestEnv(d *jsonDoc, e *node) {
	if !e.is(kObject) {
		c.atNode(d, e, ruleEnvEntry, "a tests env entry must be an object {\"key\": …, \"value\": …}, got %s", describe(e))
		return
	}
	key, value := e.get("key"), e.get("value")
	switch {
	case key == nil && e.get("name").is(kString):
		c.atNode(d, e, ruleEnvEntry, "a tests env entry has \"name\" where the Hub reads \"key\"; rename it to \"key\"")
	case key == nil:
		c.atNode(d, e, ruleEnvEntry, "a tests env entry has no \"key\"; write {\"key\": \"NAME\", \"value\": \"…\"}")
	case !key.is(kString) || key.str == "":
		c.atNode(d, key, ruleEnvEntry, "a tests env key must be a non-empty string, got %s", describe(key))
	}
	switch {
	case value == nil && e.get("input") != nil:
		c.atNode(d, e, ruleEnvEntry, "tests env entries take a fixed \"value\", not an \"input\"")
	case value == nil:
		c.atNode(d, e, ruleEnvEntry, "tests env entry %s has no \"value\"", quoteShort(key.text(), 40))
	case !value.is(kString):
		f := c.atNode(d, value, ruleFieldType, "an env value is a string; write %s in quotes", describe(value))
		f.Severity = Warning
	}
	c.checkUnknown(d, e, "a tests env entry", []field{{"key", []string{"name"}}, {"value", nil}}, nil, nil)
}

func (c *pkgCtx) checkTestList(d *jsonDoc, tests *node) {
	names := map[string]*node{}
	lb := c.isLB()
	for _, t := range tests.elems {
		if !t.is(kObject) {
			c.atNode(d, t, ruleTestInput, "a test must be an object {\"name\": …, \"input\": {…}, \"timeout\": …}, got %s", describe(t))
			continue
		}
		accepted := []string{"description"}
		if lb {
			accepted = append(accepted, lbTestKeys()...)
		}
		hints := map[string]string{}
		for _, k := range []string{"expected_output", "expected", "expectedOutput", "output"} {
			hints[k] = "the Hub does not compare outputs: a test passes when the job completes (HTTP 200); delete it"
		}
		for _, k := range lbTestKeys() {
			hints[k] = "HTTP checks are for load-balancing endpoints (config.endpointType \"LB\"); a queue endpoint's test sends an \"input\" to the handler"
		}
		hints["command"] = "the Hub does not run commands; a test sends an \"input\" to the handler"
		c.checkUnknown(d, t, "a test", testFields(), accepted, hints)

		name := t.get("name")
		switch {
		case name == nil:
			c.atNode(d, t, ruleTestName, "a test has no \"name\"; add one, it labels the test in the Hub's release checks")
		case c.expect(d, name, kString, ""):
			if prev, dup := names[name.str]; dup {
				line, _ := d.position(prev.start)
				c.atNode(d, name, ruleTestNameDup, "test name %q is also used on line %d; give each test its own name so failures can be told apart", name.str, line)
			} else {
				names[name.str] = name
			}
		}

		input := t.get("input")
		isHTTPCheck := t.get("path") != nil || t.get("method") != nil
		switch {
		case input == nil && lb && isHTTPCheck:
		case input == nil:
			msg := "a test has no \"input\": the Hub sends it to the handler as job[\"input\"]; add the object a real request would send"
			switch {
			case isHTTPCheck:
				msg += " (this looks like an HTTP check, which only load-balancing packages with endpointType \"LB\" use)"
			case t.get("command") != nil:
				msg += " (the Hub does not run shell commands)"
			}
			c.atNode(d, t, ruleTestInput, "%s", msg)
		case !input.is(kObject):
			c.atNode(d, input, ruleTestInput, "a test input must be an object (the handler's job[\"input\"]), got %s", describe(input))
		default:
			if inner := input.get("input"); len(input.members) == 1 && inner.is(kObject) {
				f := c.atNode(d, input, ruleInputWrapped, "the input is wrapped in {\"input\": …}; tests.json takes the handler input itself, so the handler would get job[\"input\"][\"input\"]: unwrap it")
				if len(d.problems) == 0 {
					f.Fix = c.replaceFix(d, input, dedentValue(d, input, inner), "unwrap the test input")
				}
			}
			if lb && !isHTTPCheck {
				c.atNode(d, input, ruleLBQueueTests, "hub.json declares a load-balancing endpoint (endpointType \"LB\"), which serves HTTP routes, not queued jobs; this queue-style input is never handled. "+
					"Test an HTTP route ({\"name\", \"method\", \"path\", \"expectedStatus\"}) or drop endpointType")
			}
		}

		to := t.get("timeout")
		switch {
		case to == nil:
		case !to.is(kNumber):
			c.atNode(d, to, ruleTimeoutType, "timeout must be a whole number of milliseconds, got %s", describe(to))
		default:
			v, ok := to.integer()
			switch {
			case !ok || v <= 0:
				c.atNode(d, to, ruleTimeoutType, "timeout must be a positive whole number of milliseconds, got %s", to.str)
			case v < 1000:
				c.atNode(d, to, ruleTimeoutSeconds, "timeout %d looks like seconds, but it is in milliseconds (%d ms is under a second, so the test fails before the worker starts); write %d", v, v, v*1000)
			}
		}
	}
}

// dedentValue returns the text of inner, re-indented to sit where outer was.
func dedentValue(d *jsonDoc, outer, inner *node) string {
	text := string(d.text[inner.start:inner.end])
	delta := lineIndent(d.text, inner.start) - lineIndent(d.text, outer.start)
	if delta <= 0 || !strings.Contains(text, "\n") {
		return text
	}
	lines := strings.Split(text, "\n")
	pad := strings.Repeat(" ", delta)
	for i := 1; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], pad) && strings.TrimSpace(lines[i]) != "" {
			return text // mixed tabs or odd layout: keep it as it is
		}
		lines[i] = strings.TrimPrefix(lines[i], pad)
	}
	return strings.Join(lines, "\n")
}

// lineIndent returns the number of leading spaces of the line holding off.
func lineIndent(text []byte, off int) int {
	start := off
	for start > 0 && text[start-1] != '\n' {
		start--
	}
	n := 0
	for start+n < len(text) && text[start+n] == ' ' {
		n++
	}
	return n
}

// checkTimeouts compares test timeouts with the size of the model.
func (c *pkgCtx) checkTimeouts() {
	d := c.tests
	if !usable(d) {
		return
	}
	var list *node
	switch root := d.root; {
	case root.is(kArray):
		list = root
	case root.is(kObject) && root.get("tests").is(kArray):
		list = root.get("tests")
	default:
		return
	}
	size := c.modelSize()
	need := 0
	if size.paramsB > 0 {
		need = c.cat.MinTimeout(size.paramsB)
	}
	for _, t := range list.elems {
		if !t.is(kObject) || t.get("input") == nil && c.isLB() {
			continue
		}
		to := t.get("timeout")
		if to == nil {
			f := c.atNode(d, t, ruleTimeoutMissing, "test %s has no timeout; set one in milliseconds, long enough for a cold worker to start and load the model", testLabel(t))
			if need > 0 {
				f.Message += fmt.Sprintf(" (at least %d for a model of %s parameters, %s)", need, formatSize(size.paramsB), size.evidence)
			}
			continue
		}
		v, ok := to.integer()
		if !ok || v < 1000 || need == 0 || v >= int64(need) {
			continue
		}
		c.atNode(d, to, ruleTimeoutShort, "timeout %d ms (%s) is too short for a model of %s parameters (%s): a cold Hub test worker loads the weights before the first job; use at least %d (%s)",
			v, humanMs(v), formatSize(size.paramsB), size.evidence, need, humanMs(int64(need)))
	}
}

// humanMs renders milliseconds as minutes or seconds.
func humanMs(ms int64) string {
	if ms >= 60000 && ms%60000 == 0 {
		return fmt.Sprintf("%d min", ms/60000)
	}
	if ms >= 60000 {
		return fmt.Sprintf("%.1f min", float64(ms)/60000)
	}
	return fmt.Sprintf("%g s", float64(ms)/1000)
}

// testLabel names a test for messages: its name, or its path.
func testLabel(t *node) string {
	if name := t.get("name").text(); name != "" {
		return quoteShort(name, 40)
	}
	return t.path
}
