package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/testmodels"
)

// parseCounter counts the daemon's parses of each model (by base name),
// through Options.ReadModel.
type parseCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *parseCounter) read(f *os.File, dir string) (*onnx.Model, error) {
	c.mu.Lock()
	c.n[filepath.Base(f.Name())]++
	c.mu.Unlock()
	return onnx.ReadFile(f, dir)
}

func (c *parseCounter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// runCounting runs the daemon in this process, counting its parses; the
// returned stop is also called when the test ends.
func (tr *tree) runCounting(t *testing.T, env ...string) (*parseCounter, func()) {
	t.Helper()
	c := &parseCounter{n: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, tr.cfg, Options{WorkerEnv: append(converter.Env(), env...), ReadModel: c.read})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// Issue 13, F-4: the daemon parses each upload once, from the inbox's
// check that finds it complete to its report: the claim, the check of its
// settings file against its inputs, the plan, the build and the report use
// that one parse. Uploads with a settings file (good and bad), accuracy
// samples and external data (two models with their own data files in the
// inbox at once, so each one's ownership check looks at the other) are
// each parsed exactly once.
func TestEachUploadParsedOnce(t *testing.T) {
	tr := newTree(t, "")
	c, _ := tr.runCounting(t, "TRTD_FAKE_WORKER=*=ok")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(tr.cfg.Paths.Inbox, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Data files first, as a user copies them, then the models.
	write("a.bin", make([]byte, 16))
	write("b.bin", make([]byte, 16))
	write("side.toml", []byte("precision = \"fp32\"\n"))
	write("badside.toml", []byte("[[shape]]\ninput = \"nonexistent\"\nmin = [1]\nmax = [1]\n"))
	tr.drop(t, "ext-a.onnx", testmodels.External("a.bin"))
	tr.drop(t, "ext-b.onnx", testmodels.External("b.bin"))
	tr.drop(t, "plain.onnx", testmodels.TinyCNN)
	tr.drop(t, "side.onnx", testmodels.SmallCNN)
	tr.drop(t, "badside.onnx", testmodels.SmallCNN)
	want := map[string]string{"plain.onnx": report.OutcomeBuilt, "side.onnx": report.OutcomeBuilt,
		"badside.onnx": report.OutcomeRejected, "ext-a.onnx": report.OutcomeBuilt, "ext-b.onnx": report.OutcomeBuilt}
	if _, err := os.Stat(filepath.Join(addModel, "model.onnx")); err == nil {
		uploadWithSamples(t, tr)
		want["add.onnx"] = report.OutcomeBuilt
	} else {
		t.Log("libonnx-testdata is not installed: the upload with samples is left out")
	}
	for name, outcome := range want {
		r := tr.waitReport(t, name, 60*time.Second, outcome)
		if r.Model.Summary == nil || r.Model.Summary.NodeCount == 0 {
			t.Errorf("%s: the report has no model summary: %+v", name, r.Model)
		}
		if strings.HasPrefix(name, "ext-") && len(r.Model.Summary.ExternalData) != 1 {
			t.Errorf("%s: external data %+v", name, r.Model.Summary.ExternalData)
		}
	}
	if r, _ := tr.report("add.onnx"); r != nil && len(r.Attempts) > 0 {
		if a := r.Attempts[len(r.Attempts)-1]; a.Validation == nil || a.Validation.AccuracyOK == nil {
			t.Errorf("add.onnx: the accuracy gate did not run: %+v", a.Validation)
		}
	}
	tr.waitIdle(t, 10*time.Second)
	for name := range want {
		if n := c.get(name); n != 1 {
			t.Errorf("%s parsed %d times by the daemon, want 1", name, n)
		}
	}
}

// A job that waits for a builder keeps what was read of its model: built
// once TensorRT appears, it was parsed once. A daemon restart forgets it:
// the job found in the store is read once more, when it runs, and once only.
func TestParsedOnceWhileWaitingAndOnceAfterARestart(t *testing.T) {
	tr := newTree(t, "")
	flag := filepath.Join(tr.root, "no-tensorrt")
	os.WriteFile(flag, nil, 0o644)
	c, _ := tr.runCounting(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.drop(t, "w.onnx", testmodels.TinyCNN)
	tr.waitReport(t, "w.onnx", 30*time.Second, report.OutcomeBuilderUnavailable)
	os.Remove(flag) // TensorRT installed: the periodic retry builds it
	tr.waitReport(t, "w.onnx", 30*time.Second, report.OutcomeBuilt)
	if n := c.get("w.onnx"); n != 1 {
		t.Errorf("w.onnx parsed %d times, waiting and then built, want 1", n)
	}
	// Another machine, where TensorRT is installed while trtd is down.
	tr = newTree(t, "")
	tr.cfg.Worker.RetryInterval = config.Duration(time.Hour) // no periodic retry
	flag = filepath.Join(tr.root, "no-tensorrt")
	os.WriteFile(flag, nil, 0o644)
	_, stop := tr.runCounting(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.drop(t, "later.onnx", testmodels.TinyCNN)
	tr.waitReport(t, "later.onnx", 30*time.Second, report.OutcomeBuilderUnavailable)
	tr.waitIdle(t, 10*time.Second)
	stop()
	os.Remove(flag)
	c2, _ := tr.runCounting(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.waitReport(t, "later.onnx", 30*time.Second, report.OutcomeBuilt)
	if n := c2.get("later.onnx"); n != 1 {
		t.Errorf("later.onnx parsed %d times after the restart, want 1", n)
	}
}
