package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// seedFinished writes n finished jobs (and their kept models) the way the
// daemon leaves them: a full history each.
func seedFinished(t testing.TB, s *Store, n int) {
	t.Helper()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		j := &Job{ID: fmt.Sprintf("20261101T000000-f%05d", i), Name: fmt.Sprintf("f%05d.onnx", i), State: Done,
			Step: StepReportPublished, Created: at, ModelSize: 4096, ModelSHA256: fmt.Sprintf("%064x", i),
			Outcome: "built", EngineSHA: fmt.Sprintf("%064x", i+1), Outputs: []string{fmt.Sprintf("f%05d.engine", i)}}
		for _, st := range []string{StepClaimed, StepPlanned, StepWorkerStarted, StepWorkerFinished, StepEngineRenamed, StepCommitted, StepReportPublished} {
			j.History = append(j.History, Transition{At: at, State: Building, Step: st, Note: "seeded"})
		}
		if err := os.MkdirAll(filepath.Join(s.Dir(j), "model"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(j); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartReadsEachJobOnce (issue 13, cost as work grows): the start
// reads every job.json once, and the queue built after it reads only the
// unfinished jobs, not the whole store again (it used to read all of them
// three times: reconciliation, the queue, the jobs waiting for a builder).
func TestStartReadsEachJobOnce(t *testing.T) {
	s, _ := newStore(t)
	const finished = 200
	seedFinished(t, s, finished)
	var open []*Job
	for i, st := range []State{Queued, Waiting, Building} {
		j := &Job{ID: fmt.Sprintf("20261125T120000-o%d", i), Name: fmt.Sprintf("o%d.onnx", i), State: st, Step: StepPlanned,
			Created: time.Date(2026, 11, 25, 12, 0, i, 0, time.UTC)}
		os.MkdirAll(filepath.Join(s.Dir(j), "model"), 0o755)
		os.WriteFile(s.ModelPath(j), []byte("m"), 0o644)
		if err := s.Save(j); err != nil {
			t.Fatal(err)
		}
		open = append(open, j)
	}
	s.reads = 0
	if _, err := s.Reconcile(); err != nil {
		t.Fatal(err)
	}
	if s.reads != finished+int64(len(open)) {
		t.Fatalf("Reconcile read job.json %d times for %d jobs, want once each", s.reads, finished+len(open))
	}
	s.reads = 0
	js, err := s.ListUnfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != len(open) {
		t.Fatalf("ListUnfinished = %d jobs, want the %d unfinished", len(js), len(open))
	}
	for i := 1; i < len(js); i++ {
		if js[i].Created.Before(js[i-1].Created) {
			t.Fatalf("unfinished jobs not oldest first: %s before %s", js[i-1].ID, js[i].ID)
		}
	}
	if s.reads != int64(len(open)) {
		t.Fatalf("ListUnfinished read job.json %d times, want %d (the unfinished jobs only)", s.reads, len(open))
	}
	// The index follows every save: a job that finishes leaves it, a new
	// claim enters it, a claim undone leaves it.
	js[0].State = Done
	if err := s.Save(js[0]); err != nil {
		t.Fatal(err)
	}
	if s.IsOpen(js[0].ID) {
		t.Fatalf("job %s finished but still in the index", js[0].ID)
	}
	if ids := s.OpenIDs(); len(ids) != len(open)-1 {
		t.Fatalf("open ids after one job finished: %v", ids)
	}
}

// TestIndexBuiltWithoutReconcile: a store used before Reconcile (the CLI,
// tests) builds its index from the files when first asked.
func TestIndexBuiltWithoutReconcile(t *testing.T) {
	s, _ := newStore(t)
	seedFinished(t, s, 3)
	j := &Job{ID: "20261125T120000-q", Name: "q.onnx", State: Queued, Created: time.Now()}
	os.MkdirAll(s.Dir(j), 0o755)
	if err := s.Save(j); err != nil {
		t.Fatal(err)
	}
	fresh := &Store{Root: s.Root, Now: time.Now}
	js, err := fresh.ListUnfinished()
	if err != nil || len(js) != 1 || js[0].ID != j.ID {
		t.Fatalf("ListUnfinished on a fresh store = %v, %v; want job %s", js, err, j.ID)
	}
}

// TestReconcileFinishedJobAllocs bounds what one finished job costs the
// start: its state is checked, nothing of it is decoded in full or kept.
// A full decode (history, times, outputs) is about 48 allocations a job
// this bound fails if the start decodes finished jobs in full again.
func TestReconcileFinishedJobAllocs(t *testing.T) {
	s, _ := newStore(t)
	const n = 100
	seedFinished(t, s, n)
	per := testing.AllocsPerRun(5, func() {
		if _, err := s.Reconcile(); err != nil {
			t.Fatal(err)
		}
	}) / n
	t.Logf("%.1f allocations per finished job", per)
	if per > maxAllocsPerFinishedJob {
		t.Fatalf("Reconcile: %.1f allocations per finished job, want at most %d", per, maxAllocsPerFinishedJob)
	}
}

const maxAllocsPerFinishedJob = 12

// BenchmarkReconcile10k: the start's reconciliation of 10,000 finished
// jobs (go test -run - -bench Reconcile ./daemon/jobs).
func BenchmarkReconcile10k(b *testing.B) {
	root := b.TempDir()
	s, err := Open(filepath.Join(root, "jobs"))
	if err != nil {
		b.Fatal(err)
	}
	seedFinished(b, s, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Reconcile(); err != nil {
			b.Fatal(err)
		}
	}
}

// stateByDecode is what encoding/json makes of a record's state: the
// reference stateOf must agree with.
func stateByDecode(b []byte) (State, error) {
	var h struct {
		State State `json:"state"`
	}
	err := json.Unmarshal(b, &h)
	return h.State, err
}

var stateCases = []string{
	`{"id":"a","name":"n.onnx","state":"done","history":[{"state":"building"}]}`,
	`{"id":"a","state":"queued"}`,
	"{\n  \"id\": \"x\",\n  \"state\":\t\"failed\"\n}",
	`{"history":[{"state":"done"}],"state":"building"}`,
	`{"nested":{"state":"done"},"id":"b"}`,
	`{"name":"x\"state\": \"done","state":"queued"}`,
	`{"State":"done"}`,
	`{"STATE":"done","state":"queued"}`,
	`{"state":"done","state":"queued"}`,
	`{"st\u0061te":"done"}`,
	`{"state":"do\u006ee"}`,
	`{"state":7}`,
	`{"state":null}`,
	`{"state":"done"`,
	`{"state":"done"}x`,
	``,
	`null`,
	`["state","done"]`,
	`"state"`,
	`{"a":[1,{"b":"}"}],"state":"waiting_for_builder"}`,
}

// TestStateOfMatchesDecode: the scan that reads a finished record's state
// without reflection gives what a full decode gives, corrupt records
// included (they must still be recovered, F-3).
func TestStateOfMatchesDecode(t *testing.T) {
	for _, c := range stateCases {
		want, werr := stateByDecode([]byte(c))
		got, err := stateOf("j", []byte(c))
		if (err != nil) != (werr != nil) || got != want {
			t.Errorf("%q: stateOf = %q, %v; encoding/json = %q, %v", c, got, err, want, werr)
		}
	}
}

func FuzzStateOf(f *testing.F) {
	for _, c := range stateCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := stateByDecode(b)
		got, err := stateOf("j", b)
		if (err != nil) != (werr != nil) || got != want {
			t.Fatalf("%q: stateOf = %q, %v; encoding/json = %q, %v", b, got, err, want, werr)
		}
	})
}

// TestListSummariesMatchesFullRecord: the partial decode retention reads
// the store with gives the fields it uses as a full decode does.
func TestListSummariesMatchesFullRecord(t *testing.T) {
	s, _ := newStore(t)
	seedFinished(t, s, 5)
	full, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	part, err := s.ListSummaries(nil)
	if err != nil || len(part) != len(full) {
		t.Fatalf("ListSummaries = %d jobs, %v; want %d", len(part), err, len(full))
	}
	for i, f := range full {
		p := part[i]
		if p.ID != f.ID || p.Name != f.Name || p.State != f.State || !p.Updated.Equal(f.Updated) || p.ModelSHA256 != f.ModelSHA256 || p.Outcome != f.Outcome {
			t.Errorf("summary %+v, full record %+v", p, f)
		}
	}
}

// TestReadLeavesAccessTime: reading every record at start writes no
// inode back (O_NOATIME): on a relatime mount the first read after a
// write used to update the access time of all 10,000 records, a third of
// the start's CPU time, and SD-card writes.
func TestReadLeavesAccessTime(t *testing.T) {
	s, _ := newStore(t)
	seedFinished(t, s, 1)
	ids, _ := os.ReadDir(s.Root)
	p := filepath.Join(s.Root, ids[0].Name(), "job.json")
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ids[0].Name()); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if at := time.Unix(st.Atim.Unix()); !at.Equal(old) {
		t.Fatalf("reading job.json set its access time to %s (was %s)", at, old)
	}
}
