package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
)

// addModel is a real model of the ONNX test suite with its test data set:
// Add(x, y) -> sum, two float32 inputs of 3x4x5.
const addModel = "/usr/share/libonnx-testdata/data/node/test_add"

// uploadWithSamples places add.test/ (the samples) in the inbox first, the
// way a user copies them before the model, then the model itself.
func uploadWithSamples(t *testing.T, tr *tree) {
	t.Helper()
	model, err := os.ReadFile(filepath.Join(addModel, "model.onnx"))
	if err != nil {
		t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata): " + err.Error())
	}
	dir := filepath.Join(tr.cfg.Paths.Inbox, "add.test")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"input_0.pb", "input_1.pb", "output_0.pb"} {
		b, err := os.ReadFile(filepath.Join(addModel, "test_data_set_0", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr.drop(t, "add.onnx", model)
}

// samplesClaimed skips when the job store left the samples in the inbox:
// daemon/jobs.Claim moves companions with moveInto, which takes regular
// files only, so a name.test/ directory goes back to the inbox and the
// worker never sees it. This guard goes once Claim moves directories.
func samplesClaimed(t *testing.T, tr *tree) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Inbox, "add.test")); err == nil {
		t.Fatal("the add.test/ directory was not claimed with the model: the accuracy samples never reach the worker")
	}
}

// accuracyOf returns the attempt's accuracy stats.
func accuracyOf(t *testing.T, a report.Attempt) ([]protocol.AccuracyStat, bool) {
	t.Helper()
	v := a.Validation
	if v == nil || v.AccuracyOK == nil || len(v.Accuracy) == 0 {
		t.Fatalf("attempt %s has no accuracy result: %+v", a.Stage, v)
	}
	return v.Accuracy, *v.AccuracyOK
}

// Samples uploaded beside the model are compared with the engine's outputs
// (the test double reproduces the expected outputs exactly): the engine is
// published and the report carries the error per output.
func TestAccuracyWithinTolerancePublishes(t *testing.T) {
	tr := newTree(t, "")
	rec := filepath.Join(tr.root, "record.jsonl")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_RECORD="+rec)
	uploadWithSamples(t, tr)
	r := tr.waitReport(t, "add.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeFailed)
	samplesClaimed(t, tr)
	if r.Outcome != report.OutcomeBuilt {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Reason)
	}
	// The worker was asked with both inputs and the output, and the
	// configured tolerances.
	data, _ := os.ReadFile(rec)
	if !strings.Contains(string(data), `"inputs":["add.test/input_0.pb","add.test/input_1.pb"]`) || !strings.Contains(string(data), `"outputs":["add.test/output_0.pb"]`) || !strings.Contains(string(data), `"atol":0.001`) {
		t.Errorf("request did not carry the samples: %s", data)
	}
	last := r.Attempts[len(r.Attempts)-1]
	stats, ok := accuracyOf(t, last)
	if !ok || len(stats) != 1 || stats[0].Output != "sum" || !stats[0].OK || stats[0].MaxAbsErr != 0 {
		t.Fatalf("accuracy %+v ok %v", stats, ok)
	}
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Outbox, "add.engine")); err != nil {
		t.Fatalf("engine not published: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "add.report.md"))
	if err != nil || !strings.Contains(string(md), "Accuracy against the uploaded samples: within tolerance — sum max abs error 0, max rel error 0.") {
		t.Errorf("Markdown report without the accuracy line: %v\n%s", err, md)
	}
	tr.waitIdle(t, 10*time.Second)
	stop()
	noTemps(t, tr.root)
}

// An engine whose outputs are off by more than the tolerance is not
// published: the job fails with invalid_engine, and the report names the
// output and its error.
func TestAccuracyOutsideToleranceIsNotPublished(t *testing.T) {
	tr := newTree(t, "")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_ERROR=0.5")
	uploadWithSamples(t, tr)
	r := tr.waitReport(t, "add.onnx", 30*time.Second, report.OutcomeFailed, report.OutcomeBuilt)
	samplesClaimed(t, tr)
	if r.Outcome != report.OutcomeFailed {
		t.Fatalf("outcome %s, want failed", r.Outcome)
	}
	last := r.Attempts[len(r.Attempts)-1]
	if last.Outcome != protocol.ClassInvalidEngine {
		t.Fatalf("last attempt %s: %s", last.Outcome, last.Reason)
	}
	stats, ok := accuracyOf(t, last)
	if ok || len(stats) != 1 || stats[0].OK || stats[0].MaxAbsErr < 0.49 || stats[0].MaxAbsErr > 0.51 {
		t.Fatalf("accuracy %+v ok %v", stats, ok)
	}
	if !strings.Contains(last.Reason, "output sum: max abs error 0.5") || !strings.Contains(r.Reason, "output sum") {
		t.Errorf("reason does not name the output and its error: attempt %q, report %q", last.Reason, r.Reason)
	}
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Outbox, "add.engine")); !os.IsNotExist(err) {
		t.Errorf("an engine outside tolerance was published: %v", err)
	}
	ents, _ := os.ReadDir(tr.cfg.Paths.Outbox)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".engine") {
			t.Errorf("engine in the outbox: %s", e.Name())
		}
	}
	if _, err := os.Stat(r.KeptModel); err != nil {
		t.Errorf("model not kept: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(filepath.Dir(r.KeptModel), "add.report.md"))
	if !strings.Contains(string(md), "Accuracy against the uploaded samples: OUTSIDE tolerance, engine not published — sum max abs error 0.5") {
		t.Errorf("Markdown report without the failed accuracy line:\n%s", md)
	}
	tr.waitIdle(t, 10*time.Second)
	stop()
	noTemps(t, tr.root)
}
