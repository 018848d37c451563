package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysParsesFlags(t *testing.T) {
	t.Parallel()
	f, _, _, _ := testFactory()
	var action string
	var got *KeysOptions
	cmd := NewCmdKeys(f, func(_ context.Context, a string, o *KeysOptions) error { action, got = a, o; return nil })
	cmd.SetArgs([]string{"create", "--name", "web", "--db", "sqlite:/tmp/k.db"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if action != "create" || got.Name != "web" || got.DB != "sqlite:/tmp/k.db" {
		t.Fatalf("create: %s %+v", action, got)
	}
	cmd = NewCmdKeys(f, func(_ context.Context, a string, o *KeysOptions) error { action, got = a, o; return nil })
	cmd.SetArgs([]string{"revoke", "key_abc", "--data-dir", "/srv/x"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if action != "revoke" || got.ID != "key_abc" || got.DB != "sqlite:/srv/x/comfypod.db" {
		t.Fatalf("revoke: %s %+v", action, got)
	}
	for _, args := range [][]string{
		{"keys", "revoke"},
		{"keys", "revoke", "a", "b"},
		{"keys", "list", "extra"},
		{"keys", "create", "--db", "oracle://x"},
	} {
		g, _, _, errOut := testFactory()
		if code := Run(context.Background(), g, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, ExitUsage, errOut)
		}
	}
}

// Keys are created, shown once on standard output, listed without their
// secret, and revoked, in the database serve uses.
func TestKeysRun(t *testing.T) {
	t.Parallel()
	db := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	run := func(args ...string) (int, string, string) {
		f, _, out, errOut := testFactory()
		code := Run(context.Background(), f, append(append([]string{"keys"}, args...), "--db", db))
		return code, out.String(), errOut.String()
	}
	code, out, status := run("list")
	if code != ExitOK || out != "" || !strings.Contains(status, "No API keys") {
		t.Fatalf("empty list: %d %q %q", code, out, status)
	}
	code, out, status = run("create", "--name", "web")
	secret := strings.TrimSpace(out)
	if code != ExitOK || !strings.HasPrefix(secret, "cpk_") || strings.Count(out, "\n") != 1 || !strings.Contains(status, "shown this once") {
		t.Fatalf("create: %d %q %q", code, out, status)
	}
	id := strings.Fields(status)[2]
	id = strings.TrimSuffix(id, ".")
	if !strings.HasPrefix(id, "key_") {
		t.Fatalf("key id %q from %q", id, status)
	}
	code, out, _ = run("list")
	if code != ExitOK || !strings.Contains(out, id) || !strings.Contains(out, "web") || strings.Contains(out, secret) || strings.Contains(out, secret[12:]) {
		t.Fatalf("list: %d %q", code, out)
	}
	code, _, status = run("revoke", id)
	if code != ExitOK || !strings.Contains(status, "Revoked key "+id) {
		t.Fatalf("revoke: %d %q", code, status)
	}
	code, out, _ = run("list")
	if fields := strings.Fields(strings.Split(out, "\n")[1]); code != ExitOK || fields[len(fields)-1] == "-" {
		t.Fatalf("list after revoke: %q", out)
	}
	code, _, status = run("revoke", "key_nope")
	if code == ExitOK || !strings.Contains(status, "keys list") {
		t.Fatalf("revoke unknown: %d %q", code, status)
	}
}
