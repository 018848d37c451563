package comfy_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/comfypod/comfypod/comfy"
)

// caseWorkflow loads a conformance case's workflow.
func caseWorkflow(t testing.TB, name string) *comfy.Workflow {
	t.Helper()
	data, err := os.ReadFile(conformanceFile(t, "cases", name, "workflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	wf, err := comfy.DecodeWorkflow(data)
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

// viewEntries returns the files a case's history lists (expected/view.json).
func viewEntries(t testing.TB, name string) []string {
	t.Helper()
	data, err := os.ReadFile(conformanceFile(t, "cases", name, "expected", "view.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct{ Node, Key, Filename, Subfolder, Type string }
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Node+" "+e.Key+" "+e.Type+" "+e.Subfolder+"/"+e.Filename)
	}
	slices.Sort(out)
	return out
}

func fileKeys(files []comfy.OutputFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Node+" "+f.Key+" "+f.Type+" "+f.Subfolder+"/"+f.Filename)
	}
	slices.Sort(out)
	return out
}

func newTestClient(t testing.TB, url string, opts ...comfy.Option) *comfy.Client {
	t.Helper()
	base := []comfy.Option{
		comfy.WithPolling(20*time.Millisecond, time.Hour),
		comfy.WithReconnect(2, 10*time.Millisecond),
		comfy.WithLogger(slog.New(slog.DiscardHandler)),
	}
	c, err := comfy.NewClient(url, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventLog collects events passed to OnEvent.
type eventLog struct {
	mu     sync.Mutex
	events []comfy.Event
}

func (l *eventLog) add(e comfy.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Type)
	}
	return out
}

func TestRunSuccessCasesReturnEveryOutputFile(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob(conformanceFile(t, "cases", "*", "case.json"))
	ran := 0
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		var c struct{ Expect string }
		data, _ := os.ReadFile(d)
		_ = json.Unmarshal(data, &c)
		if c.Expect != "success" {
			continue
		}
		ran++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, name)
			client := newTestClient(t, r.srv.URL)
			var log eventLog
			res, err := client.Run(testCtx(t), caseWorkflow(t, name), comfy.RunOptions{OnEvent: log.add})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got, want := fileKeys(res.Files()), viewEntries(t, name); !slices.Equal(got, want) {
				t.Errorf("files\n got %v\nwant %v", got, want)
			}
			if res.History.Status.StatusStr != "success" || !res.History.Status.Completed {
				t.Errorf("status = %+v", res.History.Status)
			}
			types := log.types()
			if len(types) != len(r.ws) {
				t.Errorf("OnEvent saw %d events, the server sent %d", len(types), len(r.ws))
			}
			if len(types) == 0 || types[len(types)-1] != comfy.EventExecuting {
				t.Errorf("last event %v, want executing", types)
			}
		})
	}
	if ran < 30 {
		t.Errorf("only %d success cases found", ran)
	}
}

func TestRunDecodesEveryEventOfABrushRun(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "brush_422_590_698")
	// A message of another prompt on the same socket must not reach OnEvent.
	r.extraLines = []string{`{"type": "executing", "data": {"node": "5", "display_node": "5", "prompt_id": "someone-else"}}`,
		`{"type": "crystools.monitor", "data": {"cpu_utilization": 3.5}}`}
	client := newTestClient(t, r.srv.URL, comfy.WithIDGenerator(sequentialIDs("id")))
	var log eventLog
	res, err := client.Run(testCtx(t), caseWorkflow(t, "brush_422_590_698"), comfy.RunOptions{OnEvent: log.add, PromptID: "job-42"})
	if err != nil {
		t.Fatal(err)
	}
	if res.PromptID != "job-42" || r.promptID != "job-42" || r.clientID != "id-1" {
		t.Errorf("ids: result %q, server saw prompt %q client %q", res.PromptID, r.promptID, r.clientID)
	}
	var executing []string
	var sawUnknown, sawSID bool
	for _, e := range log.events {
		switch {
		case e.PromptID == "someone-else":
			t.Errorf("event of another prompt passed through: %+v", e)
		case e.Type == "crystools.monitor":
			sawUnknown = len(e.Data) > 0
		case e.Status != nil && e.Status.SID == "id-1":
			sawSID = true
		case e.Executing != nil && !e.Executing.Done:
			executing = append(executing, e.Executing.Node)
		case e.Executed != nil:
			if e.Executed.Output == nil || len(e.Executed.Output.Files) != 1 || e.Executed.Output.Files[0].Filename != "out_00001_.png" || e.Executed.Output.Files[0].Subfolder != "brush" {
				t.Errorf("executed = %+v", e.Executed.Output)
			}
		case e.ProgressState != nil:
			for id, np := range e.ProgressState.Nodes {
				if np.NodeID != id || (np.State != "running" && np.State != "finished") {
					t.Errorf("progress_state node %s = %+v", id, np)
				}
			}
		}
	}
	if !sawUnknown || !sawSID {
		t.Errorf("unknown type passed through: %v; first status with sid: %v", sawUnknown, sawSID)
	}
	want := []string{"422", "698", "701", "702", "703", "704", "705", "590", "710", "711", "712", "9"}
	if !slices.Equal(executing, want) {
		t.Errorf("executing order %v, want %v", executing, want)
	}
}

func sequentialIDs(prefix string) func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return prefix + "-" + string(rune('0'+n))
	}
}

func TestRunRuntimeErrorReturnsExecutionError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, node, class, exc, msg string
	}{
		{"runtime_blend_bad_mode", "2", "ImageBlend", "ValueError", "Unsupported blend mode: bogus"},
		{"runtime_save_outside_output", "", "SaveImage", "", ""},
		{"runtime_image_to_mask_alpha_rgb", "", "ImageToMask", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, tc.name)
			client := newTestClient(t, r.srv.URL)
			res, err := client.Run(testCtx(t), caseWorkflow(t, tc.name), comfy.RunOptions{})
			var ee *comfy.ExecutionError
			if !errors.As(err, &ee) || !errors.Is(err, comfy.ErrExecution) {
				t.Fatalf("want *ExecutionError, got %v", err)
			}
			if ee.NodeType != tc.class || (tc.node != "" && ee.NodeID != tc.node) || (tc.exc != "" && ee.ExceptionType != tc.exc) {
				t.Errorf("error = %+v", ee)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), "ComfyUI node 2 (ImageBlend) failed: ValueError: "+tc.msg) {
				t.Errorf("message %q", err)
			}
			if len(ee.Traceback) == 0 {
				t.Error("traceback lost")
			}
			if res == nil || res.History == nil || res.History.Status.StatusStr != "error" {
				t.Errorf("the result with the failed history is not returned: %+v", res)
			}
		})
	}
}

func TestRunValidationErrorsArePromptErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		typ  string
		want []string
	}{
		{"fail_value_above_max", "prompt_outputs_failed_validation", []string{
			"ComfyUI refused the prompt: Prompt outputs failed validation",
			`node 2 (ImageScale) input "width": Value 16385 bigger than max of 16384`,
			`node 4 (ImageBlur) input "blur_radius": Value 32 bigger than max of 31`}},
		{"fail_bad_values", "prompt_outputs_failed_validation", []string{
			`node 1 (EmptyImage) input "width": Failed to convert an input value to a INT value, got "abc" (invalid literal for int() with base 10: 'abc')`,
			`node 3 (SolidMask) input "value": Value -0.5 smaller than min of 0.0`,
			`node 7 (ImageInvert) input "image": Bad linked input, must be a length-2 list of [node_id, slot_index]`}},
		{"fail_unknown_class", "invalid_prompt", []string{"Cannot execute because node NoSuchNode does not exist (Node ID '#2')"}},
		{"fail_no_output_node", "prompt_no_outputs", []string{"Prompt has no outputs"}},
		{"fail_missing_input", "prompt_outputs_failed_validation", []string{`node 2 (ImageScale) input "upscale_method": Required input is missing`}},
		{"fail_missing_image_file", "prompt_outputs_failed_validation", []string{`node 1 (LoadImage) input "image": Custom validation failed for node: Invalid image file: does_not_exist_7f3a.png`}},
		{"fail_wrong_output_index", "prompt_outputs_failed_validation", []string{`node 2 (SaveImage): Exception when validating node: tuple index out of range`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReplay(t, tc.name)
			client := newTestClient(t, r.srv.URL)
			_, err := client.Run(testCtx(t), caseWorkflow(t, tc.name), comfy.RunOptions{})
			var pe *comfy.PromptError
			if !errors.As(err, &pe) || !errors.Is(err, comfy.ErrInvalidPrompt) {
				t.Fatalf("want *PromptError, got %T %v", err, err)
			}
			if pe.Type != tc.typ || pe.StatusCode != 400 {
				t.Errorf("type %q status %d", pe.Type, pe.StatusCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "[{") {
				t.Errorf("raw lists in the message:\n%v", err)
			}
		})
	}
}

func TestRunPartiallyValidPromptReportsRefusedOutputs(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "partial_valid_outputs")
	res, err := newTestClient(t, r.srv.URL).Run(testCtx(t), caseWorkflow(t, "partial_valid_outputs"), comfy.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.NodeErrors) != 1 || res.NodeErrors[0].NodeID != "5" || res.NodeErrors[0].ClassType != "SaveImage" ||
		res.NodeErrors[0].Errors[0].Type != "required_input_missing" || res.NodeErrors[0].Errors[0].InputName() != "images" {
		t.Errorf("node errors = %+v", res.NodeErrors)
	}
	if len(res.Files()) == 0 {
		t.Error("the valid branch's files are missing")
	}
}

func TestRunSurvivesAWebsocketDrop(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "brush_422_590_698")
	r.dropAfter = 10        // mid-run, well before executing null
	r.historyAfterPolls = 3 // still running for a few polls after the drop
	client := newTestClient(t, r.srv.URL)
	var log eventLog
	res, err := client.Run(testCtx(t), caseWorkflow(t, "brush_422_590_698"), comfy.RunOptions{OnEvent: log.add})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fileKeys(res.Files()), viewEntries(t, "brush_422_590_698"); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v", got, want)
	}
	calls := r.callList()
	if !slices.Contains(calls, "GET /queue") {
		t.Errorf("the client did not check the queue while the socket was down: %v", calls)
	}
	r.mu.Lock()
	polls, conns := r.polls, r.wsConns
	r.mu.Unlock()
	if polls < 4 {
		t.Errorf("history polled %d times, want it polled until written (4)", polls)
	}
	if conns < 1 {
		t.Errorf("websocket connections: %d", conns)
	}
	// The socket carried 10 messages of the run before it dropped; later
	// sockets have new client ids and get only queue broadcasts.
	ofPrompt := 0
	for _, e := range log.events {
		if e.PromptID == res.PromptID {
			ofPrompt++
		}
	}
	if ofPrompt == 0 || ofPrompt > 10 {
		t.Errorf("saw %d events of the prompt, want 1..10", ofPrompt)
	}
}

func TestRunWaitsOutTheHistoryRace(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "blur")
	r.raceHold = true
	client := newTestClient(t, r.srv.URL)
	res, err := client.Run(testCtx(t), caseWorkflow(t, "blur"), comfy.RunOptions{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Files()) != len(viewEntries(t, "blur")) {
		t.Errorf("files = %v", res.Files())
	}
	r.mu.Lock()
	polls := r.polls
	r.mu.Unlock()
	if polls < 2 {
		t.Errorf("history polled %d times: the {} answer after execution_success was not tolerated and retried", polls)
	}
}

func TestRunWithoutWebsocketPolls(t *testing.T) {
	t.Parallel()
	for _, noWS := range []bool{true, false} {
		r := newReplay(t, "invert")
		r.noWS = noWS
		r.dropAfter = 1 // the run finishes "while away" after a few polls
		r.historyAfterPolls = 2
		client := newTestClient(t, r.srv.URL)
		res, err := client.Run(testCtx(t), caseWorkflow(t, "invert"), comfy.RunOptions{NoWebsocket: !noWS})
		if err != nil {
			t.Fatalf("noWS=%v: %v", noWS, err)
		}
		if len(res.Files()) == 0 {
			t.Errorf("noWS=%v: no files", noWS)
		}
		if r.clientID != "" && noWS {
			t.Errorf("queued with client id %q though no socket was open", r.clientID)
		}
	}
}

func TestRunReportsAPromptDeletedFromTheQueue(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "invert")
	r.noWS = true
	r.mu.Lock()
	r.deleted = true
	r.mu.Unlock()
	_, err := newTestClient(t, r.srv.URL).Run(testCtx(t), caseWorkflow(t, "invert"), comfy.RunOptions{})
	if !errors.Is(err, comfy.ErrPromptDeleted) {
		t.Fatalf("got %v, want ErrPromptDeleted", err)
	}
}

func TestRunCancelStopsThePromptOnTheServer(t *testing.T) {
	t.Parallel()
	r := newReplay(t, "invert")
	r.dropAfter = 2
	r.historyAfterPolls = 1 << 30 // never finishes
	client := newTestClient(t, r.srv.URL)
	ctx, cancel := contextWithCancel(t)
	started := make(chan struct{})
	var once sync.Once
	go func() {
		waitFor(t, r.queued, "the prompt to be queued")
		<-started
		cancel()
	}()
	_, err := client.Run(ctx, caseWorkflow(t, "invert"), comfy.RunOptions{OnEvent: func(comfy.Event) { once.Do(func() { close(started) }) }})
	if !errors.Is(err, ctxCanceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	calls := r.callList()
	wantDelete := `POST /queue {"delete":["` + r.promptID + `"]}`
	wantInterrupt := `POST /interrupt {"prompt_id":"` + r.promptID + `"}`
	if !slices.Contains(calls, wantDelete) || !slices.Contains(calls, wantInterrupt) {
		t.Errorf("calls %v lack %q and %q", calls, wantDelete, wantInterrupt)
	}
}
