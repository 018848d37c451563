// Package cli holds the comfypod commands. cmd/comfypod only calls Main; every
// command is built here from a Factory so tests can run it with in-memory
// streams and a fixed environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Main runs comfypod with the process's streams and environment and returns the
// exit code.
func Main(ctx context.Context, args []string) int {
	return Run(ctx, NewFactory(), args)
}

// Run runs comfypod with f and returns the exit code. Errors are printed to
// f.IO.ErrOut once, here.
func Run(ctx context.Context, f *Factory, args []string) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var silent *SilentError
	if err != nil && !errors.As(err, &silent) {
		msg := err.Error()
		f.printf("comfypod: %s\n", msg)
		var usage *UsageError
		if errors.As(err, &usage) && !strings.Contains(msg, "--help") {
			f.printf("Run '%s --help' for usage.\n", commandPath(root, args))
		}
	}
	return exitCode(err)
}

// NewRootCmd builds the comfypod command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "comfypod",
		Short: "Run ComfyUI workflows as RunPod Serverless jobs",
		Long: `comfypod runs ComfyUI workflows as RunPod Serverless jobs and owns both ends
of that trip: a RunPod client, a serverless worker that drives ComfyUI, package
tooling, the Image Brush service, and local emulators of RunPod and ComfyUI.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		// Args and RunE make an unknown subcommand a usage error rather than
		// cobra's generic failure; a bare "comfypod" prints help.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &UsageError{msg: err.Error()}
	})
	root.PersistentFlags().StringVar(&f.logLevel, "log-level", f.logLevel, "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&f.logFormat, "log-format", f.logFormat, "log format: text or json")

	root.AddCommand(
		newCmdVersion(f),
		newCmdWorkflow(f),
		NewCmdLint(f, nil),
		NewCmdInit(f, nil),
		newCmdEngine(f, nil),
		newCmdRunpodEmulator(f, nil),
		NewCmdRun(f, nil),
		NewCmdStatus(f, nil),
		NewCmdCancel(f, nil),
		NewCmdHealth(f, nil),
		NewCmdPurgeQueue(f, nil),
		NewCmdWorker(f, nil),
		NewCmdDev(f, nil),
		NewCmdServe(f, nil),
		NewCmdKeys(f, nil),
	)
	// Unknown subcommands and bad positional arguments are usage errors.
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	return root
}

// wrapArgs turns errors of a command's positional-argument check into usage
// errors, recursively.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &UsageError{msg: err.Error()}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil {
		return root.CommandPath()
	}
	return c.CommandPath()
}

func newCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the comfypod version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(f.IO.Out, version())
			return err
		},
	}
}
