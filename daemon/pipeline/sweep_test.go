package pipeline

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
)

// TestSweepSplitAroundReady (F-21, issue 13): the start sweeps the
// directories of unfinished jobs, the cache and failed/ before READY; the
// directories of finished jobs are swept after it, in the walk that
// measures the store, which never touches an unfinished job's directory
// (a write may be under way there) and counts what remains.
func TestSweepSplitAroundReady(t *testing.T) {
	root := t.TempDir()
	cfg := &config.Config{Paths: config.Paths{State: filepath.Join(root, "state"), Failed: filepath.Join(root, "failed")}}
	st, err := jobs.Open(filepath.Join(cfg.Paths.State, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	rn := &Runner{Cfg: cfg, Store: st}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	mk := func(id string, state jobs.State) *jobs.Job {
		j := &jobs.Job{ID: id, Name: id + ".onnx", State: state, Created: at}
		os.MkdirAll(filepath.Join(st.Dir(j), "model"), 0o755)
		if err := os.WriteFile(st.ModelPath(j), make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := st.Save(j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	done, open := mk("done", jobs.Done), mk("queued", jobs.Queued)
	plant := func(dir string) string {
		os.MkdirAll(dir, 0o755)
		p := filepath.Join(dir, ".trtd-tmp-crash")
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doneTemps := []string{plant(st.Dir(done)), plant(filepath.Join(st.Dir(done), "model"))}
	openTemps := []string{plant(st.Dir(open)), plant(filepath.Join(st.Dir(open), "model"))}
	other := []string{plant(filepath.Join(cfg.Paths.State, "cache", "key")), plant(filepath.Join(cfg.Paths.Failed, "old"))}
	if _, err := st.Reconcile(); err != nil {
		t.Fatal(err)
	}

	// (Reconcile removes the temporary files at the top of an unfinished
	// job's directory; Sweep those deeper down.)
	rn.Sweep()
	for _, p := range append(append([]string{}, openTemps...), other...) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s not swept before READY: %v", p, err)
		}
	}
	for _, p := range doneTemps {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the sweep before READY walked a finished job's directory: %s gone", p)
		}
	}

	// After READY a job is under way: its temporary file must stay.
	under := plant(filepath.Join(st.Dir(open), "model"))
	size, rm := rn.SweepStore()
	sort.Strings(rm)
	sort.Strings(doneTemps)
	if len(rm) != 2 || rm[0] != doneTemps[0] || rm[1] != doneTemps[1] {
		t.Fatalf("SweepStore removed %v, want the finished job's %v", rm, doneTemps)
	}
	if _, err := os.Stat(under); err != nil {
		t.Fatalf("SweepStore removed a temporary file of an unfinished job: %v", err)
	}
	var want2 int64
	for _, j := range []*jobs.Job{done, open} {
		for _, f := range []string{filepath.Join(st.Dir(j), "job.json"), st.ModelPath(j)} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			want2 += fi.Size()
		}
	}
	want2 += int64(len("partial")) // the unfinished job's temporary file stays and counts
	if size != want2 {
		t.Fatalf("SweepStore measured %d bytes, want %d", size, want2)
	}
}
