package pipeline

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trtd/trtd/internal/atomicfile"
)

// Sweep removes the temporary files a crash leaves anywhere trtd writes
// below the state and failed directories (job directories and their
// model/work/engines subdirectories, the engine cache, failed/<job>/), not
// only at their top (F-21). It runs at start, before any job, and for one
// job's directory after the job. It returns what it removed.
func (rn *Runner) Sweep() []string {
	var out []string
	for _, dir := range []string{rn.Store.Root, filepath.Join(rn.Cfg.Paths.State, "cache"), rn.Cfg.Paths.Failed} {
		out = append(out, sweepTemps(dir)...)
	}
	return out
}

func sweepTemps(root string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error { // the callback returns no error
		if err != nil {
			return nil
		}
		if !d.IsDir() && atomicfile.IsTemp(d.Name()) {
			if os.Remove(p) == nil {
				out = append(out, p)
			}
		}
		return nil
	})
	return out
}
