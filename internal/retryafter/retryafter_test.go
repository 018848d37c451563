package retryafter

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"  ", 0, false},
		{"7", 7 * time.Second, true}, {" 3 ", 3 * time.Second, true}, {"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true}, {"-5", 0, true},
		{"99999999999999999999", time.Duration(1<<63 - 1), true},
		{"Fri, 02 Jan 2026 03:05:05 GMT", time.Minute, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true},
		{"soon", 0, false}, {"1e3", 0, false}, {"NaN", 0, false}, {"Inf", 0, false}, {".", 0, false}, {"1.2.3", 0, false},
	} {
		got, ok := Parse(c.v, now)
		if got != c.want || ok != c.ok {
			t.Errorf("Parse(%q) = %v %v, want %v %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
