package jobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// F-3, F-21: an unreadable job record becomes a failing job (its model is
// kept and gets a report); a job directory a claim left with nothing of a
// user's in it is removed.
func TestReconcileUnreadableRecordsAndDebris(t *testing.T) {
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "a.onnx")
	os.WriteFile(m, []byte("model"), 0o644)
	j, err := s.Claim(m, "a.onnx", 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.Dir(j), "job.json"), []byte(`{"id": "x", "sta`), 0o644)
	debris := filepath.Join(s.Root, "20261125T120000-deadbeef")
	os.MkdirAll(filepath.Join(debris, "model"), 0o755) // a claim killed before its job.json
	rec, err := s.Reconcile()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 1 || rec[0].Action != "unreadable-record" || rec[0].Job.State != Failing ||
		rec[0].Job.Name != "a.onnx" || !strings.Contains(rec[0].Job.Reason, "job record") {
		t.Fatalf("recoveries %+v", rec)
	}
	if _, err := os.Stat(debris); !os.IsNotExist(err) {
		t.Errorf("empty claim directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(j), "job.json.corrupt")); err != nil {
		t.Errorf("corrupt record not kept aside: %v", err)
	}
	// The next start finishes the failure (the daemon had no time to).
	rec, _ = s.Reconcile()
	if len(rec) != 1 || rec[0].Action != "finish-failure" {
		t.Fatalf("second start: %+v", rec)
	}
}

// F-2: giving up after too many restarts is a persisted, non-terminal step.
func TestGiveUpIsNotTerminalUntilRecorded(t *testing.T) {
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "loop.onnx")
	os.WriteFile(m, []byte("model"), 0o644)
	j, _ := s.Claim(m, "loop.onnx", 5, 0, nil)
	j.Recoveries = MaxRecoveries
	s.Transition(j, Building, StepWorkerStarted, "")
	rec, err := s.Reconcile()
	if err != nil || len(rec) != 1 || rec[0].Action != "failed-too-many-restarts" {
		t.Fatalf("%+v %v", rec, err)
	}
	back, _ := s.Load(j.ID)
	if back.State.Terminal() || back.State != Failing || back.Outcome != "failed" {
		t.Fatalf("job %+v: want Failing until the failure is recorded", back)
	}
}

// An unreadable record that cannot be kept aside (here a directory holds
// the name job.json.corrupt) stops the recovery with an error naming the
// job, rather than letting the new record overwrite the only evidence.
func TestReconcileKeepsAnUnreadableRecordItCannotSetAside(t *testing.T) {
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "a.onnx")
	if err := os.WriteFile(m, []byte("model"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := s.Claim(m, "a.onnx", 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"id": "x", "sta`)
	if err := os.WriteFile(filepath.Join(s.Dir(j), "job.json"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir(j), "job.json.corrupt", "taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reconcile(); err == nil || !strings.Contains(err.Error(), j.ID) {
		t.Fatalf("Reconcile: %v, want an error naming job %s", err, j.ID)
	}
	if b, err := os.ReadFile(filepath.Join(s.Dir(j), "job.json")); err != nil || string(b) != string(bad) {
		t.Fatalf("job.json now %q (%v): the unreadable record was overwritten", b, err)
	}
}
