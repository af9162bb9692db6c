package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/internal/untrusted"
)

// ownDataProblem says why the external data of model m (the file f at path)
// is not the model's own to take ("" when it is). The claim moves a model's
// external data with it, so the data must not be anything another upload
// could lose: a hidden or temporary file (an upload in progress), a
// settings file or samples, another model, a file of another user, or a
// file another model in the inbox also names. Data in a subdirectory is
// refused too: the claim could not take it, and it would be stranded.
func ownDataProblem(m *onnx.Model, f *os.File, path string) string {
	refs := locations(m)
	if len(refs) == 0 {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	owner := uidOf(fi)
	dir, self := filepath.Dir(path), filepath.Base(path)
	for _, loc := range refs {
		name := filepath.Base(loc)
		switch {
		case strings.Contains(filepath.Clean(loc), "/"):
			return fmt.Sprintf("external data %q is in a subdirectory: trtd takes only data files beside the model (put %s next to %s)", loc, name, self)
		case inbox.Ignored(name):
			return fmt.Sprintf("external data %q is a hidden or temporary name (an upload in progress?): rename it", loc)
		case strings.HasSuffix(name, ".toml") || jobs.IsDirCompanion(name):
			return fmt.Sprintf("external data %q names a settings file, accuracy samples or calibration data", loc)
		case inbox.IsCandidate(name):
			return fmt.Sprintf("external data %q is another model", loc)
		}
		li, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			continue // missing data is the reader's to report
		}
		if uidOf(li) != owner {
			return fmt.Sprintf("external data %q belongs to another user than the model", loc)
		}
	}
	if other := sharedWith(dir, self, refs); other != "" {
		return fmt.Sprintf("its external data is also named by %s: give each model its own data file", other)
	}
	return ""
}

// locations are the distinct external-data locations of m, sorted.
func locations(m *onnx.Model) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range m.ExternalRefs() {
		if !seen[r.Location] {
			seen[r.Location] = true
			out = append(out, r.Location)
		}
	}
	sort.Strings(out)
	return out
}

// sharedWith names another model in dir whose external data includes one
// of refs ("" if none).
func sharedWith(dir, self string, refs []string) string {
	want := map[string]bool{}
	for _, r := range refs {
		want[filepath.Clean(r)] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if e.Name() == self || !inbox.IsCandidate(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		f, _, err := untrusted.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		m, err := onnx.ReadFile(f, "")
		_ = f.Close() // read-only; ReadFile returned any read error
		if err != nil {
			continue
		}
		for _, l := range locations(m) {
			if want[filepath.Clean(l)] {
				return e.Name()
			}
		}
	}
	return ""
}

func uidOf(fi os.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}
