package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/comfypod/comfypod/comfy/engine/node"
)

// This file is ComfyUI's PromptExecutor.execute_async and execute(): one
// prompt run, with the same messages in the same order, the same caching,
// and the same history result.

// run is the state of one prompt being executed.
type run struct {
	s    *Server
	item *queueItem
	ctx  context.Context

	clientID  string
	hasClient bool

	msgs     []any // status messages for history: [event, data] pairs
	progress *progressState
	progMu   sync.Mutex // node code may report progress from its own goroutines

	sigs      map[string]sigKey
	outputs   map[string][]any // outputs produced or served from cache in this run
	executed  []string
	plain     map[string]any // the prompt as plain Go values, for node code
	extraPNG  map[string]any
	lastError error
}

// errInterrupted marks a node stopped by POST /interrupt (ComfyUI's
// InterruptProcessingException).
var errInterrupted = errors.New("interrupted")

// nodeFailure is a node's runtime error as execution_error reports it.
type nodeFailure struct {
	nodeID        string
	interrupted   bool
	excType       string
	excMessage    string
	traceback     []any
	currentInputs *object
}

func (r *run) target() target {
	if r.hasClient {
		return to(r.clientID)
	}
	return broadcast
}

// addMessage is PromptExecutor.add_message: the message gets a timestamp,
// goes into history, and is sent to the prompt's client (or to everybody
// when bcast is set and the prompt has no client).
func (r *run) addMessage(event string, data *object, bcast bool) {
	data.set("timestamp", r.s.now().UnixMilli())
	r.msgs = append(r.msgs, []any{event, data})
	if r.hasClient || bcast {
		r.s.hub.send(r.target(), message(event, data))
	}
}

func (r *run) sendProgressState() {
	r.s.hub.send(broadcast, message("progress_state", r.progress.message()))
}

// runPrompt executes one queued prompt and writes its history entry.
func (s *Server) runPrompt(ctx context.Context, it *queueItem, taskID int) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.runMu.Lock()
	s.current = &running{id: it.id, cancel: cancel}
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.current = nil
		s.runMu.Unlock()
	}()

	r := &run{s: s, item: it, ctx: rctx, outputs: map[string][]any{}}
	if cid, ok := it.extra.get("client_id"); ok && cid != nil {
		r.hasClient = true
		if str, isStr := cid.(string); isStr {
			r.clientID = str
		} else {
			// A non-string client id matches no socket, as in ComfyUI.
			r.clientID = "\x00" + pyRepr(cid)
		}
	}
	if pi, ok := it.extra.get("extra_pnginfo"); ok {
		if m, isMap := toPlain(pi).(map[string]any); isMap {
			r.extraPNG = m
		}
	}
	r.plain, _ = toPlain(it.prompt).(map[string]any)
	s.hub.setRunning(r.clientID, r.hasClient)
	s.log.Info("prompt started", "prompt_id", it.id, "nodes", it.prompt.len(), "outputs", len(it.outputs))

	success := r.executeSafely()

	// History result: the UI of every node of the prompt that has one in the
	// cache (ComfyUI reads its ui cache for all the prompt's nodes).
	outputs, meta := newObject(), newObject()
	for _, id := range it.prompt.keys {
		if e, ok := s.caches.ui[r.sigs[id]]; ok {
			outputs.set(id, e.output)
			meta.set(id, e.meta)
		}
	}
	s.hub.clearLastNode()

	statusStr := "success"
	if !success {
		statusStr = "error"
	}
	entry := newObject().
		set("prompt", it.tuple()).
		set("outputs", outputs).
		set("status", newObject().set("status_str", statusStr).set("completed", success).set("messages", r.msgs)).
		set("meta", meta)
	s.q.taskDone(taskID, entry)
	if r.hasClient {
		s.hub.send(to(r.clientID), message("executing", newObject().set("node", nil).set("prompt_id", it.id)))
	}
	if success {
		s.log.Info("prompt finished", "prompt_id", it.id, "status", statusStr)
	} else {
		s.log.Info("prompt failed", "prompt_id", it.id, "status", statusStr, "err", r.lastError)
	}
}

// executeSafely runs execute and turns a panic of the engine itself (node
// code has its own recovery) into a failed prompt, so one bad prompt cannot
// take the server down.
func (r *run) executeSafely() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.s.log.Error("engine panicked while running a prompt", "prompt_id", r.item.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r.lastError = fmt.Errorf("internal error: %v", p)
			ok = false
		}
	}()
	return r.execute()
}

// execute runs the prompt's nodes and reports whether it succeeded.
func (r *run) execute() bool {
	s, it := r.s, r.item
	r.addMessage("execution_start", newObject().set("prompt_id", it.id), false)
	r.progress = newProgressState(it.id)

	// Signatures of every node of the prompt, then keep only their cache
	// entries (set_prompt + clean_unused).
	b := &sigBuilder{prompt: it.prompt, reg: s.reg, memo: map[string]sigKey{}, isChanged: r.isChanged}
	r.sigs = make(map[string]sigKey, it.prompt.len())
	keep := make(map[sigKey]bool, it.prompt.len())
	for _, id := range it.prompt.keys {
		k := b.sig(id)
		r.sigs[id] = k
		keep[k] = true
	}
	s.caches.clean(keep)

	cached := []any{}
	for _, id := range it.prompt.keys {
		if _, ok := s.caches.outputs[r.sigs[id]]; ok {
			cached = append(cached, id)
		}
	}
	r.addMessage("execution_cached", newObject().set("nodes", cached).set("prompt_id", it.id), false)

	currentOutputs := make([]any, 0, it.prompt.len())
	for _, id := range it.prompt.keys {
		currentOutputs = append(currentOutputs, id)
	}

	isCached := func(id string) bool { _, ok := s.caches.outputs[r.sigs[id]]; return ok }
	list := newExecList(it.prompt, isCached, r.isOutputNode)
	for _, o := range it.outputs {
		list.addNode(o)
	}
	for !list.empty() {
		id, ok := list.next()
		if !ok {
			nodes := list.cycleNodes()
			r.fail(&nodeFailure{nodeID: nodes[0], excType: "graph.DependencyCycleError", excMessage: "Dependency cycle detected", traceback: []any{}, currentInputs: newObject()}, currentOutputs)
			return false
		}
		if f := r.executeNode(id); f != nil {
			r.fail(f, currentOutputs)
			return false
		}
		list.complete(id)
	}
	r.addMessage("execution_success", newObject().set("prompt_id", it.id), false)
	return true
}

func (r *run) isOutputNode(id string) bool {
	ce := r.classOf(id)
	return ce != nil && ce.outputNode
}

func (r *run) classOf(id string) *classEntry {
	n, ok := r.item.prompt.vals[id].(*object)
	if !ok {
		return nil
	}
	ct, _ := n.get("class_type")
	name, _ := ct.(string)
	return r.s.reg.byName[name]
}

// isChanged evaluates a class's IsChanged on the node's constant inputs. A
// node may carry its own "is_changed" value, which ComfyUI uses instead.
func (r *run) isChanged(id string, ce *classEntry, n *object) (v any, ok bool) {
	if own, has := n.get("is_changed"); has {
		return own, true
	}
	defer func() {
		if p := recover(); p != nil {
			r.s.log.Warn("IsChanged panicked; the node will not be cached", "class", ce.name, "node", id, "panic", fmt.Sprint(p))
			v, ok = nil, false
		}
	}()
	val, err := ce.class.IsChanged(r.env(id), constantInputs(ce, n))
	if err != nil {
		r.s.log.Warn("IsChanged failed; the node will not be cached", "class", ce.name, "node", id, "err", err)
		return nil, false
	}
	return val, true
}

func (r *run) env(id string) *node.Env {
	s := r.s
	return &node.Env{
		InputDir:        s.inputDir,
		OutputDir:       s.outputDir,
		TempDir:         s.tempDir,
		PromptID:        r.item.id,
		NodeID:          id,
		Prompt:          r.plain,
		ExtraPNGInfo:    r.extraPNG,
		DisableMetadata: s.cfg.DisableMetadata,
		Progress:        func(value, max float64) { r.reportProgress(id, value, max) },
		Text:            func(text string) { r.sendText(id, text) },
		Rand:            s.rand,
	}
}

// reportProgress is ComfyUI's progress hook: progress_state (to everybody,
// as ComfyUI sends it) then progress to the prompt's client.
func (r *run) reportProgress(id string, value, max float64) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.progress.update(id, value, max)
	r.sendProgressState()
	r.s.hub.send(r.target(), message("progress", newObject().
		set("value", progressNumber(value)).
		set("max", progressNumber(max)).
		set("prompt_id", r.item.id).
		set("node", id)))
}

// sendText sends a node's progress text as a binary TEXT frame (type 3) to
// every client, as ComfyUI's send_progress_text does.
func (r *run) sendText(id, text string) {
	payload := make([]byte, 4, 4+len(id)+len(text))
	payload[0], payload[1], payload[2], payload[3] = byte(len(id)>>24), byte(len(id)>>16), byte(len(id)>>8), byte(len(id))
	payload = append(payload, id...)
	payload = append(payload, text...)
	r.s.hub.send(broadcast, binaryFrame(3, payload))
}

// executeNode is execution.execute() for one node.
func (r *run) executeNode(id string) *nodeFailure {
	s := r.s
	ce := r.classOf(id)
	sig := r.sigs[id]

	if out, ok := s.caches.outputs[sig]; ok {
		if r.hasClient {
			var output any
			if e, ok := s.caches.ui[sig]; ok {
				output = e.output
			}
			s.hub.send(to(r.clientID), message("executed", newObject().
				set("node", id).set("display_node", id).set("output", output).set("prompt_id", r.item.id)))
		}
		r.progMu.Lock()
		r.progress.finish(id)
		r.sendProgressState()
		r.progMu.Unlock()
		r.outputs[id] = out
		return nil
	}

	r.progMu.Lock()
	r.progress.start(id)
	r.sendProgressState()
	r.progMu.Unlock()

	inputs, formatted, fail := r.gatherInputs(id, ce)
	if fail != nil {
		return fail
	}
	if r.hasClient {
		s.hub.sendExecuting(r.clientID, id, message("executing", newObject().
			set("node", id).set("display_node", id).set("prompt_id", r.item.id)))
	}
	if r.ctx.Err() != nil {
		return &nodeFailure{nodeID: id, interrupted: true}
	}

	res, err := callNode(r.ctx, ce.class, r.env(id), inputs)
	if err != nil {
		if r.ctx.Err() != nil || errors.Is(err, errInterrupted) {
			return &nodeFailure{nodeID: id, interrupted: true}
		}
		return r.failure(id, ce, err, formatted)
	}
	var outs []any
	var ui map[string]any
	if res != nil {
		outs, ui = res.Outputs, res.UI
	}
	if outs == nil {
		outs = []any{}
	}
	if len(ui) > 0 {
		output := fromGo(ui)
		s.caches.ui[sig] = &uiEntry{
			meta:   newObject().set("node_id", id).set("display_node", id).set("parent_node", nil).set("real_node_id", id),
			output: output,
		}
		if r.hasClient {
			s.hub.send(to(r.clientID), message("executed", newObject().
				set("node", id).set("display_node", id).set("output", output).set("prompt_id", r.item.id)))
		}
	}
	s.caches.outputs[sig] = outs
	r.outputs[id] = outs

	r.progMu.Lock()
	r.progress.finish(id)
	r.sendProgressState()
	r.progMu.Unlock()
	r.executed = append(r.executed, id)
	return nil
}

// nodePanic is returned by callNode when node code panics.
type nodePanic struct {
	value any
	stack string
}

func (p *nodePanic) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func callNode(ctx context.Context, c *node.Class, env *node.Env, in node.Inputs) (res *node.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, &nodePanic{value: p, stack: string(debug.Stack())}
		}
	}()
	return c.Execute(ctx, env, in)
}

// gatherInputs is get_input_data: linked values from this run's outputs,
// declared constants converted for node code, and the hidden inputs (which
// node code reads from its Env; they appear in current_inputs only).
func (r *run) gatherInputs(id string, ce *classEntry) (node.Inputs, *object, *nodeFailure) {
	in := node.Inputs{}
	formatted := newObject()
	inputs := nodeInputs(r.item.prompt, id)
	for _, k := range inputs.keys {
		v := inputs.vals[k]
		ie, declared := ce.byName[k]
		if from, socket, ok := linkOf(v); ok {
			outs, have := r.outputs[from]
			if !have {
				if cachedOuts, ok := r.s.caches.outputs[r.sigs[from]]; ok {
					outs, have = cachedOuts, true
				}
			}
			idx := socketIndex(socket)
			switch {
			case !have || idx >= len(outs):
				in[k] = nil
				formatted.set(k, []any{nil})
			case idx < -len(outs):
				return nil, nil, &nodeFailure{nodeID: id, excType: "IndexError", excMessage: "list index out of range\n",
					traceback: engineTraceback(ce.name, "obj = cached_output[output_index]"), currentInputs: newObject()}
			default:
				if idx < 0 {
					idx += len(outs)
				}
				in[k] = outs[idx]
				formatted.set(k, []any{formatValue(outs[idx])})
			}
			continue
		}
		if !declared {
			continue
		}
		gv := goInput(ie, v)
		in[k] = gv
		formatted.set(k, []any{formatValue(v)})
	}
	for _, h := range ce.hidden {
		switch h.Type {
		case "PROMPT":
			formatted.set(h.Name, []any{pyRepr(r.item.prompt)})
		case "EXTRA_PNGINFO":
			v, _ := r.item.extra.get("extra_pnginfo")
			formatted.set(h.Name, []any{formatValue(v)})
		case "UNIQUE_ID":
			formatted.set(h.Name, []any{id})
		case "DYNPROMPT":
			formatted.set(h.Name, []any{"<comfy_execution.graph.DynamicPrompt object>"})
		case "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG":
			// Secrets never appear in error messages.
			formatted.set(h.Name, []any{nil})
		}
	}
	return in, formatted, nil
}

func socketIndex(s any) int {
	switch x := s.(type) {
	case int64:
		if x > 1<<31 || x < -(1<<31) {
			return 1 << 31
		}
		return int(x)
	case bool:
		if x {
			return 1
		}
	case float64:
		return int(x)
	}
	return 0
}

// formatValue is ComfyUI's format_value for current_inputs: numbers,
// strings, booleans and null as they are, everything else as str().
func formatValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, float64:
		return v
	case int:
		return int64(x)
	case *node.Image:
		return formatImage(x)
	case *node.Mask:
		return formatMask(x)
	case *object, []any:
		return pyStr(x)
	}
	return pyStr(fromGo(v))
}

// failure turns a node error into execution_error details.
func (r *run) failure(id string, ce *classEntry, err error, formatted *object) *nodeFailure {
	f := &nodeFailure{nodeID: id, currentInputs: formatted}
	var ee *node.ExecError
	var np *nodePanic
	switch {
	case errors.As(err, &ee):
		f.excType, f.excMessage = ee.Type, ee.Message
		f.traceback = engineTraceback(ce.name, "raise "+ee.Type+"(...)")
	case errors.As(err, &np):
		f.excType, f.excMessage = "RuntimeError", np.Error()
		f.traceback = panicTraceback(ce.name, np.stack)
	default:
		f.excType, f.excMessage = "RuntimeError", err.Error()
		f.traceback = engineTraceback(ce.name, "return err")
	}
	if f.excType == "" {
		f.excType = "RuntimeError"
	}
	// ComfyUI appends "\n" and an (empty) tip to every message.
	f.excMessage += "\n"
	r.lastError = err
	return f
}

func engineTraceback(class, stmt string) []any {
	return []any{
		"  File \"comfy/engine\", in execute\n    output_data, output_ui = get_output_data(prompt_id, unique_id, obj, input_data_all)\n",
		fmt.Sprintf("  File \"%s\", in Execute\n    %s\n", class, stmt),
	}
}

func panicTraceback(class, stack string) []any {
	tb := []any{"  File \"comfy/engine\", in execute\n    output_data, output_ui = get_output_data(prompt_id, unique_id, obj, input_data_all)\n"}
	lines := strings.Split(strings.TrimSpace(stack), "\n")
	for i := 1; i+1 < len(lines) && len(tb) < 24; i += 2 {
		tb = append(tb, fmt.Sprintf("  File \"%s\", in %s\n", strings.TrimSpace(lines[i+1]), strings.TrimSpace(lines[i])))
	}
	return tb
}

// fail is handle_execution_error.
func (r *run) fail(f *nodeFailure, currentOutputs []any) {
	nodeType := ""
	if ce := r.classOf(f.nodeID); ce != nil {
		nodeType = ce.name
	}
	executed := make([]any, len(r.executed))
	for i, e := range r.executed {
		executed[i] = e
	}
	if f.interrupted {
		r.lastError = errInterrupted
		r.addMessage("execution_interrupted", newObject().
			set("prompt_id", r.item.id).
			set("node_id", f.nodeID).
			set("node_type", nodeType).
			set("executed", executed), true)
		return
	}
	r.addMessage("execution_error", newObject().
		set("prompt_id", r.item.id).
		set("node_id", f.nodeID).
		set("node_type", nodeType).
		set("executed", executed).
		set("exception_message", f.excMessage).
		set("exception_type", f.excType).
		set("traceback", f.traceback).
		set("current_inputs", f.currentInputs).
		set("current_outputs", currentOutputs), false)
}
