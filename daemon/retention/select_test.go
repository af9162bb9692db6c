package retention

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
)

// selectWhole is the selection as it was written over the whole list of
// jobs held at once: the oracle for the two passes that hold only the
// KeepJobs newest.
func selectWhole(js []*jobs.Job, refs Refs, now time.Time, p config.Retention) []*jobs.Job {
	if Off(p) {
		return nil
	}
	var done []*jobs.Job
	for _, j := range js {
		if j.State.Terminal() {
			done = append(done, j)
		}
	}
	sort.SliceStable(done, func(a, b int) bool {
		if !done[a].Updated.Equal(done[b].Updated) {
			return done[a].Updated.After(done[b].Updated)
		}
		return done[a].ID > done[b].ID
	})
	cutoff := now.Add(-time.Duration(p.KeepDays) * 24 * time.Hour)
	var out []*jobs.Job
	for i, j := range done {
		if i < p.KeepJobs || (p.KeepDays > 0 && j.Updated.After(cutoff)) || refs.has(j) {
			continue
		}
		out = append(out, j)
	}
	sortOldestFirst(out)
	return out
}

// TestSelectTwoPassesMatchWholeList: random stores (ties in time, every
// state, references by job and by model) under random policies; the
// streaming selection lets go exactly what the whole-list one does.
func TestSelectTwoPassesMatchWholeList(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	states := []jobs.State{jobs.Done, jobs.Failed, jobs.Done, jobs.Queued, jobs.Waiting, jobs.Failing, jobs.Building}
	for round := 0; round < 500; round++ {
		n := rng.Intn(60)
		var js []*jobs.Job
		refs := Refs{Jobs: map[string]bool{}, Models: map[string]bool{}}
		for i := 0; i < n; i++ {
			j := job(fmt.Sprintf("j%03d-%d", rng.Intn(1000), i), states[rng.Intn(len(states))], rng.Intn(40))
			j.Updated = j.Updated.Add(time.Duration(rng.Intn(3)) * time.Hour)
			switch rng.Intn(8) {
			case 0:
				refs.Jobs[j.ID] = true
			case 1:
				refs.Models[j.ModelSHA256] = true
			}
			js = append(js, j)
		}
		p := config.Retention{KeepJobs: rng.Intn(12), KeepDays: rng.Intn(30)}
		got, want := ids(Select(js, refs, now, p)), ids(selectWhole(js, refs, now, p))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d, policy %+v: Select = %v, the whole list lets go %v", round, p, got, want)
		}
	}
}

// TestSelectKeepsJobFinishedBetweenPasses: a job that finishes after the
// first pass is among the newest and never goes in the second.
func TestSelectKeepsJobFinishedBetweenPasses(t *testing.T) {
	for _, p := range []config.Retention{{KeepJobs: 2}, {KeepJobs: 2, KeepDays: 5}} {
		sel := newSelector(now, p)
		for _, j := range []*jobs.Job{job("a", jobs.Done, 30), job("b", jobs.Done, 20), job("c", jobs.Done, 10)} {
			sel.rank(j)
		}
		late := job("late", jobs.Done, 0)
		late.Updated = now.Add(time.Second)
		if sel.goes(late, Refs{}) {
			t.Fatalf("policy %+v: a job finished between the passes would be removed", p)
		}
		if !sel.goes(job("a", jobs.Done, 30), Refs{}) {
			t.Fatalf("policy %+v: the oldest job past both rules stays", p)
		}
	}
}
