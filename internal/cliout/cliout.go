// Package cliout is the output of trtd's command-line programs: text and
// JSON for people and scripts on stdout, messages on stderr.
//
// A write to either fails only when its reader is gone (a closed pipe) or
// its file cannot take more (a full disk behind `> file`). A program then
// must not claim success, but checking each of a hundred printed lines
// would bury what the commands do. So stdout goes through a Latch, which
// keeps its first error for the program to check once before it exits,
// and the printing helpers here drop the per-line error: on a Latch it is
// kept, and on stderr there is nowhere left to report it.
package cliout

import (
	"fmt"
	"io"
)

// Latch is an io.Writer that keeps the first error of the writer it wraps
// and writes nothing after it (so a broken output is not half-continued).
type Latch struct {
	w   io.Writer
	err error
}

// NewLatch wraps w.
func NewLatch(w io.Writer) *Latch { return &Latch{w: w} }

// Write writes p to the wrapped writer unless an earlier write failed.
func (l *Latch) Write(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

// Err is the first write error, or nil.
func (l *Latch) Err() error { return l.err }

// Fprintf is fmt.Fprintf for a Latch or stderr (see the package comment).
func Fprintf(w io.Writer, format string, a ...any) { _, _ = fmt.Fprintf(w, format, a...) }

// Fprintln is fmt.Fprintln for a Latch or stderr.
func Fprintln(w io.Writer, a ...any) { _, _ = fmt.Fprintln(w, a...) }

// Fprint is fmt.Fprint for a Latch or stderr.
func Fprint(w io.Writer, a ...any) { _, _ = fmt.Fprint(w, a...) }
