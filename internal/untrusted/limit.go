package untrusted

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// ErrTooLarge is returned by ReadFileLimit for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadFileLimit reads a small untrusted file whole (opened as Open does),
// refusing before reading one larger than limit bytes, and never reading
// more than limit bytes should it grow meanwhile.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only; read errors are returned below
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes (limit %d)", filepath.Base(path), ErrTooLarge, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: over %d bytes", filepath.Base(path), ErrTooLarge, limit)
	}
	return b, nil
}
