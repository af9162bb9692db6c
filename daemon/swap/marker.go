package swap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trtd/trtd/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// ---- marker ----

type marker struct {
	Version int          `json:"version"`
	Files   []markerFile `json:"files"`
}

type markerFile struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	Priority *int      `json:"priority,omitempty"` // nil: kernel-assigned
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
}

func (m *Manager) markerPath() string { return filepath.Join(m.stateDir, markerName) }

func (m *Manager) loadMarker() (*marker, error) {
	data, err := os.ReadFile(m.markerPath())
	if errors.Is(err, os.ErrNotExist) {
		return &marker{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read swap marker: %w", err)
	}
	var mk marker
	if err := json.Unmarshal(data, &mk); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", m.markerPath(), ErrMarkerCorrupt, err)
	}
	if mk.Version != 1 {
		return nil, fmt.Errorf("%s: %w: unknown version %d", m.markerPath(), ErrMarkerCorrupt, mk.Version)
	}
	return &mk, nil
}

func (m *Manager) saveMarker(mk *marker) error {
	if err := os.MkdirAll(m.stateDir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if len(mk.Files) == 0 {
		err := os.Remove(m.markerPath())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove swap marker: %w", err)
		}
		return nil
	}
	data, _ := json.MarshalIndent(mk, "", "  ")
	return atomicfile.WriteFile(m.markerPath(), append(data, '\n'), 0o600)
}

// lock takes the cross-process lock; the returned func releases it.
func (m *Manager) lock() (func(), error) {
	m.mu.Lock()
	if err := os.MkdirAll(m.stateDir, 0o755); err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	p := filepath.Join(m.stateDir, lockName)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		_ = f.Close() // never written: the flock's error is the one to return
		m.mu.Unlock()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	// The lock file is never written: closing it only drops the flock.
	return func() { _ = f.Close(); m.mu.Unlock() }, nil
}

// ---- busy ----

// SetBusy marks that a build is running (no swapoff until it ends). The flag
// is also written to the state directory so other processes honour it.
func (m *Manager) SetBusy(busy bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.busy = busy
	m.lastUse = m.now()
	p := filepath.Join(m.stateDir, busyName)
	if busy {
		_ = os.MkdirAll(m.stateDir, 0o755)
		if err := atomicfile.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			m.log.Warn("could not record the busy flag for other processes", "err", err)
		}
		return
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("could not clear the busy flag", "err", err)
	}
}

// isBusy: this process is building, or another live process said so.
func (m *Manager) isBusy() bool {
	if m.busy {
		return true
	}
	data, err := os.ReadFile(filepath.Join(m.stateDir, busyName))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	err = unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// ---- status ----

// Status reports the daemon's swapfiles and every swap device of the system.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status()
}

func (m *Manager) status() (Status, error) {
	s := Status{Enabled: m.cfg.Enabled, Dir: m.cfg.Dir, MaxSize: int64(m.cfg.MaxSize),
		Reserve: int64(m.cfg.Reserve), Busy: m.isBusy(), Files: []FileStatus{}}
	mi, err := m.memInfo()
	if err != nil {
		return s, err
	}
	s.MemAvailable, s.SwapTotal, s.SwapFree = mi.MemAvailable, mi.SwapTotal, mi.SwapFree
	swaps, err := m.procSwaps()
	if err != nil {
		return s, err
	}
	s.System = swaps
	if dir := existingParent(m.cfg.Dir); dir != "" {
		var st unix.Statfs_t
		if m.statfs(dir, &st) == nil {
			k := classifyFS(int64(st.Type), m.kernel)
			s.FSType, s.FSProblem = k.Name, k.Refuse
			s.DiskFree = int64(st.Bavail) * int64(st.Bsize)
		}
	}
	mk, err := m.loadMarker()
	if err != nil {
		return s, err
	}
	for _, f := range mk.Files {
		fs := FileStatus{Path: f.Path, Size: f.Size, State: f.State}
		if p, ok := findSwap(swaps, f.Path); ok {
			fs.Active, fs.Used, fs.Priority = true, p.Used, p.Priority
			s.Owned += f.Size
			s.OwnedUsed += p.Used
		}
		s.Files = append(s.Files, fs)
	}
	return s, nil
}

func existingParent(p string) string {
	for p != "" && p != "/" {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		p = filepath.Dir(p)
	}
	return "/"
}

func findSwap(swaps []ProcSwap, path string) (ProcSwap, bool) {
	for _, s := range swaps {
		if s.Path == path && !s.Deleted {
			return s, true
		}
	}
	return ProcSwap{}, false
}
