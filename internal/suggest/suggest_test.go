package suggest

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"seed", "sede", 2},
		{"café", "cafe", 1}, {"😀x", "x", 1}, {"same", "same", 0},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	names := []string{"width", "height", "Seed", "steps"}
	for _, c := range []struct {
		s    string
		max  int
		want string
	}{
		{"widht", 2, "width"}, {"SEED", 2, "Seed"}, {"hieght", 2, "height"}, {"zzzzz", 2, ""},
		{"step", 2, "steps"}, {"sted", 2, "Seed"}, {"xyz", 0, ""}, {"steps", 0, "steps"},
	} {
		if got := Closest(c.s, names, c.max); got != c.want {
			t.Errorf("Closest(%q, %d) = %q, want %q", c.s, c.max, got, c.want)
		}
	}
}

func TestClosestIgnoresLongStrings(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("w", 200) + "idth"
	if got := Closest(long, []string{"width"}, 300); got != "" {
		t.Errorf("Closest(a 204-byte name) = %q, want no hint", got)
	}
	if got := Closest("width", []string{long, "widht"}, 300); got != "widht" {
		t.Errorf("Closest over a long candidate = %q, want widht", got)
	}
	if got := Closest(strings.Repeat("a", 128), []string{strings.Repeat("a", 127) + "b"}, 1); got == "" {
		t.Error("a 128-byte name, the longest compared, found no hint")
	}
}
