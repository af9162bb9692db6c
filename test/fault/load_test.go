package fault

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dropInPlace writes n distinct models under their final names at once,
// the way scp does (no rename), from several goroutines.
func dropInPlace(t *testing.T, dir string, n, offset int) map[string][]byte {
	models := map[string][]byte{}
	for i := 0; i < n; i++ {
		models[fmt.Sprintf("load-%04d.onnx", i+offset)] = identityModel(dimV(uint64(i + offset + 1)))
	}
	var wg sync.WaitGroup
	ch := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range ch {
				if err := os.WriteFile(filepath.Join(dir, name), models[name], 0o644); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for name := range models {
		ch <- name
	}
	close(ch)
	wg.Wait()
	return models
}

// checkAllOnce: every model became exactly one done job and one engine
// built from its bytes.
func checkAllOnce(t *testing.T, e *env, models map[string][]byte) {
	t.Helper()
	js := e.waitJobs(len(models), 10*time.Minute)
	if len(js) != len(models) {
		t.Fatalf("%d jobs for %d models", len(js), len(models))
	}
	seen := map[string]int{}
	for _, j := range js {
		seen[j.Name]++
		if j.State != "done" {
			t.Errorf("job %s for %s: %s (%s)", j.ID, j.Name, j.State, j.Reason)
		}
		if m, ok := models[j.Name]; !ok || hash(m) != j.ModelSHA {
			t.Errorf("job %s: unexpected model %s", j.ID, j.Name)
		}
	}
	for name := range models {
		if seen[name] != 1 {
			t.Errorf("%s processed %d times", name, seen[name])
		}
	}
	engs := e.engines()
	for name, m := range models {
		if engs[strings.TrimSuffix(name, ".onnx")+".engine"] != hash(m) {
			t.Errorf("no engine from %s", name)
		}
	}
}

// TestLoadBurst drops 200 models at once (1,000 with TRTD_SOAK=1): each is
// processed exactly once and the daemon's memory stays flat.
func TestLoadBurst(t *testing.T) {
	suite(t)
	needRoot(t)
	n := 200
	if soak() {
		n = 1000
	}
	e := newEnv(t)
	e.start()
	time.Sleep(500 * time.Millisecond)
	idle := rssKiB(e.pid())
	models := dropInPlace(t, e.inbox, n, 0)
	peak := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if r := rssKiB(e.pid()); r > peak {
				peak = r
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	checkAllOnce(t, e, models)
	close(stop)
	wg.Wait()
	after := rssKiB(e.pid())
	t.Logf("daemon RSS: idle %d KiB, peak %d KiB, after %d models %d KiB", idle, peak, n, after)
	if after > 2*idle+32*1024 {
		t.Errorf("daemon RSS grew from %d KiB to %d KiB over %d models", idle, after, n)
	}
	if soak() {
		// a second round must not grow it further
		models2 := dropInPlace(t, e.inbox, n, n)
		for k, v := range models {
			models2[k] = v
		}
		checkAllOnce(t, e, models2)
		if r := rssKiB(e.pid()); r > after+16*1024 {
			t.Errorf("daemon RSS grew from %d to %d KiB in the second round", after, r)
		}
	}
}

// TestLoadInotifyOverflow forces an inotify queue overflow with a tiny
// fs.inotify.max_queued_events: the rescan still finds every model.
func TestLoadInotifyOverflow(t *testing.T) {
	suite(t)
	needRoot(t)
	const knob = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skipf("cannot read %s: %v", knob, err)
	}
	e := newEnv(t)
	// The limit applies to inotify instances created while it is set: only
	// the daemon's, created during its start.
	if err := os.WriteFile(knob, []byte("16"), 0o644); err != nil {
		t.Skipf("cannot set %s: %v", knob, err)
	}
	e.start()
	os.WriteFile(knob, old, 0o644)
	// Noise first (thousands of events), then the models, while the daemon
	// is stopped: its 16-event queue overflows however fast it would have
	// read (a daemon scheduled well enough kept up with the noise, and
	// nothing overflowed), and the models' own events are lost with it.
	syscall.Kill(-e.pid(), syscall.SIGSTOP)
	for i := 0; i < 500; i++ {
		os.WriteFile(filepath.Join(e.inbox, fmt.Sprintf("noise-%04d.txt", i)), nil, 0o644)
	}
	models := dropInPlace(t, e.inbox, 50, 0)
	syscall.Kill(-e.pid(), syscall.SIGCONT)
	checkAllOnce(t, e, models)
	if !strings.Contains(e.log(), "overflow") {
		t.Error("no inotify overflow was logged: the test did not test the rescan")
	}
}
