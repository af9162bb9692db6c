package pipeline

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trtd/trtd/daemon/retention"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/dirstream"
)

// Sweep removes the temporary files a crash leaves anywhere trtd writes
// below the state and failed directories (the directories of unfinished
// jobs and their model/work/engines subdirectories, the engine cache,
// failed/<job>/), not only at their top (F-21). It runs at start, before
// any job, and for one job's directory after the job. The directories of
// finished jobs (10,000 of them in a long history) are swept after the
// start is READY, by SweepStore. It returns what it removed.
func (rn *Runner) Sweep() []string {
	var out []string
	for _, id := range rn.Store.OpenIDs() {
		out = append(out, sweepTemps(filepath.Join(rn.Store.Root, id))...)
	}
	for _, dir := range []string{filepath.Join(rn.Cfg.Paths.State, "cache"), rn.Cfg.Paths.Failed} {
		out = append(out, sweepTemps(dir)...)
	}
	return out
}

// SweepStore removes the temporary files a crash left in the directories
// of finished jobs and measures the job store, in one walk: it runs once
// after the start, off the main loop. The directory of a job that is not
// finished is measured but not swept: a write may be under way there (a
// job that started, a claim).
func (rn *Runner) SweepStore() (size int64, removed []string) {
	root := rn.Store.Root
	// The callback returns no error; a store that cannot be read is
	// measured as what could be read.
	_ = dirstream.Each(root, func(e fs.DirEntry) error {
		p := filepath.Join(root, e.Name())
		switch {
		case !e.IsDir():
			if atomicfile.IsTemp(e.Name()) && os.Remove(p) == nil {
				removed = append(removed, p)
			} else if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
		case rn.Store.IsOpen(e.Name()) || atomicfile.IsTemp(e.Name()):
			size += retention.Size(p)
		default:
			n, rm := sweepSize(p)
			size += n
			removed = append(removed, rm...)
		}
		return nil
	})
	return size, removed
}

func sweepTemps(root string) []string {
	_, rm := sweepSize(root)
	return rm
}

// sweepSize removes the temporary files under root and returns the bytes
// of the regular files that remain.
func sweepSize(root string) (int64, []string) {
	var out []string
	var n int64
	_ = dirstream.Walk(root, func(p string, d fs.DirEntry) error { // the callback returns no error
		if d.IsDir() {
			return nil
		}
		if atomicfile.IsTemp(d.Name()) && os.Remove(p) == nil {
			out = append(out, p)
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, out
}
