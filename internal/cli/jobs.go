package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/runpod"
)

// JobsOptions are the inputs shared by comfypod status, cancel, health and
// purge-queue.
type JobsOptions struct {
	// IO, HTTPClient, Getenv and Now come from the Factory.
	IO         *IOStreams
	HTTPClient *http.Client
	Getenv     func(string) string
	Now        func() time.Time
	// Logger makes the RunPod client's logger writing to w.
	Logger func(w io.Writer) (*slog.Logger, error)
	// ClientOptions are extra options for the RunPod client (tests pass a
	// clock).
	ClientOptions []runpod.Option

	// Conn says which endpoint to call.
	Conn ConnectionOptions
	// JobID is the job a command acts on (status, cancel).
	JobID string
	// JSON prints the answer as JSON on stdout.
	JSON bool
}

func newJobsOptions(f *Factory) JobsOptions {
	return JobsOptions{IO: f.IO, HTTPClient: f.HTTPClient, Getenv: f.Getenv, Now: f.Now, Logger: f.clientLogger}
}

// client resolves the connection flags and builds the RunPod client.
func (o *JobsOptions) client(w io.Writer) (*runpod.Client, error) {
	log, err := o.Logger(w)
	if err != nil {
		return nil, err
	}
	return o.Conn.client(o.HTTPClient, log, o.ClientOptions...)
}

// printJSON writes v as indented JSON on stdout.
func (o *JobsOptions) printJSON(v any) error {
	enc := json.NewEncoder(o.IO.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// prepare takes the JOB argument and resolves the connection flags.
func (o *JobsOptions) prepare(args []string) error {
	if len(args) > 0 {
		o.JobID = args[0]
	}
	return o.Conn.resolve(o.Getenv)
}

// StatusOptions are the inputs of comfypod status.
type StatusOptions struct {
	JobsOptions
	// Wait waits until the job ends, as run does.
	Wait bool
	// Timeout bounds Wait; 0 waits as long as it takes.
	Timeout time.Duration
	// OutDir, when set, receives the output files of a completed job.
	OutDir string
}

// NewCmdStatus builds comfypod status. runF replaces the command's action in
// tests; nil runs it.
func NewCmdStatus(f *Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{JobsOptions: newJobsOptions(f)}
	cmd := &cobra.Command{
		Use:   "status JOB",
		Short: "Show a job's status, optionally waiting for it and saving its outputs",
		Long: `Status shows the state of a job of the endpoint: queued, running, completed,
failed (with the worker's error), cancelled or timed out. RunPod keeps a job's
result for 30 minutes after /run (1 minute after /runsync); after that the job
is not found.

--wait follows the job until it ends, as run does, and then exits with the
job's outcome. --out saves the files of a completed job.`,
		Example: `  comfypod status 1a2b3c4d-e5f6-7890-abcd-ef1234567890-u1
  comfypod status JOB --wait --timeout 10m --out ./out
  comfypod status JOB --json | jq .output`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.prepare(args); err != nil {
				return err
			}
			if opts.Timeout < 0 {
				return usageErrorf("--timeout %s: want a positive duration, or 0 to wait as long as it takes", opts.Timeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	addConnectionFlags(cmd, &opts.Conn)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status as JSON on stdout")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "wait until the job ends; exit with its outcome")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", runpod.WaitTimeoutDefault, "with --wait: give up and cancel the job after this long (0: no limit)")
	cmd.Flags().StringVar(&opts.OutDir, "out", "", "write the output files of a completed job into `DIR`")
	return cmd
}

func runStatus(ctx context.Context, o *StatusOptions) error {
	line := newProgressLine(o.IO.ErrOut, o.IO.StderrTTY, o.Now)
	c, err := o.client(line)
	if err != nil {
		return err
	}
	if !o.Wait {
		st, err := c.Status(ctx, o.JobID)
		if err != nil {
			return err
		}
		defer st.Close()
		fmt.Fprintln(o.IO.ErrOut, summary(st))
		if jerr := st.Err(); jerr != nil {
			// Reported, not failed: the command did what was asked.
			fmt.Fprintf(o.IO.ErrOut, "%v\n", jerr)
			return reportStatus(ctx, o.IO, st, nil, "", o.JSON)
		}
		if !st.State.Terminal() {
			if o.JSON {
				return st.WriteJSON(o.IO.Out)
			}
			if st.HasOutput() {
				fmt.Fprintf(o.IO.ErrOut, "progress: %s\n", oneLineJSON(st.Output, 200))
			}
			return nil
		}
		return reportStatus(ctx, o.IO, st, nil, o.OutDir, o.JSON)
	}
	job, err := c.Job(o.JobID)
	if err != nil {
		return usageErrorf("%s", strings.TrimPrefix(err.Error(), "runpod: "))
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = -1
	}
	line.begin()
	line.submitted(job.ID, "waiting")
	st, err := job.Wait(ctx, &runpod.WaitOptions{Timeout: timeout, OnEvent: line.event})
	if st == nil {
		line.end("")
		return err
	}
	defer st.Close()
	line.end(summary(st))
	return reportStatus(ctx, o.IO, st, err, o.OutDir, o.JSON)
}

// NewCmdCancel builds comfypod cancel. runF replaces the command's action in
// tests; nil runs it.
func NewCmdCancel(f *Factory, runF func(context.Context, *JobsOptions) error) *cobra.Command {
	opts := &JobsOptions{}
	*opts = newJobsOptions(f)
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a job",
		Long: `Cancel stops a job: a queued job is removed from the queue, a running one is
stopped. Cancelling a job that already ended does nothing.`,
		Example: `  comfypod cancel 1a2b3c4d-e5f6-7890-abcd-ef1234567890-u1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.prepare(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCancel(cmd.Context(), opts)
		},
	}
	addConnectionFlags(cmd, &opts.Conn)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print RunPod's answer as JSON on stdout")
	return cmd
}

func runCancel(ctx context.Context, o *JobsOptions) error {
	c, err := o.client(o.IO.ErrOut)
	if err != nil {
		return err
	}
	st, err := c.Cancel(ctx, o.JobID)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.JSON {
		if err := st.WriteJSON(o.IO.Out); err != nil {
			return err
		}
		_, err := io.WriteString(o.IO.Out, "\n")
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "job %s %s\n", st.ID, st.State)
	return nil
}

// NewCmdHealth builds comfypod health. runF replaces the command's action in
// tests; nil runs it.
func NewCmdHealth(f *Factory, runF func(context.Context, *JobsOptions) error) *cobra.Command {
	opts := &JobsOptions{}
	*opts = newJobsOptions(f)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show an endpoint's workers and job counts",
		Long: `Health shows how many workers the endpoint has (idle, running, starting,
unhealthy) and how many jobs are queued, running, completed and failed. With
no worker idle or running, the next job waits for a cold start.`,
		Example: `  comfypod health
  comfypod health --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.prepare(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runHealth(cmd.Context(), opts)
		},
	}
	addConnectionFlags(cmd, &opts.Conn)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the health as JSON on stdout")
	return cmd
}

func runHealth(ctx context.Context, o *JobsOptions) error {
	c, err := o.client(o.IO.ErrOut)
	if err != nil {
		return err
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return o.printJSON(h)
	}
	w, j := h.Workers, h.Jobs
	fmt.Fprintf(o.IO.Out, "endpoint %s\n", o.Conn.Endpoint)
	fmt.Fprintf(o.IO.Out, "workers  idle %d  running %d  initializing %d  ready %d  throttled %d  unhealthy %d\n",
		w.Idle, w.Running, w.Initializing, w.Ready, w.Throttled, w.Unhealthy)
	fmt.Fprintf(o.IO.Out, "jobs     in queue %d  in progress %d  completed %d  failed %d  retried %d\n",
		j.InQueue, j.InProgress, j.Completed, j.Failed, j.Retried)
	if !h.Warm() {
		fmt.Fprintln(o.IO.ErrOut, "no worker is up: the next job waits for a cold start")
	}
	return nil
}

// PurgeQueueOptions are the inputs of comfypod purge-queue.
type PurgeQueueOptions struct {
	JobsOptions
	// Yes confirms the purge.
	Yes bool
}

// NewCmdPurgeQueue builds comfypod purge-queue. runF replaces the command's
// action in tests; nil runs it.
func NewCmdPurgeQueue(f *Factory, runF func(context.Context, *PurgeQueueOptions) error) *cobra.Command {
	opts := &PurgeQueueOptions{JobsOptions: newJobsOptions(f)}
	cmd := &cobra.Command{
		Use:   "purge-queue",
		Short: "Remove every queued job of an endpoint",
		Long: `Purge-queue removes every job still waiting in the endpoint's queue, for every
user of the endpoint. Running jobs are not touched. It asks for --yes.`,
		Example: `  comfypod purge-queue --yes`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.prepare(args); err != nil {
				return err
			}
			if !opts.Yes {
				return usageErrorf("purge-queue removes every queued job of endpoint %s; pass --yes to confirm", opts.Conn.Endpoint)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPurgeQueue(cmd.Context(), opts)
		},
	}
	addConnectionFlags(cmd, &opts.Conn)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print RunPod's answer as JSON on stdout")
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "confirm removing the queued jobs")
	return cmd
}

func runPurgeQueue(ctx context.Context, o *PurgeQueueOptions) error {
	c, err := o.client(o.IO.ErrOut)
	if err != nil {
		return err
	}
	res, err := c.PurgeQueue(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		return o.printJSON(res)
	}
	fmt.Fprintf(o.IO.ErrOut, "removed %d queued job(s) from endpoint %s\n", res.Removed, o.Conn.Endpoint)
	return nil
}
