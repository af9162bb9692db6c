package swap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/internal/bytesize"
)

// Sentinel errors; every error the manager returns wraps one of these or an
// I/O error naming the file.
var (
	ErrDisabled       = errors.New("swap management is disabled (swap.enabled = false)")
	ErrUnsupportedFS  = errors.New("filesystem cannot hold a swapfile")
	ErrNoSpace        = errors.New("not enough free disk space for the swapfile")
	ErrBusy           = errors.New("a build is running: swap is not released now")
	ErrNotRoot        = errors.New("managing swap needs root")
	ErrTooLarge       = errors.New("requested swap exceeds swap.max_size")
	ErrNotEnoughMem   = errors.New("not enough available memory to take the swapped-out pages back")
	ErrSwapon         = errors.New("swapon did not activate the swapfile")
	ErrSwapoff        = errors.New("swapoff did not deactivate the swapfile")
	ErrMkswap         = errors.New("mkswap failed")
	ErrMarkerCorrupt  = errors.New("swap marker is corrupt")
	errHolesSuspected = errors.New("swapon rejected a preallocated file")
)

// FilePrefix starts the name of every swapfile the daemon creates.
const FilePrefix = "trtd-swap-"

const (
	markerName = "swap.json"
	lockName   = "swap.lock"
	busyName   = "swap.busy"
	chunk      = 4 << 20
)

// File states in the marker.
const (
	StateCreating = "creating" // written before the file exists; not yet swapped on
	StateActive   = "active"   // swapped on and verified in /proc/swaps
	StateRetiring = "retiring" // replaced by a larger file; swapped off when safe
)

// Manager owns the daemon's swapfiles. It is safe for concurrent use and
// serialises with other processes (the CLI) through a lock file.
type Manager struct {
	cfg      config.Swap
	stateDir string
	log      *slog.Logger

	proc      string
	mkswap    string
	swapon    string
	swapoff   string
	now       func() time.Time
	statfs    func(path string, st *unix.Statfs_t) error
	euid      func() int
	kernel    string
	margin    int64
	forceFill bool

	mu      sync.Mutex
	busy    bool
	lastUse time.Time
}

// Option customises a Manager (tests, other roots).
type Option func(*Manager)

// WithProcRoot reads swaps and meminfo under dir instead of /proc.
func WithProcRoot(dir string) Option { return func(m *Manager) { m.proc = dir } }

// WithCommands sets absolute paths of mkswap, swapon and swapoff.
func WithCommands(mkswap, swapon, swapoff string) Option {
	return func(m *Manager) { m.mkswap, m.swapon, m.swapoff = mkswap, swapon, swapoff }
}

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithStatfs replaces statfs(2) (a test double for the free-space query).
func WithStatfs(f func(path string, st *unix.Statfs_t) error) Option {
	return func(m *Manager) { m.statfs = f }
}

// WithEUID replaces os.Geteuid.
func WithEUID(f func() int) Option { return func(m *Manager) { m.euid = f } }

// WithKernelRelease sets the kernel release used for filesystem decisions.
func WithKernelRelease(r string) Option { return func(m *Manager) { m.kernel = r } }

// WithSwapoffMargin is the memory that must stay available on top of what a
// swapfile holds before it is swapped off (default 256 MiB).
func WithSwapoffMargin(n int64) Option { return func(m *Manager) { m.margin = n } }

// WithZeroFill forces zero-fill instead of fallocate (benchmarks, tests).
func WithZeroFill() Option { return func(m *Manager) { m.forceFill = true } }

// New returns a manager of cfg's swapfiles, its marker in stateDir.
func New(cfg config.Swap, stateDir string, log *slog.Logger, opts ...Option) *Manager {
	m := &Manager{cfg: cfg, stateDir: stateDir, log: log, proc: "/proc",
		mkswap: findTool("mkswap"), swapon: findTool("swapon"), swapoff: findTool("swapoff"),
		now: time.Now, statfs: unix.Statfs, euid: os.Geteuid, margin: 256 << 20}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = unix.ByteSliceToString(u.Release[:])
	}
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// findTool returns the absolute path of a util-linux tool (sbin first: the
// daemon's PATH is not trusted).
func findTool(name string) string {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return filepath.Join("/sbin", name)
}

// FileStatus is one daemon-owned swapfile.
type FileStatus struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Used     int64  `json:"used"`
	Priority int    `json:"priority"`
	State    string `json:"state"`
	Active   bool   `json:"active"`
}

// Status describes the daemon's swap and the system's.
type Status struct {
	Enabled      bool         `json:"enabled"`
	Dir          string       `json:"dir"`
	FSType       string       `json:"fs_type,omitempty"`
	FSProblem    string       `json:"fs_problem,omitempty"`
	DiskFree     int64        `json:"disk_free"`
	Reserve      int64        `json:"reserve"`
	MaxSize      int64        `json:"max_size"`
	Owned        int64        `json:"owned"` // bytes of active daemon swap
	OwnedUsed    int64        `json:"owned_used"`
	Files        []FileStatus `json:"files"`
	Busy         bool         `json:"busy"`
	System       []ProcSwap   `json:"system"`
	MemAvailable int64        `json:"mem_available"`
	SwapTotal    int64        `json:"swap_total"`
	SwapFree     int64        `json:"swap_free"`
}

// String renders the status for people.
func (s Status) String() string {
	var b strings.Builder
	state := "enabled"
	if !s.Enabled {
		state = "disabled (swap.enabled = false)"
	}
	fmt.Fprintf(&b, "trtd swap: %s, dir %s", state, s.Dir)
	if s.FSType != "" {
		fmt.Fprintf(&b, " (%s, %s free, reserve %s)", s.FSType, bytesize.Format(s.DiskFree), bytesize.Format(s.Reserve))
	}
	b.WriteString("\n")
	if s.FSProblem != "" {
		fmt.Fprintf(&b, "  cannot create swap there: %s\n", s.FSProblem)
	}
	if len(s.Files) == 0 {
		fmt.Fprintf(&b, "  owns no swapfile (max %s)\n", bytesize.Format(s.MaxSize))
	}
	for _, f := range s.Files {
		desc := f.State + ", not in /proc/swaps"
		if f.Active {
			desc = fmt.Sprintf("%s, priority %d, %s used", f.State, f.Priority, bytesize.Format(f.Used))
		}
		fmt.Fprintf(&b, "  %s  %s  %s\n", f.Path, bytesize.Format(f.Size), desc)
	}
	if s.Busy {
		b.WriteString("  a build is running: no swapoff until it ends\n")
	}
	fmt.Fprintf(&b, "system: MemAvailable %s, swap %s total, %s free\n", bytesize.Format(s.MemAvailable), bytesize.Format(s.SwapTotal), bytesize.Format(s.SwapFree))
	for _, p := range s.System {
		fmt.Fprintf(&b, "  %-40s %-9s %9s  used %9s  priority %d\n", p.Path, p.Type, bytesize.Format(p.Size), bytesize.Format(p.Used), p.Priority)
	}
	return b.String()
}

// ---- ensure ----

// Ensure makes the daemon's active swap at least total bytes, creating a
// swapfile or growing by replacement. It returns the resulting status.
func (m *Manager) Ensure(ctx context.Context, total int64) (Status, error) {
	if !m.cfg.Enabled {
		return Status{}, ErrDisabled
	}
	if total > int64(m.cfg.MaxSize) {
		return Status{}, fmt.Errorf("%w: %s requested, swap.max_size is %s", ErrTooLarge, bytesize.Format(total), bytesize.Format(int64(m.cfg.MaxSize)))
	}
	if m.euid() != 0 {
		return Status{}, fmt.Errorf("%w (swapon/swapoff need CAP_SYS_ADMIN)", ErrNotRoot)
	}
	unlock, err := m.lock()
	if err != nil {
		return Status{}, err
	}
	defer unlock()
	m.lastUse = m.now()
	if total <= 0 {
		return m.status()
	}
	mk, err := m.loadMarker()
	if err != nil {
		return Status{}, err
	}
	swaps, err := m.procSwaps()
	if err != nil {
		return Status{}, err
	}
	var have int64
	for _, f := range mk.Files {
		// Marker sizes: /proc/swaps leaves out the header page. A retiring
		// file goes away soon: it does not count.
		if _, ok := findSwap(swaps, f.Path); ok && f.State != StateRetiring {
			have += f.Size
		}
	}
	if have >= total {
		m.log.Debug("swap already sufficient", "have", have, "want", total)
		m.retireOld(mk, "")
		_ = m.saveMarker(mk)
		return m.status()
	}
	path, err := m.create(ctx, mk, swaps, total)
	if err != nil {
		return Status{}, err
	}
	m.retireOld(mk, path)
	if err := m.saveMarker(mk); err != nil {
		return Status{}, err
	}
	return m.status()
}

// create makes, formats and activates one swapfile of size bytes.
func (m *Manager) create(ctx context.Context, mk *marker, swaps []ProcSwap, size int64) (string, error) {
	if err := os.MkdirAll(m.cfg.Dir, 0o700); err != nil {
		return "", fmt.Errorf("create swap dir %s: %w", m.cfg.Dir, err)
	}
	// The kernel lists swapfiles by their resolved path.
	dir, err := filepath.EvalSymlinks(m.cfg.Dir)
	if err != nil {
		return "", fmt.Errorf("resolve swap dir %s: %w", m.cfg.Dir, err)
	}
	var st unix.Statfs_t
	if err := m.statfs(dir, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", dir, err)
	}
	kind := classifyFS(int64(st.Type), m.kernel)
	if kind.Refuse != "" {
		return "", fmt.Errorf("%s is on %s: %w: %s", m.cfg.Dir, kind.Name, ErrUnsupportedFS, kind.Refuse)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := size + int64(m.cfg.Reserve); free < need {
		return "", fmt.Errorf("%s (%s): %w: %s free, need %s for the swapfile plus the %s reserve (swap.reserve) kept for engines and reports",
			m.cfg.Dir, kind.Name, ErrNoSpace, bytesize.Format(free), bytesize.Format(size), bytesize.Format(int64(m.cfg.Reserve)))
	}
	prio := m.priority(swaps, mk)
	path := filepath.Join(dir, m.nextName(dir, mk))
	entry := markerFile{Path: path, Size: size, Priority: prio, State: StateCreating, Created: m.now().UTC()}
	mk.Files = append(mk.Files, entry)
	// The marker names the file before it exists: a crash from here on
	// leaves a half file that Reconcile recognises and removes.
	if err := m.saveMarker(mk); err != nil {
		mk.Files = mk.Files[:len(mk.Files)-1]
		return "", err
	}
	start := m.now()
	err = m.makeActive(ctx, path, size, prio, kind)
	if err != nil {
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			m.log.Error("could not remove a failed swapfile", "path", path, "err", rerr)
		}
		m.dropEntry(mk, path)
		if serr := m.saveMarker(mk); serr != nil {
			m.log.Error("could not update the swap marker", "err", serr)
		}
		return "", err
	}
	m.setState(mk, path, StateActive)
	m.log.Info("swapfile active", "path", path, "size", size, "fs", kind.Name,
		"priority", prioString(prio), "took", m.now().Sub(start).Round(time.Millisecond))
	return path, nil
}

func prioString(p *int) string {
	if p == nil {
		return "kernel-assigned"
	}
	return strconv.Itoa(*p)
}

func (m *Manager) makeActive(ctx context.Context, path string, size int64, prio *int, kind fsKind) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create swapfile %s: %w", path, err)
	}
	// A file written here, but every write is fsynced, and its error
	// returned, before swapon uses the file: Close has no write error left
	// to carry. After a swapon it must not fail makeActive either, since
	// the caller would then unlink an active swapfile and forget it.
	defer func() { _ = f.Close() }()
	if err := f.Chown(0, 0); err != nil {
		return fmt.Errorf("chown swapfile %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod swapfile %s: %w", path, err)
	}
	if kind.NOCOW {
		if err := setNOCOW(f); err != nil {
			return fmt.Errorf("%s is on btrfs: %w: cannot set NOCOW on %s (%v); btrfs swapfiles need NOCOW",
				m.cfg.Dir, ErrUnsupportedFS, path, err)
		}
	}
	prealloc := kind.Fallocate && !m.forceFill
	if prealloc {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOSPC):
			return fmt.Errorf("fallocate %s (%s): %w: %v", path, bytesize.Format(size), ErrNoSpace, err)
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			m.log.Info("fallocate not supported here: writing zeroes", "path", path)
			prealloc = false
		default:
			return fmt.Errorf("fallocate %s: %w", path, err)
		}
	}
	if !prealloc {
		if err := zeroFill(ctx, f, size); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("fsync %s: %w: %v", path, ErrNoSpace, err)
		}
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	err = m.formatAndSwapon(ctx, path, prio)
	if errors.Is(err, errHolesSuspected) && prealloc {
		m.log.Warn("swapon rejected the preallocated file: rewriting it with zeroes", "path", path, "err", err)
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("seek %s: %w", path, serr)
		}
		if err := zeroFill(ctx, f, size); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
		err = m.formatAndSwapon(ctx, path, prio)
	}
	if errors.Is(err, errHolesSuspected) {
		return fmt.Errorf("%w: %v", ErrSwapon, err)
	}
	return err
}

// zeroFill writes size zero bytes from the current offset in chunks.
func zeroFill(ctx context.Context, f *os.File, size int64) error {
	buf := make([]byte, chunk)
	for done := int64(0); done < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(len(buf))
		if size-done < n {
			n = size - done
		}
		w, err := f.Write(buf[:n])
		done += int64(w)
		if err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("%w after %s: %v", ErrNoSpace, bytesize.Format(done), err)
			}
			return err
		}
	}
	return nil
}

func (m *Manager) formatAndSwapon(ctx context.Context, path string, prio *int) error {
	if out, err := exec.CommandContext(ctx, m.mkswap, path).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s %s: %v: %s", ErrMkswap, m.mkswap, path, err, bytes.TrimSpace(out))
	}
	args := []string{}
	if prio != nil {
		args = append(args, "--priority", strconv.Itoa(*prio))
	}
	args = append(args, path)
	out, runErr := exec.CommandContext(ctx, m.swapon, args...).CombinedOutput()
	swaps, err := m.procSwaps()
	if err != nil {
		return err
	}
	if _, ok := findSwap(swaps, path); ok {
		if runErr != nil {
			m.log.Warn("swapon reported an error but the swapfile is active", "path", path, "err", runErr, "output", string(bytes.TrimSpace(out)))
		}
		return nil
	}
	msg := string(bytes.TrimSpace(out))
	if runErr == nil {
		return fmt.Errorf("%w: %s exited 0 but %s is not in %s/swaps", ErrSwapon, m.swapon, path, m.proc)
	}
	if strings.Contains(msg, "hole") || strings.Contains(msg, "Invalid argument") {
		return fmt.Errorf("%w: %s %s: %v: %s", errHolesSuspected, m.swapon, path, runErr, msg)
	}
	return fmt.Errorf("%w: %s %s: %v: %s", ErrSwapon, m.swapon, path, runErr, msg)
}

// priority returns the swap priority for a new file: below every swap
// device the daemon does not own (zram first of all), or the configured one.
func (m *Manager) priority(swaps []ProcSwap, mk *marker) *int {
	owned := map[string]bool{}
	for _, f := range mk.Files {
		owned[f.Path] = true
	}
	minOther, others, minZram := 0, 0, 1<<31-1
	for _, s := range swaps {
		if owned[s.Path] {
			continue
		}
		if others == 0 || s.Priority < minOther {
			minOther = s.Priority
		}
		others++
		if s.IsZram() && s.Priority < minZram {
			minZram = s.Priority
		}
	}
	if m.cfg.Priority >= 0 {
		p := m.cfg.Priority
		if minZram != 1<<31-1 && p >= minZram {
			m.log.Warn("configured swap.priority is not below zram: the disk swapfile may be used before compressed RAM",
				"priority", p, "zram_priority", minZram)
		}
		return &p
	}
	if others > 0 && minOther > 0 {
		p := minOther - 1
		return &p
	}
	// No other device, or one already at priority 0 or kernel-assigned:
	// a kernel-assigned priority ranks below every existing device.
	return nil
}

func (m *Manager) nextName(dir string, mk *marker) string {
	n := 0
	seen := func(name string) {
		if v, err := strconv.Atoi(strings.TrimPrefix(name, FilePrefix)); err == nil && v >= n {
			n = v + 1
		}
	}
	for _, f := range mk.Files {
		seen(filepath.Base(f.Path))
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), FilePrefix) {
				seen(e.Name())
			}
		}
	}
	return FilePrefix + strconv.Itoa(n)
}

func (m *Manager) dropEntry(mk *marker, path string) {
	out := mk.Files[:0]
	for _, f := range mk.Files {
		if f.Path != path {
			out = append(out, f)
		}
	}
	mk.Files = out
}

func (m *Manager) setState(mk *marker, path, state string) {
	for i := range mk.Files {
		if mk.Files[i].Path == path {
			mk.Files[i].State = state
		}
	}
}

// retireOld swaps off every owned file except keep, when it is safe: no
// build running and MemAvailable covers what the file holds. Files that
// cannot go yet stay, marked retiring.
func (m *Manager) retireOld(mk *marker, keep string) {
	if keep == "" {
		// Only files already marked retiring are candidates.
		for _, f := range append([]markerFile(nil), mk.Files...) {
			if f.State == StateRetiring {
				m.tryRemove(mk, f)
			}
		}
		return
	}
	for _, f := range append([]markerFile(nil), mk.Files...) {
		if f.Path != keep {
			m.setState(mk, f.Path, StateRetiring)
			f.State = StateRetiring
			m.tryRemove(mk, f)
		}
	}
}

func (m *Manager) tryRemove(mk *marker, f markerFile) {
	if m.isBusy() {
		m.log.Info("keeping the old swapfile until the build ends", "path", f.Path)
		return
	}
	if err := m.off(f.Path); err != nil {
		m.log.Warn("old swapfile stays for now", "path", f.Path, "err", err)
		return
	}
	m.dropEntry(mk, f.Path)
}

// off swaps path off (when active and memory allows) and unlinks it.
func (m *Manager) off(path string) error {
	swaps, err := m.procSwaps()
	if err != nil {
		return err
	}
	if p, ok := findSwap(swaps, path); ok {
		mi, err := m.memInfo()
		if err != nil {
			return err
		}
		if mi.MemAvailable < p.Used+m.margin {
			return fmt.Errorf("%s holds %s, MemAvailable is %s (need %s more margin): %w",
				path, bytesize.Format(p.Used), bytesize.Format(mi.MemAvailable), bytesize.Format(m.margin), ErrNotEnoughMem)
		}
		out, runErr := exec.Command(m.swapoff, path).CombinedOutput()
		swaps, err := m.procSwaps()
		if err != nil {
			return err
		}
		if _, still := findSwap(swaps, path); still {
			return fmt.Errorf("%w: %s %s: %v: %s", ErrSwapoff, m.swapoff, path, runErr, bytes.TrimSpace(out))
		}
		m.log.Info("swapfile off", "path", path, "held", p.Used)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove swapfile: %w", err)
	}
	return nil
}
