// Package retention bounds what finished jobs leave on disk (issue 13,
// Disk): a 16–64 GB SD card cannot keep every upload forever. A finished
// job's kept model lives in its job directory (built) or in failed/<job>
// (failed); both go once the job is neither among the last KeepJobs
// finished jobs nor younger than KeepDays days. A job that is not terminal,
// or whose job or model an engine in the outbox names in its provenance
// (<name>.engine.json), is never removed. Engines, reports and the engine
// cache are never touched.
package retention

import (
	"container/heap"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/dirstream"
)

// Refs are the jobs and models engines in the outbox were built from.
type Refs struct {
	Jobs   map[string]bool // job ids
	Models map[string]bool // model SHA-256s
}

func (r Refs) has(j *jobs.Job) bool {
	return r.Jobs[j.ID] || (j.ModelSHA256 != "" && r.Models[j.ModelSHA256])
}

// Off reports whether p keeps everything.
func Off(p config.Retention) bool { return p.KeepJobs == 0 && p.KeepDays == 0 }

// selector decides what a policy lets go from two passes over the finished
// jobs, holding only the KeepJobs most recently finished (their id and
// time), never every job: a store of 10,000 finished jobs costs two reads
// of the records, not 10,000 of them in memory.
type selector struct {
	p      config.Retention
	cutoff time.Time
	newest newestHeap      // the KeepJobs most recently finished so far
	kept   map[string]bool // their ids, once ranked
	past   int             // finished jobs past the age rule
}

func newSelector(now time.Time, p config.Retention) *selector {
	return &selector{p: p, cutoff: now.Add(-time.Duration(p.KeepDays) * 24 * time.Hour)}
}

// young reports whether the age rule keeps j.
func (s *selector) young(j *jobs.Job) bool { return s.p.KeepDays > 0 && j.Updated.After(s.cutoff) }

// rank is the first pass: each job is seen once, in any order.
func (s *selector) rank(j *jobs.Job) {
	if !j.State.Terminal() {
		return
	}
	if !s.young(j) {
		s.past++
	}
	if s.p.KeepJobs <= 0 {
		return
	}
	e := finished{at: j.Updated, id: j.ID}
	if len(s.newest) < s.p.KeepJobs {
		heap.Push(&s.newest, e)
	} else if e.newer(s.newest[0]) {
		s.newest[0] = e
		heap.Fix(&s.newest, 0)
	}
}

// maybe reports, after the first pass, whether anything could go (before
// references are known): the outbox is read only then.
func (s *selector) maybe() bool {
	kept := 0 // jobs past the age rule that KeepJobs keeps
	for _, e := range s.newest {
		if s.p.KeepDays == 0 || !e.at.After(s.cutoff) {
			kept++
		}
	}
	return s.past > kept
}

// goes is the second pass: whether j goes, given refs. A job that
// finished between the passes ranks among the KeepJobs newest and stays.
func (s *selector) goes(j *jobs.Job, refs Refs) bool {
	if !j.State.Terminal() || s.young(j) || refs.has(j) {
		return false
	}
	if s.kept == nil {
		s.kept = make(map[string]bool, len(s.newest))
		for _, e := range s.newest {
			s.kept[e.id] = true
		}
	}
	if s.kept[j.ID] {
		return false
	}
	if s.p.KeepJobs > 0 && (len(s.newest) < s.p.KeepJobs || (finished{at: j.Updated, id: j.ID}).newer(s.newest[0])) {
		return false
	}
	return true
}

// finished is a job's place in the KeepJobs ranking: most recently
// finished first, ties by the larger id (the same choice on every run).
type finished struct {
	at time.Time
	id string
}

func (a finished) newer(b finished) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.id > b.id
}

// newestHeap is a min-heap: its root is the least recent of the kept.
type newestHeap []finished

func (h newestHeap) Len() int           { return len(h) }
func (h newestHeap) Less(a, b int) bool { return h[b].newer(h[a]) }
func (h newestHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *newestHeap) Push(x any)        { *h = append(*h, x.(finished)) }
func (h *newestHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func sortOldestFirst(out []*jobs.Job) {
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Updated.Equal(out[b].Updated) {
			return out[a].Updated.Before(out[b].Updated)
		}
		return out[a].ID < out[b].ID
	})
}

// Referenced reads every engine provenance in outbox. An unreadable one is
// an error: the caller then removes nothing, since it cannot tell what
// that engine was built from.
func Referenced(outbox string) (Refs, error) {
	r := Refs{Jobs: map[string]bool{}, Models: map[string]bool{}}
	ents, err := os.ReadDir(outbox)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, provenance.Suffix) || atomicfile.IsTemp(n) || !e.Type().IsRegular() {
			continue
		}
		p, err := provenance.Read(filepath.Join(outbox, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.Job != "" {
			r.Jobs[p.Job] = true
		}
		if p.ModelSHA != "" {
			r.Models[p.ModelSHA] = true
		}
	}
	return r, errors.Join(errs...)
}

// Pruner removes what the retention policy lets go (selector, in two
// streaming passes over the finished jobs).
type Pruner struct {
	Store  *jobs.Store
	Failed string // failed/
	Outbox string
	Policy config.Retention
	Log    *slog.Logger
	Now    func() time.Time
}

// prunePrefix names a job directory being removed: renamed first (scan
// skips temporary names), so a crash in the middle never leaves a half
// job that the next start would take for a damaged one.
const prunePrefix = atomicfile.TempPrefix + "prune-"

// Prune removes the jobs the policy lets go and returns them.
func (p *Pruner) Prune() ([]*jobs.Job, error) {
	p.removeLeftovers()
	if Off(p.Policy) {
		return nil, nil
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	// Two passes over the records (decoded in part), holding neither
	// pass's jobs: the first ranks the most recently finished, the second
	// (only when something could go, after reading the outbox's
	// references) keeps just the jobs that go.
	sel := newSelector(now, p.Policy)
	if _, err := p.Store.ListSummaries(func(j *jobs.Job) bool { sel.rank(j); return false }); err != nil {
		return nil, err
	}
	if !sel.maybe() {
		return nil, nil
	}
	refs, err := Referenced(p.Outbox)
	if err != nil {
		return nil, err
	}
	js, err := p.Store.ListSummaries(func(j *jobs.Job) bool { return sel.goes(j, refs) })
	if err != nil {
		return nil, err
	}
	sortOldestFirst(js)
	var out []*jobs.Job
	var errs []error
	for _, j := range js {
		if err := p.remove(j); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, j)
		p.Log.Info("retention: removed a finished job and its kept model", "job", j.ID, "model", j.Name,
			"outcome", j.Outcome, "finished", j.Updated)
	}
	return out, errors.Join(errs...)
}

func (p *Pruner) remove(j *jobs.Job) error {
	if err := os.RemoveAll(filepath.Join(p.Failed, j.ID)); err != nil {
		return err
	}
	dir := p.Store.Dir(j)
	gone := filepath.Join(p.Store.Root, prunePrefix+j.ID)
	if err := os.Rename(dir, gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// removeLeftovers finishes removals a crash cut short.
func (p *Pruner) removeLeftovers() {
	var gone []string // not removed while the directory is read
	// The callback returns no error; an unreadable store is left to
	// the next pass.
	_ = dirstream.Each(p.Store.Root, func(e fs.DirEntry) error {
		if strings.HasPrefix(e.Name(), prunePrefix) {
			gone = append(gone, filepath.Join(p.Store.Root, e.Name()))
		}
		return nil
	})
	for _, g := range gone {
		if err := os.RemoveAll(g); err != nil {
			p.Log.Warn("retention: a removal a crash cut short is still unfinished", "dir", filepath.Base(g), "err", err)
		}
	}
}

// Size is the bytes of regular files under dir (0 when it is absent),
// read a batch of entries at a time.
func Size(dir string) int64 {
	var n int64
	// The callback never returns an error, so Walk returns only root's:
	// what cannot be read is not counted.
	_ = dirstream.Walk(dir, func(_ string, d fs.DirEntry) error {
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
