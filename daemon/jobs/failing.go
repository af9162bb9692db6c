package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/trtd/trtd/internal/atomicfile"
)

// BeginFailure records, before anything is moved, that j ends with outcome
// and reason: the report (JSON, attempts and all) is saved in the job and
// the job goes to Failing. Whatever kills the daemon after this, the next
// start finishes the failure from what was saved, instead of rebuilding a
// half-moved job or losing its attempts. Calling it again on a Failing job
// keeps the first report unless report is not nil.
func (s *Store) BeginFailure(j *Job, outcome, reason string, report []byte) error {
	if report != nil {
		if err := atomicfile.WriteFile(filepath.Join(s.Dir(j), FailureFile), report, 0o644); err != nil {
			return err
		}
	}
	if j.State == Failing {
		return nil
	}
	j.Outcome, j.Reason = outcome, reason
	return s.Transition(j, Failing, StepFailing, reason)
}

// FailureReport returns the report saved by BeginFailure (nil if none).
func (s *Store) FailureReport(j *Job) []byte {
	b, err := os.ReadFile(filepath.Join(s.Dir(j), FailureFile))
	if err != nil || !json.Valid(b) {
		return nil
	}
	return b
}

// recoverUnreadable turns every job directory whose job.json is missing,
// empty, truncated or corrupt into a job that fails with that reason, so
// its model gets a report instead of vanishing from the store. The bad
// record is kept beside it as job.json.corrupt. A directory with no model
// at all (a claim that died before moving anything) is debris: removed.
func (s *Store) recoverUnreadable(bad map[string]error) ([]Recovery, error) {
	ids := make([]string, 0, len(bad))
	for id := range bad {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var rec []Recovery
	for _, id := range ids {
		lerr := bad[id]
		dir := filepath.Join(s.Root, id)
		files := modelFiles(filepath.Join(dir, "model"))
		if len(files) == 0 {
			if errors.Is(lerr, os.ErrNotExist) || !hasData(dir) {
				// Nothing of a user's is here: a claim that died at its start.
				if err := os.RemoveAll(dir); err != nil {
					return rec, err
				}
				continue
			}
		}
		name := "unknown.onnx"
		for _, f := range files {
			if strings.HasSuffix(f, ".onnx") {
				name = f
				break
			}
		}
		why := "missing"
		if !errors.Is(lerr, os.ErrNotExist) {
			why = "unreadable"
			if err := os.Rename(filepath.Join(dir, "job.json"), filepath.Join(dir, "job.json.corrupt")); err != nil {
				return rec, fmt.Errorf("keeping the unreadable record of job %s: %w", id, err) // as a failed RemoveAll above
			}
		}
		now := s.Now().UTC()
		j := &Job{ID: id, Name: name, Created: now, Outcome: "failed",
			Reason: fmt.Sprintf("its job record (job.json) was %s after a crash, so its state is not known: %v; the model is kept and was not built", why, lerr)}
		if fi, err := os.Stat(filepath.Join(dir, "model", name)); err == nil {
			j.ModelSize = fi.Size()
		}
		for _, f := range files {
			switch {
			case f == name:
			case strings.HasSuffix(f, ".toml"):
				j.Sidecar = f
			default:
				j.Extra = append(j.Extra, f)
			}
		}
		if err := s.Transition(j, Failing, StepFailing, j.Reason); err != nil {
			return rec, err
		}
		rec = append(rec, Recovery{j, "unreadable-record"})
	}
	return rec, nil
}

func modelFiles(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if !atomicfile.IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// hasData reports whether dir holds anything besides job.json, an empty
// model/ directory and temporary files.
func hasData(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		switch {
		case e.Name() == "job.json", atomicfile.IsTemp(e.Name()):
		case e.Name() == "model" && e.IsDir() && len(modelFiles(filepath.Join(dir, "model"))) == 0:
		default:
			return true
		}
	}
	return false
}
