package fault

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/internal/testmodels"
)

// checkSettled asserts the invariants after a job finished: exactly one job
// for the input, terminal; one engine built from the input's bytes (or,
// for a failure, none and the model kept in failed/); no temporary files
// anywhere; no worker left running; the inbox empty.
func checkSettled(t *testing.T, e *env, name string, data []byte, wantBuilt bool) {
	t.Helper()
	js := e.waitJobs(1, 60*time.Second)
	if len(js) != 1 {
		t.Fatalf("want exactly one job, got %d: %+v", len(js), js)
	}
	j := js[0]
	base := strings.TrimSuffix(name, ".onnx")
	engs := e.engines()
	reps := e.reports()[name]
	if len(reps) != 1 {
		t.Fatalf("want one report for %s, got %d", name, len(reps))
	}
	if wantBuilt {
		if j.State != "done" {
			t.Fatalf("job state %s (%s), want done", j.State, j.Reason)
		}
		if len(engs) != 1 || engs[base+".engine"] != hash(data) {
			t.Fatalf("outbox engines %v, want exactly %s.engine built from sha %s", engs, base, hash(data)[:12])
		}
		if reps[0].Outcome != "built" && reps[0].Outcome != "reused" {
			t.Fatalf("report outcome %q, want built", reps[0].Outcome)
		}
		if reps[0].Engine == nil || reps[0].Engine.SHA256 == "" {
			t.Fatalf("report names no engine")
		}
		b, _ := os.ReadFile(filepath.Join(e.outbox, base+".engine"))
		if hash(b) != reps[0].Engine.SHA256 {
			t.Fatalf("engine sha %s differs from the report's %s", hash(b)[:12], reps[0].Engine.SHA256[:12])
		}
		kept, err := os.ReadFile(filepath.Join(e.state, "jobs", j.ID, "model", name))
		if err != nil || hash(kept) != hash(data) {
			t.Fatalf("claimed model lost or changed: %v", err)
		}
	} else {
		if j.State != "failed" {
			t.Fatalf("job state %s, want failed", j.State)
		}
		if len(engs) != 0 {
			t.Fatalf("engines for a failed job: %v", engs)
		}
		kept, err := os.ReadFile(filepath.Join(e.failed, j.ID, name))
		if err != nil || hash(kept) != hash(data) {
			t.Fatalf("failed model not kept in failed/%s: %v", j.ID, err)
		}
		if reps[0].Outcome != "failed" || reps[0].Reason == "" {
			t.Fatalf("report outcome %q reason %q, want failed with a reason", reps[0].Outcome, reps[0].Reason)
		}
	}
	// Temporary files: checked with the daemon stopped (the status file is
	// replaced through a temp file all the time while it runs).
	e.stop()
	if tmp := e.temps(); len(tmp) > 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if left := listDir(e.inbox); len(left) > 0 {
		t.Fatalf("inbox not empty: %v", left)
	}
	e.waitNoWorkers(5 * time.Second)
}

// TestCrashDaemonAtStep SIGKILLs the daemon at each persisted step of a job
// (TRTD_TEST_CRASH_AT), restarts it, and checks the job ends exactly once.
func TestCrashDaemonAtStep(t *testing.T) {
	suite(t)
	needRoot(t)
	cases := []struct {
		step  string
		built bool
		fake  string
	}{
		{jobs.StepClaimed, true, ""},
		{jobs.StepPlanned, true, ""},
		{jobs.StepSwapReady, true, ""},
		{jobs.StepWorkerStarted, true, "*=slow=300ms"}, // the worker is running when the daemon dies
		{jobs.StepWorkerFinished, true, ""},
		{jobs.StepEngineTemp, true, ""},
		{jobs.StepEngineSynced, true, ""},
		{jobs.StepEngineRenamed, true, ""},
		{jobs.StepReportPublished, true, ""},
		{jobs.StepCommitted, true, ""},
		{jobs.StepInputArchived, false, "*=unsupported"},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			fake := "TRTD_FAKE_WORKER=" + c.fake
			e.start("TRTD_TEST_CRASH_AT="+c.step, fake)
			data := testmodels.TinyCNN
			e.drop("m.onnx", data)
			if !e.waitExit(60 * time.Second) {
				t.Fatalf("daemon did not die by SIGKILL at %s: %v", c.step, e.waitErr)
			}
			if !strings.Contains(e.log(), `"step":"`+c.step+`"`) {
				t.Fatalf("log does not show the fault at %s", c.step)
			}
			// The worker dies with the daemon (Pdeathsig), never orphaned.
			e.waitNoWorkers(5 * time.Second)
			js := e.jobs()
			if len(js) != 1 {
				t.Fatalf("after the crash: %d jobs, want 1", len(js))
			}
			e.start(fake)
			checkSettled(t, e, "m.onnx", data, c.built)
		})
	}
}

// TestCrashDaemonTwice crashes at two different steps of the same job in a
// row before letting it finish.
func TestCrashDaemonTwice(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_TEST_CRASH_AT=" + jobs.StepWorkerFinished)
	e.drop("m.onnx", testmodels.SmallCNN)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("first crash did not happen")
	}
	e.start("TRTD_TEST_CRASH_AT=" + jobs.StepEngineSynced)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("second crash did not happen")
	}
	e.start()
	checkSettled(t, e, "m.onnx", testmodels.SmallCNN, true)
}

// TestCrashLoopGivesUp: a model that takes the daemon down at every start
// is failed after jobs.MaxRecoveries restarts, with its bytes kept and a
// report the user can read; it does not loop forever.
func TestCrashLoopGivesUp(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	crash := "TRTD_TEST_CRASH_AT=" + jobs.StepWorkerStarted
	e.start(crash)
	data := testmodels.TinyCNN
	e.drop("loop.onnx", data)
	for i := 0; i <= jobs.MaxRecoveries; i++ {
		if !e.waitExit(60 * time.Second) {
			t.Fatalf("crash %d did not happen", i+1)
		}
		e.startNoWait(crash)
	}
	// The fifth start must survive: the job is failed during reconciliation.
	e.waitReady()
	js := e.waitJobs(1, 30*time.Second)
	if js[0].State != "failed" || !strings.Contains(js[0].Reason, "restarted") {
		t.Fatalf("job %+v, want failed after repeated restarts", js[0])
	}
	if !e.running() {
		t.Fatal("daemon died again")
	}
	// Nothing lost: the model is kept, in failed/ or the job store.
	kept := false
	for _, p := range []string{filepath.Join(e.failed, js[0].ID, "loop.onnx"), filepath.Join(e.state, "jobs", js[0].ID, "model", "loop.onnx")} {
		if b, err := os.ReadFile(p); err == nil && hash(b) == hash(data) {
			kept = true
		}
	}
	if !kept {
		t.Fatal("the model's bytes are gone")
	}
	if r := e.reports()["loop.onnx"]; len(r) != 1 || r[0].Outcome != "failed" {
		t.Errorf("want one failed report for loop.onnx (the job was failed during reconciliation, but no report reached the outbox), got %+v", r)
	}
	// And the daemon keeps serving (without the fault).
	e.stop()
	e.start()
	e.drop("next.onnx", testmodels.TinyCNN)
	e.waitJobs(2, 30*time.Second)
	if _, ok := e.engines()["next.engine"]; !ok {
		t.Fatal("next model not built after the crash loop")
	}
}

// TestCrashWorker kills the worker itself at the points where it exists.
func TestCrashWorker(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Run("sigkill_mid_build_steps_down", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.start("TRTD_FAKE_WORKER=fast=slow=20s")
		e.drop("m.onnx", testmodels.TinyCNN)
		pid := e.waitWorker(30 * time.Second)
		syscall.Kill(pid, syscall.SIGKILL)
		js := e.waitJobs(1, 60*time.Second)
		checkSettled(t, e, "m.onnx", testmodels.TinyCNN, true)
		if js[0].Stage == "fast" {
			t.Fatalf("engine from the killed stage")
		}
	})
	t.Run("killself_every_stage", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.start("TRTD_FAKE_WORKER=*=killself")
		e.drop("m.onnx", testmodels.TinyCNN)
		checkSettled(t, e, "m.onnx", testmodels.TinyCNN, false)
	})
	t.Run("abort_fails_with_report", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.start("TRTD_FAKE_WORKER=fast=crash")
		e.drop("m.onnx", testmodels.TinyCNN)
		checkSettled(t, e, "m.onnx", testmodels.TinyCNN, false)
	})
	t.Run("hang_timeout", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(""))
		// A stage timeout of 1s through the daemon's config.
		b, _ := os.ReadFile(e.cfgPath)
		os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), `timeout = "60s"`, `timeout = "1s"`, 1)), 0o644)
		e.start("TRTD_FAKE_WORKER=fast=hang")
		e.drop("m.onnx", testmodels.TinyCNN)
		checkSettled(t, e, "m.onnx", testmodels.TinyCNN, false)
		if r := e.reports()["m.onnx"]; !strings.Contains(r[0].Reason, "time limit") {
			t.Fatalf("reason %q does not name the time limit", r[0].Reason)
		}
	})
	t.Run("worker_killed_then_daemon_killed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.start("TRTD_FAKE_WORKER=*=slow=20s")
		e.drop("m.onnx", testmodels.TinyCNN)
		pid := e.waitWorker(30 * time.Second)
		syscall.Kill(pid, syscall.SIGKILL)
		// the next stage's worker starts; kill the daemon under it
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if w := e.workers(); len(w) > 0 && w[0] != pid {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		e.kill()
		e.waitNoWorkers(5 * time.Second)
		e.start("TRTD_FAKE_WORKER=")
		checkSettled(t, e, "m.onnx", testmodels.TinyCNN, true)
	})
}
