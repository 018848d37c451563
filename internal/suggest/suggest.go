// Package suggest finds the name a user probably meant, for "did you mean"
// hints in error messages and lint findings.
package suggest

import "strings"

// maxLen bounds the names Closest compares, in bytes: a typo hint is for
// names, and the distance's cost grows with the product of the lengths, so
// a long string from outside input is not compared at all.
const maxLen = 128

// Closest returns the candidate nearest to s, ignoring case, if it is within
// maxDist edits; otherwise "". Of equally near candidates the first wins.
// Strings longer than 128 bytes match nothing.
func Closest(s string, candidates []string, maxDist int) string {
	best, bestD := "", maxDist+1
	if len(s) > maxLen {
		return ""
	}
	low := strings.ToLower(s)
	for _, c := range candidates {
		if len(c) > maxLen {
			continue
		}
		if d := Distance(low, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Distance is the Levenshtein distance of a and b, counted in runes: the
// fewest single-rune insertions, deletions and substitutions that turn a
// into b.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
