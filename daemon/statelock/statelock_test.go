package statelock

import (
	"errors"
	"os"
	"testing"
)

func TestOneHolderAtATime(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	var he *HeldError
	if !errors.Is(err, ErrHeld) || !errors.As(err, &he) || he.PID != os.Getpid() {
		t.Fatalf("second Acquire: %v, want ErrHeld naming pid %d", err, os.Getpid())
	}
	if err := Check(dir); !errors.Is(err, ErrHeld) {
		t.Fatalf("Check while held: %v", err)
	}
	l.Release()
	if err := Check(dir); err != nil {
		t.Fatalf("Check after release: %v", err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	l2.Release()
	if err := Check(t.TempDir()); err != nil {
		t.Fatalf("Check of a directory never locked: %v", err)
	}
}
