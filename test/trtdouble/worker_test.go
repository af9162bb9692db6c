package trtdouble

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type workerResult struct {
	Class   string   `json:"class"`
	Message string   `json:"message"`
	Calls   []string `json:"calls"`
	Worker  *struct {
		At       string `json:"at"`
		RSSBytes int64  `json:"rss_bytes"`
	} `json:"worker"`
}

// runWorker runs the cgo worker of version v on one request, in dir, with
// the double's libraries and script, and returns its result and stderr.
func runWorker(t *testing.T, v, dir, script string, req map[string]any) (workerResult, string) {
	t.Helper()
	req["version"], req["op"], req["backend"], req["work_dir"] = 1, "build", "api", dir
	b, _ := json.Marshal(req)
	san := filepath.Join(dir, "sanitizer")
	os.MkdirAll(san, 0o755)
	cmd := exec.Command(filepath.Join(os.Getenv("TRTDOUBLE_DIR"), v, "trtd-worker"))
	cmd.Stdin = bytes.NewReader(b)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(os.Getenv("TRTDOUBLE_DIR"), v), "TRTD_DOUBLE="+script,
		"ASAN_OPTIONS=detect_leaks=1:log_path="+filepath.Join(san, "asan"), "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path="+filepath.Join(san, "ubsan"))
	cmd.Run()
	ents, _ := os.ReadDir(san)
	for _, en := range ents {
		rep, _ := os.ReadFile(filepath.Join(san, en.Name()))
		t.Errorf("sanitizer report %s:\n%s", en.Name(), rep)
	}
	var res workerResult
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var ev struct {
		Event  string        `json:"event"`
		Result *workerResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.Result == nil {
		t.Fatalf("no result from the worker: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	res = *ev.Result
	return res, errb.String()
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	os.MkdirAll(dst, 0o755)
	ents, _ := os.ReadDir(src)
	for _, en := range ents {
		b, err := os.ReadFile(filepath.Join(src, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, en.Name()), b, 0o644)
	}
}

// The worker's calibrator, fed the uploaded batches, against the double's
// builder: getBatch once per batch, then the calibration table comes back
// through writeCalibrationCache and is saved where trtexec --calib= reads it.
// (The daemon end of name.calib/ is TestInt8WithCalibrationData.)
func TestWorkerInt8Calibrator(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		if strings.HasPrefix(v, "11.") {
			t.Skip("11.x has no int8 calibrator (strongly typed networks)")
		}
		model, set := testdata(t, "test_relu")
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "m.onnx"), model, 0o644)
		copyTree(t, set, filepath.Join(dir, "m.calib"))
		res, stderr := runWorker(t, v, dir, "fast_int8=1", map[string]any{
			"model": "m.onnx", "engine": "m.engine", "validate_runs": 2,
			"settings":    map[string]any{"precision": "int8", "workspace_mib": 64, "timing_cache": false},
			"calibration": "m.calib.cache", "calibration_data": []string{"m.calib/input_0.pb"},
		})
		if res.Class != "ok" {
			t.Fatalf("class %s: %s\n%s", res.Class, res.Message, stderr)
		}
		calls := strings.Join(res.Calls, "\n")
		if !strings.Contains(calls, "setFlag(kINT8)") || !strings.Contains(calls, "setInt8Calibrator(IInt8EntropyCalibrator2, 1 batches") {
			t.Fatalf("calls:\n%s", calls)
		}
		if !strings.Contains(stderr, "[trtdouble] int8 calibration: 1 batches") {
			t.Errorf("the calibrator's getBatch was not driven:\n%s", stderr)
		}
		cache, err := os.ReadFile(filepath.Join(dir, "m.calib.cache"))
		if err != nil || !strings.HasPrefix(string(cache), "TRT-") || !strings.Contains(string(cache), "-EntropyCalibration2\n") {
			t.Fatalf("calibration cache %q (%v)", cache, err)
		}
	})
}
