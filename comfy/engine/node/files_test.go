package node

import (
	"path/filepath"
	"testing"
)

func TestSplitAnnotated(t *testing.T) {
	for _, c := range []struct{ in, bare, typ string }{
		{"a.png", "a.png", "input"},
		{"a.png [output]", "a.png", "output"},
		{"sub/a.png [temp]", "sub/a.png", "temp"},
		{"a.png [input]", "a.png", "input"},
		{"a.png[output]", "a.png[output]", "input"},
	} {
		bare, typ := SplitAnnotated(c.in, "input")
		if bare != c.bare || typ != c.typ {
			t.Errorf("SplitAnnotated(%q) = %q, %q; want %q, %q", c.in, bare, typ, c.bare, c.typ)
		}
	}
}

func TestInputPath(t *testing.T) {
	env := &Env{InputDir: "/b/input", OutputDir: "/b/output", TempDir: "/b/temp"}
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"x.png", "/b/input/x.png", true},
		{"sub/x.png", "/b/input/sub/x.png", true},
		{"x.png [output]", "/b/output/x.png", true},
		{"../x.png", "", false},
		{"/etc/passwd", "", false},
		{"sub/../../x.png", "", false},
		{"a/../x.png", "/b/input/x.png", true},
	} {
		got, err := env.InputPath(c.in)
		if (err == nil) != c.ok || (c.ok && got != filepath.FromSlash(c.want)) {
			t.Errorf("InputPath(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
