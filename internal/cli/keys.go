package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/comfypod/comfypod/gateway"
	"github.com/comfypod/comfypod/gateway/store"
)

// KeysOptions are the inputs of comfypod keys create, list and revoke.
type KeysOptions struct {
	// IO are the command's streams: the new key on Out, status on ErrOut.
	IO *IOStreams
	// Getenv reads COMFYPOD_DATA_DIR and COMFYPOD_DB.
	Getenv func(string) string
	// Now is the clock of creation and revocation times.
	Now func() time.Time

	// DataDir holds the default database, as for serve.
	DataDir string
	// DB is the database holding the keys, as for serve.
	DB string
	// Name labels a new key.
	Name string
	// ID is the key to revoke.
	ID string
}

// NewCmdKeys builds comfypod keys and its subcommands. runF replaces each
// subcommand's action in tests (called with "create", "list" or "revoke");
// nil runs it.
func NewCmdKeys(f *Factory, runF func(context.Context, string, *KeysOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke the API keys of comfypod serve",
		Long: `Manage the API keys callers of comfypod serve send as "Authorization: Bearer
<key>". Keys live in the service's database (--db, as for serve): a key made
here works at once on every replica, a revoked one stops within seconds.
Only a hash of each key is stored; the key itself is shown once, by create.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	run := func(name string, opts *KeysOptions) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			opts.DataDir, opts.DB = dataDefaults(opts.Getenv, opts.DataDir, opts.DB)
			if _, err := parseDB(opts.DB); err != nil {
				return err
			}
			if len(args) == 1 {
				opts.ID = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), name, opts)
			}
			return runKeys(cmd.Context(), name, opts)
		}
	}
	newOpts := func() *KeysOptions { return &KeysOptions{IO: f.IO, Getenv: f.Getenv, Now: f.Now} }

	co := newOpts()
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a new API key and print it (once)",
		Long: `Make a new API key. The key goes to standard output, alone on its line, and is
never shown again: store it where its user can read it.`,
		Example: `  comfypod keys create --name web-frontend
  KEY=$(comfypod keys create --name ci --db postgres://comfypod@db/comfypod)`,
		Args: cobra.NoArgs,
		RunE: run("create", co),
	}
	create.Flags().StringVar(&co.Name, "name", "", "a label for the key (who or what uses it)")
	addDataFlags(create, &co.DataDir, &co.DB)

	lo := newOpts()
	list := &cobra.Command{
		Use:   "list",
		Short: "List the API keys (without the keys themselves)",
		Args:  cobra.NoArgs,
		RunE:  run("list", lo),
	}
	addDataFlags(list, &lo.DataDir, &lo.DB)

	ro := newOpts()
	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API key: requests with it are refused from then on",
		Example: `  comfypod keys revoke key_abcdefghijklm`,
		Args:    cobra.ExactArgs(1),
		RunE:    run("revoke", ro),
	}
	addDataFlags(revoke, &ro.DataDir, &ro.DB)

	cmd.AddCommand(create, list, revoke)
	return cmd
}

func runKeys(ctx context.Context, action string, o *KeysOptions) error {
	st, _, err := openDB(ctx, o.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	switch action {
	case "create":
		secret, k, err := gateway.NewKey(o.Name, o.Now())
		if err != nil {
			return err
		}
		if err := st.CreateKey(ctx, k); err != nil {
			return fmt.Errorf("storing the key: %w", err)
		}
		if _, err := fmt.Fprintln(o.IO.Out, secret); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(o.IO.ErrOut, "Created key %s%s. It is shown this once: keep it now.\nSend it as: Authorization: Bearer <key>\n",
			k.ID, nameSuffix(k.Name))
		return nil
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			_, _ = fmt.Fprintln(o.IO.ErrOut, "No API keys: the service runs open on loopback addresses. Create one with: comfypod keys create --name NAME")
			return nil
		}
		tw := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "ID\tNAME\tSTARTS WITH\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if !k.RevokedAt.IsZero() {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			name := k.Name
			if name == "" {
				name = "-"
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\n", k.ID, name, k.Prefix, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		k, err := st.RevokeKey(ctx, o.ID, o.Now())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no key %q (comfypod keys list shows the ids): %w", o.ID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintf(o.IO.ErrOut, "Revoked key %s%s (since %s). Replicas refuse it within seconds.\n",
			k.ID, nameSuffix(k.Name), k.RevokedAt.Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("keys: unknown action %q", action)
}

func nameSuffix(name string) string {
	if strings.TrimSpace(name) == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", name)
}
