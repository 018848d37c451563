package truncate

import (
	"testing"
	"unicode/utf8"
)

func TestRunes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""}, {"abc", 3, "abc"}, {"abcd", 3, "abc…"}, {"héllo", 2, "hé…"}, {"héé", 3, "héé"},
		{"😀😀😀😀", 2, "😀😀…"}, {"abc", 0, "…"}, {"\xff\xfeab", 2, "\xff\xfe…"},
	} {
		if got := Runes(c.s, c.n); got != c.want {
			t.Errorf("Runes(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"}, {"abcd", 3, "abc…"}, {"aé", 2, "a…"}, {"héllo wörld", 2, "h…"}, {"aéb", 3, "aé…"}, {"😀", 2, "…"}, {"ab", -1, "…"},
	} {
		got := Bytes(c.s, c.n)
		if got != c.want {
			t.Errorf("Bytes(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
		if utf8.ValidString(c.s) && !utf8.ValidString(got) {
			t.Errorf("Bytes(%q, %d) split a character: %q", c.s, c.n, got)
		}
	}
}
