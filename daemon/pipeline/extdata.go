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
)

// ownDataProblem says why the external data of the model summarized by sum
// (the file fi at path) is not the model's own to take ("" when it is). The
// claim moves a model's external data with it, so the data must not be
// anything another upload could lose: a hidden or temporary file (an
// upload in progress), a settings file or samples, another model, a file
// of another user, or a file another model in the inbox also names. Data
// in a subdirectory is refused too: the claim could not take it, and it
// would be stranded.
func (in *Inspector) ownDataProblem(sum *onnx.Summary, fi os.FileInfo, path string) string {
	refs := locations(sum)
	if len(refs) == 0 {
		return ""
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
	if other := in.sharedWith(dir, self, refs); other != "" {
		return fmt.Sprintf("its external data is also named by %s: give each model its own data file", other)
	}
	return ""
}

// locations are the distinct external-data locations of the model
// summarized by sum, sorted.
func locations(sum *onnx.Summary) []string {
	if sum == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range sum.ExternalData {
		if !seen[r.Location] {
			seen[r.Location] = true
			out = append(out, r.Location)
		}
	}
	sort.Strings(out)
	return out
}

// sharedWith names another model in dir whose external data includes one
// of refs ("" if none). Each of them is read once per version of its
// bytes, the same read as its own check.
func (in *Inspector) sharedWith(dir, self string, refs []string) string {
	want := map[string]bool{}
	for _, r := range refs {
		want[filepath.Clean(r)] = true
	}
	others := in.others(dir, self)
	names := make([]string, 0, len(others))
	for n := range others {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, l := range locations(others[n]) {
			if want[filepath.Clean(l)] {
				return n
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
