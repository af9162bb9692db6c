package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type closedPipe struct{}

func (closedPipe) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestVersionToABrokenStdoutFails: the commands for people exit non-zero
// when their output did not reach stdout.
func TestVersionToABrokenStdoutFails(t *testing.T) {
	var se bytes.Buffer
	if code := run([]string{"version"}, nil, closedPipe{}, &se); code != 1 || !strings.Contains(se.String(), "writing the output: broken pipe") {
		t.Fatalf("exit %d, stderr %q", code, se.String())
	}
}

// TestEventsToAGoneDaemonAreLoggedOnce: a request whose events cannot be
// written still ends with its class's exit code, and the log says once why
// the events stopped.
func TestEventsToAGoneDaemonAreLoggedOnce(t *testing.T) {
	var se bytes.Buffer
	code := run(nil, strings.NewReader(`{"version":1,"op":"nonsense"}`), closedPipe{}, &se)
	if code != 14 {
		t.Fatalf("exit %d, want 14 (bad request)", code)
	}
	if n := strings.Count(se.String(), "events to the daemon not delivered"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, se.String())
	}
}
