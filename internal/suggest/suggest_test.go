package suggest

import "testing"

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
