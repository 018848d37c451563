package runpod

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides how often and how long to back off before trying a call
// again. The client decides which failures may be retried at all: 429 for
// every call, 5xx and lost answers only for calls that are safe to repeat,
// never a submission RunPod may already have taken. A Retry-After from RunPod
// overrides a shorter backoff.
type RetryPolicy interface {
	// Backoff returns how long to wait before retry number attempt (1 for
	// the first retry), or false to give up.
	Backoff(attempt int) (time.Duration, bool)
}

// Backoff is exponential backoff with full jitter: retry n waits a random
// time in [d/2, d] where d = min(Base·2^(n-1), Max).
type Backoff struct {
	// Retries is how many times a call is retried (so it is tried
	// Retries+1 times). 0 means no retry.
	Retries int
	// Base is the backoff before the first retry.
	Base time.Duration
	// Max caps the backoff.
	Max time.Duration
	// Rand returns a number in [0, 1) for jitter; nil uses math/rand/v2.
	Rand func() float64
}

// Defaults of DefaultRetryPolicy.
const (
	RetriesDefault   = 4                      // retries after the first try
	RetryBaseDefault = 500 * time.Millisecond // backoff before the first retry
	RetryMaxDefault  = 20 * time.Second       // cap on one backoff
)

// DefaultRetryPolicy is what New uses: 4 retries from 500 ms, capped at 20 s.
func DefaultRetryPolicy() *Backoff {
	return &Backoff{Retries: RetriesDefault, Base: RetryBaseDefault, Max: RetryMaxDefault}
}

// NoRetry is a policy that never retries.
func NoRetry() *Backoff { return &Backoff{} }

// Backoff implements RetryPolicy.
func (b *Backoff) Backoff(attempt int) (time.Duration, bool) {
	if attempt < 1 || attempt > b.Retries {
		return 0, false
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2)), true
}
