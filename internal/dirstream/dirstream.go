// Package dirstream reads directories a batch of entries at a time, so a
// directory of 10,000 entries (a job store, an outbox with a long history)
// is never held in memory whole, sorted or not. Entries come in the
// order the filesystem returns them.
package dirstream

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Batch is how many entries one read returns at most.
const Batch = 128

// Each calls fn for every entry of dir. An error from fn stops the read
// and is returned.
func Each(dir string, fn func(fs.DirEntry) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose on close
	for {
		ents, err := f.ReadDir(Batch)
		for _, e := range ents {
			if ferr := fn(e); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Walk calls fn for every entry below root (not root itself), a
// directory before what it holds; fn returning fs.SkipDir for a directory
// skips its content. Symbolic links are not followed. A directory below
// root that cannot be read is skipped: Walk serves sweeps and sizes, where
// one unreadable corner must not stop the rest. Root (the directory with
// thousands of entries: a job store) is read a batch at a time and held
// open during the walk; each directory below it (a job's, a handful of
// entries) is read whole and closed before its content is visited, so a
// walk holds at most two descriptors, whatever the depth (a daemon under
// a low open-files limit still starts its workers). Walk returns the
// error reading root, or the first error of fn.
func Walk(root string, fn func(path string, d fs.DirEntry) error) error {
	err := Each(root, func(e fs.DirEntry) error { return visit(root, e, fn) })
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

// fnError carries an error of Walk's fn up through the levels, told apart
// from a directory that could not be read.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func visit(dir string, e fs.DirEntry, fn func(path string, d fs.DirEntry) error) error {
	p := filepath.Join(dir, e.Name())
	if err := fn(p, e); err != nil {
		if errors.Is(err, fs.SkipDir) && e.IsDir() {
			return nil
		}
		return fnError{err}
	}
	if !e.IsDir() {
		return nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil // unreadable below root: skipped
	}
	for _, c := range ents {
		if err := visit(p, c, fn); err != nil {
			return err
		}
	}
	return nil
}
