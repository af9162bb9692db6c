package trtdouble

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// The worker of each ABI accepts the libraries NVIDIA ships for it and
// refuses the others, by getInferLibVersion, while the ONNX parser reports
// NV_ONNX_PARSER_VERSION = 100 in every release (issue 11, item 1: it must
// not be compared with the TensorRT version).
func TestWorkerAcceptsTheReleasesOfItsABI(t *testing.T) {
	cases := map[string][]struct {
		lib    int
		accept bool
		what   string
	}{
		"8.2": {{8203, true, "8.2.3, the headers'"}, {8201, true, "8.2.1, JetPack 4.6.1"}, {8601, true, "8.6.1, JetPack 6.0"},
			{8001, false, "8.0.1, JetPack 4.6: older than the 8.2 headers"}},
		"10.0": {{100001, true, "10.0.1, the headers'"}, {100300, true, "10.3.0, JetPack 6.1"}},
		"11.1": {{110100, true, "11.1.0, the headers'"}},
	}
	forEach(t, func(t *testing.T, v string) {
		for _, c := range cases[v] {
			cmd := exec.Command(filepath.Join(os.Getenv("TRTDOUBLE_DIR"), v, "trtd-worker"), "probe", "--json")
			cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(os.Getenv("TRTDOUBLE_DIR"), v),
				"TRTD_DOUBLE=lib_version="+strconv.Itoa(c.lib), "ASAN_OPTIONS=detect_leaks=0")
			out, _ := cmd.Output()
			var p struct {
				Class   string `json:"class"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(out, &p); err != nil {
				t.Fatalf("%s: probe output: %v\n%s", c.what, err, out)
			}
			if got := p.Class == "ok"; got != c.accept {
				t.Errorf("TensorRT %s: probe class %s (%s), want accepted=%v", c.what, p.Class, p.Message, c.accept)
			}
			if strings.Contains(p.Message, "ONNX parser") {
				t.Errorf("TensorRT %s: the parser was refused: %s", c.what, p.Message)
			}
		}
	})
}
