package imaging

import (
	"runtime"
	"sync"
)

// parallelMinWork is the amount of work (items × cost) below which Parallel
// runs on the calling goroutine: spreading less than this over cores costs
// more in start-up than it saves.
const parallelMinWork = 1 << 18

// Parallel calls fn over [0, n) split into contiguous ranges, one per core
// (GOMAXPROCS), when n*cost is large enough to pay for it; otherwise it calls
// fn(0, n) directly. cost is a rough per-item cost (for example bytes per
// row). It returns when every call has returned.
func Parallel(n, cost int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n*cost < parallelMinWork {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		panicked any
	)
	for i := 1; i < workers; i++ {
		lo, hi := i*n/workers, (i+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					panicked = r
					mu.Unlock()
				}
			}()
			fn(lo, hi)
		}()
	}
	// The calling goroutine takes the first range; a panic in any range is
	// re-raised here once every goroutine is done.
	func() {
		defer wg.Wait()
		fn(0, n/workers)
	}()
	if panicked != nil {
		panic(panicked)
	}
}
