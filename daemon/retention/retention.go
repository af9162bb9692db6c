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

// Select returns the jobs p lets go at now, oldest first: terminal, not
// referenced, not among the KeepJobs most recently finished and not
// finished within KeepDays days.
func Select(js []*jobs.Job, refs Refs, now time.Time, p config.Retention) []*jobs.Job {
	if Off(p) {
		return nil
	}
	var done []*jobs.Job
	for _, j := range js {
		if j.State.Terminal() {
			done = append(done, j)
		}
	}
	// Newest first: the first KeepJobs are kept.
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
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Updated.Equal(out[b].Updated) {
			return out[a].Updated.Before(out[b].Updated)
		}
		return out[a].ID < out[b].ID
	})
	return out
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

// Pruner removes what Select lets go.
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
	// Finished jobs only, without their histories: 10,000 of them are
	// about 1 MiB this way.
	js, err := p.Store.ListWhere(func(j *jobs.Job) bool { j.History = nil; return j.State.Terminal() })
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	// The outbox is read only when something could go.
	if len(Select(js, Refs{}, now, p.Policy)) == 0 {
		return nil, nil
	}
	refs, err := Referenced(p.Outbox)
	if err != nil {
		return nil, err
	}
	var out []*jobs.Job
	var errs []error
	for _, j := range Select(js, refs, now, p.Policy) {
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
	ents, _ := os.ReadDir(p.Store.Root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prunePrefix) {
			if err := os.RemoveAll(filepath.Join(p.Store.Root, e.Name())); err != nil {
				p.Log.Warn("retention: a removal a crash cut short is still unfinished", "dir", e.Name(), "err", err)
			}
		}
	}
}

// Size is the bytes of regular files under dir (0 when it is absent).
func Size(dir string) int64 {
	var n int64
	// The callback never returns an error, so WalkDir returns none: what
	// cannot be read is not counted.
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
