package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/status"
)

// F-20: a file name or reason holding ESC/OSC/CSI sequences is shown
// escaped by `trtd status`, never sent to the terminal.
func TestStatusEscapesNames(t *testing.T) {
	evil := "\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4K\x07\u009b31mx\r.onnx"
	now := time.Now()
	s := &status.Status{PID: 1, Version: "1", State: "building", Started: now, Updated: now,
		Inbox: "/in", Outbox: "/out", Builder: "fake",
		Current: &status.Current{Job: "j1", Model: evil, Stage: "fast", StageIndex: 1, Stages: 1, Phase: "\x1b[5m", Started: now},
		Queue:   []status.QueueEntry{{Job: "j2", Model: evil, Since: now}},
		Waiting: []status.QueueEntry{{Job: "j3", Model: evil}},
		Last:    []status.LastResult{{Job: "j4", Model: evil, Outcome: "rejected\x1b[0m", Stage: "\x1b[1m", Reason: evil + " is not valid", At: now}},
	}
	var b bytes.Buffer
	printStatus(&b, s, true, now)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r\u009b") {
		t.Fatalf("control characters reach the terminal: %q", out)
	}
	if !strings.Contains(out, `\x1b]0;owned\x07`) {
		t.Errorf("name not shown escaped: %q", out)
	}
}
