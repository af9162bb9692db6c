package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/testmodels"
)

// [retention] at the daemon: at start, old finished jobs go (their job
// directory and failed/ entry), while one an engine's provenance in the
// outbox names and one not finished stay; status shows the space used.
func TestRetentionPrunesOldFinishedJobs(t *testing.T) {
	tr := newTree(t, "[retention]\nkeep_jobs = 1\nkeep_days = 7\n")
	st, err := jobs.Open(filepath.Join(tr.cfg.Paths.State, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	seed := func(id string, state jobs.State, daysAgo int) *jobs.Job {
		j := &jobs.Job{ID: id, Name: id + ".onnx", State: state, ModelSHA256: "sha-" + id, Outcome: "built"}
		os.MkdirAll(filepath.Dir(st.ModelPath(j)), 0o755)
		if err := os.WriteFile(st.ModelPath(j), testmodels.SmallCNN, 0o644); err != nil {
			t.Fatal(err)
		}
		st.Now = func() time.Time { return time.Now().Add(-time.Duration(daysAgo) * 24 * time.Hour) }
		if err := st.Save(j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	seed("old-done", jobs.Done, 40)
	seed("old-failed", jobs.Failed, 39)
	os.MkdirAll(filepath.Join(tr.cfg.Paths.Failed, "old-failed"), 0o755)
	os.WriteFile(filepath.Join(tr.cfg.Paths.Failed, "old-failed", "old-failed.onnx"), []byte("m"), 0o644)
	seed("old-ref", jobs.Done, 38)
	seed("newest", jobs.Done, 30) // the last finished job: keep_jobs = 1 keeps it
	seed("old-waiting", jobs.Waiting, 90)
	if err := provenance.Write(filepath.Join(tr.cfg.Paths.Outbox, "old-ref"+provenance.Suffix),
		&provenance.Provenance{Job: "old-ref", ModelSHA: "sha-old-ref", Engine: "old-ref.engine"}); err != nil {
		t.Fatal(err)
	}

	tr.runInProcess(t, "TRTD_FAKE_WORKER=fast=ok")
	deadline := time.Now().Add(30 * time.Second)
	var s *status.Status
	for {
		s, err = status.Read(tr.cfg.StatusPath())
		if err == nil && s.Disk != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disk usage in the status within 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gone := func(p string) bool { _, err := os.Stat(p); return os.IsNotExist(err) }
	for _, id := range []string{"old-done", "old-failed"} {
		if !gone(filepath.Join(st.Root, id)) {
			t.Errorf("%s: still in the job store", id)
		}
	}
	if !gone(filepath.Join(tr.cfg.Paths.Failed, "old-failed")) {
		t.Error("failed/old-failed still there")
	}
	for _, id := range []string{"old-ref", "newest", "old-waiting"} {
		if gone(filepath.Join(st.Root, id, "model", id+".onnx")) {
			t.Errorf("%s: its model was removed", id)
		}
	}
	if s.Disk.Jobs < 3*int64(len(testmodels.SmallCNN)) || s.Disk.Failed != 0 {
		t.Errorf("disk usage %+v: want the three kept models in the job store and an empty failed/", *s.Disk)
	}
}
