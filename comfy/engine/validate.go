package engine

import (
	"fmt"
	"math/big"
	"runtime/debug"
	"strings"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
)

// This file is ComfyUI 0.3.64's validate_prompt / validate_inputs, rule for
// rule: the same error types, messages, details and extra_info, the same
// coercion of constants (which rewrites the prompt in place, so history shows
// coerced values), the memoisation that makes an upstream error appear once,
// and the quirk that dependent_outputs lists every failing output checked
// after the node.
//
// Where ComfyUI iterates a Python set (output nodes, a class's inputs), the
// engine uses prompt order and declared order, so results are deterministic.
//
// Two deliberate differences: a dependency cycle, which makes ComfyUI recurse
// until RecursionError and answer with no node error at all, is reported on
// the node that closes the cycle; and prompts so deep that Python would hit
// its recursion limit get the same RecursionError, but without any risk to
// the process.

// maxValidateDepth stands in for Python's recursion limit.
const maxValidateDepth = 1000

// validateResult is validate_prompt's answer.
type validateResult struct {
	ok         bool
	err        *pyjson.Object // the top-level error when !ok
	outputs    []string       // outputs_to_execute
	nodeErrors *pyjson.Object
}

type validation struct {
	reg     *registry
	prompt  *pyjson.Object
	env     *node.Env // for ValidateInputs and DynamicOptions
	logf    func(msg string, args ...any)
	memo    map[string]*vresult
	order   []string // insertion order of memo, like the Python dict
	active  map[string]bool
	dynOpts map[string]map[string][]string
}

type vresult struct {
	ok      bool
	reasons []any
}

func (v *validation) setMemo(id string, r *vresult) {
	if _, ok := v.memo[id]; !ok {
		v.order = append(v.order, id)
	}
	v.memo[id] = r
}

func errorObject(typ, message, details string, extra *pyjson.Object) *pyjson.Object {
	if extra == nil {
		extra = pyjson.NewObject()
	}
	return pyjson.NewObject().
		Set("type", typ).
		Set("message", message).
		Set("details", details).
		Set("extra_info", extra)
}

// validatePrompt validates prompt (the decoded "prompt" member of the
// request). partial is partial_execution_targets, nil when absent.
func validatePrompt(reg *registry, env *node.Env, logf func(string, ...any), prompt any, partial any) *validateResult {
	po, ok := prompt.(*pyjson.Object)
	if !ok {
		if a, isList := prompt.([]any); isList && len(a) == 0 {
			// Iterating an empty list finds no nodes, as in ComfyUI.
			return &validateResult{err: errorObject("prompt_no_outputs", "Prompt has no outputs", "", nil), nodeErrors: pyjson.NewObject()}
		}
		return &validateResult{
			err: errorObject("invalid_prompt",
				fmt.Sprintf("Cannot execute because the prompt is a %s, not an object of node id to node.", pyTypeName(prompt)),
				"", nil),
			nodeErrors: pyjson.NewObject(),
		}
	}

	var outputs []string
	for _, id := range po.Keys() {
		n, ok := po.Value(id).(*pyjson.Object)
		if !ok || !n.Has("class_type") {
			return &validateResult{
				err:        errorObject("invalid_prompt", "Cannot execute because a node is missing the class_type property.", fmt.Sprintf("Node ID '#%s'", id), nil),
				nodeErrors: pyjson.NewObject(),
			}
		}
		ct, _ := n.Get("class_type")
		name, isStr := ct.(string)
		ce := reg.byName[name]
		if !isStr || ce == nil {
			return &validateResult{
				err:        errorObject("invalid_prompt", fmt.Sprintf("Cannot execute because node %s does not exist.", pyStr(ct)), fmt.Sprintf("Node ID '#%s'", id), nil),
				nodeErrors: pyjson.NewObject(),
			}
		}
		if ce.outputNode && inPartial(partial, id) {
			outputs = append(outputs, id)
		}
	}
	if len(outputs) == 0 {
		return &validateResult{err: errorObject("prompt_no_outputs", "Prompt has no outputs", "", nil), nodeErrors: pyjson.NewObject()}
	}

	v := &validation{reg: reg, prompt: po, env: env, logf: logf, memo: map[string]*vresult{}, active: map[string]bool{}, dynOpts: map[string]map[string][]string{}}
	var good []string
	type failed struct {
		id      string
		reasons []any
	}
	var errs []failed
	nodeErrors := pyjson.NewObject()
	for _, o := range outputs {
		r, exc := v.validateInputs(o, 0)
		var valid bool
		var reasons []any
		if exc != nil {
			reasons = []any{errorObject("exception_during_validation", "Exception when validating node", exc.Msg,
				pyjson.NewObject().Set("exception_type", exc.Type).Set("traceback", exc.traceback("validate_prompt", "m = await validate_inputs(prompt_id, prompt, o, validated)")))}
			v.setMemo(o, &vresult{ok: false, reasons: reasons})
		} else {
			valid, reasons = r.ok, r.reasons
		}
		if valid {
			good = append(good, o)
			continue
		}
		errs = append(errs, failed{o, reasons})
		for _, id := range v.order {
			res := v.memo[id]
			if res.ok || len(res.reasons) == 0 {
				continue
			}
			ne, ok := nodeErrors.Get(id)
			if !ok {
				ct, _ := po.Value(id).(*pyjson.Object).Get("class_type")
				ne = pyjson.NewObject().Set("errors", res.reasons).Set("dependent_outputs", []any{}).Set("class_type", ct)
				nodeErrors.Set(id, ne)
			}
			e := ne.(*pyjson.Object)
			deps, _ := e.Get("dependent_outputs")
			e.Set("dependent_outputs", append(deps.([]any), o))
		}
		if logf != nil {
			logf("prompt output failed validation", "output", o, "reasons", len(reasons))
		}
	}
	if len(good) == 0 {
		var lines []string
		for _, f := range errs {
			for _, r := range f.reasons {
				ro := r.(*pyjson.Object)
				msg, _ := ro.Get("message")
				det, _ := ro.Get("details")
				lines = append(lines, fmt.Sprintf("%s: %s", pyStr(msg), pyStr(det)))
			}
		}
		return &validateResult{
			err:        errorObject("prompt_outputs_failed_validation", "Prompt outputs failed validation", strings.Join(lines, "\n"), nil),
			nodeErrors: nodeErrors,
		}
	}
	return &validateResult{ok: true, outputs: good, nodeErrors: nodeErrors}
}

// inPartial is `partial_execution_list is None or x in partial_execution_list`.
func inPartial(partial any, id string) bool {
	switch p := partial.(type) {
	case nil:
		return true
	case []any:
		for _, e := range p {
			if s, ok := e.(string); ok && s == id {
				return true
			}
		}
		return false
	case string:
		return strings.Contains(p, id)
	}
	return false
}

// validateInputs is validate_inputs: it returns the node's result, or a
// Python exception that escaped (which the caller reports).
func (v *validation) validateInputs(id string, depth int) (*vresult, *pyError) {
	if r, ok := v.memo[id]; ok && !v.active[id] {
		return r, nil
	}
	if v.active[id] {
		return nil, &pyError{Type: "RecursionError", Msg: "Dependency cycle detected: node " + id + " is its own ancestor", where: "r = await validate_inputs(prompt_id, prompt, o_id, validated)"}
	}
	if depth > maxValidateDepth {
		return nil, &pyError{Type: "RecursionError", Msg: "maximum recursion depth exceeded", where: "r = await validate_inputs(prompt_id, prompt, o_id, validated)"}
	}
	v.active[id] = true
	defer delete(v.active, id)

	n := v.prompt.Value(id).(*pyjson.Object)
	ct, _ := n.Get("class_type")
	ce := v.reg.byName[ct.(string)]

	rawInputs, ok := n.Get("inputs")
	if !ok {
		return nil, &pyError{Type: "KeyError", Msg: "'inputs'", where: "inputs = prompt[unique_id]['inputs']"}
	}
	inputs, isObj := rawInputs.(*pyjson.Object)
	if !isObj {
		switch x := rawInputs.(type) {
		case []any, string:
			inputs = pyjson.NewObject() // membership tests find nothing usable
			for _, in := range ce.inputs {
				if containsPy(x, in.name) {
					idx := "str"
					if _, isList := x.([]any); isList {
						return nil, typeErrorf("list indices must be integers or slices, not %s", idx).at("val = inputs[x]")
					}
					return nil, typeErrorf("string indices must be integers, not '%s'", idx).at("val = inputs[x]")
				}
			}
		default:
			return nil, typeErrorf("argument of type '%s' is not iterable", pyTypeName(rawInputs)).at("if x not in inputs:")
		}
	}

	var errs []any
	valid := true

	for _, in := range ce.inputs {
		config := in.config
		options := in.options
		if in.legacy && ce.class.DynamicOptions != nil {
			// INPUT_TYPES() is evaluated at validation time in ComfyUI, so
			// request-time lists apply to both the check and the reported
			// input_config.
			if list, ok := v.dynamicOptions(ce)[in.name]; ok {
				options = list
				config = []any{optionsAny(list), in.extra}
			}
		}
		val, present := inputs.Get(in.name)
		if !present {
			if in.required {
				errs = append(errs, errorObject("required_input_missing", "Required input is missing", in.name,
					pyjson.NewObject().Set("input_name", in.name)))
			}
			continue
		}
		if link, isList := val.([]any); isList {
			if len(link) != 2 {
				errs = append(errs, errorObject("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", in.name,
					pyjson.NewObject().Set("input_name", in.name).Set("input_config", config).Set("received_value", val)))
				continue
			}
			oid, exc := v.linkedNode(link[0])
			if exc != nil {
				return nil, exc
			}
			oct, _ := v.prompt.Value(oid).(*pyjson.Object).Get("class_type")
			oce := v.reg.byName[oct.(string)]
			idx, exc := tupleIndex(link[1], len(oce.returnTypes))
			if exc != nil {
				return nil, exc
			}
			received := oce.returnTypes[idx]
			if !validateNodeInput(received, in) {
				typ := any(in.typ)
				if in.legacy {
					typ = config[0]
				}
				errs = append(errs, errorObject("return_type_mismatch", "Return type mismatch between linked nodes",
					fmt.Sprintf("%s, received_type(%s) mismatch input_type(%s)", in.name, received, pyStr(typ)),
					pyjson.NewObject().Set("input_name", in.name).Set("input_config", config).Set("received_type", received).Set("linked_node", val)))
				continue
			}
			r, exc := v.validateInputs(oid, depth+1)
			if exc != nil {
				valid = false
				reasons := []any{errorObject("exception_during_inner_validation", "Exception when validating inner node", exc.Msg,
					pyjson.NewObject().
						Set("input_name", in.name).
						Set("input_config", config).
						Set("exception_message", exc.Msg).
						Set("exception_type", exc.Type).
						Set("traceback", exc.traceback("validate_inputs", "r = await validate_inputs(prompt_id, prompt, o_id, validated)")).
						Set("linked_node", val))}
				v.setMemo(oid, &vresult{ok: false, reasons: reasons})
				continue
			}
			if !r.ok {
				valid = false
			}
			continue
		}

		// A constant.
		if o, isObj := val.(*pyjson.Object); isObj && o.Has("__value__") {
			val, _ = o.Get("__value__")
			inputs.Set(in.name, val)
		}
		coerced, exc := coerce(in.typ, val)
		if exc != nil {
			errs = append(errs, errorObject("invalid_input_type", fmt.Sprintf("Failed to convert an input value to a %s value", in.typ),
				fmt.Sprintf("%s, %s, %s", in.name, pyStr(val), exc.Msg),
				pyjson.NewObject().Set("input_name", in.name).Set("input_config", config).Set("received_value", val).Set("exception_message", exc.Msg)))
			continue
		}
		if coerced != nil {
			val = coerced
			inputs.Set(in.name, val)
		}
		if ce.class.SkipAll || ce.skips[in.name] {
			continue
		}
		if lo, ok := in.extra.Get("min"); ok {
			c, cmpOK, exc := pyCompare("<", val, lo)
			if exc != nil {
				return nil, exc.at(`if "min" in extra_info and val < extra_info["min"]:`)
			}
			if cmpOK && c < 0 {
				errs = append(errs, errorObject("value_smaller_than_min", fmt.Sprintf("Value %s smaller than min of %s", pyStr(val), pyStr(lo)), in.name,
					pyjson.NewObject().Set("input_name", in.name).Set("input_config", config).Set("received_value", val)))
				continue
			}
		}
		if hi, ok := in.extra.Get("max"); ok {
			c, cmpOK, exc := pyCompare(">", val, hi)
			if exc != nil {
				return nil, exc.at(`if "max" in extra_info and val > extra_info["max"]:`)
			}
			if cmpOK && c > 0 {
				errs = append(errs, errorObject("value_bigger_than_max", fmt.Sprintf("Value %s bigger than max of %s", pyStr(val), pyStr(hi)), in.name,
					pyjson.NewObject().Set("input_name", in.name).Set("input_config", config).Set("received_value", val)))
				continue
			}
		}
		if in.legacy && !containsPy(optionsAny(options), val) {
			listInfo := pyRepr(options)
			var cfg any = config
			if len(options) > 20 {
				listInfo = fmt.Sprintf("(list of length %d)", len(options))
				cfg = nil
			}
			errs = append(errs, errorObject("value_not_in_list", "Value not in list", fmt.Sprintf("%s: '%s' not in %s", in.name, pyStr(val), listInfo),
				pyjson.NewObject().Set("input_name", in.name).Set("input_config", cfg).Set("received_value", val)))
			continue
		}
	}

	if ce.class.ValidateInputs != nil {
		cerrs, exc := v.customValidation(ce, inputs)
		if exc != nil {
			return nil, exc
		}
		errs = append(errs, cerrs...)
	}

	// A cycle reported by an inner call is kept on this node (see above).
	if prev, ok := v.memo[id]; ok && !prev.ok {
		errs = append(prev.reasons, errs...)
	}
	r := &vresult{ok: true, reasons: []any{}}
	if len(errs) > 0 || !valid {
		if errs == nil {
			errs = []any{}
		}
		r = &vresult{ok: false, reasons: errs}
	}
	v.setMemo(id, r)
	return r, nil
}

// linkedNode resolves the node id of a link (prompt[o_id]).
func (v *validation) linkedNode(ref any) (string, *pyError) {
	switch x := ref.(type) {
	case []any, *pyjson.Object:
		return "", typeErrorf("unhashable type: '%s'", pyTypeName(ref)).at("o_class_type = prompt[o_id]['class_type']")
	case string:
		if _, ok := v.prompt.Get(x); ok {
			return x, nil
		}
	}
	return "", (&pyError{Type: "KeyError", Msg: pyRepr(ref)}).at("o_class_type = prompt[o_id]['class_type']")
}

// tupleIndex applies Python indexing r[i] to a tuple of n elements.
func tupleIndex(i any, n int) (int, *pyError) {
	var k int64
	switch x := i.(type) {
	case int64:
		k = x
	case bool:
		if x {
			k = 1
		}
	case *big.Int:
		return 0, (&pyError{Type: "IndexError", Msg: "cannot fit 'int' into an index-sized integer"}).at("received_type = r[val[1]]")
	default:
		return 0, typeErrorf("tuple indices must be integers or slices, not %s", pyTypeName(i)).at("received_type = r[val[1]]")
	}
	if k < 0 {
		k += int64(n)
	}
	if k < 0 || k >= int64(n) {
		return 0, (&pyError{Type: "IndexError", Msg: "tuple index out of range"}).at("received_type = r[val[1]]")
	}
	return int(k), nil
}

// validateNodeInput is comfy_execution.validation.validate_node_input:
// equal types, a "*" wildcard on either side, or an overlap of
// comma-separated unions.
func validateNodeInput(received string, in *inputEntry) bool {
	want, ok := in.typeString()
	if !ok {
		return false // a string never equals a list
	}
	if received == want {
		return true
	}
	rs, ws := splitTypes(received), splitTypes(want)
	if rs["*"] || ws["*"] {
		return true
	}
	for t := range rs {
		if ws[t] {
			return true
		}
	}
	return false
}

func splitTypes(s string) map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		m[strings.TrimSpace(t)] = true
	}
	return m
}

// coerce applies the declared type's conversion; nil means "no conversion"
// (combos, IMAGE and other non-primitive types keep the value as sent).
func coerce(typ string, val any) (any, *pyError) {
	switch typ {
	case "INT":
		return pyInt(val)
	case "FLOAT":
		f, err := pyFloat(val)
		if err != nil {
			return nil, err
		}
		return f, nil
	case "STRING":
		return pyStr(val), nil
	case "BOOLEAN":
		return pyBool(val), nil
	}
	return nil, nil
}

func optionsAny(options []string) []any {
	out := make([]any, len(options))
	for i, s := range options {
		out[i] = s
	}
	return out
}

// containsPy is Python's `x in container` for a list (element equality) or a
// string (substring).
func containsPy(container any, x any) bool {
	switch c := container.(type) {
	case []any:
		for _, e := range c {
			if pyEqual(e, x) {
				return true
			}
		}
	case string:
		s, ok := x.(string)
		return ok && strings.Contains(c, s)
	}
	return false
}

// dynamicOptions returns the class's request-time combo lists, computed once
// per validation (ComfyUI calls INPUT_TYPES() for every node it validates).
func (v *validation) dynamicOptions(ce *classEntry) map[string][]string {
	if ce.class.DynamicOptions == nil {
		return nil
	}
	if m, ok := v.dynOpts[ce.name]; ok {
		return m
	}
	m, err := safeDynamicOptions(ce.class, v.env)
	if err != nil {
		if v.logf != nil {
			v.logf("dynamic options failed", "class", ce.name, "err", err)
		}
		m = nil
	}
	v.dynOpts[ce.name] = m
	return m
}

func safeDynamicOptions(c *node.Class, env *node.Env) (m map[string][]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in DynamicOptions: %v", r)
		}
	}()
	return c.DynamicOptions(env)
}

// customValidation runs the class's ValidateInputs and turns a failure into
// custom_validation_failed errors, one per input the function takes.
func (v *validation) customValidation(ce *classEntry, inputs *pyjson.Object) ([]any, *pyError) {
	in := node.Inputs{}
	var names []string
	for _, k := range inputs.Keys() {
		ie, declared := ce.byName[k]
		if !declared {
			continue
		}
		val := inputs.Value(k)
		if ce.class.SkipAll || ce.skips[k] {
			names = append(names, k)
		}
		if _, isLink := val.([]any); isLink {
			continue
		}
		in[k] = goInput(ie, val)
	}
	for _, h := range ce.hidden {
		if ce.class.SkipAll || ce.skips[h.Name] {
			names = append(names, h.Name)
		}
	}
	err := safeValidate(ce.class, v.env, in)
	if err == nil {
		return nil, nil
	}
	var pe *pyError
	if asPyError(err, &pe) {
		return nil, pe
	}
	if len(names) == 0 {
		// ComfyUI reports one error per input named by VALIDATE_INPUTS and so
		// says nothing when it names none; the engine still reports the
		// failure rather than accept a prompt the class rejected.
		names = []string{""}
	}
	out := make([]any, 0, len(names))
	for _, x := range names {
		details := x + " - " + err.Error()
		if x == "" {
			details = err.Error()
		}
		out = append(out, errorObject("custom_validation_failed", "Custom validation failed for node", details, pyjson.NewObject().Set("input_name", x)))
	}
	return out, nil
}

// panicError marks a panic inside class code during validation; it becomes a
// Python-style exception of the validation.
type panicError struct{ pe *pyError }

func (p *panicError) Error() string { return p.pe.Msg }

func asPyError(err error, target **pyError) bool {
	if p, ok := err.(*panicError); ok {
		*target = p.pe
		return true
	}
	return false
}

func safeValidate(c *node.Class, env *node.Env, in node.Inputs) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{pe: &pyError{Type: "RuntimeError", Msg: fmt.Sprintf("panic in ValidateInputs: %v", r), where: firstLine(string(debug.Stack()))}}
		}
	}()
	return c.ValidateInputs(env, in)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// goInput converts a validated constant to the Go type node code expects.
func goInput(ie *inputEntry, val any) any {
	switch ie.typ {
	case "INT":
		switch x := val.(type) {
		case int64:
			return x
		case *big.Int:
			return x // out of int64 range; the node sees what was sent
		}
	case "FLOAT":
		if f, ok := val.(float64); ok {
			return f
		}
	case "STRING":
		if s, ok := val.(string); ok {
			return s
		}
	case "BOOLEAN":
		if b, ok := val.(bool); ok {
			return b
		}
	}
	if ie.legacy || ie.typ == "COMBO" {
		return pyStr(val)
	}
	return pyjson.ToGo(val)
}
