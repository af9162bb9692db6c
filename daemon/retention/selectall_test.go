package retention

import (
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
)

// Select returns the jobs p lets go at now, oldest first, from jobs in
// memory (the tests' form of the two streaming passes of Pruner.Prune): terminal, not
// referenced, not among the KeepJobs most recently finished and not
// finished within KeepDays days.
func Select(js []*jobs.Job, refs Refs, now time.Time, p config.Retention) []*jobs.Job {
	if Off(p) {
		return nil
	}
	sel := newSelector(now, p)
	for _, j := range js {
		sel.rank(j)
	}
	var out []*jobs.Job
	for _, j := range js {
		if sel.goes(j, refs) {
			out = append(out, j)
		}
	}
	sortOldestFirst(out)
	return out
}
