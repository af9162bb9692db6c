package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/internal/testmodels"
)

// A queued job's model written again after the claim (the same inode: a
// writer that kept the upload open across the rename) is built from its
// current bytes, and the report's summary describes those bytes, like its
// sha256 and size: not the bytes the inbox read.
func TestReportSummaryIsOfTheBuiltBytes(t *testing.T) {
	tr := newTree(t, "")
	_, _ = tr.runCounting(t, "TRTD_FAKE_WORKER=*=slow=6s")
	tr.drop(t, "first.onnx", testmodels.TinyCNN)
	tr.drop(t, "second.onnx", testmodels.TinyCNN)
	var model string
	for deadline := time.Now().Add(30 * time.Second); model == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ms, _ := filepath.Glob(filepath.Join(tr.cfg.Paths.State, "jobs", "*", "model", "second.onnx"))
		for _, m := range ms {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(m)), "job.json"))
			var j struct{ State string }
			if err == nil && json.Unmarshal(b, &j) == nil && j.State == "queued" {
				model = m
			}
		}
	}
	if model == "" {
		t.Fatal("second.onnx not claimed and queued behind first.onnx")
	}
	if err := os.WriteFile(model, testmodels.SmallCNN, 0o644); err != nil { // same inode
		t.Fatal(err)
	}
	r := tr.waitReport(t, "second.onnx", 60*time.Second, report.OutcomeBuilt)
	sum := sha256.Sum256(testmodels.SmallCNN)
	if r.Model.SHA256 != hex.EncodeToString(sum[:]) || r.Model.Size != int64(len(testmodels.SmallCNN)) {
		t.Fatalf("built from other bytes: sha256 %s, %d bytes", r.Model.SHA256, r.Model.Size)
	}
	if r.Model.Summary == nil || r.Model.Summary.FileBytes != r.Model.Size {
		t.Fatalf("report: sha256 and size of the built bytes (%d bytes), summary of other bytes (%+v)", r.Model.Size, r.Model.Summary)
	}
}
