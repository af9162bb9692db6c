package jobs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/untrusted"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(filepath.Join(root, "state", "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	inbox := filepath.Join(root, "inbox")
	os.MkdirAll(inbox, 0o755)
	return s, inbox
}

func TestClaimMovesModelAndCompanions(t *testing.T) {
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "net.onnx")
	os.WriteFile(m, []byte("model"), 0o600)
	sc := filepath.Join(inbox, "net.toml")
	os.WriteFile(sc, []byte("precision = \"fp32\"\n"), 0o644)
	j, err := s.Claim(m, "net.onnx", 5, 0, []string{sc, filepath.Join(inbox, "missing.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != Queued || j.Step != StepClaimed || j.Sidecar != "net.toml" {
		t.Fatalf("job %+v", j)
	}
	if _, err := os.Stat(m); !os.IsNotExist(err) {
		t.Error("model still in the inbox")
	}
	if b, _ := os.ReadFile(s.ModelPath(j)); string(b) != "model" {
		t.Error("model not in the job")
	}
	back, err := s.Load(j.ID)
	if err != nil || back.State != Queued || len(back.History) != 2 {
		t.Fatalf("reloaded %+v %v", back, err)
	}
}

func TestReconcile(t *testing.T) {
	s, inbox := newStore(t)
	mk := func(name string) *Job {
		p := filepath.Join(inbox, name)
		os.WriteFile(p, []byte(name), 0o644)
		j, err := s.Claim(p, name, int64(len(name)), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// A claim that crashed before the rename: only job.json exists.
	half := &Job{ID: "20261125T000000-aaaaaaaa", Name: "half.onnx", State: Claiming}
	os.MkdirAll(filepath.Join(s.Dir(half), "model"), 0o755)
	s.Save(half)
	os.WriteFile(filepath.Join(inbox, "half.onnx"), []byte("still here"), 0o644)
	// A claim that crashed after the rename.
	moved := &Job{ID: "20261125T000001-bbbbbbbb", Name: "moved.onnx", State: Claiming}
	os.MkdirAll(filepath.Join(s.Dir(moved), "model"), 0o755)
	os.WriteFile(s.ModelPath(moved), []byte("x"), 0o644)
	s.Save(moved)
	// Building at a crash, with debris.
	b := mk("b.onnx")
	s.Transition(b, Building, StepWorkerStarted, "")
	os.WriteFile(filepath.Join(s.Dir(b), ".trtd-tmp-job.json-123"), nil, 0o644)
	// Building and already recovered too often.
	loop := mk("loop.onnx")
	loop.Recoveries = MaxRecoveries
	s.Transition(loop, Building, StepWorkerStarted, "")
	done := mk("done.onnx")
	s.Transition(done, Done, StepCommitted, "")

	rec, err := s.Reconcile()
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, r := range rec {
		actions[r.Job.Name] = r.Action
	}
	want := map[string]string{"half.onnx": "dropped-claim", "moved.onnx": "completed-claim", "b.onnx": "requeued", "loop.onnx": "failed-too-many-restarts"}
	for k, v := range want {
		if actions[k] != v {
			t.Errorf("%s: %q, want %q", k, actions[k], v)
		}
	}
	if _, ok := actions["done.onnx"]; ok {
		t.Error("a done job was touched")
	}
	if _, err := os.Stat(filepath.Join(inbox, "half.onnx")); err != nil {
		t.Error("the unclaimed model must stay in the inbox")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(b), ".trtd-tmp-job.json-123")); !os.IsNotExist(err) {
		t.Error("temp debris left")
	}
	lb, _ := s.Load(b.ID)
	if lb.State != Queued || lb.Recoveries != 1 {
		t.Errorf("b: %s recoveries %d", lb.State, lb.Recoveries)
	}
	ll, _ := s.Load(loop.ID)
	if ll.State != Failing || ll.Reason == "" { // the daemon then records the failure with its report
		t.Errorf("loop: %s %q", ll.State, ll.Reason)
	}
	if _, err := os.Stat(s.ModelPath(ll)); err != nil {
		t.Error("a failed job's model must be kept")
	}
	all, _ := s.List()
	if len(all) != 4 { // the half claim is gone, its model still in the inbox
		t.Errorf("%d jobs listed, want 4", len(all))
	}
}

// A non-UTF-8 upload name must survive job.json's JSON round trip: the
// worker is told the stored name and must find the file under it.
func TestClaimNonUTF8Name(t *testing.T) {
	s, inbox := newStore(t)
	raw := "\xff\xfe.onnx"
	m := filepath.Join(inbox, raw)
	os.WriteFile(m, []byte("model"), 0o644)
	j, err := s.Claim(m, raw, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := s.Load(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.ModelPath(back)); err != nil || string(b) != "model" {
		t.Fatalf("model not found under the reloaded job's name %q: %v", back.Name, err)
	}
}

// A name swapped for a symbolic link between the inbox's check and the
// claim is not claimed: the link goes back, nothing is read through it.
func TestClaimRefusesSwappedName(t *testing.T) {
	s, inbox := newStore(t)
	m := filepath.Join(inbox, "net.onnx")
	os.WriteFile(m, []byte("model"), 0o644)
	fi, _ := os.Stat(m)
	_, ino := fsutilInode(fi)
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("secret"), 0o644)
	// keep the checked file's inode allocated, so a new file cannot reuse it
	os.Rename(m, filepath.Join(inbox, ".checked"))
	os.Symlink(outside, m)
	if _, err := s.Claim(m, "net.onnx", 5, ino, nil); err == nil {
		t.Fatal("claimed a symbolic link")
	}
	if fi, err := os.Lstat(m); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was not put back: %v", err)
	}
	if js, _ := s.List(); len(js) != 0 {
		t.Fatalf("jobs left: %+v", js)
	}
	// a different regular file under the name (replaced after the check)
	os.Remove(m)
	os.WriteFile(m, []byte("other"), 0o644)
	if _, err := s.Claim(m, "net.onnx", 5, ino, nil); err == nil {
		t.Fatal("claimed a file that is not the one checked")
	}
	if b, _ := os.ReadFile(m); string(b) != "other" {
		t.Fatal("the replacement was not put back")
	}
}

func fsutilInode(fi os.FileInfo) (uint64, uint64) { return untrusted.Inode(fi) }
