package fault

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/internal/testmodels"
)

// TestCrashInFailurePath (F-11): SIGKILL right after the failure began
// (outcome decided, nothing moved yet). After the restart the job ends
// failed with its own reason and attempts, not as "not a valid ONNX model"
// with the attempts erased.
func TestCrashInFailurePath(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	fake := "TRTD_FAKE_WORKER=*=unsupported"
	e.start("TRTD_TEST_CRASH_AT="+jobs.StepFailing, fake)
	data := testmodels.TinyCNN
	e.drop("nms.onnx", data)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("daemon did not die in the failure path")
	}
	e.start(fake)
	checkSettled(t, e, "nms.onnx", data, false)
	r := e.reports()["nms.onnx"][0]
	if strings.Contains(r.Reason, "not a valid ONNX model") || len(r.Attempts) == 0 || r.Attempts[0].Outcome != "unsupported_model" {
		t.Fatalf("report after the crash: reason %q attempts %+v; want the build's own failure and its attempts", r.Reason, r.Attempts)
	}
}

// TestCrashDuringGiveUp (F-2): the daemon is killed while it records the
// "too many restarts" failure. The next start finishes it: a terminal job
// with its report, the model kept.
func TestCrashDuringGiveUp(t *testing.T) {
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
		if i < jobs.MaxRecoveries {
			e.startNoWait(crash)
		}
	}
	// This start gives up on the job, and dies doing it.
	e.startNoWait("TRTD_TEST_CRASH_AT=" + jobs.StepFailing)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("the daemon did not die while giving up")
	}
	e.start()
	js := e.waitJobs(1, 30*time.Second)
	if js[0].State != "failed" || !strings.Contains(js[0].Reason, "restarted") {
		t.Fatalf("job %+v, want failed after repeated restarts", js[0])
	}
	if r := e.reports()["loop.onnx"]; len(r) != 1 || r[0].Outcome != "failed" || !strings.Contains(r[0].Reason, "restarted") {
		t.Fatalf("reports %+v, want one failed report saying why", r)
	}
	if b, err := os.ReadFile(filepath.Join(e.failed, js[0].ID, "loop.onnx")); err != nil || hash(b) != hash(data) {
		t.Fatalf("model not kept in failed/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.state, "jobs", js[0].ID, "model", "loop.onnx")); !os.IsNotExist(err) {
		t.Errorf("the model is still in the job store as well: %v", err)
	}
}

// TestUnreadableJobRecord (F-3): a job whose job.json is empty, truncated
// or garbage (a crash or a full disk at the wrong moment) used to vanish
// while its outbox report still promised a retry. It now ends failed with
// a report that says so, the model kept.
func TestUnreadableJobRecord(t *testing.T) {
	suite(t)
	needRoot(t)
	for name, corrupt := range map[string]func([]byte) []byte{
		"empty":     func([]byte) []byte { return nil },
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"garbage":   func([]byte) []byte { return []byte("\x00\xff not json") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// No builder: the job is parked and its report promises a retry.
			flag := filepath.Join(e.root, "unavailable")
			os.WriteFile(flag, nil, 0o644)
			e.start("TRTD_FAKE_WORKER_UNAVAILABLE_IF=" + flag)
			data := testmodels.TinyCNN
			e.drop("park.onnx", data)
			deadline := time.Now().Add(30 * time.Second)
			for {
				if r := e.reports()["park.onnx"]; len(r) == 1 && r[0].Outcome == "builder_unavailable" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no waiting report")
				}
				time.Sleep(25 * time.Millisecond)
			}
			e.stop()
			js := e.jobs()
			if len(js) != 1 {
				t.Fatalf("%d jobs", len(js))
			}
			p := filepath.Join(e.state, "jobs", js[0].ID, "job.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, corrupt(b), 0o644)
			e.start("TRTD_FAKE_WORKER_UNAVAILABLE_IF=" + flag)
			got := e.waitJobs(1, 30*time.Second)
			r := e.reports()["park.onnx"]
			if len(r) != 1 || r[0].Outcome != "failed" || !strings.Contains(r[0].Reason, "job record") {
				t.Fatalf("reports %+v, want one failed report about the job record", r)
			}
			if b, err := os.ReadFile(filepath.Join(e.failed, got[0].ID, "park.onnx")); err != nil || hash(b) != hash(data) {
				t.Fatalf("model not kept: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.state, "jobs", got[0].ID, "job.json.corrupt")); name != "empty" && err != nil {
				t.Errorf("the corrupt record was not kept aside: %v", err)
			}
		})
	}
}

// TestCrashDuringClaimKeepsSidecar (F-10): SIGKILL inside the claim, after
// the model moved and before its settings file did. The claim is completed
// at the next start with the settings file, never built without it.
func TestCrashDuringClaimKeepsSidecar(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_TEST_CRASH_AT=" + jobs.StepClaimModelMoved)
	os.WriteFile(filepath.Join(e.inbox, "m.toml"), []byte("precision = \"fp32\"\n"), 0o644)
	data := testmodels.TinyCNN
	e.drop("m.onnx", data)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("the daemon did not die inside the claim")
	}
	if _, err := os.Stat(filepath.Join(e.inbox, "m.toml")); err != nil {
		t.Fatalf("the crash point is not between the model and its sidecar: %v", err)
	}
	e.start()
	checkSettled(t, e, "m.onnx", data, true)
	if r := e.reports()["m.onnx"][0]; r.Model.Sidecar != "m.toml" {
		t.Fatalf("built without its settings file: report sidecar %q", r.Model.Sidecar)
	}
	if _, err := os.Stat(filepath.Join(e.inbox, "m.toml")); !os.IsNotExist(err) {
		t.Errorf("the settings file was left in the inbox: %v", err)
	}
}

// TestNonUTF8NameSidecarAfterRestart (F-15): a model whose name is not
// valid UTF-8, with its settings file, survives a restart between its claim
// and its build: built with its settings (it was rejected: the sidecar's
// recorded name no longer matched the file).
func TestNonUTF8NameSidecarAfterRestart(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_TEST_CRASH_AT=" + jobs.StepClaimed)
	os.WriteFile(filepath.Join(e.inbox, "caf\xe9.toml"), []byte("precision = \"fp32\"\n"), 0o644)
	data := testmodels.TinyCNN
	e.drop("caf\xe9.onnx", data)
	if !e.waitExit(60 * time.Second) {
		t.Fatal("the daemon did not die after the claim")
	}
	e.start()
	js := e.waitJobs(1, 60*time.Second)
	if js[0].State != "done" {
		t.Fatalf("job %s: %s", js[0].State, js[0].Reason)
	}
	if r := e.reports()["caf\uFFFD.onnx"]; len(r) != 1 || r[0].Outcome != "built" || r[0].Model.Sidecar != "caf\uFFFD.toml" {
		t.Fatalf("reports %+v, want built with its settings file", e.reports())
	}
}

// TestCrashDebrisCleanedAtStart (F-21): temporary files a crash leaves
// deep in the state and failed trees (a job's model/work/engines
// directories, the engine cache, failed/<job>/) are removed at the next
// start; they used to stay forever.
func TestCrashDebrisCleanedAtStart(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_FAKE_WORKER=*=ok")
	e.drop("ok.onnx", testmodels.TinyCNN)
	e.waitJobs(1, 60*time.Second)
	e.stop()
	e.start("TRTD_FAKE_WORKER=*=unsupported")
	e.drop("bad.onnx", testmodels.SmallCNN)
	js := e.waitJobs(2, 60*time.Second)
	e.stop()
	var planted []string
	for _, j := range js {
		for _, d := range []string{filepath.Join(e.state, "jobs", j.ID, "model"), filepath.Join(e.state, "jobs", j.ID), filepath.Join(e.failed, j.ID)} {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				p := filepath.Join(d, ".trtd-tmp-crash-"+j.ID)
				os.WriteFile(p, []byte("partial"), 0o644)
				planted = append(planted, p)
			}
		}
	}
	caches, _ := filepath.Glob(filepath.Join(e.state, "cache", "*"))
	for _, c := range caches {
		p := filepath.Join(c, ".trtd-tmp-model.engine-123")
		os.WriteFile(p, []byte("partial"), 0o644)
		planted = append(planted, p)
	}
	if len(planted) < 4 {
		t.Fatalf("planted only %v", planted)
	}
	e.start()
	e.stop()
	if left := e.temps(); len(left) > 0 {
		t.Fatalf("temporary files left after a start: %v", left)
	}
}
