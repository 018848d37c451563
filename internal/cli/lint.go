package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/hub"
)

// LintOptions are the inputs of comfypod lint.
type LintOptions struct {
	IO     *IOStreams
	Getenv func(string) string

	// Dirs are the package folders to check.
	Dirs []string
	// Format is text, json or sarif.
	Format string
	// Strict makes warnings fail the run.
	Strict bool
	// Fix applies the safe mechanical fixes before reporting.
	Fix bool
	// Disable silences rules by id or name.
	Disable []string
	// Catalog is a catalog.json to use instead of the built-in one.
	Catalog string
	// Color is auto, always or never.
	Color string
	// ListRules prints the rules instead of linting.
	ListRules bool
}

// NewCmdLint builds comfypod lint. runF replaces the command's action in tests;
// nil runs it.
func NewCmdLint(f *Factory, runF func(context.Context, *LintOptions) error) *cobra.Command {
	opts := &LintOptions{IO: f.IO, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "lint [DIR...]",
		Short: "Check RunPod Hub packages: hub.json, tests.json, Dockerfile and handler node ids",
		Long: `Check one or more RunPod Hub package folders (default: the current folder).

lint reads .runpod/hub.json and .runpod/tests.json, checks them against RunPod's
schema and against each other (GPU pools, GPU type ids, CUDA versions, test
timeouts), checks the Dockerfile (baked-in secrets, CUDA base image, platform),
and checks that the node ids handler.py and the package manifest write exist in
the shipped workflows with the expected inputs. docs/lint.md explains every rule.

Findings go to standard output. The exit status is 1 when there are errors
(with --strict, warnings too) and 0 otherwise. comfypod.lint.json in a package
silences rules for that package: {"disable": ["RP504"], "modelSize": "14B"}.`,
		Example: `  comfypod lint
  comfypod lint packages/image-brush packages/dance-scail
  comfypod lint --format sarif . > lint.sarif
  comfypod lint --fix --disable boolean-values,RP604`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dirs = args
			if len(opts.Dirs) == 0 {
				opts.Dirs = []string{"."}
			}
			switch opts.Format {
			case "text", "json", "sarif":
			default:
				return usageErrorf("--format %q: want text, json or sarif", opts.Format)
			}
			switch opts.Color {
			case "auto", "always", "never":
			default:
				return usageErrorf("--color %q: want auto, always or never", opts.Color)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLint(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Format, "format", "text", "output format: text, json or sarif (SARIF 2.1.0, for GitHub code scanning)")
	fl.BoolVar(&opts.Strict, "strict", false, "fail on warnings as well as errors")
	fl.BoolVar(&opts.Fix, "fix", false, "apply safe fixes (sync tests' allowedCudaVersions, unwrap {\"input\": …}, normalise gpuIds), then report what is left")
	fl.StringSliceVar(&opts.Disable, "disable", nil, "silence rules by id or name (repeatable, comma-separated)")
	fl.StringVar(&opts.Catalog, "catalog", "", "use this catalog.json (GPU pools, GPU ids, CUDA versions…) instead of the built-in one")
	fl.StringVar(&opts.Color, "color", "auto", "colour text output: auto, always or never")
	fl.BoolVar(&opts.ListRules, "rules", false, "list the rules and exit")
	return cmd
}

func runLint(ctx context.Context, opts *LintOptions) error {
	if opts.ListRules {
		return writeRules(opts.IO)
	}
	cfg := &hub.Config{Disable: opts.Disable}
	if opts.Catalog != "" {
		data, err := os.ReadFile(opts.Catalog)
		if err != nil {
			return usageErrorf("--catalog: %v", err)
		}
		cat, err := hub.ParseCatalog(data)
		if err != nil {
			return usageErrorf("--catalog %s: %v", opts.Catalog, err)
		}
		cfg.Catalog = cat
	}
	linter, err := hub.New(cfg)
	if err != nil {
		return usageErrorf("--disable: %v", err)
	}
	dirs := packageDirs(opts.Dirs, func(name string) {
		_, _ = fmt.Fprintf(opts.IO.ErrOut, "skipping %s: not a package folder\n", name)
	})
	report, err := lintDirs(ctx, linter, dirs)
	if err != nil {
		return err
	}
	if opts.Fix {
		fixed := 0
		var fixErrs []error
		for _, res := range report.Results {
			fr, err := hub.ApplyFixes(ctx, res.Dir, res.Findings)
			if fr != nil {
				fixed += fr.Fixed
				for _, file := range fr.Files {
					_, _ = fmt.Fprintf(opts.IO.ErrOut, "fixed %s\n", filePathForDisplay(res.Dir, file))
				}
			}
			if err != nil {
				fixErrs = append(fixErrs, err)
			}
		}
		if fixed > 0 {
			if report, err = lintDirs(ctx, linter, dirs); err != nil {
				return err
			}
		}
		for _, e := range fixErrs {
			_, _ = fmt.Fprintf(opts.IO.ErrOut, "comfypod: --fix: %v\n", e)
		}
		_, _ = fmt.Fprintf(opts.IO.ErrOut, "%d finding(s) fixed\n", fixed)
	}
	switch opts.Format {
	case "json":
		err = report.WriteJSON(opts.IO.Out)
	case "sarif":
		err = report.WriteSARIF(opts.IO.Out, version())
	default:
		err = report.WriteText(opts.IO.Out, hub.TextOptions{Color: useColor(opts)})
	}
	if err != nil {
		return err
	}
	if opts.Format != "text" {
		_, _ = fmt.Fprintln(opts.IO.ErrOut, report.Summary())
	}
	if report.Failed(opts.Strict) {
		return &SilentError{Code: ExitFailed}
	}
	return nil
}

// packageDirs drops plain files from a list of several arguments, so that a
// shell glob such as packages/* lints every package folder it matches and not
// the files beside them; skipped reports each one dropped. A lone argument is
// kept, so naming a file by mistake still gets the linter's own error.
func packageDirs(args []string, skipped func(string)) []string {
	if len(args) < 2 {
		return args
	}
	dirs := make([]string, 0, len(args))
	for _, a := range args {
		if st, err := os.Stat(a); err == nil && !st.IsDir() {
			skipped(a)
			continue
		}
		dirs = append(dirs, a)
	}
	return dirs
}

func lintDirs(ctx context.Context, linter *hub.Linter, dirs []string) (*hub.Report, error) {
	report := &hub.Report{}
	for _, dir := range dirs {
		res, err := linter.Lint(ctx, dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, usageErrorf("%s: no such folder", dir)
			}
			return nil, err
		}
		report.Results = append(report.Results, res)
	}
	return report, nil
}

func filePathForDisplay(dir, file string) string {
	if dir == "." || dir == "" {
		return file
	}
	return strings.TrimSuffix(dir, "/") + "/" + file
}

// useColor decides whether text output is coloured: on a terminal unless
// NO_COLOR is set or TERM is dumb, or as --color says.
func useColor(opts *LintOptions) bool {
	switch opts.Color {
	case "always":
		return true
	case "never":
		return false
	}
	if opts.Getenv != nil && (opts.Getenv("NO_COLOR") != "" || opts.Getenv("TERM") == "dumb") {
		return false
	}
	return opts.IO.StdoutTTY
}

func writeRules(io *IOStreams) error {
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tSEVERITY\tNAME\tFINDS")
	for _, r := range hub.Rules() {
		fix := ""
		if r.Fixable {
			fix = " (fixable)"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\n", r.ID, r.Severity, r.Name, r.Summary, fix)
	}
	return tw.Flush()
}
