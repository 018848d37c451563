package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/internal/scaffold"
)

// InitOptions are the inputs of comfypod init.
type InitOptions struct {
	IO *IOStreams

	// Dir is the package folder to write.
	Dir string
	// Template is image-brush, video or blank.
	Template string
	// Name is the package name; "" derives it from Dir.
	Name string
	// Force writes into a folder that is not empty.
	Force bool
	// List prints the templates instead of writing one.
	List bool
}

// NewCmdInit builds comfypod init. runF replaces the command's action in
// tests; nil runs it.
func NewCmdInit(f *Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IO}
	var names []string
	for _, t := range scaffold.Templates() {
		names = append(names, t.Name)
	}
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Write a new RunPod package: hub.json, tests.json, manifest, workflows, Dockerfile, README",
		Long: `Init writes a complete RunPod package into DIR from a template:
.runpod/hub.json and .runpod/tests.json (with GPU pools, test GPU and CUDA
versions that agree), the comfypod.json manifest, the workflow(s), a
Dockerfile that builds on the comfypod worker image, a README with the deploy
steps for the RunPod Hub and for a direct serverless endpoint, and
test_input.json. The result passes comfypod lint with no finding.

Templates:
  image-brush  FLUX.1 Fill + Redux style transfer into a masked area, with a
               model-free preview workflow
  video        SCAIL character animation to a dance video: a driving video
               in (VHS_LoadVideo, a video param), an MP4 out
               (VHS_VideoCombine), with a model-free preview workflow
  blank        a minimal model-free workflow that runs on the comfypod engine

The package name (--name, default: the folder's name) replaces the template's
in the manifest, output prefixes, image tags, and as a title in hub.json and
the README. DIR must be empty or missing unless --force is given; --force
overwrites the template's files and keeps every other file. The written files
are listed on standard output.`,
		Example: `  comfypod init my-brush --template image-brush
  comfypod init dance --template video --name club-dance
  comfypod init . --template blank --force
  comfypod init --list`,
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.List {
				return cobra.NoArgs(cmd, args)
			}
			if len(args) != 1 {
				return fmt.Errorf("init takes one folder, got %d arguments; e.g. comfypod init my-package --template %s", len(args), scaffold.TemplateDefault)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.List {
				opts.Dir = args[0]
				if _, err := scaffold.Lookup(opts.Template); err != nil {
					return usageErrorf("--template %q: choose one of %s", opts.Template, strings.Join(names, ", "))
				}
				if opts.Name != "" {
					if err := scaffold.ValidateName(opts.Name); err != nil {
						return usageErrorf("--name: %v", err)
					}
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Template, "template", "t", scaffold.TemplateDefault, "template: "+strings.Join(names, ", "))
	fl.StringVar(&opts.Name, "name", "", "package name: lower-case letters, digits and dashes (default: the folder's name)")
	fl.BoolVar(&opts.Force, "force", false, "write into a folder that is not empty, overwriting the template's files")
	fl.BoolVar(&opts.List, "list", false, "list the templates and exit")
	return cmd
}

func runInit(ctx context.Context, opts *InitOptions) error {
	if opts.List {
		tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "TEMPLATE\tPACKAGE\tWHAT")
		for _, t := range scaffold.Templates() {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Package, t.Summary)
		}
		return tw.Flush()
	}
	res, err := scaffold.Write(ctx, opts.Dir, scaffold.Options{Template: opts.Template, Name: opts.Name, Force: opts.Force})
	switch {
	case errors.Is(err, scaffold.ErrInvalidName):
		return usageErrorf("%v; pass --name", err)
	case err != nil:
		return err
	}
	for _, name := range res.Files {
		if _, err := fmt.Fprintln(opts.IO.Out, filepath.ToSlash(filepath.Join(opts.Dir, filepath.FromSlash(name)))); err != nil {
			return err
		}
	}
	errOut := opts.IO.ErrOut
	_, _ = fmt.Fprintf(errOut, "Wrote package %s (%s) from the %s template to %s: %d files", res.Name, res.Title, res.Template, opts.Dir, len(res.Files))
	if len(res.Replaced) > 0 {
		_, _ = fmt.Fprintf(errOut, ", %d of them overwritten", len(res.Replaced))
	}
	_, _ = fmt.Fprintf(errOut, ".\n\nNext:\n")
	dir := shellQuote(opts.Dir)
	_, _ = fmt.Fprintf(errOut, "  comfypod lint %s\n", dir)
	_, _ = fmt.Fprintf(errOut, "  comfypod workflow check %s --manifest %s\n",
		shellQuote(filepath.Join(opts.Dir, "workflow_api.json")), shellQuote(filepath.Join(opts.Dir, "comfypod.json")))
	_, _ = fmt.Fprintf(errOut, "  then see %s for running it locally and deploying it\n", shellQuote(filepath.Join(opts.Dir, "README.md")))
	return nil
}
