package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/internal/testmodels"
)

// workerDir lays out the package's worker directory with the fake worker
// as the trtexec fallback (trtd-worker) and as the TensorRT 8 cgo worker
// (trtd-worker-trt8, a wrapper that marks itself and, with probeFails,
// reports no builder), and a library directory holding libnvinfer.so.8.
func workerDir(t *testing.T, probeFails bool) (fallback, libDir string) {
	t.Helper()
	dir := t.TempDir()
	fallback = filepath.Join(dir, "trtd-worker")
	if err := os.Symlink(bin.fake, fallback); err != nil {
		t.Fatal(err)
	}
	env := ""
	if probeFails {
		env = "TRTD_FAKE_WORKER_PROBE=unavailable "
	}
	script := fmt.Sprintf("#!/bin/sh\nexec env %s%q \"$@\"\n", env, bin.fake)
	if err := os.WriteFile(filepath.Join(dir, "trtd-worker-trt8"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	libDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(libDir, "libnvinfer.so.8"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return fallback, libDir
}

func TestWorkerSelection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		probeFails bool
		noLibrary  bool
		worker     string
		reason     []string
	}{
		{"matching cgo worker", false, false, "trtd-worker-trt8", []string{"matches libnvinfer.so.8", "probe passed"}},
		{"probe fails", true, false, "trtd-worker", []string{"trtexec fallback", "trtd-worker-trt8 matches libnvinfer.so.8 but its probe failed"}},
		{"no TensorRT", false, true, "trtd-worker", []string{"trtexec fallback", "no libnvinfer.so.N found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, "")
			fallback, libDir := workerDir(t, tc.probeFails)
			if tc.noLibrary {
				libDir = t.TempDir()
			}
			tr.cfg.Paths.Worker = fallback
			tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "LD_LIBRARY_PATH="+libDir)
			tr.drop(t, "net.onnx", testmodels.TinyCNN)
			r := tr.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt)
			st := tr.waitIdle(t, 10*time.Second)
			if st.Worker == nil || filepath.Base(st.Worker.Chosen.Path) != tc.worker {
				t.Fatalf("status worker %+v, want %s", st.Worker, tc.worker)
			}
			if got := st.Worker.PresentNames(); got != "trt8, trtexec" {
				t.Errorf("present %q", got)
			}
			if r.Builder == nil || filepath.Base(r.Builder.Worker) != tc.worker {
				t.Fatalf("report builder %+v, want worker %s", r.Builder, tc.worker)
			}
			for _, want := range tc.reason {
				if !strings.Contains(st.Worker.Reason, want) || !strings.Contains(r.Builder.WorkerReason, want) {
					t.Errorf("reason: status %q, report %q; want %q in both", st.Worker.Reason, r.Builder.WorkerReason, want)
				}
			}
			md, err := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "net.report.md"))
			if err != nil || !strings.Contains(string(md), "- worker: "+r.Builder.Worker) {
				t.Errorf("markdown report lacks the worker line: %v", err)
			}
		})
	}
}

// TestWorkerFallbackReasonInReport: with no TensorRT and no trtexec (the
// fallback worker's probe fails too), the builder_unavailable report says
// why no cgo worker runs.
func TestWorkerFallbackReasonInReport(t *testing.T) {
	tr := newTree(t, "")
	fallback, _ := workerDir(t, true)
	tr.cfg.Paths.Worker = fallback
	tr.runInProcess(t, "TRTD_FAKE_WORKER_PROBE=unavailable", "LD_LIBRARY_PATH="+t.TempDir())
	tr.drop(t, "w.onnx", testmodels.TinyCNN)
	r := tr.waitReport(t, "w.onnx", 30*time.Second, report.OutcomeBuilderUnavailable)
	if r.Waiting == nil || !strings.Contains(r.Waiting.Missing, "trtexec fallback: no libnvinfer.so.N found") {
		t.Errorf("waiting %+v does not say why no cgo worker runs", r.Waiting)
	}
}
