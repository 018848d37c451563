// Package truncate shortens text for messages: error texts, findings and
// status lines quote at most a few hundred characters of what they are about.
package truncate

import (
	"unicode/utf8"
)

// Ellipsis marks where text was cut.
const Ellipsis = "…"

// Runes returns s cut to its first n characters (runes), with Ellipsis
// appended when anything was cut.
func Runes(s string, n int) string {
	if len(s) <= n { // bytes ≥ runes, so nothing to cut
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if i == len(s) {
		return s
	}
	return s[:i] + Ellipsis
}

// Bytes returns s cut to at most n bytes on a rune boundary, with Ellipsis
// appended when anything was cut.
func Bytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Ellipsis
}
