package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/notify"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/testmodels"
)

// loopGate blocks the main loop where it pings the watchdog (the notifier's
// clock is read there, at the top of every iteration) while it is closed.
type loopGate struct {
	mu      sync.Mutex
	closed  bool
	entered chan struct{}
	open    chan struct{}
}

func (g *loopGate) now() time.Time {
	g.mu.Lock()
	closed := g.closed
	g.closed = false
	g.mu.Unlock()
	if closed {
		close(g.entered)
		<-g.open
	}
	return time.Now()
}

func (g *loopGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.entered, g.open = true, make(chan struct{}), make(chan struct{})
}

// inotifyWatches counts this process's inotify watches on the inode ino.
func inotifyWatches(t *testing.T, ino uint64) int {
	t.Helper()
	fds, _ := filepath.Glob("/proc/self/fdinfo/*")
	want := fmt.Sprintf(" ino:%x ", ino)
	n := 0
	for _, p := range fds {
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "inotify ") && strings.Contains(l+" ", want) {
				n++
			}
		}
	}
	return n
}

// Run returns only once the build under way has been interrupted and its
// job put back in the queue, and says so in the status file, whichever of
// its two stop signals the main loop sees first: ctx's end or the inbox
// watcher's (which ends as soon as ctx does). The loop is held while both
// become ready; it used to return on the watcher's without waiting for the
// build, which went on writing the job after Run had returned.
func TestStopWaitsForTheBuildWhicheverSignalComesFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts and stops the daemon twelve times")
	}
	tr := newTree(t, "")
	var fi syscall.Stat_t
	if err := syscall.Stat(tr.cfg.Paths.Inbox, &fi); err != nil {
		t.Fatal(err)
	}
	gate := &loopGate{}
	tr.drop(t, "long.onnx", testmodels.TinyCNN)
	sock, _ := listenNotify(t)
	// Twelve stops: each one holds the loop while both signals are ready,
	// and the loop's select picks either (the bug showed in about half).
	for i := 0; i < 12; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, tr.cfg, Options{Notify: notify.New(sock, 2*time.Second, gate.now),
				WorkerEnv: append(converter.Env(), "TRTD_FAKE_WORKER=*=slow=60s")})
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if st, err := status.Read(tr.cfg.StatusPath()); err == nil && st.Current != nil && st.State == "building" {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("stop %d: no build started", i)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition
		}
		gate.close()
		select { // the watchdog ticker (every 500 ms) brings the loop to the gate
		case <-gate.entered:
		case <-time.After(30 * time.Second):
			t.Fatalf("stop %d: the main loop never pinged the watchdog", i)
		}
		if inotifyWatches(t, fi.Ino) == 0 {
			t.Fatalf("stop %d: the inbox watcher's inotify watches are not visible in /proc/self/fdinfo", i)
		}
		cancel()
		// The watcher has ended once its inotify watches on the inbox are
		// closed.
		for deadline := time.Now().Add(30 * time.Second); inotifyWatches(t, fi.Ino) > 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stop %d: the inbox watcher did not end with ctx", i)
			}
		}
		close(gate.open)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stop %d: %v", i, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("stop %d: Run did not return", i)
		}
		// Read at once: nothing of the daemon runs any more.
		st, err := status.Read(tr.cfg.StatusPath())
		if err != nil || st.State != "stopped" {
			t.Fatalf("stop %d: Run returned without saying so in the status file: %v", i, statusState(st, err))
		}
		store, err := jobs.Open(filepath.Join(tr.cfg.Paths.State, "jobs"))
		if err != nil {
			t.Fatal(err)
		}
		all, _ := store.List()
		if len(all) != 1 || all[0].State != jobs.Queued {
			t.Fatalf("stop %d: Run returned with its build still under way: jobs %+v", i, all)
		}
	}
}

func statusState(st *status.Status, err error) string {
	if err != nil {
		return err.Error()
	}
	return "state " + st.State
}
