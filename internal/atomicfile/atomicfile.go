// Package atomicfile replaces files so readers see the old content or the
// new, never a part: temp file in the same directory, fsync, rename, fsync
// the directory. Temporary files carry TempPrefix so startup can remove
// what a crash left.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the name of every temporary file trtd writes, so a crash
// leaves recognisable debris that startup removes.
const TempPrefix = ".trtd-tmp-"

// WriteFile writes data to path durably: readers see the old content
// or the new, never a part.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write calls write with a temporary file in path's directory (an
// *os.File), then fsyncs it, renames it over path and fsyncs the
// directory. On any error the temporary file is removed and path is
// untouched.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	return WriteWith(path, perm, write, Options{})
}

// Options tune WriteWith.
type Options struct {
	// NoSync skips the fsyncs: readers still never see a partial file, but
	// a crash may lose the update.
	NoSync bool
	// Written is called once the data is in the temporary file, Synced once
	// it is synced and closed (before the rename): for callers that record
	// their progress step by step.
	Written, Synced func()
}

// WriteWith is Write with options.
func WriteWith(path string, perm os.FileMode, write func(io.Writer) error, o Options) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-")
	if err != nil {
		return fmt.Errorf("create temp for %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		// On failure the error returned says what went wrong; closing and
		// removing the temp are clean-up only (a temp a failed Remove
		// leaves behind is RemoveTemps' to sweep), so their errors add
		// nothing the caller could act on.
		if err != nil {
			if !closed {
				_ = f.Close()
			}
			_ = os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	call(o.Written)
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if !o.NoSync {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
	}
	closed = true
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	call(o.Synced)
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	if o.NoSync {
		return nil
	}
	return SyncDir(dir)
}

func call(f func()) {
	if f != nil {
		f()
	}
}

// Replace writes data to path by temp file and rename, without fsync:
// readers never see a partial file, but a crash may lose the update. For
// files that are rewritten constantly and worthless after a crash (the
// status file).
func Replace(path string, data []byte, perm os.FileMode) error {
	return WriteWith(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, Options{NoSync: true})
}

// SyncDir fsyncs a directory so a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }() // opened read-only for the fsync, whose error is returned
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name is one of trtd's temporary files.
func IsTemp(name string) bool { return strings.HasPrefix(filepath.Base(name), TempPrefix) }

// RemoveTemps deletes trtd's temporary files left in dir by a crash.
func RemoveTemps(dir string) (removed []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	for _, e := range ents {
		if IsTemp(e.Name()) && !e.IsDir() {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err == nil {
				removed = append(removed, p)
			}
		}
	}
	return removed, nil
}

// RenameNoReplace renames old to new, failing with os.ErrExist instead of
// replacing an existing new.
func RenameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: os.ErrExist}
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Filesystems without RENAME_NOREPLACE: link+unlink keeps the guarantee.
		if err := os.Link(oldpath, newpath); err != nil {
			return err
		}
		return os.Remove(oldpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// CopyFile copies src to dst atomically (used when a rename crosses
// filesystems).
func CopyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only source; the copy's errors come from io.Copy
	return Write(dst, perm, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
