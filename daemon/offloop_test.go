package daemon

import (
	"testing"
	"time"
)

// TestPruneOnlyAfterAChange (issue 13, cost as work grows): housekeeping
// applies retention and measures the store after a job was claimed or
// finished, and otherwise once per pruneEvery, not at every tick: with
// 10,000 finished jobs each prune reads every record and job directory.
func TestPruneOnlyAfterAChange(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	o := &offLoop{prunedAt: now}
	if o.pruneDue(now.Add(time.Minute)) {
		t.Fatal("prune due a minute after the last one with nothing changed")
	}
	o.changed = true
	if !o.pruneDue(now.Add(time.Minute)) {
		t.Fatal("prune not due after a job was claimed or finished")
	}
	o.changed = false
	if !o.pruneDue(now.Add(pruneEvery)) {
		t.Fatalf("prune not due %s after the last one", pruneEvery)
	}
}
