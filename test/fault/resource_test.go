package fault

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

// loopFS mounts a small ext4 image and returns its mount point.
func loopFS(t *testing.T, sizeMiB int) string {
	t.Helper()
	needRoot(t)
	for _, b := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (e2fsprogs, mount)", b)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.MkdirAll(mnt, 0o755)
	f, _ := os.Create(img)
	f.Truncate(int64(sizeMiB) << 20)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", "-N", "256", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount (needs loop devices): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Logf("umount: %v %s", err, out)
		}
	})
	return mnt
}

// fill takes every free block of the filesystem at dir.
func fill(t *testing.T, dir string) string {
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	f.Sync()
	f.Close()
	return p
}

// TestNoSpaceOutbox: the outbox's filesystem is full when the engine and
// the reports are written. No partial file, the model is not lost, the
// daemon keeps going, and builds work again once space returns.
func TestNoSpaceOutbox(t *testing.T) {
	suite(t)
	mnt := loopFS(t, 4)
	out := filepath.Join(mnt, "outbox")
	os.MkdirAll(out, 0o755)
	e := newEnv(t, withDirs("", out, "", ""))
	e.start()
	filler := fill(t, mnt)
	e.drop("full.onnx", testmodels.TinyCNN)
	// The build finishes; the engine cannot be published: it is kept and
	// the job waits for the outbox (issue 13, F-13), it does not fail.
	js := e.waitOutboxBlocked(1, 60*time.Second)
	// The job is recorded as waiting for the outbox before the daemon logs
	// why: wait for the line, do not expect it already.
	if !eventually(10*time.Second, func() bool { return strings.Contains(e.log(), "no space left") }) {
		t.Error("the log does not say the disk is full")
	}
	for _, n := range listDir(out) {
		if strings.HasPrefix(n, ".trtd-tmp-") || strings.HasSuffix(n, ".engine") {
			t.Errorf("partial or unexpected file in the full outbox: %s", n)
		}
	}
	// nothing lost
	kept := false
	for _, p := range []string{filepath.Join(e.failed, js[0].ID, "full.onnx"), filepath.Join(e.state, "jobs", js[0].ID, "model", "full.onnx")} {
		if b, err := os.ReadFile(p); err == nil && hash(b) == hash(testmodels.TinyCNN) {
			kept = true
		}
	}
	if !kept {
		t.Error("the model is lost")
	}
	os.Remove(filler)
	e.drop("after.onnx", testmodels.SmallCNN)
	if !eventually(60*time.Second, func() bool { return e.engines()["after.engine"] == hash(testmodels.SmallCNN) }) {
		t.Fatal("no build after space returned")
	}
	if !eventually(60*time.Second, func() bool { return e.engines()["full.engine"] == hash(testmodels.TinyCNN) }) {
		t.Fatal("the kept engine was not published once space returned")
	}
}

// TestNoSpaceState: the state filesystem (job store, status) is full when a
// model arrives: it stays in the inbox and is built once space returns.
func TestNoSpaceState(t *testing.T) {
	suite(t)
	mnt := loopFS(t, 4)
	st := filepath.Join(mnt, "state")
	e := newEnv(t, withDirs("", "", st, ""))
	e.start()
	filler := fill(t, mnt)
	e.drop("wait.onnx", testmodels.TinyCNN)
	// The claim fails, and is tried again by a rescan: wait for two tries.
	if !eventually(30*time.Second, func() bool { return strings.Count(e.log(), "cannot claim upload") >= 2 }) {
		t.Fatal("the daemon did not try to claim the upload twice")
	}
	if js := listDir(filepath.Join(st, "jobs")); len(js) != 0 {
		t.Errorf("failed claims left job directories behind (F-21): %v", js)
	}
	if b, err := os.ReadFile(filepath.Join(e.inbox, "wait.onnx")); err != nil || hash(b) != hash(testmodels.TinyCNN) {
		t.Fatalf("model left the inbox although it could not be claimed: %v", err)
	}
	if !e.running() {
		t.Fatal("daemon died on a full state disk")
	}
	os.Remove(filler)
	if !eventually(30*time.Second, func() bool { return e.engines()["wait.engine"] == hash(testmodels.TinyCNN) }) {
		t.Fatalf("not built after space returned; inbox %v", listDir(e.inbox))
	}
	if tmp := e.temps(); len(tmp) > 0 {
		t.Logf("temps while running: %v", tmp)
	}
}

// TestLowFDLimit runs the daemon with 40 open files at most and a burst of
// models.
func TestLowFDLimit(t *testing.T) {
	suite(t)
	needRoot(t)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	e := newEnv(t)
	e.wrap = []string{"prlimit", "--nofile=40:40", "--"}
	e.start()
	models := dropInPlace(t, e.inbox, 60, 0)
	checkAllOnce(t, e, models)
	if !e.running() {
		t.Fatal("daemon died")
	}
}

// TestInotifyWatchLimit (soak: it changes a system-wide limit) runs the
// daemon with fs.inotify.max_user_watches = 1 for a user of its own: it
// must still find models by rescanning.
func TestInotifyWatchLimit(t *testing.T) {
	suite(t)
	needRoot(t)
	if !soak() {
		t.Skip("changes fs.inotify.max_user_watches for the whole machine: runs with TRTD_SOAK=1 (make soak)")
	}
	const knob = "/proc/sys/fs/inotify/max_user_watches"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skip(err)
	}
	e := newEnv(t)
	// 0, not 1: with a limit of 1 the daemon got its watch whenever root
	// held none, and the test proved nothing. With 0 no watch can be added.
	if err := os.WriteFile(knob, []byte("0"), 0o644); err != nil {
		t.Skipf("cannot lower %s: %v", knob, err)
	}
	defer os.WriteFile(knob, old, 0o644)
	e.start()
	os.WriteFile(knob, old, 0o644)
	models := dropInPlace(t, e.inbox, 10, 0)
	checkAllOnce(t, e, models)
	if !strings.Contains(e.log(), "relying on rescans") {
		t.Errorf("the daemon did not say it relies on rescans without an inotify watch; log:\n%s", e.log())
	}
}

// TestNoSpaceReportWrite: the outbox has room for the engine but not for
// what follows it (provenance, reports). The job must not end with an
// engine in the outbox that nothing describes, and must work once space
// returns.
func TestNoSpaceReportWrite(t *testing.T) {
	suite(t)
	mnt := loopFS(t, 4)
	out := filepath.Join(mnt, "outbox")
	os.MkdirAll(out, 0o755)
	e := newEnv(t, withDirs("", out, "", ""))
	e.start()
	// one free 4 KiB block: the fake engine fits, the rest does not
	spare := filepath.Join(mnt, "spare")
	os.WriteFile(spare, make([]byte, 4096), 0o644)
	filler := fill(t, mnt)
	os.Remove(spare)
	e.drop("half.onnx", testmodels.TinyCNN)
	js := e.waitOutboxBlocked(1, 60*time.Second)
	ents := listDir(out)
	t.Logf("outbox after the full disk: %v, job %s (%s)", ents, js[0].State, js[0].Reason)
	for _, n := range ents {
		if strings.HasPrefix(n, ".trtd-tmp-") {
			t.Errorf("temporary file left in the outbox: %s", n)
		}
	}
	hasEngine, hasReport := false, false
	for _, n := range ents {
		hasEngine = hasEngine || n == "half.engine"
		hasReport = hasReport || n == "half.report.json"
	}
	if js[0].State == "done" && !hasReport {
		t.Error("job done without a report in the outbox")
	}
	if js[0].State != "done" && hasEngine {
		t.Error("a failed job left its engine in the outbox with no report")
	}
	os.Remove(filler)
	e.drop("later.onnx", testmodels.SmallCNN)
	if !eventually(60*time.Second, func() bool { return e.engines()["later.engine"] == hash(testmodels.SmallCNN) }) {
		t.Fatal("no build after space returned")
	}
	if !eventually(60*time.Second, func() bool {
		r := e.reports()["half.onnx"]
		return e.engines()["half.engine"] == hash(testmodels.TinyCNN) && len(r) == 1 && r[0].Outcome == "built"
	}) {
		t.Fatal("the kept engine was not published with its report once space returned")
	}
}

// TestNoSpaceStateMidBuild: the state filesystem (job store, the worker's
// engine directory) fills up while the worker runs. After a restart with
// space back, the model is built once and nothing is lost.
func TestNoSpaceStateMidBuild(t *testing.T) {
	suite(t)
	mnt := loopFS(t, 8)
	st := filepath.Join(mnt, "state")
	e := newEnv(t, withDirs("", "", st, ""))
	e.start("TRTD_FAKE_WORKER=*=slow=1s")
	e.drop("mid.onnx", testmodels.TinyCNN)
	e.waitWorker(30 * time.Second)
	filler := fill(t, mnt)
	if !eventually(60*time.Second, func() bool { return len(e.workers()) == 0 && strings.Contains(e.log(), "no space left") }) {
		t.Fatal("the build did not meet the full disk")
	}
	// The daemon ends the job's failure path (which cannot record its
	// end on the full disk) before it is stopped.
	if !eventually(60*time.Second, func() bool { return strings.Contains(e.log(), `"msg":"build failed; model kept"`) }) {
		t.Fatal("the failure path did not end")
	}
	e.stop()
	os.Remove(filler)
	e.start("TRTD_FAKE_WORKER=")
	js := e.waitJobs(1, 60*time.Second)
	t.Logf("job after restart: %s %s (%s)", js[0].State, js[0].Outcome, js[0].Reason)
	kept := false
	for _, p := range []string{filepath.Join(e.failed, js[0].ID, "mid.onnx"), filepath.Join(st, "jobs", js[0].ID, "model", "mid.onnx")} {
		if b, err := os.ReadFile(p); err == nil && hash(b) == hash(testmodels.TinyCNN) {
			kept = true
		}
	}
	if !kept {
		t.Fatal("the model is lost")
	}
	if js[0].State != "done" {
		t.Errorf("a build that failed only for a full disk is not retried once space returns: %s (%s)", js[0].State, js[0].Reason)
	}
	e.stop()
	if tmp := e.temps(); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}
