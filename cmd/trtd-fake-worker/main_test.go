package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// addModel is a real model of the ONNX test suite with its test data set:
// Add(x, y) -> sum.
const addModel = "/usr/share/libonnx-testdata/data/node/test_add"

func accuracyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata): " + err.Error())
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.WriteFile(dst, b, 0o644)
	}
	copyFile(filepath.Join(addModel, "model.onnx"), filepath.Join(dir, "add.onnx"))
	for _, f := range []string{"input_0.pb", "input_1.pb", "output_0.pb"} {
		copyFile(filepath.Join(addModel, "test_data_set_0", f), filepath.Join(dir, "add.test", f))
	}
	return dir
}

func serveFake(t *testing.T, req protocol.Request) (*protocol.Result, int) {
	t.Helper()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	b, _ := json.Marshal(req)
	var out, errb bytes.Buffer
	code := run(bytes.NewReader(b), &out, &errb)
	var last *protocol.Result
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev protocol.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		if ev.Event == protocol.EventResult {
			last = ev.Result
		}
	}
	if last == nil {
		t.Fatalf("no result; stderr %s", errb.String())
	}
	return last, code
}

func TestFakeWorkerAccuracyGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errEnv  string
		inputs  []string
		class   protocol.Class
		engine  bool
		message string
	}{
		{"exact", "", []string{"add.test/input_0.pb", "add.test/input_1.pb"}, protocol.ClassOK, true, ""},
		{"within tolerance", "0.0005", []string{"add.test/input_0.pb", "add.test/input_1.pb"}, protocol.ClassOK, true, ""},
		{"outside tolerance", "0.5", []string{"add.test/input_0.pb", "add.test/input_1.pb"}, protocol.ClassInvalidEngine, false, "output sum: max abs error 0.5"},
		{"input missing", "", []string{"add.test/input_0.pb"}, protocol.ClassBadRequest, false, `no sample for input "y"`},
		{"unreadable sample", "", []string{"add.test/input_0.pb", "add.onnx"}, protocol.ClassBadRequest, false, "add.onnx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := accuracyDir(t)
			t.Setenv("TRTD_FAKE_WORKER_ERROR", tc.errEnv)
			engine := filepath.Join(dir, "add.engine")
			r, code := serveFake(t, protocol.Request{Version: protocol.Version, Op: protocol.OpBuild, WorkDir: dir, Model: "add.onnx", Engine: engine, Stage: "fast",
				Accuracy: &protocol.Accuracy{Inputs: tc.inputs, Outputs: []string{"add.test/output_0.pb"}, ATol: 1e-3, RTol: 1e-2}})
			if r.Class != tc.class || code != protocol.ExitCode(tc.class) || !strings.Contains(r.Message, tc.message) {
				t.Fatalf("%s %q exit %d", r.Class, r.Message, code)
			}
			if _, err := os.Stat(engine); (err == nil) != tc.engine {
				t.Errorf("engine written = %v", err == nil)
			}
			if tc.class == protocol.ClassBadRequest {
				return
			}
			v := r.Validation
			if v == nil || v.AccuracyOK == nil || *v.AccuracyOK != (tc.class == protocol.ClassOK) || len(v.Accuracy) != 1 || v.Accuracy[0].Output != "sum" {
				t.Fatalf("validation %+v", v)
			}
		})
	}
}
