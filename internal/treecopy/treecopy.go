// Package treecopy copies a file or a directory of regular files, hard-linking
// where allowed, or durably (each file synced before it is named).
package treecopy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/untrusted"
)

// Copy copies a regular file or a directory of regular files from src
// to dst. With link set, files are hard-linked where the filesystem allows
// (falling back to a copy); links, FIFOs and devices are refused.
func Copy(src, dst string, link bool) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return eachEntry(src, dst, func(s, d string, _ os.DirEntry) error { return Copy(s, d, link) })
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w (%s)", src, untrusted.ErrNotRegular, untrusted.Kind(fi.Mode()))
	}
	if link && os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only source; read errors come from io.Copy
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy already failed: its error is the one to return
		return err
	}
	return out.Close()
}

// Durable copies the directory src to dst, each regular file through
// atomicfile.CopyFile (written under a temporary name, synced, then
// renamed) with mode 0644, so that once the tree is renamed into place no
// file in it can turn out empty after a crash. Links, FIFOs and devices
// are passed over.
func Durable(src, dst string) error {
	return eachEntry(src, dst, func(s, d string, e os.DirEntry) error {
		switch {
		case e.IsDir():
			return Durable(s, d)
		case e.Type().IsRegular():
			return atomicfile.CopyFile(s, d, 0o644)
		}
		return nil
	})
}

// eachEntry makes the directory dst and calls f for each entry of src
// with the entry's source and destination paths.
func eachEntry(src, dst string, f func(s, d string, e os.DirEntry) error) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := f(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), e); err != nil {
			return err
		}
	}
	return nil
}
