package retention

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/provenance"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func job(id string, st jobs.State, daysAgo int) *jobs.Job {
	return &jobs.Job{ID: id, Name: id + ".onnx", State: st, ModelSHA256: "sha-" + id,
		Updated: now.Add(-time.Duration(daysAgo) * 24 * time.Hour)}
}

func ids(js []*jobs.Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func TestSelect(t *testing.T) {
	// a..e finished 50, 40, 30, 20, 10 days ago; q queued 90 days ago.
	base := []*jobs.Job{job("a", jobs.Done, 50), job("b", jobs.Failed, 40), job("c", jobs.Done, 30),
		job("d", jobs.Failed, 20), job("e", jobs.Done, 10), job("q", jobs.Queued, 90),
		job("w", jobs.Waiting, 90), job("f", jobs.Failing, 90), job("bld", jobs.Building, 90)}
	none := Refs{}
	for _, tc := range []struct {
		name string
		p    config.Retention
		refs Refs
		want []string
	}{
		{"off keeps everything", config.Retention{}, none, []string{}},
		{"last 2", config.Retention{KeepJobs: 2}, none, []string{"a", "b", "c"}},
		{"last 0 by age 25 days", config.Retention{KeepDays: 25}, none, []string{"a", "b", "c"}},
		{"either rule keeps", config.Retention{KeepJobs: 1, KeepDays: 35}, none, []string{"a", "b"}},
		{"more kept than exist", config.Retention{KeepJobs: 100}, none, []string{}},
		{"referenced by job id", config.Retention{KeepJobs: 1}, Refs{Jobs: map[string]bool{"b": true}}, []string{"a", "c", "d"}},
		{"referenced by model", config.Retention{KeepJobs: 1}, Refs{Models: map[string]bool{"sha-a": true, "sha-d": true}}, []string{"b", "c"}},
		{"only terminal ever", config.Retention{KeepDays: 1}, none, []string{"a", "b", "c", "d", "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(Select(base, tc.refs, now, tc.p)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Select = %v, want %v", got, tc.want)
			}
		})
	}
}

// A job with the same Updated time as another is ordered by id, so the
// choice is the same on every run.
func TestSelectStableOnTies(t *testing.T) {
	js := []*jobs.Job{job("x2", jobs.Done, 5), job("x1", jobs.Done, 5), job("x3", jobs.Done, 5)}
	if got := ids(Select(js, Refs{}, now, config.Retention{KeepJobs: 1})); !reflect.DeepEqual(got, []string{"x1", "x2"}) {
		t.Errorf("got %v", got)
	}
}

// Prune removes the job directory and failed/<job> of what Select lets
// go, keeps the rest, and stops at an unreadable provenance.
func TestPrune(t *testing.T) {
	root := t.TempDir()
	st, _ := jobs.Open(filepath.Join(root, "jobs"))
	failed, outbox := filepath.Join(root, "failed"), filepath.Join(root, "outbox")
	os.MkdirAll(outbox, 0o755)
	mk := func(j *jobs.Job) {
		os.MkdirAll(filepath.Join(st.Dir(j), "model"), 0o755)
		os.WriteFile(st.ModelPath(j), []byte("m"), 0o644)
		st.Now = func() time.Time { return j.Updated }
		if err := st.Save(j); err != nil {
			t.Fatal(err)
		}
		if j.State == jobs.Failed {
			os.MkdirAll(filepath.Join(failed, j.ID), 0o755)
			os.WriteFile(filepath.Join(failed, j.ID, j.Name), []byte("m"), 0o644)
		}
	}
	for _, j := range []*jobs.Job{job("old-done", jobs.Done, 40), job("old-failed", jobs.Failed, 39),
		job("old-ref", jobs.Done, 38), job("old-queued", jobs.Queued, 37), job("new", jobs.Done, 1)} {
		mk(j)
	}
	provenance.Write(filepath.Join(outbox, "old-ref"+provenance.Suffix), &provenance.Provenance{Job: "old-ref", ModelSHA: "sha-other", Engine: "old-ref.engine"})
	p := &Pruner{Store: st, Failed: failed, Outbox: outbox, Policy: config.Retention{KeepJobs: 1, KeepDays: 7},
		Log: logging.Discard(), Now: func() time.Time { return now }}

	bad := filepath.Join(outbox, "broken"+provenance.Suffix)
	os.WriteFile(bad, []byte("{"), 0o644)
	if rm, err := p.Prune(); err == nil || len(rm) != 0 {
		t.Fatalf("an unreadable provenance must stop the pruning: %v %v", ids(rm), err)
	}
	os.Remove(bad)

	rm, err := p.Prune()
	if err != nil || !reflect.DeepEqual(ids(rm), []string{"old-done", "old-failed"}) {
		t.Fatalf("pruned %v, %v", ids(rm), err)
	}
	left, _ := st.List()
	if got := ids(left); !reflect.DeepEqual(got, []string{"new", "old-queued", "old-ref"}) &&
		!reflect.DeepEqual(got, []string{"old-queued", "old-ref", "new"}) {
		t.Errorf("left %v", got)
	}
	if _, err := os.Stat(filepath.Join(failed, "old-failed")); !os.IsNotExist(err) {
		t.Error("failed/old-failed still there")
	}
	ents, _ := os.ReadDir(st.Root)
	if len(ents) != 3 {
		t.Errorf("job store holds %d entries, want 3", len(ents))
	}
	if n := Size(filepath.Join(root, "failed")); n != 0 {
		t.Errorf("failed/ holds %d bytes, want 0", n)
	}
}
