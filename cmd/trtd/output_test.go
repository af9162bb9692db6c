package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestOutputNotWrittenFailsTheCommand: a command whose stdout could not be
// written (a full disk behind `> file`) exits non-zero and says why, even
// though the command itself succeeded.
func TestOutputNotWrittenFailsTheCommand(t *testing.T) {
	var se bytes.Buffer
	if code := mainArgs([]string{"help"}, &bytes.Buffer{}, &se); code != 0 {
		t.Fatalf("help to a good stdout: exit %d", code)
	}
	code := mainArgs([]string{"help"}, fullDisk{}, &se)
	if code != 1 || !strings.Contains(se.String(), "trtd: writing the output: no space left on device") {
		t.Fatalf("help to a full disk: exit %d, stderr %q", code, se.String())
	}
}
