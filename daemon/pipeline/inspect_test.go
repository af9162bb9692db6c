package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/internal/testmodels"
	"github.com/trtd/trtd/internal/untrusted"
)

// countingInspector counts its parses by base name.
func countingInspector() (*Inspector, map[string]int) {
	n := map[string]int{}
	return &Inspector{Read: func(f *os.File, dir string) (*onnx.Model, error) {
		n[filepath.Base(f.Name())]++
		return onnx.ReadFile(f, dir)
	}}, n
}

func check(t *testing.T, in *Inspector, path string) (*onnx.Summary, error) {
	t.Helper()
	f, _, err := untrusted.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return in.Check(f, path)
}

// The inbox checks a model again and again (a rescan, a recheck after a
// rejection, another model's ownership check of its external data): each
// version of its bytes is parsed once; new bytes are parsed again.
func TestInspectorParsesEachVersionOnce(t *testing.T) {
	in, n := countingInspector()
	dir := t.TempDir()
	p := testmodels.Write(t, dir, "m.onnx", testmodels.TinyCNN)
	for i := 0; i < 3; i++ {
		if sum, err := check(t, in, p); err != nil || sum.NodeCount == 0 {
			t.Fatalf("check %d: %v %+v", i, err, sum)
		}
	}
	if n["m.onnx"] != 1 {
		t.Fatalf("3 checks of the same bytes: %d parses, want 1", n["m.onnx"])
	}
	// The claim takes it to a job: the job's reads use the same parse.
	sum, _ := check(t, in, p)
	in.Claimed(p, "job1", sum, fileVersion(t, p))
	if got, _, err := in.Job("job1", p); err != nil || got != sum || n["m.onnx"] != 1 {
		t.Fatalf("job read: %v, same summary %v, %d parses", err, got == sum, n["m.onnx"])
	}
	// Its end forgets it: a later read (a restart) parses once more.
	in.Done("job1")
	if _, _, err := in.Job("job1", p); err != nil || n["m.onnx"] != 2 {
		t.Fatalf("after Done: %v, %d parses", err, n["m.onnx"])
	}
	in.Done("job1")
	if in.bytes != 0 {
		t.Errorf("%d bytes kept with nothing to keep", in.bytes)
	}
	// New bytes (a new upload under the name) are read again.
	os.WriteFile(p, testmodels.SmallCNN, 0o644)
	future := time.Now().Add(time.Hour)
	os.Chtimes(p, future, future)
	if _, err := check(t, in, p); err != nil || n["m.onnx"] != 3 {
		t.Fatalf("new bytes: %v, %d parses", err, n["m.onnx"])
	}
}

// A model's external data is checked against the files every time, from
// the one parse: data that arrives after the model is found, and one that
// two models name is refused for both (F-12), each model parsed once.
func TestInspectorExternalDataFromOneParse(t *testing.T) {
	in, n := countingInspector()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.onnx")
	os.WriteFile(a, testmodels.External("w.bin"), 0o644)
	if _, err := check(t, in, a); !errors.Is(err, onnx.ErrExternalData) || !strings.Contains(err.Error(), "file is missing") {
		t.Fatalf("data not there yet: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
	if sum, err := check(t, in, a); err != nil || len(sum.ExternalData) != 1 {
		t.Fatalf("data arrived: %v", err)
	}
	b := filepath.Join(dir, "b.onnx")
	os.WriteFile(b, testmodels.External("w.bin"), 0o644)
	for _, p := range []string{a, b, a, b} {
		if _, err := check(t, in, p); err == nil || !strings.Contains(err.Error(), "also named by") {
			t.Fatalf("%s: shared data: %v", filepath.Base(p), err)
		}
	}
	if n["a.onnx"] != 1 || n["b.onnx"] != 1 {
		t.Fatalf("parses %v, want one each", n)
	}
}

// What the inspector keeps is bounded: a summary that does not fit is not
// kept (it is read again when needed).
func TestInspectorBudget(t *testing.T) {
	in, n := countingInspector()
	big := &onnx.Summary{Metadata: map[string]string{"k": strings.Repeat("x", inspectBudget)}}
	in.Claimed("/nowhere", "big", big, version{})
	if in.bytes != 0 || len(in.jobs) != 0 {
		t.Fatalf("a summary over the budget was kept: %d bytes", in.bytes)
	}
	p := testmodels.Write(t, t.TempDir(), "m.onnx", testmodels.TinyCNN)
	if _, _, err := in.Job("big", p); err != nil || n["m.onnx"] != 1 {
		t.Fatalf("read again: %v %v", err, n)
	}
}

// Files that left the inbox unclaimed (a deleted upload) make room when
// the budget runs short: they do not keep later uploads from being kept.
func TestInspectorForgetsGoneFiles(t *testing.T) {
	in, n := countingInspector()
	dir := t.TempDir()
	// A deleted upload whose summary took nearly the whole budget.
	gone := filepath.Join(dir, "gone.onnx")
	in.remember(gone, seenModel{sum: &onnx.Summary{Metadata: map[string]string{"k": strings.Repeat("x", inspectBudget-2048)}}})
	if _, ok := in.files[gone]; !ok {
		t.Fatal("setup: the gone upload's summary was not kept")
	}
	p := testmodels.Write(t, dir, "m.onnx", testmodels.TinyCNN)
	check(t, in, p)
	in.mu.Lock()
	_, kept := in.files[p]
	_, stale := in.files[gone]
	in.mu.Unlock()
	if !kept || stale {
		t.Fatalf("kept the new upload %v, the gone one %v", kept, stale)
	}
	check(t, in, p)
	if n["m.onnx"] != 1 {
		t.Fatalf("%d parses", n["m.onnx"])
	}
}

func fileVersion(t *testing.T, p string) version {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return versionOf(fi)
}

// The summary a job carries from the inbox describes the bytes the job
// builds: a file written again after the claim (same inode: a writer that
// kept the upload open across the rename, or a rewrite in place) is read
// again, and the summary, sha256 and size of the job are of one version.
func TestJobSummaryDescribesTheJobsBytes(t *testing.T) {
	in, n := countingInspector()
	dir := t.TempDir()
	p := testmodels.Write(t, dir, "m.onnx", testmodels.TinyCNN)
	sum, err := check(t, in, p)
	if err != nil {
		t.Fatal(err)
	}
	in.Claimed(p, "job1", sum, fileVersion(t, p))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0) // same inode
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(testmodels.SmallCNN); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute) // past the clock's tick
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	got, v, err := in.Job("job1", p)
	if err != nil {
		t.Fatal(err)
	}
	if got.FileBytes != int64(len(testmodels.SmallCNN)) || v != fileVersion(t, p) || n["m.onnx"] != 2 {
		t.Fatalf("job summary of %d bytes (version %+v), the job's file has %d; %d parses",
			got.FileBytes, v, len(testmodels.SmallCNN), n["m.onnx"])
	}
	// Unchanged since: the same summary, no parse.
	if again, _, err := in.Job("job1", p); err != nil || again != got || n["m.onnx"] != 2 {
		t.Fatalf("second read: %v, same %v, %d parses", err, again == got, n["m.onnx"])
	}
}

// The inbox's event carries only a summary the inspector keeps: with the
// budget full, the check passes the model without its summary (the claim
// reads it again), so events waiting to be claimed hold nothing beyond
// the budget.
func TestInspectorEventsCarryOnlyKeptSummaries(t *testing.T) {
	in, n := countingInspector()
	dir := t.TempDir()
	full := testmodels.Write(t, dir, "full.onnx", testmodels.TinyCNN)
	in.remember(full, seenModel{v: fileVersion(t, full), sum: &onnx.Summary{Metadata: map[string]string{"k": strings.Repeat("x", inspectBudget-1024)}}})
	if _, ok := in.files[full]; !ok {
		t.Fatal("setup: the budget-filling summary was not kept")
	}
	p := testmodels.Write(t, dir, "m.onnx", testmodels.TinyCNN)
	sum, err := check(t, in, p)
	if err != nil || sum != nil || n["m.onnx"] != 1 {
		t.Fatalf("check with the budget full: summary %v, err %v, %d parses; want no summary, no error, 1 parse", sum != nil, err, n["m.onnx"])
	}
	if in.bytes > inspectBudget {
		t.Fatalf("%d bytes kept, budget %d", in.bytes, inspectBudget)
	}
}
