package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/internal/testmodels"
)

// ctxSwitches sums the context switches of every thread of pid.
func ctxSwitches(t *testing.T, pid int) int {
	t.Helper()
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "status"))
	n := 0
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasSuffix(f[0], "ctxt_switches:") {
				v, _ := strconv.Atoi(f[1])
				n += v
			}
		}
	}
	return n
}

// An idle daemon (no watchdog) wakes up a few times a minute: the main
// loop's 500 ms ticker made it 680-780 context switches a minute; its
// housekeeping now runs once a minute (or every retry interval).
func TestIdleWakeups(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: watches an idle daemon for 20 s")
	}
	tr := newTree(t, "")
	b, _ := os.ReadFile(tr.path)
	cfg := strings.NewReplacer(`rescan = "2s"`, `rescan = "30s"`, `retry_interval = "1s"`, `retry_interval = "10m"`).Replace(string(b))
	os.WriteFile(tr.path, []byte(cfg), 0o644)
	c := startDaemon(t, tr)
	tr.waitIdle(t, 30*time.Second)
	time.Sleep(2 * time.Second) // measuring an idle window, not ordering
	before := ctxSwitches(t, c.Process.Pid)
	const window = 20 * time.Second
	time.Sleep(window)
	n := ctxSwitches(t, c.Process.Pid) - before
	perMin := float64(n) * float64(time.Minute) / float64(window)
	t.Logf("idle: %d context switches in %s (%.0f a minute; %d before the window)", n, window, perMin, before)
	if before == 0 {
		t.Fatal("no context switches read from /proc: the measure is broken")
	}
	if perMin > 60 {
		t.Errorf("idle daemon: %.0f context switches a minute, want at most 60", perMin)
	}
}

// When its queue drains, the daemon hands the memory the work left free
// back to the kernel at once (a Jetson's GPU shares that RAM), instead of
// leaving it to the runtime's slow scavenger.
func TestMemoryReleasedWhenIdle(t *testing.T) {
	tr := newTree(t, "")
	b, _ := os.ReadFile(tr.path)
	// Housekeeping (and its prune, which also releases) once a minute: the
	// release seen here is the drained queue's.
	os.WriteFile(tr.path, []byte(strings.Replace(string(b), `retry_interval = "1s"`, `retry_interval = "10m"`, 1)), 0o644)
	startDaemon(t, tr)
	tr.waitIdle(t, 30*time.Second)
	tr.drop(t, "net.onnx", testmodels.SmallCNN)
	tr.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt)
	logPath := filepath.Join(tr.root, "trtd.log")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		log := string(b)
		done := strings.Index(log, "event=job_done")
		if done >= 0 && strings.Contains(log[done:], "event=memory_released") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no memory_released after the job was done:\n%s", log)
		}
	}
}
