package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/comfypod/comfypod/gateway/store"
)

// Pruning.
const (
	// pruneBatch is how many ended jobs one pass deletes per store call.
	pruneBatch = 200
	// pruneDeleters bounds the file deletions in flight.
	pruneDeleters = 8
)

// pruneLoop deletes, every PruneInterval, the jobs that ended more than
// Retention ago with their files. Every replica runs it; deleting what
// another replica deletes at the same time is harmless.
func (s *Service) pruneLoop() {
	timer := s.clock.NewTimer(jitter(s.cfg.PruneInterval))
	defer timer.Stop()
	for {
		select {
		case <-s.life.Done():
			return
		case <-timer.Chan():
		}
		if _, err := s.prune(s.life); err != nil && s.life.Err() == nil {
			s.log.LogAttrs(s.life, slog.LevelWarn, "pruning ended jobs failed; trying again later", slog.String("err", scrub(err.Error())))
		}
		timer.Reset(jitter(s.cfg.PruneInterval))
	}
}

// prune deletes the jobs of this endpoint that ended more than Retention
// ago: their files first, then the jobs (a job is never left pointing at
// files that are gone for long, and no file outlives its job unless the
// output store refuses to delete it, in which case the job stays and is
// tried again next time). It returns how many jobs it deleted.
func (s *Service) prune(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		cut := s.clock.Now().Add(-s.cfg.Retention)
		jobs, err := s.st.EndedBefore(ctx, s.rp.EndpointID(), cut, pruneBatch)
		if err != nil {
			return total, err
		}
		if len(jobs) == 0 {
			return total, nil
		}
		gone, ferr := s.deleteJobFiles(ctx, jobs)
		n, err := s.st.DeleteJobs(ctx, gone, cut)
		total += n
		for _, id := range gone {
			s.cache.drop(id)
		}
		s.metrics.pruned.Add(float64(n))
		if n > 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "pruned ended jobs", slog.Int("jobs", n), slog.Duration("retention", s.cfg.Retention))
		}
		if err := errors.Join(ferr, err); err != nil {
			return total, err
		}
		if len(jobs) < pruneBatch {
			return total, nil
		}
	}
	return total, ctx.Err()
}

// deleteJobFiles deletes the files of jobs and returns the ids of the jobs
// whose files are all gone.
func (s *Service) deleteJobFiles(ctx context.Context, jobs []*store.Job) ([]string, error) {
	sem := make(chan struct{}, pruneDeleters)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			for _, f := range jobFiles(j) {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				}
				err := s.blobs.Delete(ctx, f.Key)
				<-sem
				if err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	var ids []string
	for i, j := range jobs {
		if errs[i] == nil {
			ids = append(ids, j.ID)
		}
	}
	return ids, errors.Join(errs...)
}
