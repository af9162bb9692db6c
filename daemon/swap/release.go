package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ---- release ----

// Release swaps off and removes every daemon-owned swapfile. It refuses
// while a build runs (ErrBusy) and when memory cannot take back what a file
// holds (ErrNotEnoughMem).
func (m *Manager) Release(ctx context.Context) error {
	if m.euid() != 0 {
		return fmt.Errorf("%w (swapoff needs CAP_SYS_ADMIN)", ErrNotRoot)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.release()
}

func (m *Manager) release() error {
	if m.isBusy() {
		return ErrBusy
	}
	mk, err := m.loadMarker()
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range append([]markerFile(nil), mk.Files...) {
		if err := m.off(f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		m.dropEntry(mk, f.Path)
	}
	if err := m.saveMarker(mk); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// MaybeReleaseIdle finishes retiring replaced files and releases all daemon
// swap once no build has used it for swap.idle_release (0 = never).
func (m *Manager) MaybeReleaseIdle(ctx context.Context, now time.Time) error {
	if !m.cfg.Enabled || m.euid() != 0 {
		return nil
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if m.isBusy() {
		return nil
	}
	mk, err := m.loadMarker()
	if err != nil {
		return err
	}
	if len(mk.Files) == 0 {
		return nil
	}
	m.retireOld(mk, "")
	if err := m.saveMarker(mk); err != nil {
		return err
	}
	idle := m.cfg.IdleRelease.D()
	if idle <= 0 || m.lastUse.IsZero() || now.Sub(m.lastUse) < idle {
		return nil
	}
	m.log.Info("releasing idle swap", "idle", now.Sub(m.lastUse).Round(time.Second))
	return m.release()
}

// ---- reconcile ----

// Reconcile brings marker, /proc/swaps and the files in the swap directory
// into agreement after a crash or reboot: half-made files are removed,
// active daemon files missing from the marker are adopted, inactive ones
// (daemon swap is ephemeral) are removed. It never touches anything outside
// the swap directory or not named like a daemon swapfile.
func (m *Manager) Reconcile(ctx context.Context) error {
	if m.euid() != 0 {
		return fmt.Errorf("%w (reconciling swap needs root)", ErrNotRoot)
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m.lastUse = m.now()
	mk, err := m.loadMarker()
	if errors.Is(err, ErrMarkerCorrupt) {
		m.log.Error("swap marker is corrupt: rebuilding it from /proc/swaps and the swap directory", "err", err)
		_ = os.Rename(m.markerPath(), m.markerPath()+".corrupt")
		mk, err = &marker{Version: 1}, nil
	}
	if err != nil {
		return err
	}
	swaps, err := m.procSwaps()
	if err != nil {
		return err
	}
	dir := m.cfg.Dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	for _, f := range append([]markerFile(nil), mk.Files...) {
		if _, ok := findSwap(swaps, f.Path); ok {
			if f.State == StateCreating {
				m.log.Info("adopting a swapfile activated just before a crash", "path", f.Path)
				m.setState(mk, f.Path, StateActive)
			}
			continue
		}
		if err := os.Remove(f.Path); err == nil {
			m.log.Info("removed an inactive daemon swapfile", "path", f.Path, "state", f.State)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale swapfile: %w", err)
		}
		m.dropEntry(mk, f.Path)
	}
	known := map[string]bool{}
	for _, f := range mk.Files {
		known[f.Path] = true
	}
	for _, s := range swaps {
		if filepath.Dir(s.Path) != dir || !strings.HasPrefix(filepath.Base(s.Path), FilePrefix) {
			continue
		}
		if s.Deleted {
			m.log.Warn("a daemon swapfile was deleted while active; it stays in use until reboot", "path", s.Path)
			continue
		}
		if !known[s.Path] {
			m.log.Info("adopting an active daemon swapfile missing from the marker", "path", s.Path)
			size := s.Size + int64(os.Getpagesize()) // /proc/swaps leaves out the header page
			if fi, err := os.Stat(s.Path); err == nil {
				size = fi.Size()
			}
			mk.Files = append(mk.Files, markerFile{Path: s.Path, Size: size, State: StateActive, Created: m.now().UTC()})
			known[s.Path] = true
		}
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if !strings.HasPrefix(e.Name(), FilePrefix) || known[p] || !e.Type().IsRegular() {
				continue
			}
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove orphan swapfile: %w", err)
			}
			m.log.Info("removed an orphan swapfile (crash before swapon)", "path", p)
		}
	}
	sort.Slice(mk.Files, func(i, j int) bool { return mk.Files[i].Path < mk.Files[j].Path })
	return m.saveMarker(mk)
}
