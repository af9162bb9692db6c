package trtdouble

import (
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// forEach runs f once per TensorRT version the worker was built for.
func forEach(t *testing.T, f func(t *testing.T, v string)) {
	for _, v := range versions() {
		t.Run(v, func(t *testing.T) { f(t, v) })
	}
}

const buildWait = 90 * time.Second

// A model with samples builds on the first rung, and the accuracy gate
// runs the engine on the samples and passes.
func TestAccuracyWithinTolerance(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		for _, name := range []string{"test_add", "test_relu"} {
			model, set := testdata(t, name)
			e := newEnv(t, v, opts{})
			e.drop(name, model, map[string]string{".test": set})
			r := e.report(name, buildWait)
			if r.Outcome != "built" || r.Engine == nil || r.Engine.Stage != "fast" || !e.engineExists(r) {
				t.Fatalf("%s: outcome %s (%s), stages %s, engine %+v", name, r.Outcome, r.Reason, r.stages(), r.Engine)
			}
			a := r.Attempts[len(r.Attempts)-1]
			if a.Validation == nil || a.Validation.AccuracyOK == nil || !*a.Validation.AccuracyOK {
				t.Fatalf("%s: accuracy gate did not pass: %+v", name, a.Validation)
			}
			if a.Validation.DeviceMemUsed <= 0 {
				t.Errorf("%s: device memory used %d: the CUDA double's allocations are not seen", name, a.Validation.DeviceMemUsed)
			}
			if strings.HasPrefix(v, "11.") && (strings.Contains(r.calls(), "setFlag(kFP16)") || !strings.Contains(r.calls(), "strongly typed")) {
				t.Errorf("%s: 11.x has no fp16 flag: want a typed build that says so, got:\n%s", name, r.calls())
			}
			if r.Builder == nil || r.Builder.Backend != "api" || !strings.HasPrefix(r.Builder.TensorRT, v) {
				t.Errorf("%s: builder %+v, want the api backend on TensorRT %s", name, r.Builder, v)
			}
		}
	})
}

// A deliberately wrong engine (every output +0.5) fails the gate and is
// never published.
func TestAccuracyOutsideTolerance(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, set := testdata(t, "test_add")
		e := newEnv(t, v, opts{script: "skew=0.5"})
		e.drop("test_add", model, map[string]string{".test": set})
		r := e.report("test_add", buildWait)
		if r.Outcome == "built" || e.engineExists(r) {
			t.Fatalf("a wrong engine was published: outcome %s, engine %+v", r.Outcome, r.Engine)
		}
		if len(r.Attempts) == 0 || r.Attempts[0].Outcome != "invalid_engine" || !strings.Contains(r.Attempts[0].Reason, "0.5") {
			t.Fatalf("stages %s; first reason %q; want invalid_engine naming the 0.5 error", r.stages(), first(r).Reason)
		}
		if len(r.Attempts) != 1 {
			t.Errorf("stages %s: a wrong engine is not a memory problem; the ladder must not step down", r.stages())
		}
	})
}

func first(r report) attempt {
	if len(r.Attempts) == 0 {
		return attempt{}
	}
	return r.Attempts[0]
}

// The CUDA double has 512 MiB: the 1 GiB workspace of "fast" fails at
// once with TensorRT's out-of-memory lines, "lean" (256 MiB) builds.
func TestLadderFastOOMThenLean(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "gpu_mem=536870912"})
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if got := r.stages(); got != "fast=out_of_memory lean=ok" {
			t.Fatalf("stages %s (%s), want fast=out_of_memory lean=ok", got, first(r).Reason)
		}
		if r.Outcome != "built" || r.Engine.Stage != "lean" || !e.engineExists(r) {
			t.Fatalf("outcome %s, engine %+v", r.Outcome, r.Engine)
		}
	})
}

// Memory warnings in a build that succeeds change nothing: built on the
// first rung, class ok.
func TestWarningsDoNotChangeTheClass(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "warn=tactic"})
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if r.stages() != "fast=ok" || r.Outcome != "built" {
			t.Fatalf("stages %s, outcome %s (%s); want fast=ok", r.stages(), r.Outcome, r.Reason)
		}
		log, _ := os.ReadFile(e.logPath)
		if !strings.Contains(string(log), "Skipping tactic 1 due to insuficient memory") {
			t.Errorf("the tactic warnings never reached the daemon's log")
		}
	})
}

// "Could not find any implementation" without a failed allocation is not
// a workspace problem (an op the GPU cannot run): no_implementation, and
// the ladder runs no rung with less workspace (issue 11, items 5 and 6).
func TestNoTacticWithoutMemoryEvidence(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "fail=notactic"})
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if r.Outcome == "built" || first(r).Outcome != "no_implementation" {
			t.Fatalf("outcome %s, stages %s (%s); want fast=no_implementation", r.Outcome, r.stages(), first(r).Reason)
		}
		for _, a := range r.Attempts[1:] {
			if a.Outcome != "skipped" && a.Settings.WorkspaceMiB < first(r).Settings.WorkspaceMiB {
				t.Errorf("stages %s: stepped down to %s (%d MiB workspace) without memory evidence", r.stages(), a.Stage, a.Settings.WorkspaceMiB)
			}
		}
	})
}

// An op the parser has no importer for fails the model, naming the node.
func TestParseErrorNamesTheNode(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_sigmoid")
		e := newEnv(t, v, opts{})
		e.drop("test_sigmoid", model, nil)
		r := e.report("test_sigmoid", buildWait)
		// 8.x's IParserError has only the node's index (the op comes from
		// the parser's log); 10.x adds its name and operator (NvOnnxParser.h
		// of 10.0: nodeName, nodeOperator).
		want := "Sigmoid"
		if r.Outcome == "built" || first(r).Outcome != "unsupported_model" || !strings.Contains(first(r).Reason, want) {
			t.Fatalf("outcome %s, stages %s, reason %q; want unsupported_model naming %s", r.Outcome, r.stages(), first(r).Reason, want)
		}
		if len(r.Attempts) != 1 {
			t.Errorf("stages %s: an unsupported model must not step down the ladder", r.stages())
		}
	})
}

// A build longer than the stage's timeout is stopped and reported as
// timed out.
func TestTimeout(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		stages := strings.ReplaceAll(ladder(precisionOf(v)), `swap = "none"`, `swap = "none"`+"\ntimeout = \"2s\"")
		e := newEnv(t, v, opts{script: "build_ms=60000", stages: stages})
		start := time.Now()
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if first(r).Outcome != "timed_out" || r.Outcome == "built" {
			t.Fatalf("outcome %s, stages %s (%s), want fast=timed_out", r.Outcome, r.stages(), first(r).Reason)
		}
		if d := time.Since(start); d > 50*time.Second {
			t.Errorf("the timed-out job took %s", d)
		}
	})
}

func precisionOf(string) string { return "fp16" }

// Progress: on 10.x and 11.x the build reports its phases through
// IProgressMonitor and the daemon's status shows them; 8.x has no monitor.
func TestProgressAndCancel(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "build_ms=30000"})
		e.drop("test_relu", model, nil)
		var phase string
		var steps int
		ok := poll(buildWait, func() bool {
			st, ok := e.status()
			if ok && st.Current != nil && st.Current.Steps > 0 {
				phase, steps = st.Current.Phase, st.Current.Steps
				return true
			}
			return ok && st.Current != nil && strings.HasPrefix(v, "8.") && workerRunning(e)
		})
		if !ok {
			t.Fatal("the build never showed up in the status")
		}
		if strings.HasPrefix(v, "8.") {
			if phase != "" {
				t.Errorf("8.x has no progress monitor, yet the status shows phase %q", phase)
			}
		} else if !strings.Contains(phase, "Building engine") || steps < 4 {
			t.Fatalf("status phase %q steps %d; want the double's \"Building engine\" phase", phase, steps)
		}
		// SIGTERM: 10.x/11.x stop the build through the monitor at the
		// next step; 8.x cannot cancel a build (the worker exits, or the
		// daemon kills it after its grace period).
		t0 := time.Now()
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(40 * time.Second):
			t.Fatal("daemon did not stop within 40s of SIGTERM")
		}
		took := time.Since(t0)
		log, _ := os.ReadFile(e.logPath)
		if !strings.HasPrefix(v, "8.") {
			if took > 4*time.Second {
				t.Errorf("stopping took %s: the progress monitor should have ended the build at the next step", took)
			}
			if !strings.Contains(string(log), "canceled by the progress monitor") {
				t.Errorf("the worker's log does not show the build canceled by the monitor")
			}
		}
		// Nothing is lost: restarted, the job builds.
		e.start("")
		r := e.report("test_relu", buildWait)
		if r.Outcome != "built" {
			t.Fatalf("after restart: outcome %s (%s), stages %s", r.Outcome, r.Reason, r.stages())
		}
	})
}

func workerRunning(e *env) bool {
	worker := filepath.Join(os.Getenv("TRTDOUBLE_DIR"), e.version, "trtd-worker")
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		if _, err := strconv.Atoi(en.Name()); err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", en.Name(), "exe")); err == nil && exe == worker {
			if b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "environ")); err == nil && strings.Contains(string(b), e.san) {
				return true
			}
		}
	}
	return false
}

var cacheBytes = regexp.MustCompile(`createTimingCache\((\d+) bytes\)`)

// The second build of the same graph finds its tactics in the timing cache
// the first one saved: the cache is handed to the builder non-empty and
// the build skips the timed steps.
func TestTimingCacheReuse(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		add, _ := testdata(t, "test_add")
		bcast, _ := testdata(t, "test_add_bcast")
		e := newEnv(t, v, opts{script: "build_ms=2000"})
		e.drop("test_add", add, nil)
		r1 := e.report("test_add", buildWait)
		e.drop("test_add_bcast", bcast, nil)
		r2 := e.report("test_add_bcast", buildWait)
		if r1.Outcome != "built" || r2.Outcome != "built" {
			t.Fatalf("outcomes %s (%s), %s (%s)", r1.Outcome, r1.Reason, r2.Outcome, r2.Reason)
		}
		// The first build starts a new cache, the second gets the saved one.
		m1, m2 := cacheBytes.FindStringSubmatch(r1.calls()), cacheBytes.FindStringSubmatch(r2.calls())
		if m1 == nil || m1[1] != "0" {
			t.Fatalf("the first build was not given a new timing cache:\n%s", r1.calls())
		}
		if m2 == nil || m2[1] == "0" {
			t.Fatalf("the second build was not given the saved timing cache:\n%s", r2.calls())
		}
		if d1, d2 := first(r1).DurationMs, first(r2).DurationMs; d2 >= d1 || d1 < 2000 {
			t.Errorf("build durations %d ms then %d ms: the cached build should skip the 2 s of timing", d1, d2)
		}
	})
}

// A CUDA permission failure (a Jetson worker outside group video):
// cudaErrorNoDevice after "NvRmMemInitNvmap failed with Permission denied",
// with the GPU's device nodes root:video 0660 (as on L4T) in the directory
// the worker checks ($TRTD_DEV_DIR) and the worker running as nobody. The
// builder is unavailable, the status names the fix, nothing is lost.
func TestCUDAPermissionFailure(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		if os.Geteuid() != 0 {
			t.Skip("needs root: the worker runs as nobody (CI runs as root)")
		}
		video, err := user.LookupGroup("video")
		if err != nil {
			t.Skip("no group video on this machine")
		}
		gid, _ := strconv.Atoi(video.Gid)
		dev := t.TempDir()
		os.Chmod(dev, 0o755)
		for _, n := range []string{"nvmap", "nvhost-ctrl"} {
			p := filepath.Join(dev, n)
			if err := os.WriteFile(p, nil, 0o660); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(p, 0, gid); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, 0o660)
		}
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "cuda=eperm", user: "nobody", env: map[string]string{"TRTD_DEV_DIR": dev}})
		e.drop("test_relu", model, nil)
		var st status
		if !poll(buildWait, func() bool {
			var ok bool
			st, ok = e.status()
			return ok && st.State == "waiting_for_builder"
		}) {
			t.Fatalf("state %q, want waiting_for_builder", st.State)
		}
		for _, want := range []string{"cudaErrorNoDevice", "nvmap (root:video 0660)", "add nobody to group video"} {
			if !strings.Contains(st.Builder, want) {
				t.Errorf("the status's builder line lacks %q:\n%s", want, st.Builder)
			}
		}
		if _, err := os.Stat(filepath.Join(e.outbox, "test_relu.engine")); err == nil {
			t.Fatal("an engine was published without a GPU")
		}
	})
}

func int8Stages() string {
	return `
[[stage]]
name = "int8"
kind = "build"
precision = "int8"
workspace = "256M"
swap = "none"
`
}

// int8 without Q/DQ nodes or calibration data has no valid scales: the
// worker refuses int8 and builds fp16, saying why (TensorRT itself fails
// such a build: "Calibration failure occurred with no scaling factors
// detected", which the double prints if kINT8 reaches it).
func TestInt8WithoutCalibrationData(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		if strings.HasPrefix(v, "11.") {
			t.Skip("11.x has no int8 builder flag (strongly typed networks)")
		}
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "fast_int8=1", stages: int8Stages()})
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if r.Outcome != "built" || r.stages() != "int8=ok" {
			t.Fatalf("outcome %s (%s), stages %s", r.Outcome, r.Reason, r.stages())
		}
		calls := r.calls()
		if strings.Contains(calls, "setFlag(kINT8)") || !strings.Contains(calls, "setFlag(kFP16)") {
			t.Fatalf("an int8 stage without scales must build fp16:\n%s", calls)
		}
		if b, _ := os.ReadFile(filepath.Join(e.outbox, "test_relu.report.json")); !strings.Contains(string(b), "int8: refused") {
			t.Errorf("the report does not say why int8 was refused:\n%s", b)
		}
		if last := r.Attempts[len(r.Attempts)-1]; last.Int8 != "refused (built fp16; the reason is among the settings not applied)" {
			t.Errorf("the report's int8 source is %q", last.Int8)
		}
	})
}

// int8 with calibration data (name.calib/input_*.pb): the worker feeds it
// to an IInt8EntropyCalibrator2, the double calls getBatch until it runs
// out and writes the calibration cache back through the calibrator.
func TestInt8WithCalibrationData(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		if strings.HasPrefix(v, "11.") {
			t.Skip("11.x has no int8 calibrator (strongly typed networks)")
		}
		model, set := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "fast_int8=1", stages: int8Stages()})
		e.drop("test_relu", model, map[string]string{".calib": set})
		r := e.report("test_relu", buildWait)
		calls := r.calls()
		if !strings.Contains(calls, "setInt8Calibrator") {
			t.Fatalf("no calibrator was set (was name.calib/ handed to the worker?):\n%s", calls)
		}
		if r.Outcome != "built" || !strings.Contains(calls, "setFlag(kINT8)") {
			t.Fatalf("outcome %s (%s), calls:\n%s", r.Outcome, r.Reason, calls)
		}
		log, _ := os.ReadFile(e.logPath)
		if !strings.Contains(string(log), "[trtdouble] int8 calibration: 1 batches") {
			t.Errorf("the double's calibrator callbacks did not run (no getBatch batches in the log)")
		}
		if last := r.Attempts[len(r.Attempts)-1]; last.Int8 != "calibrated from the uploaded calibration data" {
			t.Errorf("the report's int8 source is %q", last.Int8)
		}
	})
}
