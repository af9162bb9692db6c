// Package guard watches memory while a build worker runs: it samples
// MemAvailable, swap, the worker's resident memory with all its
// descendants, PSI memory pressure and (on a dGPU) GPU memory at a fixed
// interval, keeps the timeline and its peaks for the report, and SIGKILLs the
// worker's process tree when MemAvailable + SwapFree falls below a floor,
// before the kernel starts thrashing the board. A kill by the guard is an
// out-of-memory outcome for the ladder.
package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/meminfo"
)

// KillReasonPrefix starts Timeline.KillReason when the guard killed the worker.
const KillReasonPrefix = "memory floor"

// swapUsedThreshold is the rise in swap use below which the verdict says
// swap was not used (page cache and other processes move a little anyway).
const swapUsedThreshold = 16 << 20

// Options configures a Guard.
type Options struct {
	// Interval between samples (default 250ms).
	Interval time.Duration
	// Floor: the worker is killed when MemAvailable + SwapFree falls below
	// it. 0 disables killing (sampling only).
	Floor int64
	// Proc is the /proc root (default "/proc").
	Proc string
	// GPU returns the GPU memory in use (dGPU only; nil = not sampled).
	GPU func(ctx context.Context) (int64, error)
	// CgroupDir is the worker's cgroup; its memory usage is sampled too.
	CgroupDir string
	// Now replaces time.Now.
	Now func() time.Time
	// Log receives the kill and sampling problems.
	Log *slog.Logger
	// Kill replaces the SIGKILL of the worker's process tree (tests).
	Kill func(pids []int) error
}

// Sample is one measurement. Byte counts; -1 where a value could not be read.
type Sample struct {
	At           time.Duration `json:"at_ns"`
	MemAvailable int64         `json:"mem_available"`
	SwapUsed     int64         `json:"swap_used"`
	SwapFree     int64         `json:"swap_free"`
	WorkerRSS    int64         `json:"worker_rss"`
	CgroupUsage  int64         `json:"cgroup_usage,omitempty"`
	GPUUsed      int64         `json:"gpu_used"`
	PSISomeAvg10 float64       `json:"psi_some_avg10"`
}

// Timeline is what the guard saw while the worker ran.
type Timeline struct {
	Interval time.Duration `json:"interval_ns"`
	Floor    int64         `json:"floor"`
	Started  time.Time     `json:"started"`
	Samples  []Sample      `json:"samples"`
	// Peak holds the extreme of each field over the run: the lowest
	// MemAvailable and SwapFree, the highest of everything else. Its At is
	// when the worker's RSS peaked.
	Peak       Sample        `json:"peak"`
	Baseline   Sample        `json:"baseline"`
	Killed     bool          `json:"killed"`
	KillReason string        `json:"kill_reason,omitempty"`
	KilledAt   time.Duration `json:"killed_at_ns,omitempty"`
	// KilledPIDs are the processes the guard sent SIGKILL to.
	KilledPIDs    []int    `json:"killed_pids,omitempty"`
	SwapTotal     int64    `json:"swap_total"`
	SwapUsedDelta int64    `json:"swap_used_delta"`
	SwapVerdict   string   `json:"swap_verdict"`
	PSIAvailable  bool     `json:"psi_available"`
	Notes         []string `json:"notes,omitempty"`
}

// Guard samples one worker.
type Guard struct {
	pid    int
	o      Options
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	tl        Timeline
	swapTotal int64
	notes     map[string]bool
}

// Start begins sampling pid (the worker; its descendants are included).
func Start(ctx context.Context, pid int, o Options) *Guard {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Guard{pid: pid, o: o, cancel: cancel, done: make(chan struct{}), notes: map[string]bool{}}
	g.tl = Timeline{Interval: o.Interval, Floor: o.Floor, Started: o.Now()}
	g.tl.PSIAvailable = fileExists(filepath.Join(o.Proc, "pressure", "memory"))
	if !g.tl.PSIAvailable {
		g.note("PSI memory pressure is not available on this kernel (/proc/pressure/memory missing)")
	}
	first := g.sample(ctx)
	g.tl.Baseline = first
	g.record(ctx, first)
	go g.loop(ctx)
	return g
}

func (g *Guard) loop(ctx context.Context) {
	defer close(g.done)
	t := time.NewTicker(g.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.record(ctx, g.sample(ctx))
		}
	}
}

func (g *Guard) note(s string) {
	if !g.notes[s] {
		g.notes[s] = true
		g.tl.Notes = append(g.tl.Notes, s)
	}
}

// record appends s and kills the worker tree when it crossed the floor.
func (g *Guard) record(ctx context.Context, s Sample) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tl.Samples = append(g.tl.Samples, s)
	if g.tl.Killed || g.o.Floor <= 0 || s.MemAvailable < 0 {
		return
	}
	headroom := s.MemAvailable + max(s.SwapFree, 0)
	if headroom >= g.o.Floor {
		return
	}
	pids := g.tree()
	reason := fmt.Sprintf("%s: MemAvailable %s + SwapFree %s = %s fell below the floor of %s (guard.floor); worker tree RSS %s",
		KillReasonPrefix, bytesize.MiB(s.MemAvailable), bytesize.MiB(s.SwapFree), bytesize.MiB(headroom), bytesize.MiB(g.o.Floor), bytesize.MiB(s.WorkerRSS))
	var err error
	if g.o.Kill != nil {
		err = g.o.Kill(pids)
	} else {
		err = killTree(g.pid, pids)
	}
	g.tl.Killed = true
	g.tl.KillReason = reason
	g.tl.KilledAt = g.o.Now().Sub(g.tl.Started)
	g.tl.KilledPIDs = pids
	if err != nil {
		g.o.Log.Error("memory guard could not kill the worker", "pid", g.pid, "err", err)
		g.tl.KillReason += fmt.Sprintf(" (kill failed: %v)", err)
		return
	}
	g.o.Log.Warn("memory guard killed the worker", "pid", g.pid, "reason", reason)
}

// killTree SIGKILLs the worker's process group (when it leads one) and every
// descendant found in /proc.
func killTree(pid int, pids []int) error {
	var errs []error
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill group %d: %w", pid, err))
		}
	}
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Stop ends sampling (call it after the worker exited) and returns the
// timeline with its peaks and the swap verdict.
func (g *Guard) Stop() *Timeline {
	g.cancel()
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	tl := g.tl
	tl.Samples = append([]Sample(nil), g.tl.Samples...)
	tl.Notes = append([]string(nil), g.tl.Notes...)
	summarize(&tl, g.swapTotal)
	return &tl
}

func summarize(tl *Timeline, swapTotal int64) {
	tl.SwapTotal = swapTotal
	if len(tl.Samples) == 0 {
		tl.SwapVerdict = "no samples were taken"
		return
	}
	p := tl.Samples[0]
	for _, s := range tl.Samples[1:] {
		if s.MemAvailable >= 0 && (p.MemAvailable < 0 || s.MemAvailable < p.MemAvailable) {
			p.MemAvailable = s.MemAvailable
		}
		if s.SwapFree >= 0 && (p.SwapFree < 0 || s.SwapFree < p.SwapFree) {
			p.SwapFree = s.SwapFree
		}
		p.SwapUsed = max(p.SwapUsed, s.SwapUsed)
		if s.WorkerRSS > p.WorkerRSS {
			p.WorkerRSS, p.At = s.WorkerRSS, s.At
		}
		p.CgroupUsage = max(p.CgroupUsage, s.CgroupUsage)
		p.GPUUsed = max(p.GPUUsed, s.GPUUsed)
		p.PSISomeAvg10 = max(p.PSISomeAvg10, s.PSISomeAvg10)
	}
	tl.Peak = p
	base := tl.Samples[0].SwapUsed
	tl.SwapUsedDelta = p.SwapUsed - base
	switch {
	case swapTotal <= 0:
		tl.SwapVerdict = "no swap was configured, so swap could not help this build"
	case tl.SwapUsedDelta >= swapUsedThreshold:
		tl.SwapVerdict = fmt.Sprintf("swap was used: swap use rose by %s (to %s of %s) while the worker ran",
			bytesize.MiB(tl.SwapUsedDelta), bytesize.MiB(p.SwapUsed), bytesize.MiB(swapTotal))
	default:
		tl.SwapVerdict = fmt.Sprintf("swap was not used: swap use changed by %s (less than %s) while the worker ran",
			bytesize.MiB(tl.SwapUsedDelta), bytesize.MiB(swapUsedThreshold))
	}
}

// Downsample returns at most n samples, keeping for each bucket the one with
// the lowest MemAvailable (so dips survive), plus the first and last.
func (t *Timeline) Downsample(n int) []Sample {
	if n <= 2 || len(t.Samples) <= n {
		return append([]Sample(nil), t.Samples...)
	}
	out := []Sample{t.Samples[0]}
	inner := t.Samples[1 : len(t.Samples)-1]
	buckets := n - 2
	for b := 0; b < buckets; b++ {
		lo, hi := b*len(inner)/buckets, (b+1)*len(inner)/buckets
		if lo >= hi {
			continue
		}
		best := inner[lo]
		for _, s := range inner[lo:hi] {
			if s.MemAvailable < best.MemAvailable {
				best = s
			}
		}
		out = append(out, best)
	}
	return append(out, t.Samples[len(t.Samples)-1])
}

// ---- sampling ----

func (g *Guard) sample(ctx context.Context) Sample {
	s := Sample{At: g.o.Now().Sub(g.tl.Started), MemAvailable: -1, SwapFree: -1, WorkerRSS: -1, GPUUsed: -1}
	if mi, err := readMeminfo(g.o.Proc); err == nil {
		s.MemAvailable = mi.MemAvailable
		s.SwapFree = mi.SwapFree
		s.SwapUsed = mi.SwapTotal - mi.SwapFree
		g.mu.Lock()
		g.swapTotal = max(g.swapTotal, mi.SwapTotal)
		g.mu.Unlock()
	} else {
		g.mu.Lock()
		g.note("could not read meminfo: " + err.Error())
		g.mu.Unlock()
	}
	s.WorkerRSS = g.treeRSS()
	if g.tl.PSIAvailable {
		s.PSISomeAvg10 = readPSISome(filepath.Join(g.o.Proc, "pressure", "memory"))
	}
	if g.o.CgroupDir != "" {
		s.CgroupUsage = readCgroupUsage(g.o.CgroupDir)
	}
	if g.o.GPU != nil {
		if n, err := g.o.GPU(ctx); err == nil {
			s.GPUUsed = n
		} else {
			g.mu.Lock()
			g.note("GPU memory could not be sampled: " + err.Error())
			g.mu.Unlock()
		}
	}
	return s
}

// readMeminfo reads the figures the guard samples; only MemAvailable is
// required.
func readMeminfo(proc string) (meminfo.Info, error) {
	mi, err := meminfo.Read(proc)
	if err == nil && !mi.Has("MemAvailable") {
		err = fmt.Errorf("%s: no MemAvailable", filepath.Join(proc, "meminfo"))
	}
	return mi, err
}

func readPSISome(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "some ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "avg10="); ok {
				x, _ := strconv.ParseFloat(v, 64)
				return x
			}
		}
	}
	return 0
}

func readCgroupUsage(dir string) int64 {
	for _, name := range []string{"memory.current", "memory.usage_in_bytes"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

type procStat struct {
	ppid int
	rss  int64 // pages
}

// scanProcs reads pid -> (ppid, rss) for every process.
func (g *Guard) scanProcs() map[int]procStat {
	ents, err := os.ReadDir(g.o.Proc)
	if err != nil {
		return nil
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(g.o.Proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, ok := parseStat(string(data)); ok {
			out[pid] = st
		}
	}
	return out
}

// parseStat reads ppid (field 4) and rss (field 24) of /proc/PID/stat; comm
// (field 2) may hold spaces and parentheses, so fields count from the last ')'.
func parseStat(s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state).
	if len(f) < 22 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	rss, err2 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, rss: rss}, true
}

// descendants returns pid and all its descendants present in procs.
func descendants(pid int, procs map[int]procStat) []int {
	if _, ok := procs[pid]; !ok {
		return nil
	}
	kids := map[int][]int{}
	for p, st := range procs {
		kids[st.ppid] = append(kids[st.ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

func (g *Guard) tree() []int { return descendants(g.pid, g.scanProcs()) }

func (g *Guard) treeRSS() int64 {
	procs := g.scanProcs()
	tree := descendants(g.pid, procs)
	if tree == nil {
		return 0
	}
	var pages int64
	for _, p := range tree {
		pages += procs[p].rss
	}
	return pages * int64(os.Getpagesize())
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
