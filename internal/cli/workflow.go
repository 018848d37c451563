package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/comfy"
	"github.com/comfypod/comfypod/internal/redact"
	"github.com/comfypod/comfypod/internal/truncate"
)

// maxObjectInfo caps how much of an /object_info answer or file is read.
const maxObjectInfo = 256 << 20

func newCmdWorkflow(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workflow",
		Short: "Inspect and convert ComfyUI workflows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(NewCmdWorkflowCheck(f, nil), NewCmdWorkflowConvert(f, nil))
	return cmd
}

// WorkflowCheckOptions are the inputs of `comfypod workflow check`.
type WorkflowCheckOptions struct {
	IO         *IOStreams
	HTTPClient *http.Client

	File       string
	Manifest   string
	ObjectInfo string
	Workflow   string
	JSON       bool
}

// NewCmdWorkflowCheck builds `comfypod workflow check`. runF replaces the run
// function in tests.
func NewCmdWorkflowCheck(f *Factory, runF func(context.Context, *WorkflowCheckOptions) error) *cobra.Command {
	opts := &WorkflowCheckOptions{IO: f.IO, HTTPClient: f.HTTPClient}
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "List a workflow's nodes and bindings and report every problem",
		Long: `Check parses a ComfyUI workflow (API format, or a UI export when --object-info
is given), lists its nodes (id, class, title), and reports every problem found:
broken links, cycles, and with --object-info unknown classes, bad link types,
missing required inputs, values out of range or not among the options.

With --manifest it also lists the package's param bindings and checks each one
against the workflow: the node exists, has the expected class_type and the
input. FILE may be "-" for stdin.

It exits 1 when it finds a problem and 0 otherwise.`,
		Example: `  comfypod workflow check workflow_api.json
  comfypod workflow check workflow_api.json --manifest comfypod.json --object-info http://127.0.0.1:8188
  comfypod workflow check ui_export.json --object-info object_info.json --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWorkflowCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Manifest, "manifest", "", "package manifest whose bindings to check")
	cmd.Flags().StringVar(&opts.ObjectInfo, "object-info", "", "server /object_info: a JSON file, a folder of per-class JSON files, or a server URL")
	cmd.Flags().StringVar(&opts.Workflow, "workflow", "", "which manifest workflow FILE is (default: matched by file name, else the first)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	return cmd
}

// checkReport is what `workflow check` prints.
type checkReport struct {
	File        string             `json:"file"`
	Format      string             `json:"format"`
	Nodes       []checkNode        `json:"nodes"`
	OutputNodes []string           `json:"output_nodes"`
	FileInputs  []comfy.FileInput  `json:"file_inputs"`
	Manifest    string             `json:"manifest,omitempty"`
	Workflow    string             `json:"workflow,omitempty"`
	Bindings    []comfy.BoundInput `json:"bindings,omitempty"`
	Problems    []checkProblem     `json:"problems"`
	OK          bool               `json:"ok"`
	info        comfy.ObjectInfo   `json:"-"`
	wf          *comfy.Workflow    `json:"-"`
}

type checkNode struct {
	ID        string `json:"id"`
	ClassType string `json:"class_type"`
	Title     string `json:"title,omitempty"`
}

type checkProblem struct {
	Node    string `json:"node,omitempty"`
	Class   string `json:"class_type,omitempty"`
	Input   string `json:"input,omitempty"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

func runWorkflowCheck(ctx context.Context, opts *WorkflowCheckOptions) error {
	data, err := readInput(opts.IO, opts.File)
	if err != nil {
		return err
	}
	info, err := loadObjectInfo(ctx, opts.HTTPClient, opts.ObjectInfo)
	if err != nil {
		return err
	}
	rep := &checkReport{File: opts.File, Format: "api", Problems: []checkProblem{}, info: info}
	wf, converted, err := comfy.ParseOrConvert(data, info)
	if converted {
		rep.Format = "ui"
	}
	if err != nil {
		var we *comfy.WorkflowError
		if !errors.As(err, &we) {
			if errors.Is(err, comfy.ErrUIFormat) {
				rep.Format = "ui"
			}
			rep.Problems = append(rep.Problems, checkProblem{Message: err.Error(), Text: err.Error()})
			return finishCheck(opts, rep)
		}
		rep.addWorkflowProblems(we)
		return finishCheck(opts, rep)
	}
	rep.wf = wf
	for _, n := range wf.Nodes() {
		rep.Nodes = append(rep.Nodes, checkNode{ID: n.ID, ClassType: n.ClassType, Title: n.Title()})
	}
	rep.OutputNodes = []string{}
	for _, n := range wf.OutputNodes(info) {
		rep.OutputNodes = append(rep.OutputNodes, n.ID)
	}
	rep.FileInputs = wf.FileInputs(info)
	if err := wf.Validate(info); err != nil {
		var we *comfy.WorkflowError
		if errors.As(err, &we) {
			rep.addWorkflowProblems(we)
		}
	}
	if info == nil && len(rep.OutputNodes) == 0 {
		rep.Problems = append(rep.Problems, checkProblem{
			Message: "no known output node (SaveImage, PreviewImage, VHS_VideoCombine, …); pass --object-info to check custom output nodes",
		})
	}
	if opts.Manifest != "" {
		if err := rep.checkManifest(opts); err != nil {
			return err
		}
	}
	return finishCheck(opts, rep)
}

func (rep *checkReport) addWorkflowProblems(we *comfy.WorkflowError) {
	for _, p := range we.Problems {
		rep.Problems = append(rep.Problems, checkProblem{Node: p.Node, Class: p.Class, Input: p.Input, Message: p.Message, Text: p.String()})
	}
}

func (rep *checkReport) checkManifest(opts *WorkflowCheckOptions) error {
	data, err := os.ReadFile(opts.Manifest)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	rep.Manifest = opts.Manifest
	m, err := comfy.ParseManifest(data)
	if err != nil {
		var me *comfy.ManifestError
		if errors.As(err, &me) {
			for _, p := range me.Problems {
				text := "manifest: " + p
				rep.Problems = append(rep.Problems, checkProblem{Message: text, Text: text})
			}
			return nil
		}
		return err
	}
	name := opts.Workflow
	if name == "" {
		name = matchManifestWorkflow(m, opts.Manifest, opts.File)
	}
	rep.Workflow = name
	rep.Bindings = m.Bindings(rep.wf, name)
	if err := m.Check(rep.wf, name, rep.info); err != nil {
		var pe *comfy.ParamsError
		if !errors.As(err, &pe) {
			return err
		}
		for _, p := range pe.Problems {
			rep.Problems = append(rep.Problems, checkProblem{Node: p.Node, Input: p.Input, Param: p.Param, Message: p.Message, Text: p.String()})
		}
	}
	return nil
}

// matchManifestWorkflow finds which manifest workflow file is: the one whose
// path (relative to the manifest) is file, else the default workflow.
func matchManifestWorkflow(m *comfy.Manifest, manifestPath, file string) string {
	abs, err := filepath.Abs(file)
	if err == nil {
		dir := filepath.Dir(manifestPath)
		for _, name := range m.Workflows() {
			wfFile, _ := m.WorkflowFile(name)
			if p, err := filepath.Abs(filepath.Join(dir, filepath.FromSlash(wfFile))); err == nil && p == abs {
				return name
			}
		}
	}
	return m.DefaultWorkflow()
}

func finishCheck(opts *WorkflowCheckOptions, rep *checkReport) error {
	rep.OK = len(rep.Problems) == 0
	if rep.Nodes == nil {
		rep.Nodes = []checkNode{}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.printText(opts.IO.Out); err != nil {
		return err
	}
	if !rep.OK {
		fmt.Fprintf(opts.IO.ErrOut, "%s: %d problem(s) found\n", opts.File, len(rep.Problems))
		return &SilentError{Code: ExitFailed}
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s: no problems found\n", opts.File)
	return nil
}

func (rep *checkReport) printText(w io.Writer) error {
	ew := &errWriter{w: w}
	section := func(title string) {
		if ew.n > 0 {
			ew.printf("\n")
		}
		ew.printf("%s\n", title)
	}
	if len(rep.Nodes) > 0 {
		section(fmt.Sprintf("workflow %s (%s format, %d nodes; output nodes: %s)\n", rep.File, strings.ToUpper(rep.Format), len(rep.Nodes), strings.Join(rep.OutputNodes, ", ")))
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tCLASS\tTITLE")
		for _, n := range rep.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, n.ClassType, n.Title)
		}
		_ = tw.Flush()
	}
	if len(rep.FileInputs) > 0 {
		section("file inputs:")
		for _, fi := range rep.FileInputs {
			ew.printf("  %s.%s (%s) = %q\n", fi.Node, fi.Input, fi.Class, fi.Value)
		}
	}
	if rep.Manifest != "" && rep.Workflow != "" {
		section(fmt.Sprintf("bindings of %s, workflow %q:", rep.Manifest, rep.Workflow))
		if len(rep.Bindings) == 0 {
			ew.printf("  (none)\n")
		}
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, b := range rep.Bindings {
			cur := string(b.Current)
			if cur == "" {
				cur = "(missing)"
			}
			fmt.Fprintf(tw, "  %s\t→ node %s input %s\t(%s)\t= %s\n", b.Param, b.Node, b.Input, b.ClassType, truncate.Runes(cur, 60))
		}
		_ = tw.Flush()
	}
	if len(rep.Problems) > 0 {
		section("problems:")
		for _, p := range rep.Problems {
			text := p.Text
			if text == "" {
				text = p.Message
			}
			ew.printf("  - %s\n", strings.ReplaceAll(text, "\n", "\n    "))
		}
	}
	return ew.err
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	n   int
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.n += n
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// readInput reads a file, or stdin for "-".
func readInput(ios *IOStreams, name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(io.LimitReader(ios.In, maxObjectInfo))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read workflow: %w", err)
	}
	return data, nil
}

// loadObjectInfo reads /object_info from a file, a folder of per-class files
// or a server URL. An empty source gives nil.
func loadObjectInfo(ctx context.Context, hc *http.Client, src string) (comfy.ObjectInfo, error) {
	if src == "" {
		return nil, nil
	}
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return fetchObjectInfo(ctx, hc, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, usageErrorf("--object-info: %v", err)
	}
	if !st.IsDir() {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("--object-info: %w", err)
		}
		info, err := comfy.ParseObjectInfo(data)
		if err != nil {
			return nil, fmt.Errorf("--object-info %s: %w", src, err)
		}
		return info, nil
	}
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, usageErrorf("--object-info %s: the folder holds no .json files", src)
	}
	info := comfy.ObjectInfo{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--object-info: %w", err)
		}
		part, err := comfy.ParseObjectInfo(data)
		if err != nil {
			return nil, fmt.Errorf("--object-info %s: %w", file, err)
		}
		info.Merge(part)
	}
	return info, nil
}

func fetchObjectInfo(ctx context.Context, hc *http.Client, raw string) (comfy.ObjectInfo, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageErrorf("--object-info: not a URL: %s", redact.URL(raw))
	}
	if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/object_info") {
		u.Path = strings.TrimRight(u.Path, "/") + "/object_info"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, usageErrorf("--object-info: %s", redact.URL(raw))
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch object_info from %s: %s", redact.URL(u.String()), redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch object_info from %s: HTTP %d", redact.URL(u.String()), resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectInfo))
	if err != nil {
		return nil, fmt.Errorf("fetch object_info from %s: %s", redact.URL(u.String()), redact.Error(err))
	}
	info, err := comfy.ParseObjectInfo(data)
	if err != nil {
		return nil, fmt.Errorf("object_info from %s: %w", redact.URL(u.String()), err)
	}
	return info, nil
}

// WorkflowConvertOptions are the inputs of `comfypod workflow convert`.
type WorkflowConvertOptions struct {
	IO         *IOStreams
	HTTPClient *http.Client

	File       string
	ObjectInfo string
}

// NewCmdWorkflowConvert builds `comfypod workflow convert`. runF replaces the
// run function in tests.
func NewCmdWorkflowConvert(f *Factory, runF func(context.Context, *WorkflowConvertOptions) error) *cobra.Command {
	opts := &WorkflowConvertOptions{IO: f.IO, HTTPClient: f.HTTPClient}
	cmd := &cobra.Command{
		Use:   "convert FILE --object-info FILE|DIR|URL",
		Short: "Convert a UI workflow export to the API format",
		Long: `Convert turns a ComfyUI UI export (nodes/links) into the API format the server
runs, using the server's /object_info, and prints it to stdout. An API-format
FILE is printed back unchanged in substance. Subgraphs and group nodes cannot
be converted: export the API format from ComfyUI instead.`,
		Example: `  comfypod workflow convert ui.json --object-info http://127.0.0.1:8188 > workflow_api.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if opts.ObjectInfo == "" {
				return usageErrorf("--object-info is required")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWorkflowConvert(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.ObjectInfo, "object-info", "", "server /object_info: a JSON file, a folder of per-class JSON files, or a server URL")
	return cmd
}

func runWorkflowConvert(ctx context.Context, opts *WorkflowConvertOptions) error {
	data, err := readInput(opts.IO, opts.File)
	if err != nil {
		return err
	}
	info, err := loadObjectInfo(ctx, opts.HTTPClient, opts.ObjectInfo)
	if err != nil {
		return err
	}
	wf, _, err := comfy.ParseOrConvert(data, info)
	if err != nil {
		return err
	}
	out, err := wf.MarshalJSON()
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		return err
	}
	pretty.WriteByte('\n')
	if _, err := opts.IO.Out.Write(pretty.Bytes()); err != nil {
		return err
	}
	if err := wf.Validate(info); err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the converted workflow has problems:\n%v\n", err)
		return &SilentError{Code: ExitFailed}
	}
	return nil
}
