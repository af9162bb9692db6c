package guard

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (my ) (weird) proc) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123 1000000 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, ok := parseStat(line)
	if !ok || st.ppid != 17 || st.rss != 2560 {
		t.Errorf("parseStat = %+v, %v; want ppid 17 rss 2560", st, ok)
	}
	if _, ok := parseStat("12 (x) S 1"); ok {
		t.Error("short stat line parsed")
	}
}

// fakeProc writes a /proc tree: meminfo, pressure and processes.
func fakeProc(t *testing.T, avail, swapTotal, swapFree int64, procs map[int][2]int64) string {
	t.Helper()
	dir := t.TempDir()
	writeMeminfo(t, dir, avail, swapTotal, swapFree)
	os.MkdirAll(filepath.Join(dir, "pressure"), 0o755)
	os.WriteFile(filepath.Join(dir, "pressure", "memory"), []byte("some avg10=12.50 avg60=3.00 avg300=1.00 total=5\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n"), 0o644)
	for pid, v := range procs {
		d := filepath.Join(dir, strconv.Itoa(pid))
		os.MkdirAll(d, 0o755)
		line := fmt.Sprintf("%d (w) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 %d 0\n", pid, v[0], v[1])
		os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644)
	}
	return dir
}

func writeMeminfo(t *testing.T, dir string, avail, swapTotal, swapFree int64) {
	s := fmt.Sprintf("MemTotal: 4000000 kB\nMemAvailable: %d kB\nSwapTotal: %d kB\nSwapFree: %d kB\n", avail>>10, swapTotal>>10, swapFree>>10)
	if err := os.WriteFile(filepath.Join(dir, "meminfo"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFloorKillsTheTree(t *testing.T) {
	page := int64(os.Getpagesize())
	// 100 -> 101 -> 102; 200 is someone else.
	proc := fakeProc(t, 100<<20, 1<<30, 50<<20, map[int][2]int64{
		100: {1, 10}, 101: {100, 20}, 102: {101, 30}, 200: {1, 1000},
	})
	var killed []int
	g := Start(context.Background(), 100, Options{Interval: time.Hour, Floor: 192 << 20, Proc: proc,
		Kill: func(p []int) error { killed = p; return nil }})
	tl := g.Stop()
	if !tl.Killed || !strings.HasPrefix(tl.KillReason, KillReasonPrefix) {
		t.Fatalf("not killed: %+v", tl)
	}
	slices.Sort(killed)
	if !slices.Equal(killed, []int{100, 101, 102}) {
		t.Errorf("killed %v, want the worker tree 100 101 102", killed)
	}
	if got := tl.Samples[0].WorkerRSS; got != 60*page {
		t.Errorf("tree RSS %d, want %d", got, 60*page)
	}
	if tl.Samples[0].PSISomeAvg10 != 12.5 || !tl.PSIAvailable {
		t.Errorf("PSI: %v", tl.Samples[0].PSISomeAvg10)
	}
	if !strings.Contains(tl.KillReason, "150 MiB") {
		t.Errorf("reason does not give the headroom: %s", tl.KillReason)
	}
}

func TestAboveFloorNoKill(t *testing.T) {
	proc := fakeProc(t, 100<<20, 1<<30, 200<<20, map[int][2]int64{100: {1, 10}})
	g := Start(context.Background(), 100, Options{Interval: time.Hour, Floor: 192 << 20, Proc: proc,
		Kill: func(p []int) error { t.Error("killed above the floor"); return nil }})
	if tl := g.Stop(); tl.Killed {
		t.Errorf("killed: %+v", tl)
	}
}

func TestGPUSampler(t *testing.T) {
	proc := fakeProc(t, 1<<30, 0, 0, nil)
	g := Start(context.Background(), 1, Options{Interval: time.Hour, Proc: proc,
		GPU: func(context.Context) (int64, error) { return 3 << 30, nil }})
	tl := g.Stop()
	if tl.Peak.GPUUsed != 3<<30 {
		t.Errorf("GPU used %d", tl.Peak.GPUUsed)
	}
	g = Start(context.Background(), 1, Options{Interval: time.Hour, Proc: proc,
		GPU: func(context.Context) (int64, error) { return 0, fmt.Errorf("nvidia-smi not found") }})
	tl = g.Stop()
	if tl.Peak.GPUUsed != -1 || !strings.Contains(strings.Join(tl.Notes, "\n"), "nvidia-smi not found") {
		t.Errorf("GPU failure not noted: %+v", tl)
	}
}

func TestSwapVerdict(t *testing.T) {
	for _, tc := range []struct {
		name      string
		total     int64
		used      []int64
		want      string
		wantDelta int64
	}{
		{"no swap", 0, []int64{0, 0}, "no swap was configured", 0},
		{"used", 4 << 30, []int64{10 << 20, 500 << 20, 200 << 20}, "swap was used: swap use rose by 490 MiB", 490 << 20},
		{"not used", 4 << 30, []int64{10 << 20, 12 << 20}, "swap was not used", 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := &Timeline{}
			for i, u := range tc.used {
				tl.Samples = append(tl.Samples, Sample{At: time.Duration(i), MemAvailable: 1 << 30, SwapUsed: u, SwapFree: tc.total - u})
			}
			summarize(tl, tc.total)
			if !strings.HasPrefix(tl.SwapVerdict, tc.want) || tl.SwapUsedDelta != tc.wantDelta {
				t.Errorf("verdict %q delta %d; want %q, %d", tl.SwapVerdict, tl.SwapUsedDelta, tc.want, tc.wantDelta)
			}
		})
	}
}

func TestDownsampleKeepsDips(t *testing.T) {
	tl := &Timeline{}
	for i := 0; i < 1000; i++ {
		tl.Samples = append(tl.Samples, Sample{At: time.Duration(i), MemAvailable: 1 << 30})
	}
	tl.Samples[567].MemAvailable = 1
	d := tl.Downsample(50)
	if len(d) > 50 || d[0].At != 0 || d[len(d)-1].At != 999 {
		t.Fatalf("downsample: %d samples, first %v last %v", len(d), d[0].At, d[len(d)-1].At)
	}
	found := false
	for _, s := range d {
		found = found || s.MemAvailable == 1
	}
	if !found {
		t.Error("the dip was lost")
	}
}

// ---- real memory-hungry process tree ----

func TestMain(m *testing.M) {
	switch os.Getenv("TRTD_GUARD_CHILD") {
	case "parent":
		// The worker: starts a memory-hungry grandchild and waits.
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "TRTD_GUARD_CHILD=hog")
		c.Stdout = os.Stdout
		c.Start()
		c.Wait()
		os.Exit(0)
	case "hog":
		hog()
		return
	}
	os.Exit(m.Run())
}

// hog allocates and touches memory in steps until the machine's headroom
// (MemAvailable + SwapFree) is below HOG_STOP, or it holds HOG_LIMIT; then
// it says so on stdout and waits. It watches the headroom, not a size of
// its own: other processes on the machine free and take memory meanwhile.
func hog() {
	limit, _ := strconv.ParseInt(os.Getenv("HOG_LIMIT"), 10, 64)
	stop, _ := strconv.ParseInt(os.Getenv("HOG_STOP"), 10, 64)
	fmt.Printf("%d\n", os.Getpid())
	var keep [][]byte
	for total := int64(0); total < limit; total += 16 << 20 {
		if mi, err := readMeminfo("/proc"); err == nil && mi.MemAvailable+max(mi.SwapFree, 0) < stop {
			break
		}
		b := make([]byte, 16<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("hog stopped allocating")
	time.Sleep(30 * time.Second)
	_ = keep
	os.Exit(0)
}

func headroom(t *testing.T) int64 {
	mi, err := readMeminfo("/proc")
	if err != nil {
		t.Skip("no /proc/meminfo:", err)
	}
	return mi.MemAvailable + mi.SwapFree
}

func TestGuardKillsRealHog(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real memory hog")
	}
	const margin = 768 << 20
	h := headroom(t)
	if h < 4*margin {
		t.Skipf("only %d MiB available: the test needs about 3 GiB to spare", h>>20)
	}
	// The floor is margin below the headroom now; the hog goes on until
	// it is 2*margin below it (or holds 6 GiB, should the machine free
	// that much meanwhile): it used to stop at a fixed 3 GiB,
	// which left the headroom above the floor whenever other processes
	// freed more than 2.25 GiB during the test.
	floor := h - margin
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TRTD_GUARD_CHILD=parent", fmt.Sprintf("HOG_LIMIT=%d", max(4*margin, min(h/2, 8*margin))),
		fmt.Sprintf("HOG_STOP=%d", floor-2*margin))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	g := Start(context.Background(), cmd.Process.Pid, Options{Interval: 20 * time.Millisecond, Floor: floor})
	sc := bufio.NewScanner(out)
	var hogPID int
	if sc.Scan() {
		hogPID, _ = strconv.Atoi(strings.TrimSpace(sc.Text()))
	}
	stopped := false
	for sc.Scan() { // until the tree is gone
		stopped = stopped || sc.Text() == "hog stopped allocating"
	}
	werr := cmd.Wait()
	tl := g.Stop()
	if !tl.Killed {
		t.Fatalf("guard did not kill: %+v", tl.Peak)
	}
	t.Logf("killed at %v: %s; %d samples, peak RSS %d MiB", tl.KilledAt, tl.KillReason, len(tl.Samples), tl.Peak.WorkerRSS>>20)
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("worker did not die by SIGKILL: %v", werr)
	}
	if hogPID == 0 || !slices.Contains(tl.KilledPIDs, hogPID) {
		t.Errorf("grandchild %d not among killed %v", hogPID, tl.KilledPIDs)
	}
	if hogPID != 0 && !gone(hogPID, 10*time.Second) {
		t.Errorf("grandchild %d survived the kill", hogPID)
	}
	// The tree's RSS (the grandchild's allocation) was seen.
	if tl.Peak.WorkerRSS < 64<<20 {
		t.Errorf("peak worker tree RSS %d MiB: the grandchild's memory was not counted", tl.Peak.WorkerRSS>>20)
	}
	if stopped {
		t.Errorf("the hog took the headroom %d MiB below the floor (%d MiB held) before the kill", 2*margin>>20, tl.Peak.WorkerRSS>>20)
	}
}

// gone waits (bounded) until pid has exited: an exiting process frees its
// memory before it becomes a zombie or disappears.
func gone(pid int, wait time.Duration) bool {
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z") {
			return true
		}
	}
	return false
}
