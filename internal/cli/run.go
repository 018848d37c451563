package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for isImageFile's image.DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	_ "golang.org/x/image/webp"

	"github.com/comfypod/comfypod/runpod"
)

// RunOptions are the inputs of comfypod run.
type RunOptions struct {
	// IO, HTTPClient, Getenv and Now come from the Factory.
	IO         *IOStreams
	HTTPClient *http.Client
	Getenv     func(string) string
	Now        func() time.Time
	// Logger makes the RunPod client's logger writing to w.
	Logger func(w io.Writer) (*slog.Logger, error)
	// Rand gives random seeds for --set NODE.seed=random.
	Rand func() uint64
	// ClientOptions are extra options for the RunPod client (tests pass a
	// clock).
	ClientOptions []runpod.Option

	// Conn says which endpoint to call.
	Conn ConnectionOptions

	// WorkflowFile is an API-format workflow sent as input.workflow.
	WorkflowFile string
	// Images are NAME=PATH pairs sent as input.images.
	Images []string
	// Files are NAME=PATH pairs of any file (videos, audio) sent as
	// input.images byte for byte.
	Files []string
	// MaxSide downscales --image files whose longer side is larger.
	MaxSide int
	// Sets are NODE.INPUT=VALUE edits applied to the workflow.
	Sets []string
	// InputFile is a JSON file (or - for stdin) holding the whole input.
	InputFile string
	// Sync uses /runsync instead of /run.
	Sync bool
	// Timeout is the overall deadline; 0 waits as long as it takes.
	Timeout time.Duration
	// OutDir, when set, receives every output file.
	OutDir string
	// JSON prints the final status as JSON on stdout.
	JSON bool
}

// maxInputFile bounds --input and --workflow files: RunPod would refuse more.
const maxInputFile = runpod.RunSyncPayloadLimit

// NewCmdRun builds comfypod run. runF replaces the command's action in
// tests; nil runs it.
func NewCmdRun(f *Factory, runF func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{
		IO: f.IO, HTTPClient: f.HTTPClient, Getenv: f.Getenv, Now: f.Now,
		Logger: f.clientLogger, Rand: rand.Uint64,
	}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a ComfyUI workflow as a RunPod Serverless job and save its outputs",
		Long: `Run submits a job to a RunPod Serverless endpoint, waits for it, and saves the
files it returns.

The job's input is built from --workflow (an API-format workflow, sent as
input.workflow), --image (input images, sent as input.images as base64),
--file (any other input file — a video, audio — sent byte for byte in
input.images too, where worker-comfyui and comfypod's worker both take it),
and --set (edits to the workflow's node inputs); or taken whole from --input,
to which --image and --file add their files.
--set NODE.INPUT=VALUE changes one input: VALUE is read as a JSON number or
boolean, else as text; "random" gives a number input a random value (the seed
used is printed, so a run can be repeated).

While the job runs, a line on standard error shows its state, the time spent
and, when the job waits for a worker that is starting, that the model is
loading (cold start). After --timeout the job is cancelled at RunPod.

With --out, every output file (images, videos, …; inline base64 or uploaded to
S3) is written there, streamed to disk, and the paths are printed on standard
output. --json prints the final status as RunPod returned it.

Exit status: 0 the job completed; 1 it failed, was cancelled or timed out at
RunPod; 2 bad flags; 3 the API key was refused; 4 unknown endpoint or job;
5 --timeout passed.`,
		Example: `  export RUNPOD_ENDPOINT_ID=abc123 RUNPOD_API_KEY=rpa_…
  comfypod run --workflow brush.json --image input-1.png=target.png \
      --image input-2.png=style.png --image mask.png=mask.png --max-side 1024 \
      --set 689.seed=random --set 658.text="a watercolor cat" --out ./out
  comfypod run --input job.json --sync --json > status.json
  comfypod run --input dance.json --image character.png=me.png --file motion.mp4=dance.mp4 --out ./out
  echo '{"prompt": "hello"}' | comfypod run --input - --timeout 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Conn.resolve(opts.Getenv); err != nil {
				return err
			}
			if opts.WorkflowFile == "" && opts.InputFile == "" && len(opts.Images) == 0 && len(opts.Files) == 0 {
				return usageErrorf("nothing to send: give --workflow FILE, --input FILE, --image NAME=PATH or --file NAME=PATH")
			}
			if opts.Timeout < 0 {
				return usageErrorf("--timeout %s: want a positive duration, or 0 to wait as long as it takes", opts.Timeout)
			}
			if opts.MaxSide < 0 {
				return usageErrorf("--max-side %d: want a number of pixels, or 0 to keep images as they are", opts.MaxSide)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	addConnectionFlags(cmd, &opts.Conn)
	fl := cmd.Flags()
	fl.StringVar(&opts.WorkflowFile, "workflow", "", "API-format workflow `FILE`, sent as input.workflow")
	fl.StringArrayVar(&opts.Images, "image", nil, "input image `NAME=PATH`, sent as input.images (repeatable)")
	fl.StringArrayVar(&opts.Files, "file", nil, "input file `NAME=PATH` of any kind (a video, audio), sent as is in input.images (repeatable)")
	fl.IntVar(&opts.MaxSide, "max-side", 0, "downscale --image files to at most this many `pixels` on their longer side")
	fl.StringArrayVar(&opts.Sets, "set", nil, "edit a workflow input: `NODE.INPUT=VALUE` (repeatable), e.g. 689.seed=random")
	fl.StringVar(&opts.InputFile, "input", "", "JSON `FILE` holding the job's whole input (- for stdin)")
	fl.BoolVar(&opts.Sync, "sync", false, "submit with /runsync instead of /run")
	fl.DurationVar(&opts.Timeout, "timeout", runpod.WaitTimeoutDefault, "give up and cancel the job after this long (0: no limit)")
	fl.StringVar(&opts.OutDir, "out", "", "write every output file into `DIR`")
	fl.BoolVar(&opts.JSON, "json", false, "print the final status as JSON on stdout")
	return cmd
}

func runRun(ctx context.Context, o *RunOptions) error {
	line := newProgressLine(o.IO.ErrOut, o.IO.StderrTTY, o.Now)
	input, notes, err := o.buildInput()
	if err != nil {
		return err
	}
	log, err := o.Logger(line)
	if err != nil {
		return err
	}
	c, err := o.Conn.client(o.HTTPClient, log, o.ClientOptions...)
	if err != nil {
		return err
	}
	for _, n := range notes {
		line.printf("%s\n", n)
	}

	timeout := o.Timeout
	if timeout == 0 {
		timeout = -1 // the library's "no deadline"
	}
	wait := runpod.WaitOptions{Timeout: timeout, OnEvent: line.event}
	req := &runpod.Request{Input: input}

	line.begin()
	var st *runpod.Status
	if o.Sync {
		line.submitting("/runsync")
		st, err = c.RunSync(ctx, req, &runpod.RunSyncOptions{WaitOptions: wait})
	} else {
		var job *runpod.Job
		line.submitting("/run")
		job, err = c.Run(ctx, req)
		if err == nil {
			line.submitted(job.ID, job.State)
			st, err = job.Wait(ctx, &wait)
		}
	}
	if st == nil {
		line.end("")
		return err
	}
	defer st.Close()
	line.end(summary(st))
	return o.finish(ctx, st, err)
}

// finish reports a terminal status: its JSON, its files, or its error.
func (o *RunOptions) finish(ctx context.Context, st *runpod.Status, jobErr error) error {
	return reportStatus(ctx, o.IO, st, jobErr, o.OutDir, o.JSON)
}

// reportStatus prints a terminal status as asked: the status JSON on stdout
// (asJSON), the output files written to outDir with their paths on stdout, or
// the output itself when it holds no files. It returns jobErr, the job's own
// failure, after printing the worker's traceback if there is one.
func reportStatus(ctx context.Context, ios *IOStreams, st *runpod.Status, jobErr error, outDir string, asJSON bool) error {
	if asJSON {
		if err := st.WriteJSON(ios.Out); err != nil {
			return err
		}
		if _, err := io.WriteString(ios.Out, "\n"); err != nil {
			return err
		}
	}
	var je *runpod.JobError
	if errors.As(jobErr, &je) && je.Traceback != "" {
		fmt.Fprintf(ios.ErrOut, "worker traceback:\n%s\n", strings.TrimRight(je.Traceback, "\n"))
	}
	if jobErr != nil {
		return jobErr
	}
	files, err := st.Outputs()
	if err != nil {
		return err
	}
	switch {
	case outDir != "" && len(files) > 0:
		saved, err := st.WriteOutputs(ctx, outDir)
		for _, s := range saved {
			fmt.Fprintf(ios.ErrOut, "saved %s (%s)\n", s.Path, humanBytes(s.Size))
			if !asJSON {
				fmt.Fprintln(ios.Out, s.Path)
			}
		}
		return err
	case len(files) > 0:
		if !asJSON {
			fmt.Fprintf(ios.ErrOut, "the output holds %d file(s); pass --out DIR to save them, or --json to see the output\n", len(files))
		}
	case !asJSON && st.HasOutput():
		// No files: the output is the result (text, numbers); print it.
		if outDir != "" {
			fmt.Fprintln(ios.ErrOut, "the output holds no files; printing it")
		}
		if _, err := io.Copy(ios.Out, st.OutputJSON()); err != nil {
			return err
		}
		fmt.Fprintln(ios.Out)
	}
	return nil
}

// summary is the last status line: state and timings.
func summary(st *runpod.Status) string {
	s := fmt.Sprintf("job %s %s", st.ID, st.State)
	if st.DelayTime > 0 || st.ExecutionTime > 0 {
		s += fmt.Sprintf(" (queued %s, ran %s)", roundDuration(st.DelayTime), roundDuration(st.ExecutionTime))
	}
	return s
}

func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// wrappedInput unwraps {"input": {…}}: an object whose only member is an
// object named input is a request body (test_input.json), not an input.
func wrappedInput(obj map[string]json.RawMessage) (map[string]json.RawMessage, bool) {
	raw, ok := obj["input"]
	if !ok || len(obj) != 1 {
		return nil, false
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(raw, &inner); err != nil || inner == nil {
		return nil, false
	}
	return inner, true
}

// buildInput assembles the job's input from the flags. notes are lines to
// show the user (the random seeds chosen).
func (o *RunOptions) buildInput() (json.RawMessage, []string, error) {
	input := map[string]json.RawMessage{}
	if o.InputFile != "" {
		b, err := o.readFile(o.InputFile)
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(b, &input); err != nil || input == nil {
			return nil, nil, usageErrorf("--input %s: want a JSON object (the job's input): %s", o.InputFile, jsonProblem(b, err))
		}
		if inner, ok := wrappedInput(input); ok {
			// A test_input.json file, {"input": {…}}, as RunPod's worker
			// tools and .runpod/tests.json examples write it.
			input = inner
		}
	}
	if o.WorkflowFile != "" {
		b, err := o.readFile(o.WorkflowFile)
		if err != nil {
			return nil, nil, err
		}
		if err := checkAPIWorkflow(b); err != nil {
			return nil, nil, usageErrorf("--workflow %s: %v", o.WorkflowFile, err)
		}
		input["workflow"] = json.RawMessage(b)
	}
	var notes []string
	if len(o.Sets) > 0 {
		wf, ok := input["workflow"]
		if !ok {
			return nil, nil, usageErrorf("--set needs a workflow: give --workflow FILE, or an input with a \"workflow\"")
		}
		edited, applied, err := editWorkflow(wf, o.Sets, o.Rand)
		if err != nil {
			return nil, nil, err
		}
		input["workflow"] = edited
		notes = applied
	}
	if len(o.Images) > 0 || len(o.Files) > 0 {
		images, err := o.images(input["images"])
		if err != nil {
			return nil, nil, err
		}
		input["images"] = images
	}
	b, err := json.Marshal(input)
	if err != nil {
		return nil, nil, err
	}
	return b, notes, nil
}

// readFile reads a flag's file, or stdin for "-".
func (o *RunOptions) readFile(name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = o.IO.In
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxInputFile {
		return nil, usageErrorf("%s is over %s, more than RunPod accepts in a request", name, humanBytes(maxInputFile))
	}
	return b, nil
}

// jsonProblem describes why b is not the JSON object wanted.
func jsonProblem(b []byte, err error) string {
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
		}
		return err.Error()
	}
	return "got " + strings.TrimSpace(string(b[:min(len(b), 40)]))
}

// checkAPIWorkflow accepts an API-format workflow ({"id": {"class_type": …,
// "inputs": {…}}}) and explains anything else, notably a UI export.
func checkAPIWorkflow(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return fmt.Errorf("want an API-format workflow (a JSON object of nodes): %s", jsonProblem(b, err))
	}
	if _, ok := top["nodes"]; ok {
		if _, ok := top["links"]; ok {
			return errors.New(`this is a UI workflow (it has "nodes" and "links"); export it with "Save (API Format)" in ComfyUI, or convert it with "comfypod workflow convert"`)
		}
	}
	if len(top) == 0 {
		return errors.New("the workflow has no nodes")
	}
	for id, raw := range top {
		var node struct {
			ClassType string          `json:"class_type"`
			Inputs    json.RawMessage `json:"inputs"`
		}
		if json.Unmarshal(raw, &node) != nil || node.ClassType == "" {
			return fmt.Errorf("node %q has no class_type: want an API-format workflow", id)
		}
	}
	return nil
}

// images adds the --image and --file files to the input's images list,
// replacing entries of the same name.
func (o *RunOptions) images(existing json.RawMessage) (json.RawMessage, error) {
	var list []map[string]json.RawMessage
	if len(existing) > 0 && string(existing) != "null" {
		if err := json.Unmarshal(existing, &list); err != nil {
			return nil, usageErrorf("the input's \"images\" is not a list of {\"name\", \"image\"} objects: %v", err)
		}
	}
	add := func(name, data string) {
		nameJSON, _ := json.Marshal(name)
		dataJSON, _ := json.Marshal(data)
		entry := map[string]json.RawMessage{"name": nameJSON, "image": dataJSON}
		i := slices.IndexFunc(list, func(e map[string]json.RawMessage) bool { return bytes.Equal(e["name"], nameJSON) })
		if i >= 0 {
			list[i] = entry
		} else {
			list = append(list, entry)
		}
	}
	for _, spec := range o.Images {
		name, path, err := fileSpec("--image", spec, "input-1.png=./target.png")
		if err != nil {
			return nil, err
		}
		if !isImageFile(path) {
			return nil, usageErrorf("--image %s: not a PNG, JPEG, GIF or WEBP image; send videos, audio and other files with --file %s", spec, spec)
		}
		data, err := runpod.EncodeImageFile(path, &runpod.ImageOptions{MaxSide: o.MaxSide})
		if err != nil {
			return nil, usageErrorf("--image %s: %s", spec, strings.TrimPrefix(err.Error(), "runpod: "))
		}
		add(name, data)
	}
	for _, spec := range o.Files {
		name, path, err := fileSpec("--file", spec, "motion.mp4=./dance.mp4")
		if err != nil {
			return nil, err
		}
		data, err := readInputFile(path)
		if err != nil {
			return nil, usageErrorf("--file %s: %v", spec, err)
		}
		add(name, base64.StdEncoding.EncodeToString(data))
	}
	return json.Marshal(list)
}

// fileSpec splits a NAME=PATH flag value; a bare PATH is named by its base
// name.
func fileSpec(flag, spec, example string) (name, path string, err error) {
	name, path, ok := strings.Cut(spec, "=")
	if !ok {
		name, path = filepath.Base(spec), spec
	}
	if name == "" || path == "" {
		return "", "", usageErrorf("%s %q: want NAME=PATH, e.g. %s", flag, spec, example)
	}
	return name, path, nil
}

// isImageFile says whether path holds an image EncodeImage reads, judged by
// its header; an unreadable file is left for EncodeImageFile to report.
func isImageFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	_, _, err = image.DecodeConfig(f)
	return err == nil
}

// maxSentFile is the largest --file: RunPod's /runsync payload limit, less
// the growth of base64.
const maxSentFile = runpod.RunSyncPayloadLimit / 4 * 3

// readInputFile reads a --file file whole, refusing one RunPod could not
// take in a request.
func readInputFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSentFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSentFile {
		return nil, fmt.Errorf("more than the %s RunPod takes in a request once encoded as base64; put the file at an https URL and give the URL instead (in --input's params or images)",
			humanBytes(int64(maxSentFile)))
	}
	return data, nil
}

// editWorkflow applies --set edits to a workflow given as a JSON object or
// as a JSON string holding one (the form some clients send); the result keeps
// the form. It returns notes for the user about random values chosen.
func editWorkflow(wf json.RawMessage, sets []string, rnd func() uint64) (json.RawMessage, []string, error) {
	asString := false
	doc := []byte(wf)
	var s string
	if json.Unmarshal(wf, &s) == nil {
		asString, doc = true, []byte(s)
	}
	var nodes map[string]json.RawMessage
	if err := json.Unmarshal(doc, &nodes); err != nil || nodes == nil {
		return nil, nil, usageErrorf("--set: the workflow is not a JSON object of nodes")
	}
	var notes []string
	for _, spec := range sets {
		note, err := setInput(nodes, spec, rnd)
		if err != nil {
			return nil, nil, err
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	out, err := json.Marshal(nodes)
	if err != nil {
		return nil, nil, err
	}
	if asString {
		out, err = json.Marshal(string(out))
	}
	return out, notes, err
}

// setInput applies one NODE.INPUT=VALUE edit.
func setInput(nodes map[string]json.RawMessage, spec string, rnd func() uint64) (string, error) {
	lhs, value, ok := strings.Cut(spec, "=")
	dot := strings.LastIndex(lhs, ".")
	if !ok || dot <= 0 || dot == len(lhs)-1 {
		return "", usageErrorf("--set %q: want NODE.INPUT=VALUE, e.g. 689.seed=random or 658.text=\"a cat\"", spec)
	}
	id, name := lhs[:dot], lhs[dot+1:]
	raw, ok := nodes[id]
	if !ok {
		return "", usageErrorf("--set %s: the workflow has no node %q (its nodes: %s)", spec, id, listKeys(nodes))
	}
	var node map[string]json.RawMessage
	if err := json.Unmarshal(raw, &node); err != nil {
		return "", usageErrorf("--set %s: node %s is not an object", spec, id)
	}
	var class string
	_ = json.Unmarshal(node["class_type"], &class)
	label := id
	if class != "" {
		label = fmt.Sprintf("%s (%s)", id, class)
	}
	var inputs map[string]json.RawMessage
	if err := json.Unmarshal(node["inputs"], &inputs); err != nil || inputs == nil {
		return "", usageErrorf("--set %s: node %s has no inputs", spec, label)
	}
	cur, ok := inputs[name]
	if !ok {
		return "", usageErrorf("--set %s: node %s has no input %q (its inputs: %s)", spec, label, name, listKeys(inputs))
	}
	newValue, note, err := inputValue(cur, value, rnd)
	if err != nil {
		return "", usageErrorf("--set %s: input %q of node %s %v", spec, name, label, err)
	}
	inputs[name] = newValue
	if node["inputs"], err = json.Marshal(inputs); err != nil {
		return "", err
	}
	if nodes[id], err = json.Marshal(node); err != nil {
		return "", err
	}
	if note != "" {
		note = fmt.Sprintf("set %s.%s = %s", id, name, note)
	}
	return note, nil
}

// maxJSONInt is the largest integer JSON clients read exactly (2^53-1).
const maxJSONInt = 1<<53 - 1

// inputValue turns VALUE into the JSON for an input whose current value is
// cur, checking the kinds match.
func inputValue(cur json.RawMessage, value string, rnd func() uint64) (json.RawMessage, string, error) {
	var current any
	dec := json.NewDecoder(bytes.NewReader(cur))
	dec.UseNumber()
	_ = dec.Decode(&current)

	var v any = value // text unless it reads as a number or boolean
	if json.Valid([]byte(value)) {
		var parsed any
		d := json.NewDecoder(strings.NewReader(value))
		d.UseNumber()
		if d.Decode(&parsed) == nil {
			switch p := parsed.(type) {
			case json.Number, bool:
				v = p
			case string:
				v = p // a quoted string: its content
			}
		}
	}
	note := ""
	switch c := current.(type) {
	case []any:
		if len(c) == 2 {
			return nil, "", fmt.Errorf("is linked to node %v; --set changes values, not links", c[0])
		}
	case json.Number:
		if value == "random" {
			n := rnd() % (maxJSONInt + 1)
			v = json.Number(fmt.Sprint(n))
			note = fmt.Sprint(n)
		}
		if _, ok := v.(json.Number); !ok {
			return nil, "", fmt.Errorf("is a number (now %s); %q is not one (use \"random\" for a random seed)", c, value)
		}
	case bool:
		if _, ok := v.(bool); !ok {
			return nil, "", fmt.Errorf("is true or false; %q is neither", value)
		}
	case string:
		switch p := v.(type) {
		case json.Number:
			v = p.String()
		case bool:
			v = fmt.Sprint(p)
		}
	}
	b, err := json.Marshal(v)
	return b, note, err
}

// listKeys lists a map's keys, sorted, for error messages.
func listKeys[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 12 {
		keys = append(keys[:12], "…")
	}
	return strings.Join(keys, ", ")
}

// progressLine shows a job's progress on standard error: on a terminal, one
// line redrawn in place every second; elsewhere, a log line per event.
type progressLine struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu     sync.Mutex
	start  time.Time
	job    string
	state  string
	note   string
	shown  bool
	frame  int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

func newProgressLine(w io.Writer, tty bool, now func() time.Time) *progressLine {
	return &progressLine{w: w, tty: tty, now: now}
}

// begin starts the clock and, on a terminal, the redraw loop.
func (p *progressLine) begin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start = p.now()
	if !p.tty {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	p.stop, p.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.frame++
				p.draw()
				p.mu.Unlock()
			}
		}
	}()
}

func (p *progressLine) submitting(path string) {
	p.update("", "submitting", "POST "+path)
}

func (p *progressLine) submitted(id string, state runpod.State) {
	p.update(id, string(state), "")
}

// event shows a Wait event.
func (p *progressLine) event(e runpod.Event) {
	switch e.Kind {
	case runpod.EventState:
		if e.State.Terminal() {
			return // the final summary says it
		}
		p.update(e.JobID, string(e.State), "")
	case runpod.EventProgress:
		p.update(e.JobID, string(e.State), "progress "+oneLineJSON(e.Progress, 60))
	case runpod.EventColdStart:
		p.update(e.JobID, string(e.State), "model is loading (cold start)…")
	case runpod.EventQueued:
		if h := e.Health; h != nil {
			p.update(e.JobID, string(e.State), fmt.Sprintf("waiting for a worker (%d queued, %d running)", h.Jobs.InQueue, h.Jobs.InProgress))
		}
	}
}

func (p *progressLine) update(job, state, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if job != "" {
		p.job = job
	}
	changed := state != p.state || note != p.note
	p.state, p.note = state, note
	if p.tty {
		p.draw()
		return
	}
	if !changed {
		return
	}
	msg := state
	if note != "" {
		msg += ": " + note
	}
	if p.job != "" {
		fmt.Fprintf(p.w, "job %s %s (%s)\n", p.job, msg, p.elapsed())
	} else {
		fmt.Fprintf(p.w, "%s (%s)\n", msg, p.elapsed())
	}
}

func (p *progressLine) elapsed() time.Duration {
	if p.start.IsZero() {
		return 0
	}
	return p.now().Sub(p.start).Round(time.Second)
}

// spinnerFrames animate the live line.
const spinnerFrames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

// draw redraws the line; p.mu is held.
func (p *progressLine) draw() {
	if p.closed || p.state == "" {
		return
	}
	frames := []rune(spinnerFrames)
	line := fmt.Sprintf("%c %s %s", frames[p.frame%len(frames)], p.state, p.elapsed())
	if p.job != "" {
		line += "  job " + p.job
	}
	if p.note != "" {
		line += "  " + p.note
	}
	if r := []rune(line); len(r) > 110 {
		line = string(r[:109]) + "…"
	}
	fmt.Fprintf(p.w, "\r\x1b[2K%s", line)
	p.shown = true
}

// clear removes the live line; p.mu is held.
func (p *progressLine) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[2K")
		p.shown = false
	}
}

// printf writes a line of its own above the live line.
func (p *progressLine) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format, args...)
	if p.tty {
		p.draw()
	}
}

// Write lets log records through without garbling the live line.
func (p *progressLine) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	n, err := p.w.Write(b)
	if p.tty {
		p.draw()
	}
	return n, err
}

// end stops the redraw loop, clears the line and prints final (if any).
func (p *progressLine) end(final string) {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	p.closed = true
	if final != "" {
		fmt.Fprintf(p.w, "%s in %s\n", final, p.elapsed())
	}
}

// oneLineJSON shortens JSON for a status line.
func oneLineJSON(b []byte, n int) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		buf.Reset()
		buf.Write(b)
	}
	s := strings.Join(strings.Fields(buf.String()), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
