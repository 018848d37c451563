package scaffold

import (
	"errors"
	"testing"
)

// FuzzName checks that every name NameFromDir derives is one ValidateName
// accepts, and that ValidateName never accepts what TitleOf cannot title.
func FuzzName(f *testing.F) {
	for _, s := range []string{"My Brush", "dance_SCAIL v2", "2024-release", "日本", "", "-", "a--b", "x/y/../z", "ÀÉ-é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if name := suggestName(s); name != "" {
			if err := ValidateName(name); err != nil {
				t.Fatalf("suggestName(%q) = %q, which ValidateName refuses: %v", s, name, err)
			}
		}
		err := ValidateName(s)
		if err == nil {
			if TitleOf(s) == "" {
				t.Fatalf("valid name %q has an empty title", s)
			}
		} else if !errors.Is(err, ErrInvalidName) {
			t.Fatalf("ValidateName(%q) = %v, not ErrInvalidName", s, err)
		}
	})
}
