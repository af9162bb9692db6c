// Package statelock gives one process at a time a state directory. The
// daemon holds it for its whole life; `trtd convert` checks it before it
// builds, so two daemons never share jobs and a foreground build never
// touches the swap of a running daemon. The lock is an flock(2) on
// <state>/lock: the kernel drops it when its holder dies, so no crash
// leaves a stale lock behind.
package statelock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Name is the lock file inside the state directory.
const Name = "lock"

// ErrHeld is returned when another process holds the state directory.
var ErrHeld = errors.New("the state directory is in use")

// HeldError says who holds the lock.
type HeldError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s: %v by another trtd (pid %d)", e.Dir, ErrHeld, e.PID)
	}
	return fmt.Sprintf("%s: %v by another trtd", e.Dir, ErrHeld)
}

func (e *HeldError) Unwrap() error { return ErrHeld }

// Lock is a held state directory.
type Lock struct{ f *os.File }

// Release gives the directory up.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		// Closing drops the flock, which is all Release is for; the file
		// holds only the pid line Acquire wrote, nothing buffered.
		_ = l.f.Close()
		l.f = nil
	}
}

// Acquire takes dir (creating it) for this process, or fails with a
// *HeldError naming the holder's pid.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	p := filepath.Join(dir, Name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close() // not locked, nothing written: the flock's error is the one to return
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Dir: dir, PID: readPID(p)}
		}
		return nil, fmt.Errorf("state lock %s: %w", p, err)
	}
	// The flock is the lock. The pid line only names the holder in
	// another instance's HeldError, which leaves the pid out without it; a state
	// directory that cannot take it fails the daemon's first real write
	// with the error that matters.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Check reports whether another process holds dir, without creating
// anything (for a user who cannot write there): a *HeldError if so, nil if
// nobody does or no lock file exists.
func Check(dir string) error {
	p := filepath.Join(dir, Name)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read-only, opened for a probing flock
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return &HeldError{Dir: dir, PID: readPID(p)}
	}
	return nil
}

func readPID(p string) int {
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
