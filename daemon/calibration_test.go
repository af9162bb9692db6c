package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
)

// Calibration data uploaded as add.calib/ (the layout of add.test/) is
// claimed with the model in one step and handed to int8 stages: the
// request names the batches in the work directory and the cache path the
// API worker writes and trtexec --calib= reads.
func TestInt8CalibrationDataReachesTheWorker(t *testing.T) {
	model, err := os.ReadFile(filepath.Join(addModel, "model.onnx"))
	if err != nil {
		t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata): " + err.Error())
	}
	tr := newTree(t, "")
	rec := filepath.Join(tr.root, "record.jsonl")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_RECORD="+rec)
	defer stop()
	dir := filepath.Join(tr.cfg.Paths.Inbox, "add.calib")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"input_0.pb", "input_1.pb"} {
		b, err := os.ReadFile(filepath.Join(addModel, "test_data_set_0", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr.drop(t, "add.toml", []byte("precision = \"int8\"\n"))
	tr.drop(t, "add.onnx", model)
	r := tr.waitReport(t, "add.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeFailed)
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("add.calib/ was left in the inbox: the calibration data never reaches the worker")
	}
	if r.Outcome != report.OutcomeBuilt {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Reason)
	}
	data, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	var saw bool
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e struct {
			Request protocol.Request `json:"request"`
			Entries []string         `json:"workdir_entries"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Request.Op != protocol.OpBuild {
			continue
		}
		saw = true
		got := e.Request
		if got.Settings.Precision != protocol.PrecisionINT8 {
			t.Errorf("stage %s: precision %q, want int8", got.Stage, got.Settings.Precision)
		}
		if strings.Join(got.CalibrationData, ",") != "add.calib/input_0.pb,add.calib/input_1.pb" || got.Calibration != "add.calib.cache" {
			t.Errorf("stage %s: calibration_data %q, calibration %q", got.Stage, got.CalibrationData, got.Calibration)
		}
		// The batches are in the worker's work directory.
		if !strings.Contains(","+strings.Join(e.Entries, ",")+",", ",add.calib,") {
			t.Errorf("stage %s: add.calib/ is not in the work directory: %q", got.Stage, e.Entries)
		}
	}
	if !saw {
		t.Fatalf("no build request recorded: %s", data)
	}
	// The claim moved add.calib/ into the job with the model.
	m, _ := filepath.Glob(filepath.Join(tr.cfg.Paths.State, "jobs", "*", "model", "add.calib", "input_1.pb"))
	if len(m) != 1 {
		t.Errorf("add.calib/ is not in the job: %v", m)
	}
}
