package cliout

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// failAfter accepts n writes, then fails every one.
type failAfter struct {
	n   int
	buf bytes.Buffer
}

var errFull = errors.New("no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errFull
	}
	f.n--
	return f.buf.Write(p)
}

func TestLatchKeepsTheFirstErrorAndStopsWriting(t *testing.T) {
	f := &failAfter{n: 1}
	l := NewLatch(f)
	Fprintln(l, "one")
	if l.Err() != nil {
		t.Fatalf("Err after a good write = %v", l.Err())
	}
	Fprintf(l, "%s\n", "two")
	Fprint(l, "three")
	f.n = 10 // the writer recovers: the latch must still refuse
	if _, err := l.Write([]byte("four")); !errors.Is(err, errFull) {
		t.Fatalf("Write after a failure = %v, want %v", err, errFull)
	}
	if !errors.Is(l.Err(), errFull) {
		t.Fatalf("Err = %v, want %v", l.Err(), errFull)
	}
	if got := f.buf.String(); got != "one\n" {
		t.Fatalf("written %q, want only the line before the failure", got)
	}
}

type short struct{}

func (short) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestLatchTurnsAShortWriteIntoAnError(t *testing.T) {
	l := NewLatch(short{})
	Fprint(l, "abcd")
	if !errors.Is(l.Err(), io.ErrShortWrite) {
		t.Fatalf("Err = %v, want io.ErrShortWrite", l.Err())
	}
}
