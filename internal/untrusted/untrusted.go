// Package untrusted opens files a user dropped somewhere without following
// links or blocking on FIFOs, and checks that what was opened is what was
// looked at.
package untrusted

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sentinel errors for untrusted files.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrSymlink    = errors.New("is a symbolic link")
	ErrChanged    = errors.New("file changed while it was opened")
)

// Open opens a file a user dropped somewhere: it refuses links,
// FIFOs, sockets, devices and directories without ever blocking on them,
// and checks that what was opened is what was looked at.
func Open(path string) (*os.File, os.FileInfo, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if li.Mode()&os.ModeSymlink != 0 {
		return nil, li, fmt.Errorf("%s: %w", path, ErrSymlink)
	}
	if !li.Mode().IsRegular() {
		return nil, li, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(li.Mode()))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, li, fmt.Errorf("%s: %w", path, ErrSymlink)
		}
		return nil, li, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	// Each refusal below closes the read-only descriptor nothing was read
	// from: its Close cannot fail in a way that matters, and the refusal is
	// the error to return.
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, li, err
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fi, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if !os.SameFile(li, fi) {
		_ = f.Close()
		return nil, fi, fmt.Errorf("%s: %w", path, ErrChanged)
	}
	// Back to blocking reads for a regular file.
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = f.Close()
		return nil, fi, err
	}
	return f, fi, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// Kind describes a file mode in words for error messages.
func Kind(m os.FileMode) string {
	if m.IsRegular() {
		return "regular file"
	}
	return kind(m)
}

// Inode returns the device and inode numbers of fi.
func Inode(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}
