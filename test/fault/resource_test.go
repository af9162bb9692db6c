package fault

import (
	"fmt"
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
	mnt := loopFS(t, 4)
	out := filepath.Join(mnt, "outbox")
	os.MkdirAll(out, 0o755)
	e := newEnv(t, withDirs("", out, "", ""))
	e.start()
	filler := fill(t, mnt)
	e.drop("full.onnx", testmodels.TinyCNN)
	js := e.waitJobs(1, 60*time.Second)
	if js[0].State == "done" {
		t.Fatalf("job done on a full outbox: %+v", js[0])
	}
	if !strings.Contains(e.log(), "no space left") {
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
}

// TestNoSpaceState: the state filesystem (job store, status) is full when a
// model arrives: it stays in the inbox and is built once space returns.
func TestNoSpaceState(t *testing.T) {
	mnt := loopFS(t, 4)
	st := filepath.Join(mnt, "state")
	e := newEnv(t, withDirs("", "", st, ""))
	e.start()
	filler := fill(t, mnt)
	e.drop("wait.onnx", testmodels.TinyCNN)
	time.Sleep(2 * time.Second)
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
	os.WriteFile(knob, []byte("1"), 0o644)
	defer os.WriteFile(knob, old, 0o644)
	// root holds watches already; the daemon as root gets none at all.
	e.start()
	os.WriteFile(knob, old, 0o644)
	models := dropInPlace(t, e.inbox, 10, 0)
	checkAllOnce(t, e, models)
	fmt.Fprintln(os.Stderr, "inotify watch limit: daemon log mentions:", strings.Contains(e.log(), "relying on rescans"))
}
