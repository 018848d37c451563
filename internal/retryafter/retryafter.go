// Package retryafter reads the Retry-After header of HTTP answers (429, 503)
// for the clients that honour it.
package retryafter

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads a Retry-After value: delay-seconds (a decimal number; RunPod
// sends fractions, and a negative number means no wait) or an HTTP date,
// counted from now. ok is false when v is empty or neither form. The wait is
// never negative; callers cap it as their policy says.
func Parse(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, isNum := seconds(v); isNum {
		switch {
		case secs <= 0:
			return 0, true
		case secs >= float64(math.MaxInt64)/float64(time.Second):
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// seconds parses an optionally signed decimal number of digits with at most
// one point; it refuses what strconv.ParseFloat would also take ("1e3",
// "Inf", "NaN", "0x1p4").
func seconds(v string) (float64, bool) {
	digits := strings.TrimPrefix(v, "-")
	if digits == "" || strings.Trim(digits, "0123456789.") != "" || strings.Count(digits, ".") > 1 || digits == "." {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}
