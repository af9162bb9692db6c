package memory

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/mem"
	"github.com/shirou/gopsutil/v3/process"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/cgroup"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/guard"
	"github.com/trtd/trtd/daemon/planner"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/daemon/swap"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/device"
)

// memory is the real Memory: sysinfo for the device, the planner and its
// history, the swap manager, a memory cgroup per worker and the guard.
type memory struct {
	cfg      *config.Config
	log      *slog.Logger
	swap     *swap.Manager
	cg       cgroup.Info
	hist     *planner.History
	roots    sysinfo.Roots
	mu       sync.Mutex
	dev      *sysinfo.Device
	devAt    time.Time
	lastIdle time.Time
	seq      int
}

// New builds the real Memory from the configuration.
func New(cfg *config.Config, log *slog.Logger) Memory {
	m := &memory{cfg: cfg, log: log}
	if cfg.Swap.Enabled {
		m.swap = swap.New(cfg.Swap, cfg.Paths.State, log.With("stage", "swap"))
	}
	m.cg = cgroup.Detect()
	if m.cg.Version == 0 {
		log.Info("the worker runs without a memory cgroup; the memory guard still watches it", "reason", m.cg.Reason)
	}
	h, err := planner.Load(filepath.Join(cfg.Paths.State, "planner-history.json"))
	if err != nil {
		log.Warn("planner history unreadable; starting a new one", "err", err)
	}
	m.hist = h
	return m
}

// Reconcile implements Memory.
func (m *memory) Reconcile(ctx context.Context) error {
	// F-21: worker cgroups of a daemon that was SIGKILLed (outside systemd
	// nothing else removes them).
	if m.cg.Dir != "" {
		if rm := cgroup.RemoveStale(m.cg.Dir, m.log); len(rm) > 0 {
			m.log.Info("removed worker cgroups left by a crash", "dirs", strings.Join(rm, ", "))
		}
	}
	if m.swap == nil {
		return nil
	}
	return m.swap.Reconcile(ctx)
}

// device diagnoses the device; a diagnosis younger than a few seconds is
// reused (a burst of uploads would otherwise pay for one per job, twice).
func (m *memory) device(ctx context.Context) *sysinfo.Device {
	m.mu.Lock()
	if m.dev != nil && time.Since(m.devAt) < 5*time.Second {
		d := m.dev
		m.mu.Unlock()
		return d
	}
	m.mu.Unlock()
	d, err := sysinfo.Collect(ctx, m.roots, sysinfo.WithSwapDir(m.cfg.Swap.Dir), sysinfo.WithOverheads(m.cfg.Overheads))
	if err != nil {
		m.log.Warn("device diagnosis failed", "err", err)
		return nil
	}
	m.mu.Lock()
	m.dev, m.devAt = d, time.Now()
	m.mu.Unlock()
	return d
}

// Plan implements Memory.
func (m *memory) Plan(in PlanInput) PlanOutput {
	d := m.device(context.Background())
	cfg := *m.cfg
	cfg.Stages = in.Stages
	out := PlanOutput{Skip: map[string]string{}}
	if d == nil || !m.cfg.Planner.Enabled {
		out.Report = &report.Plan{Start: in.Stages[0].Name, Notes: []string{"planner disabled or the device could not be read: every stage is tried"}}
		for _, s := range in.Stages {
			out.Report.Stages = append(out.Report.Stages, report.PlanStage{Name: s.Name})
		}
		return out
	}
	p := planner.New(in.Model, d, &cfg, m.hist)
	out.Start = p.Start
	out.Report = &report.Plan{Start: p.StartName(), SwapBytes: p.SwapBytes, Notes: p.Notes}
	for _, sp := range p.Stages {
		out.Report.Stages = append(out.Report.Stages, report.PlanStage{Name: sp.Stage.Name, PeakBytes: sp.PeakBytes, Skip: sp.Skip, Reason: sp.Reason})
		if sp.Skip && m.cfg.Planner.SkipHopeless {
			out.Skip[sp.Stage.Name] = sp.Reason
		}
	}
	out.SwapBytes = p.SwapBytes
	return out
}

// BeforeStage implements Memory: swap as the stage asks, and the page cache
// dropped for the last local attempts.
func (m *memory) BeforeStage(ctx context.Context, st converter.Stage, plan PlanOutput) error {
	var errs []string
	var want int64
	switch st.Swap {
	case converter.SwapEnsure:
		want = plan.SwapBytes
	case converter.SwapMax:
		want = int64(m.cfg.Swap.MaxSize)
	}
	if want > 0 {
		if m.swap == nil {
			errs = append(errs, fmt.Sprintf("stage %s wants %s of swap but swap.enabled is false", st.Name, bytesize.Format(want)))
		} else if s, err := m.swap.Ensure(ctx, want); err != nil {
			errs = append(errs, fmt.Sprintf("swap for stage %s: %v", st.Name, err))
		} else {
			m.log.Info("swap ready", "stage", st.Name, "owned", bytesize.Format(s.Owned), "swap_free", bytesize.Format(s.SwapFree))
		}
	}
	if st.DropCaches && os.Geteuid() == 0 {
		syscall.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
			errs = append(errs, "drop page cache: "+err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Sandbox implements Memory.
func (m *memory) Sandbox(st converter.Stage) converter.Sandbox {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	dev := m.dev
	m.mu.Unlock()
	sb := &sandbox{m: m, stage: st.Name}
	if m.cg.Version != 0 {
		limit := int64(m.cfg.Guard.MemoryMax)
		if limit == 0 && dev != nil {
			limit = cgroup.DefaultLimit(dev.MemTotal)
		}
		if limit > 0 {
			cg, err := cgroup.NewWorker(m.cg.Dir, fmt.Sprintf("trtd-worker-%d-%d", os.Getpid(), seq), limit, -1, m.log)
			if err != nil {
				m.log.Info("the worker runs without a memory cgroup", "reason", err)
			} else {
				sb.cg = cg
			}
		}
	}
	if dev != nil && dev.GPU != nil && !dev.GPU.Unified {
		sb.gpu = nvidiaSMIUsed
	}
	return sb
}

type sandbox struct {
	m     *memory
	stage string
	cg    *cgroup.Cgroup
	g     *guard.Guard
	gpu   func(ctx context.Context) (int64, error)
	ctx   context.Context
	stop  context.CancelFunc
}

func (s *sandbox) Prepare(cmd *exec.Cmd) error {
	if s.cg != nil {
		s.cg.Prepare(cmd)
	}
	return nil
}

func (s *sandbox) Started(pid int) {
	if s.cg != nil {
		if err := s.cg.Started(pid); err != nil {
			s.m.log.Warn("cannot move the worker into its cgroup", "err", err)
		}
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	o := guard.Options{Interval: s.m.cfg.Guard.Interval.D(), Floor: int64(s.m.cfg.Guard.Floor), GPU: s.gpu, Log: s.m.log}
	if s.cg != nil {
		o.CgroupDir = s.cg.Dir
	}
	s.g = guard.Start(s.ctx, pid, o)
}

func (s *sandbox) Finished() converter.Observation {
	var obs converter.Observation
	if s.g != nil {
		tl := s.g.Stop()
		s.stop()
		obs.GuardKilled = tl.Killed
		obs.Timeline = toReport(tl)
	}
	if s.cg != nil {
		if oom, err := s.cg.OOMKilled(); err == nil && oom {
			obs.CgroupOOM = true
		}
		if err := s.cg.Remove(); err != nil {
			// The next start-up's sweep retries; the build's outcome stands.
			s.m.log.Warn("worker cgroup not removed", "stage", s.stage, "dir", s.cg.Dir, "err", err)
		}
	}
	if obs.Timeline != nil {
		obs.Timeline.CgroupOOM = obs.CgroupOOM
	}
	return obs
}

// toReport converts the guard's timeline, downsampled for the report.
func toReport(t *guard.Timeline) *report.Timeline {
	if t == nil {
		return nil
	}
	// The guard writes -1 for a value it could not read; the report
	// leaves such values out (0 is omitted) instead of plotting a dip.
	nz := func(n int64) int64 {
		if n < 0 {
			return 0
		}
		return n
	}
	conv := func(s guard.Sample) report.Sample {
		s.MemAvailable, s.SwapUsed, s.SwapFree, s.WorkerRSS, s.GPUUsed = nz(s.MemAvailable), nz(s.SwapUsed), nz(s.SwapFree), nz(s.WorkerRSS), nz(s.GPUUsed)
		return report.Sample{AtMs: s.At.Milliseconds(), MemAvailable: s.MemAvailable, SwapUsed: s.SwapUsed, SwapFree: s.SwapFree,
			WorkerRSS: s.WorkerRSS, GPUUsed: s.GPUUsed, PSISomeAvg10: s.PSISomeAvg10}
	}
	r := &report.Timeline{IntervalMs: t.Interval.Milliseconds(), FloorBytes: t.Floor, Peak: conv(t.Peak), Killed: t.Killed,
		KillReason: t.KillReason, KilledAtMs: t.KilledAt.Milliseconds(), SwapUsedDelta: t.SwapUsedDelta, SwapVerdict: t.SwapVerdict}
	for _, s := range t.Downsample(600) {
		r.Samples = append(r.Samples, conv(s))
	}
	return r
}

// nvidiaSMIUsed reads the GPU memory in use on a discrete GPU without a
// CUDA context or cgo.
func nvidiaSMIUsed(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return -1, err
	}
	var total int64
	for _, l := range strings.Fields(string(out)) {
		n, err := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		if err == nil {
			total += n << 20
		}
	}
	return total, nil
}

// Busy implements Memory.
func (m *memory) Busy(b bool) {
	if m.swap != nil {
		m.swap.SetBusy(b)
	}
}

// Idle implements Memory: release an idle swapfile, at most every 30s.
func (m *memory) Idle(ctx context.Context) {
	if m.swap == nil || time.Since(m.lastIdle) < 30*time.Second {
		return
	}
	m.lastIdle = time.Now()
	if err := m.swap.MaybeReleaseIdle(ctx, time.Now()); err != nil {
		m.log.Debug("idle swap release", "err", err)
	}
}

// Record implements Memory.
func (m *memory) Record(sha, stage string) {
	m.mu.Lock()
	dev := m.dev
	m.mu.Unlock()
	if m.hist == nil || dev == nil {
		return
	}
	m.hist.Record(sha, dev.Fingerprint(), stage, time.Now())
	if err := m.hist.Save(); err != nil {
		m.log.Warn("cannot save planner history", "err", err)
	}
}

// Device implements Memory.
func (m *memory) Device(ctx context.Context) (*device.Device, []string) {
	d := m.device(ctx)
	if d == nil {
		return nil, nil
	}
	return d, d.Recommendations
}

// Now implements Memory: memory now (gopsutil reads /proc, no cgo), and
// the daemon's own RSS so an operator can see it stays flat.
func (m *memory) Now() *status.MemoryNow {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return nil
	}
	now := &status.MemoryNow{MemAvailable: int64(vm.Available)}
	if sw, err := mem.SwapMemory(); err == nil {
		now.SwapUsed = int64(sw.Used)
	}
	if p, err := process.NewProcess(int32(os.Getpid())); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			now.DaemonRSS = int64(mi.RSS)
		}
	}
	return now
}
