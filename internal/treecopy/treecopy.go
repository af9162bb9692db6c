// Package treecopy copies a file or a directory of regular files, hard-linking
// where allowed.
package treecopy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

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
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := Copy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), link); err != nil {
				return err
			}
		}
		return nil
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
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
