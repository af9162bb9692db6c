package swap

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trtd/trtd/daemon/config"
)

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testCfg(dir string) config.Swap {
	return config.Swap{Enabled: true, Dir: dir, MaxSize: 64 << 20, Reserve: 0, Priority: -1,
		IdleRelease: config.Duration(time.Hour)}
}

func TestParseProcSwaps(t *testing.T) {
	in := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
		"/dev/zram0                              partition\t506816\t\t1024\t\t5\n" +
		"/var/lib/trtd/swap/trtd-swap-0          file\t\t8188\t\t0\t\t-2\n" +
		"/mnt/my\\040swap (deleted)              file\t\t4092\t\t0\t\t-3\n"
	got, err := ParseProcSwaps("swaps", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []ProcSwap{
		{Path: "/dev/zram0", Type: "partition", Size: 506816 << 10, Used: 1 << 20, Priority: 5},
		{Path: "/var/lib/trtd/swap/trtd-swap-0", Type: "file", Size: 8188 << 10, Priority: -2},
		{Path: "/mnt/my swap", Type: "file", Size: 4092 << 10, Priority: -3, Deleted: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if !got[0].IsZram() || got[1].IsZram() {
		t.Errorf("IsZram wrong")
	}
	if _, err := ParseProcSwaps("swaps", []byte("Filename\n/dev/x partition 12 x 1\n")); err == nil || !strings.Contains(err.Error(), "swaps:2") {
		t.Errorf("bad number: err %v, want one naming swaps:2", err)
	}
}

func TestParseMemInfo(t *testing.T) {
	m, err := ParseMemInfo("meminfo", []byte("MemTotal:        4059272 kB\nMemFree: 1 kB\nMemAvailable:    2000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.MemTotal != 4059272<<10 || m.MemAvailable != 2000000<<10 {
		t.Errorf("got %+v", m)
	}
	if _, err := ParseMemInfo("meminfo", []byte("MemTotal: 1 kB\n")); err == nil {
		t.Error("missing fields: want an error")
	}
}

func TestClassifyFS(t *testing.T) {
	for _, tc := range []struct {
		magic          int64
		kernel         string
		name           string
		refuse, falloc bool
	}{
		{0xEF53, "6.1.0", "ext4", false, true},
		{0x58465342, "4.9.253-tegra", "xfs", false, false},
		{0x58465342, "5.10.120-tegra", "xfs", false, true},
		{0x9123683E, "5.15", "btrfs", false, true},
		{0xF2F52010, "5.15", "f2fs", false, false},
		{0x01021994, "5.15", "tmpfs", true, false},
		{0x794C7630, "5.15", "overlayfs", true, false},
		{0x6969, "5.15", "nfs", true, false},
		{0x4D44, "5.15", "vfat", true, false},
		{0x12345678, "5.15", "0x12345678", false, false},
	} {
		k := classifyFS(tc.magic, tc.kernel)
		if k.Name != tc.name || (k.Refuse != "") != tc.refuse || k.Fallocate != tc.falloc {
			t.Errorf("classify(0x%x, %s) = %+v", tc.magic, tc.kernel, k)
		}
	}
}

func TestGuards(t *testing.T) {
	dir := t.TempDir()
	m := New(config.Swap{Enabled: false, Dir: dir, MaxSize: 1 << 30}, t.TempDir(), testLog(t))
	if _, err := m.Ensure(context.Background(), 1<<20); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled: got %v", err)
	}
	m = New(testCfg(dir), t.TempDir(), testLog(t), WithEUID(func() int { return 1000 }))
	if _, err := m.Ensure(context.Background(), 1<<20); !errors.Is(err, ErrNotRoot) {
		t.Errorf("not root: got %v", err)
	}
	if err := m.Release(context.Background()); !errors.Is(err, ErrNotRoot) {
		t.Errorf("release not root: got %v", err)
	}
	m = New(testCfg(dir), t.TempDir(), testLog(t))
	if _, err := m.Ensure(context.Background(), 1<<30); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: got %v", err)
	}
}

func owned(t *testing.T, dir string) []ProcSwap {
	t.Helper()
	data, err := os.ReadFile("/proc/swaps")
	if err != nil {
		t.Fatal(err)
	}
	all, err := ParseProcSwaps("/proc/swaps", data)
	if err != nil {
		t.Fatal(err)
	}
	var out []ProcSwap
	for _, s := range all {
		if strings.HasPrefix(s.Path, dir+"/") {
			out = append(out, s)
		}
	}
	return out
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != "lost+found" {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestCreateGrowRelease(t *testing.T) {
	mnt := loopExt4(t, 96)
	dir := filepath.Join(mnt, "swap")
	state := t.TempDir()
	m := New(testCfg(dir), state, testLog(t))
	ctx := context.Background()

	st, err := m.Ensure(ctx, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	active := owned(t, dir)
	if len(active) != 1 || active[0].Type != "file" {
		t.Fatalf("after ensure: /proc/swaps has %+v", active)
	}
	if st.Owned != 8<<20 || len(st.Files) != 1 || !st.Files[0].Active || st.Files[0].State != StateActive {
		t.Errorf("status: %+v", st)
	}
	first := active[0].Path
	fi, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || sys.Uid != 0 || sys.Gid != 0 || fi.Size() != 8<<20 {
		t.Errorf("swapfile %s: mode %v uid %d size %d, want 0600 root 8 MiB", first, fi.Mode(), sys.Uid, fi.Size())
	}
	var st2 unix.Stat_t
	unix.Stat(first, &st2)
	if st2.Blocks*512 < 8<<20 {
		t.Errorf("swapfile has holes: %d bytes allocated", st2.Blocks*512)
	}

	// Enough already: nothing new.
	if _, err := m.Ensure(ctx, 4<<20); err != nil {
		t.Fatal(err)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("ensure of less created a file: %v", got)
	}

	// Grow while active: a new 16 MiB file replaces the 8 MiB one.
	st, err = m.Ensure(ctx, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	active = owned(t, dir)
	if len(active) != 1 || active[0].Path == first {
		t.Fatalf("after grow: active %+v (old %s)", active, first)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("old swapfile still on disk: %v", err)
	}
	if st.Owned != 16<<20 || len(st.Files) != 1 {
		t.Errorf("status after grow: %+v", st)
	}
	if !strings.Contains(st.String(), active[0].Path) {
		t.Errorf("status text does not name the file:\n%s", st)
	}

	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 0 {
		t.Errorf("after release still active: %+v", a)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Errorf("after release files remain: %v", f)
	}
	if _, err := os.Stat(filepath.Join(state, markerName)); !os.IsNotExist(err) {
		t.Errorf("marker remains after release: %v", err)
	}
}

func TestZeroFill(t *testing.T) {
	mnt := loopExt4(t, 64)
	dir := filepath.Join(mnt, "swap")
	m := New(testCfg(dir), t.TempDir(), testLog(t), WithZeroFill())
	if _, err := m.Ensure(context.Background(), 8<<20); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 1 {
		t.Fatalf("zero-filled swapfile not active: %+v", a)
	}
	if err := m.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestGrowWhileBusy(t *testing.T) {
	mnt := loopExt4(t, 96)
	dir := filepath.Join(mnt, "swap")
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := New(testCfg(dir), t.TempDir(), testLog(t), WithClock(func() time.Time { return now }))
	ctx := context.Background()
	if _, err := m.Ensure(ctx, 8<<20); err != nil {
		t.Fatal(err)
	}
	m.SetBusy(true)
	st, err := m.Ensure(ctx, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 2 {
		t.Fatalf("grow while busy must keep the old file active: %+v", a)
	}
	states := map[string]int{}
	for _, f := range st.Files {
		states[f.State]++
	}
	if states[StateActive] != 1 || states[StateRetiring] != 1 {
		t.Errorf("states %v, want one active and one retiring", states)
	}
	if err := m.Release(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("release while busy: %v, want ErrBusy", err)
	}
	if err := m.MaybeReleaseIdle(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 2 {
		t.Errorf("idle release while busy touched swap: %+v", a)
	}
	m.SetBusy(false)
	// Not idle long enough: only the retiring file goes.
	if err := m.MaybeReleaseIdle(ctx, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 1 || !strings.HasSuffix(a[0].Path, "-1") {
		t.Errorf("after build: want only the new file active, got %+v", a)
	}
	if err := m.MaybeReleaseIdle(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 0 {
		t.Errorf("idle release left %+v", a)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Errorf("idle release left files %v", f)
	}
}

func TestBusyFlagFromAnotherProcess(t *testing.T) {
	mnt := loopExt4(t, 64)
	dir := filepath.Join(mnt, "swap")
	state := t.TempDir()
	daemon := New(testCfg(dir), state, testLog(t))
	if _, err := daemon.Ensure(context.Background(), 8<<20); err != nil {
		t.Fatal(err)
	}
	// Another live process (standing in for the daemon) holds the flag.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	if err := os.WriteFile(filepath.Join(state, busyName), []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := New(testCfg(dir), state, testLog(t))
	if err := cli.Release(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("release with another process busy: %v, want ErrBusy", err)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	if err := cli.Release(context.Background()); err != nil {
		t.Fatalf("release after the busy process died: %v", err)
	}
}

func TestRefuseTmpfs(t *testing.T) {
	dir := mountTmpfs(t)
	state := t.TempDir()
	m := New(testCfg(filepath.Join(dir, "swap")), state, testLog(t))
	_, err := m.Ensure(context.Background(), 4<<20)
	if !errors.Is(err, ErrUnsupportedFS) || !strings.Contains(err.Error(), "tmpfs") {
		t.Fatalf("tmpfs: got %v, want ErrUnsupportedFS naming tmpfs", err)
	}
	if f := files(t, filepath.Join(dir, "swap")); len(f) != 0 {
		t.Errorf("files left on tmpfs: %v", f)
	}
	if _, err := os.Stat(filepath.Join(state, markerName)); !os.IsNotExist(err) {
		t.Errorf("marker written for a refused swapfile")
	}
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.FSType != "tmpfs" || st.FSProblem == "" {
		t.Errorf("status does not report the tmpfs problem: %+v", st)
	}
}

func TestNoSpaceLeavesNothing(t *testing.T) {
	mnt := loopExt4(t, 16)
	dir := filepath.Join(mnt, "swap")
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"disk guard", nil},
		// The free-space query lies (as if another writer filled the disk
		// after the check): the real fallocate / write hits ENOSPC.
		{"fallocate ENOSPC", []Option{WithStatfs(lyingStatfs)}},
		{"zero-fill ENOSPC", []Option{WithStatfs(lyingStatfs), WithZeroFill()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			m := New(testCfg(dir), state, testLog(t), tc.opts...)
			_, err := m.Ensure(context.Background(), 48<<20)
			if !errors.Is(err, ErrNoSpace) {
				t.Fatalf("got %v, want ErrNoSpace", err)
			}
			if f := files(t, dir); len(f) != 0 {
				t.Errorf("left behind: %v", f)
			}
			if _, err := os.Stat(filepath.Join(state, markerName)); !os.IsNotExist(err) {
				t.Errorf("marker left behind: %v", err)
			}
			if a := owned(t, dir); len(a) != 0 {
				t.Errorf("swap active: %+v", a)
			}
		})
	}
}

func lyingStatfs(path string, st *unix.Statfs_t) error {
	if err := unix.Statfs(path, st); err != nil {
		return err
	}
	st.Bavail = 1 << 40 / uint64(st.Bsize)
	return nil
}

func TestPriorityBelowExistingDevice(t *testing.T) {
	mnt := loopExt4(t, 64)
	other := filepath.Join(mnt, "zram-standin")
	manualSwap(t, other, 4<<20, "7")
	dir := filepath.Join(mnt, "swap")
	m := New(testCfg(dir), t.TempDir(), testLog(t))
	if _, err := m.Ensure(context.Background(), 8<<20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Release(context.Background()) })
	var mine, theirs *ProcSwap
	for _, s := range owned(t, mnt) {
		s := s
		switch {
		case s.Path == other:
			theirs = &s
		case strings.HasPrefix(s.Path, dir+"/"):
			mine = &s
		}
	}
	if mine == nil || theirs == nil {
		t.Fatalf("mine %v theirs %v", mine, theirs)
	}
	if mine.Priority >= theirs.Priority {
		t.Errorf("daemon swap priority %d is not below the existing device's %d", mine.Priority, theirs.Priority)
	}
	// Release must leave the other device alone.
	if err := m.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := owned(t, mnt)
	if len(a) != 1 || a[0].Path != other {
		t.Errorf("after release: %+v, want only %s", a, other)
	}
}

// TestMain lets the test binary act as a daemon that crashes mid-create.
func TestMain(m *testing.M) {
	if os.Getenv("TRTD_SWAP_CRASH_CHILD") == "1" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

func crashChild() {
	cfg := config.Swap{Enabled: true, Dir: os.Getenv("DIR"), MaxSize: 64 << 20, Priority: -1}
	m := New(cfg, os.Getenv("STATE"), nil, WithCommands(os.Getenv("MKSWAP"), "/usr/sbin/swapon", "/usr/sbin/swapoff"))
	_, err := m.Ensure(context.Background(), 8<<20)
	// Only reached when the crash did not happen.
	os.Stderr.WriteString("child survived: " + errString(err) + "\n")
	os.Exit(3)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestReconcileAfterRealCrash(t *testing.T) {
	mnt := loopExt4(t, 64)
	dir := filepath.Join(mnt, "swap")
	state := t.TempDir()
	// mkswap that kills the daemon: the crash lands between the
	// allocation and swapon.
	killer := filepath.Join(t.TempDir(), "mkswap")
	os.WriteFile(killer, []byte("#!/bin/sh\nkill -9 $PPID\nsleep 5\n"), 0o755)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TRTD_SWAP_CRASH_CHILD=1", "DIR="+dir, "STATE="+state, "MKSWAP="+killer)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v: %s", err, out)
	}
	half := files(t, dir)
	if len(half) != 1 {
		t.Fatalf("expected one half-made file after the crash, got %v", half)
	}
	var mk marker
	data, _ := os.ReadFile(filepath.Join(state, markerName))
	if json.Unmarshal(data, &mk) != nil || len(mk.Files) != 1 || mk.Files[0].State != StateCreating {
		t.Fatalf("marker after crash: %s", data)
	}
	m := New(testCfg(dir), state, testLog(t))
	if err := m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := files(t, dir); len(f) != 0 {
		t.Errorf("reconcile left %v", f)
	}
	if _, err := os.Stat(filepath.Join(state, markerName)); !os.IsNotExist(err) {
		t.Errorf("reconcile left the marker: %v", err)
	}
	// The next Ensure works normally.
	if _, err := m.Ensure(context.Background(), 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileCases(t *testing.T) {
	mnt := loopExt4(t, 96)
	dir := filepath.Join(mnt, "swap")
	os.MkdirAll(dir, 0o700)
	state := t.TempDir()
	ctx := context.Background()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 1. a half file the marker says is being created;
	half := write(FilePrefix+"0", 1<<20)
	// 2. a file the marker says was active before a reboot;
	stale := write(FilePrefix+"1", 1<<20)
	// 3. an orphan of ours unknown to the marker;
	orphan := write(FilePrefix+"5", 1<<20)
	// 4. something that is not ours;
	foreign := write("keep.me", 10)
	// 5. an active swapfile of ours the marker does not know (crash after
	// swapon, before the marker was updated);
	adopted := filepath.Join(dir, FilePrefix+"3")
	manualSwap(t, adopted, 8<<20, "")
	// 6. active, marker still says creating.
	creatingActive := filepath.Join(dir, FilePrefix+"4")
	manualSwap(t, creatingActive, 8<<20, "")
	mk := &marker{Version: 1, Files: []markerFile{
		{Path: half, Size: 8 << 20, State: StateCreating},
		{Path: stale, Size: 8 << 20, State: StateActive},
		{Path: creatingActive, Size: 8 << 20, State: StateCreating},
	}}
	m := New(testCfg(dir), state, testLog(t))
	if err := m.saveMarker(mk); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{half, stale, orphan} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not removed", filepath.Base(p))
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("reconcile touched a file that is not ours: %v", err)
	}
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range st.Files {
		got[filepath.Base(f.Path)] = f.State
	}
	want := map[string]string{FilePrefix + "3": StateActive, FilePrefix + "4": StateActive}
	if len(got) != 2 || got[FilePrefix+"3"] != want[FilePrefix+"3"] || got[FilePrefix+"4"] != want[FilePrefix+"4"] {
		t.Errorf("after reconcile: %v, want %v", got, want)
	}
	if st.Owned != 16<<20 {
		t.Errorf("owned %d, want 16 MiB", st.Owned)
	}
	if err := m.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if a := owned(t, dir); len(a) != 0 {
		t.Errorf("after release: %+v", a)
	}
}

func TestCorruptMarker(t *testing.T) {
	mnt := loopExt4(t, 64)
	dir := filepath.Join(mnt, "swap")
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, markerName), []byte("{not json"), 0o600)
	m := New(testCfg(dir), state, testLog(t))
	if _, err := m.Status(context.Background()); !errors.Is(err, ErrMarkerCorrupt) {
		t.Errorf("status with a corrupt marker: %v", err)
	}
	if err := m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, markerName+".corrupt")); err != nil {
		t.Errorf("corrupt marker not kept aside: %v", err)
	}
}
