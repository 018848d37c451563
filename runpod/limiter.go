package runpod

import (
	"context"
	"fmt"
	"sync"
)

// Limiter bounds how many jobs are in flight on an endpoint. A slot is taken
// when a job is submitted and given back when it is seen terminal (by Wait,
// Status, Cancel, Stream or RunSync) or gone, or released with Job.Release.
// One Limiter can be shared by several clients, e.g. one per request in a web
// service.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter returns a limiter with n slots.
func NewLimiter(n int) (*Limiter, error) {
	if n < 1 {
		return nil, fmt.Errorf("runpod: limiter size %d: want at least 1", n)
	}
	return &Limiter{slots: make(chan struct{}, n)}, nil
}

// InUse returns how many slots are taken.
func (l *Limiter) InUse() int { return len(l.slots) }

// Size returns the number of slots.
func (l *Limiter) Size() int { return cap(l.slots) }

// acquire takes a slot, waiting until one is free or ctx is done. It returns a
// function that gives the slot back, safe to call more than once. A nil
// Limiter has unlimited slots.
func (l *Limiter) acquire(ctx context.Context) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("runpod: waiting for a free job slot (%d in flight): %w", l.Size(), ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }, nil
}
