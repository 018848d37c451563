package engine

import (
	"strings"
	"testing"
)

// TestValidationRules covers validate_prompt rules beyond the corpus, each
// with the exact answer ComfyUI 0.3.64 gives.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	for _, c := range []struct {
		name, prompt string
		status       int
		want         string // a fragment of the Python-style JSON answer
	}{
		{"no class_type", `{"1": {"inputs": {}}}`, 400,
			`"error": {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.", "details": "Node ID '#1'", "extra_info": {}}, "node_errors": {}`},
		{"node not an object", `{"1": 5}`, 400, `"details": "Node ID '#1'"`},
		{"class_type not a string", `{"1": {"class_type": 5, "inputs": {}}}`, 400,
			`"message": "Cannot execute because node 5 does not exist."`},
		{"model node", `{"1": {"class_type": "KSampler", "inputs": {}}, "2": {"class_type": "TestOut", "inputs": {"value": 1}}}`, 400,
			`"message": "Cannot execute because node KSampler does not exist.", "details": "Node ID '#1'"`},
		{"prompt is a list", `[]`, 400, `"type": "prompt_no_outputs"`},
		{"prompt is a string", `"x"`, 400, `"type": "invalid_prompt"`},
		{"partial targets exclude every output", `{"1": {"class_type": "TestOut", "inputs": {"value": 1}}}, "partial_execution_targets": ["9"]`, 400,
			`"type": "prompt_no_outputs"`},
		{"int coercion from string", `{"1": {"class_type": "TestOut", "inputs": {"value": " 1_0 "}}}`, 200, `"node_errors": {}`},
		{"int coercion failure", `{"1": {"class_type": "TestOut", "inputs": {"value": "1.5"}}}`, 400,
			`"details": "value, 1.5, invalid literal for int() with base 10: '1.5'"`},
		{"int from null", `{"1": {"class_type": "TestOut", "inputs": {"value": null}}}`, 400,
			`"exception_message": "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"`},
		{"float coercion failure", `{"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "x", "ratio": "abc", "flag": true}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"details": "ratio, abc, could not convert string to float: 'abc'"`},
		{"float min with Python spelling", `{"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "x", "ratio": -1, "flag": true}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"message": "Value -1.0 smaller than min of 0.0", "details": "ratio"`},
		{"legacy combo", `{"1": {"class_type": "TestCombo", "inputs": {"mode": "z", "v3": "x", "ratio": 0.5, "flag": true}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"type": "value_not_in_list", "message": "Value not in list", "details": "mode: 'z' not in ['a', 'b', 'c']", "extra_info": {"input_name": "mode", "input_config": [["a", "b", "c"], {}], "received_value": "z"}`},
		{"V3 combo is not checked", `{"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "nope", "ratio": 0.5, "flag": "false"}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 200, `"node_errors": {}`},
		{"bad link shape", `{"1": {"class_type": "TestOut", "inputs": {"value": ["2"]}}}`, 400,
			`"type": "bad_linked_input"`},
		{"link to a missing node", `{"1": {"class_type": "TestOut", "inputs": {"value": ["9", 0]}}}`, 400,
			`"type": "exception_during_validation", "message": "Exception when validating node", "details": "'9'", "extra_info": {"exception_type": "KeyError", "traceback": [`},
		{"link index of the wrong type", `{"1": {"class_type": "TestConst", "inputs": {"value": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", "0"]}}}`, 400,
			`"details": "tuple indices must be integers or slices, not str"`},
		{"negative link index works like Python", `{"1": {"class_type": "TestAdd", "inputs": {"a": 1, "b": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", -1]}}}`, 200, `"node_errors": {}`},
		{"return type mismatch", `{"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "x", "ratio": 0.5, "flag": true}}, "2": {"class_type": "TestCombo", "inputs": {"mode": ["1", 0], "v3": "x", "ratio": 0.5, "flag": true}}, "3": {"class_type": "TestOut", "inputs": {"value": ["2", 0]}}}`, 400,
			`"details": "mode, received_type(INT) mismatch input_type(['a', 'b', 'c'])"`},
		{"inner exception", `{"1": {"class_type": "TestAdd", "inputs": {"a": ["9", 0], "b": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"1": {"errors": [{"type": "exception_during_inner_validation", "message": "Exception when validating inner node", "details": "'9'"`},
		{"custom validation", `{"1": {"class_type": "TestChecked", "inputs": {"name": "bad-x", "count": 9}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"errors": [{"type": "value_bigger_than_max", "message": "Value 9 bigger than max of 3", "details": "count", "extra_info": {"input_name": "count", "input_config": ["INT", {"default": 1, "min": 1, "max": 3}], "received_value": 9}}, {"type": "custom_validation_failed", "message": "Custom validation failed for node", "details": "name - Invalid name: bad-x", "extra_info": {"input_name": "name"}}]`},
		{"skipped combo check", `{"1": {"class_type": "TestChecked", "inputs": {"name": "not in list", "count": 1}}, "2": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 200, `"node_errors": {}`},
		{"value wrapper", `{"1": {"class_type": "TestOut", "inputs": {"value": {"__value__": "5"}}}}`, 200, `"node_errors": {}`},
		{"cycle", `{"1": {"class_type": "TestAdd", "inputs": {"a": ["2", 0], "b": 1}}, "2": {"class_type": "TestAdd", "inputs": {"a": ["1", 0], "b": 1}}, "3": {"class_type": "TestOut", "inputs": {"value": ["1", 0]}}}`, 400,
			`"exception_type": "RecursionError"`},
		{"inputs missing", `{"1": {"class_type": "TestOut"}}`, 400,
			`"details": "'inputs'", "extra_info": {"exception_type": "KeyError"`},
		{"top-level details only for an output's own error", `{"1": {"class_type": "TestOut", "inputs": {"label": "x"}}}`, 400,
			`"details": "Required input is missing: value"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"prompt": ` + c.prompt + `}`
			status, data := e.postJSON("/prompt", body)
			if status != c.status || !strings.Contains(string(data), c.want) {
				t.Errorf("POST /prompt = %d %s\nwant %d with %s", status, data, c.status, c.want)
			}
		})
	}
}

// TestValidationCoercesInPlace checks that the history shows the prompt as
// validation coerced it, as ComfyUI's does.
func TestValidationCoercesInPlace(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	_, resp := e.postPrompt(`{"1": {"class_type": "TestCombo", "inputs": {"mode": "a", "v3": "x", "ratio": 1, "flag": "false", "extra": [1, 2, 3]}},
		"2": {"class_type": "TestOut", "inputs": {"value": ["1", 0], "label": 5}}}`, "c")
	id := resp["prompt_id"].(string)
	var executed string
	for _, m := range ws.untilDone(id) {
		if m.Type == "executed" {
			executed = string(m.Raw)
		}
	}
	if !strings.Contains(executed, `"values": [102]`) { // bool("false") is True
		t.Errorf("executed = %s", executed)
	}
	_, _, body := e.do("GET", "/history/"+id, nil, "")
	for _, want := range []string{`"ratio": 1.0`, `"flag": true`, `"label": "5"`, `"extra": [1, 2, 3]`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("history lacks %s: %s", want, body)
		}
	}
}

// TestPartialAcceptance checks that a prompt with one bad output runs the
// good one and reports the other in node_errors with status 200.
func TestPartialAcceptance(t *testing.T) {
	t.Parallel()
	tc := newTestClasses(t)
	e := newTestEnv(t, &Config{Classes: tc.classes})
	ws := e.dial("c")
	ws.next()
	status, resp := e.postPrompt(`{"1": {"class_type": "TestOut", "inputs": {"value": 3}}, "2": {"class_type": "TestOut", "inputs": {"value": 500, "label": "x"}}, "3": {"class_type": "TestConst", "inputs": {"value": 101}}, "4": {"class_type": "TestOut", "inputs": {"value": ["3", 0]}}}`, "c")
	if status != 200 {
		t.Fatalf("status %d %v", status, resp)
	}
	ne := resp["node_errors"].(map[string]any)
	if _, ok := ne["3"]; !ok || len(ne) != 1 {
		t.Fatalf("node_errors = %v", ne)
	}
	deps := ne["3"].(map[string]any)["dependent_outputs"].([]any)
	if len(deps) != 1 || deps[0] != "4" {
		t.Errorf("dependent_outputs = %v", deps)
	}
	msgs := ws.untilDone(resp["prompt_id"].(string))
	ran := map[string]bool{}
	for _, m := range msgs {
		if m.Type == "executing" {
			if n, ok := m.data()["node"].(string); ok {
				ran[n] = true
			}
		}
	}
	if !ran["1"] || !ran["2"] || ran["3"] || ran["4"] {
		t.Errorf("ran %v, want 1 and 2 only", ran)
	}
}
