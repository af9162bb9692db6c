package fault

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addTestData is a real model of the ONNX test suite with its samples:
// Add(x, y) -> sum.
const addTestData = "/usr/share/libonnx-testdata/data/node/test_add"

func addModelAndSamples(t *testing.T) (model []byte, samples map[string][]byte) {
	t.Helper()
	model, err := os.ReadFile(filepath.Join(addTestData, "model.onnx"))
	if err != nil {
		t.Skip("libonnx-testdata is not installed (apt-get install libonnx-testdata): " + err.Error())
	}
	samples = map[string][]byte{}
	for _, f := range []string{"input_0.pb", "input_1.pb", "output_0.pb"} {
		b, err := os.ReadFile(filepath.Join(addTestData, "test_data_set_0", f))
		if err != nil {
			t.Fatal(err)
		}
		samples[f] = b
	}
	return model, samples
}

// TestAccuracyGateNeverSkipped (F-9): with samples uploaded, the gate runs
// or the job fails saying why. Each case used to publish an engine without
// the check. The fake engine's outputs are off by 50 %, so a gate that runs
// fails the job: an engine in the outbox means the gate was skipped.
func TestAccuracyGateNeverSkipped(t *testing.T) {
	suite(t)
	needRoot(t)
	model, samples := addModelAndSamples(t)
	put := func(dir string, files map[string][]byte) {
		os.MkdirAll(dir, 0o755)
		for n, b := range files {
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	inputsOnly := map[string][]byte{"input_0.pb": samples["input_0.pb"], "input_1.pb": samples["input_1.pb"]}
	cases := []struct {
		name, model string
		setup       func(t *testing.T, e *env)
		want        string // outcome
		reason      string
	}{
		{name: "cache reuse", model: "add.onnx", want: "failed", reason: "expected samples", setup: func(t *testing.T, e *env) {
			e.drop("plain.onnx", model) // the same model without samples: built and cached
			if !eventually(60*time.Second, func() bool { r := e.reports()["plain.onnx"]; return len(r) == 1 && r[0].Outcome == "built" }) {
				t.Fatal("plain.onnx not built")
			}
			put(filepath.Join(e.inbox, "add.test"), samples)
		}},
		{name: "link among the samples", model: "add.onnx", want: "rejected", reason: "not a regular file", setup: func(t *testing.T, e *env) {
			put(filepath.Join(e.inbox, "add.test"), samples)
			os.Symlink("/etc/hostname", filepath.Join(e.inbox, "add.test", "output_1.pb"))
		}},
		{name: "inputs without outputs", model: "add.onnx", want: "rejected", reason: "output_N.pb", setup: func(t *testing.T, e *env) {
			put(filepath.Join(e.inbox, "add.test"), inputsOnly)
		}},
		{name: "non-UTF-8 name", model: "add\xff.onnx", want: "failed", reason: "expected samples", setup: func(t *testing.T, e *env) {
			put(filepath.Join(e.inbox, "add\xff.test"), samples)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.start("TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_ERROR=0.5")
			c.setup(t, e)
			e.drop(c.model, model)
			checkGate(t, e, c.model, c.want, c.reason)
		})
	}
	t.Run("inbox on another filesystem", func(t *testing.T) {
		t.Parallel()
		in := filepath.Join(loopFS(t, 8), "inbox")
		os.MkdirAll(in, 0o755)
		e := newEnv(t, withDirs(in, "", "", ""))
		e.start("TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_ERROR=0.5")
		put(filepath.Join(in, "add.test"), samples)
		e.drop("add.onnx", model)
		checkGate(t, e, "add.onnx", "failed", "expected samples")
	})
}

func checkGate(t *testing.T, e *env, name, want, reason string) {
	t.Helper()
	var r []reportRec
	if !eventually(60*time.Second, func() bool {
		r = e.reports()[strings.ToValidUTF8(name, "\uFFFD")]
		return len(r) == 1 && r[0].Outcome != "builder_unavailable"
	}) {
		t.Fatalf("no report for %q: %+v", name, e.reports())
	}
	if r[0].Outcome != want || !strings.Contains(strings.ToLower(r[0].Reason), strings.ToLower(reason)) {
		t.Fatalf("%q: outcome %q reason %q; want %s saying %q (the gate must run or the job fail saying why)", name, r[0].Outcome, r[0].Reason, want, reason)
	}
	for n := range e.engines() {
		if strings.HasPrefix(n, "add") {
			t.Fatalf("an engine was published without its accuracy check: %s", n)
		}
	}
}
