package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/comfypod/comfypod/comfy/engine/node"
	"github.com/comfypod/comfypod/internal/pyjson"
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

	sigs       map[string]sigKey
	outputs    map[string][]any // outputs produced or served from cache in this run
	executed   []string
	plain      map[string]any  // the prompt as plain Go values, for node code
	promptJSON json.RawMessage // the prompt as JSON, keys in the client's order
	extraPNG   map[string]any
	lastError  error
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
	currentInputs *pyjson.Object
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
func (r *run) addMessage(event string, data *pyjson.Object, bcast bool) {
	data.Set("timestamp", r.s.now().UnixMilli())
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
	if cid, ok := it.extra.Get("client_id"); ok && cid != nil {
		r.hasClient = true
		if str, isStr := cid.(string); isStr {
			r.clientID = str
		} else {
			// A non-string client id matches no socket, as in ComfyUI.
			r.clientID = "\x00" + pyRepr(cid)
		}
	}
	if pi, ok := it.extra.Get("extra_pnginfo"); ok {
		if m, isMap := pyjson.ToGo(pi).(map[string]any); isMap {
			r.extraPNG = m
		}
	}
	r.plain, _ = pyjson.ToGo(it.prompt).(map[string]any)
	r.promptJSON = pyjson.Marshal(it.prompt)
	s.hub.setRunning(r.clientID, r.hasClient)
	s.log.Info("prompt started", "prompt_id", it.id, "nodes", it.prompt.Len(), "outputs", len(it.outputs))

	success := r.executeSafely()

	// History result: the UI of every node of the prompt that has one in the
	// cache (ComfyUI reads its ui cache for all the prompt's nodes).
	outputs, meta := pyjson.NewObject(), pyjson.NewObject()
	for _, id := range it.prompt.Keys() {
		if e, ok := s.caches.ui[r.sigs[id]]; ok {
			outputs.Set(id, e.output)
			meta.Set(id, e.meta)
		}
	}
	s.hub.clearLastNode()

	statusStr := "success"
	if !success {
		statusStr = "error"
	}
	entry := pyjson.NewObject().
		Set("prompt", it.tuple()).
		Set("outputs", outputs).
		Set("status", pyjson.NewObject().Set("status_str", statusStr).Set("completed", success).Set("messages", r.msgs)).
		Set("meta", meta)
	s.q.taskDone(taskID, entry)
	if r.hasClient {
		s.hub.send(to(r.clientID), message("executing", pyjson.NewObject().Set("node", nil).Set("prompt_id", it.id)))
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
	r.addMessage("execution_start", pyjson.NewObject().Set("prompt_id", it.id), false)
	r.progress = newProgressState(it.id)

	// Signatures of every node of the prompt, then keep only their cache
	// entries (set_prompt + clean_unused).
	b := &sigBuilder{prompt: it.prompt, reg: s.reg, memo: map[string]sigKey{}, isChanged: r.isChanged}
	r.sigs = make(map[string]sigKey, it.prompt.Len())
	keep := make(map[sigKey]bool, it.prompt.Len())
	for _, id := range it.prompt.Keys() {
		k := b.sig(id)
		r.sigs[id] = k
		keep[k] = true
	}
	s.caches.clean(keep)

	cached := []any{}
	for _, id := range it.prompt.Keys() {
		if _, ok := s.caches.outputs[r.sigs[id]]; ok {
			cached = append(cached, id)
		}
	}
	r.addMessage("execution_cached", pyjson.NewObject().Set("nodes", cached).Set("prompt_id", it.id), false)

	currentOutputs := make([]any, 0, it.prompt.Len())
	for _, id := range it.prompt.Keys() {
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
			r.fail(&nodeFailure{nodeID: nodes[0], excType: "graph.DependencyCycleError", excMessage: "Dependency cycle detected", traceback: []any{}, currentInputs: pyjson.NewObject()}, currentOutputs)
			return false
		}
		if f := r.executeNode(id); f != nil {
			r.fail(f, currentOutputs)
			return false
		}
		list.complete(id)
	}
	r.addMessage("execution_success", pyjson.NewObject().Set("prompt_id", it.id), false)
	return true
}

func (r *run) isOutputNode(id string) bool {
	ce := r.classOf(id)
	return ce != nil && ce.outputNode
}

func (r *run) classOf(id string) *classEntry {
	n, ok := r.item.prompt.Value(id).(*pyjson.Object)
	if !ok {
		return nil
	}
	ct, _ := n.Get("class_type")
	name, _ := ct.(string)
	return r.s.reg.byName[name]
}

// isChanged evaluates a class's IsChanged on the node's constant inputs. A
// node may carry its own "is_changed" value, which ComfyUI uses instead.
func (r *run) isChanged(id string, ce *classEntry, n *pyjson.Object) (v any, ok bool) {
	if own, has := n.Get("is_changed"); has {
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
		PromptJSON:      r.promptJSON,
		ExtraPNGInfo:    r.extraPNG,
		DisableMetadata: s.cfg.DisableMetadata,
		Progress:        func(value, max float64) { r.reportProgress(id, value, max) },
		Text:            func(text string) { r.sendText(id, text) },
		Rand:            s.rand,
		Now:             s.now,
	}
}

// reportProgress is ComfyUI's progress hook: progress_state (to everybody,
// as ComfyUI sends it) then progress to the prompt's client.
func (r *run) reportProgress(id string, value, max float64) {
	r.progMu.Lock()
	defer r.progMu.Unlock()
	r.progress.update(id, value, max)
	r.sendProgressState()
	r.s.hub.send(r.target(), message("progress", pyjson.NewObject().
		Set("value", progressNumber(value)).
		Set("max", progressNumber(max)).
		Set("prompt_id", r.item.id).
		Set("node", id)))
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
			s.hub.send(to(r.clientID), message("executed", pyjson.NewObject().
				Set("node", id).Set("display_node", id).Set("output", output).Set("prompt_id", r.item.id)))
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
		s.hub.sendExecuting(r.clientID, id, message("executing", pyjson.NewObject().
			Set("node", id).Set("display_node", id).Set("prompt_id", r.item.id)))
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
		output := pyjson.FromGo(ui)
		s.caches.ui[sig] = &uiEntry{
			meta:   pyjson.NewObject().Set("node_id", id).Set("display_node", id).Set("parent_node", nil).Set("real_node_id", id),
			output: output,
		}
		if r.hasClient {
			s.hub.send(to(r.clientID), message("executed", pyjson.NewObject().
				Set("node", id).Set("display_node", id).Set("output", output).Set("prompt_id", r.item.id)))
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
func (r *run) gatherInputs(id string, ce *classEntry) (node.Inputs, *pyjson.Object, *nodeFailure) {
	in := node.Inputs{}
	formatted := pyjson.NewObject()
	inputs := nodeInputs(r.item.prompt, id)
	for _, k := range inputs.Keys() {
		v := inputs.Value(k)
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
				formatted.Set(k, []any{nil})
			case idx < -len(outs):
				return nil, nil, &nodeFailure{nodeID: id, excType: "IndexError", excMessage: "list index out of range\n",
					traceback: engineTraceback(ce.name, "obj = cached_output[output_index]"), currentInputs: pyjson.NewObject()}
			default:
				if idx < 0 {
					idx += len(outs)
				}
				in[k] = outs[idx]
				formatted.Set(k, []any{formatValue(outs[idx])})
			}
			continue
		}
		if !declared {
			continue
		}
		gv := goInput(ie, v)
		in[k] = gv
		formatted.Set(k, []any{formatValue(v)})
	}
	for _, h := range ce.hidden {
		switch h.Type {
		case "PROMPT":
			formatted.Set(h.Name, []any{pyRepr(r.item.prompt)})
		case "EXTRA_PNGINFO":
			v, _ := r.item.extra.Get("extra_pnginfo")
			formatted.Set(h.Name, []any{formatValue(v)})
		case "UNIQUE_ID":
			formatted.Set(h.Name, []any{id})
		case "DYNPROMPT":
			formatted.Set(h.Name, []any{"<comfy_execution.graph.DynamicPrompt object>"})
		case "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG":
			// Secrets never appear in error messages.
			formatted.Set(h.Name, []any{nil})
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
	case *pyjson.Object, []any:
		return pyStr(x)
	}
	return pyStr(pyjson.FromGo(v))
}

// failure turns a node error into execution_error details.
func (r *run) failure(id string, ce *classEntry, err error, formatted *pyjson.Object) *nodeFailure {
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
		r.addMessage("execution_interrupted", pyjson.NewObject().
			Set("prompt_id", r.item.id).
			Set("node_id", f.nodeID).
			Set("node_type", nodeType).
			Set("executed", executed), true)
		return
	}
	r.addMessage("execution_error", pyjson.NewObject().
		Set("prompt_id", r.item.id).
		Set("node_id", f.nodeID).
		Set("node_type", nodeType).
		Set("executed", executed).
		Set("exception_message", f.excMessage).
		Set("exception_type", f.excType).
		Set("traceback", f.traceback).
		Set("current_inputs", f.currentInputs).
		Set("current_outputs", currentOutputs), false)
}
