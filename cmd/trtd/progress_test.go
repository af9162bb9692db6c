package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/status"
)

func building(phase string, start time.Time) *status.Status {
	return &status.Status{State: "building", Current: &status.Current{Job: "j1", Model: "net.onnx", Stage: "fast", StageIndex: 1, Stages: 3,
		Phase: phase, Started: start, StageStart: start}}
}

// On a terminal: one line redrawn in place, log lines above it, never
// glued to it.
func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t0
	p := newProgress(&b, true)
	p.now = func() time.Time { return now }
	p.Update(building("parsing", t0))
	now = now.Add(5 * time.Second)
	p.Tick()
	p.Write([]byte("time=... level=WARN msg=\"swap grown\"\n"))
	p.Done()
	want := "\r\033[Kbuilding net.onnx: stage fast (1/3), parsing, 0s" +
		"\r\033[Kbuilding net.onnx: stage fast (1/3), parsing, 5s" +
		"\r\033[Ktime=... level=WARN msg=\"swap grown\"\nbuilding net.onnx: stage fast (1/3), parsing, 5s" +
		"\r\033[K"
	if b.String() != want {
		t.Errorf("terminal output\n%q\nwant\n%q", b.String(), want)
	}
}

// Not on a terminal: plain lines, one per change and one per 30 s while
// nothing changes; no control characters.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t0
	p := newProgress(&b, false)
	p.now = func() time.Time { return now }
	for i := 0; i < 40; i++ { // 40 s of once-a-second status updates
		p.Update(building("building", t0))
		now = now.Add(time.Second)
	}
	p.Update(building("serializing", t0))
	p.Update(&status.Status{State: "idle", Inbox: "/tmp/trtd-convert-1/inbox"}) // not news
	p.Write([]byte("level=WARN msg=x\n"))
	p.Done()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{"building net.onnx: stage fast (1/3), building, 0s", "building net.onnx: stage fast (1/3), building, 30s",
		"building net.onnx: stage fast (1/3), serializing, 40s", "level=WARN msg=x"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
	if strings.ContainsAny(b.String(), "\r\033") {
		t.Error("control characters in plain output")
	}
}

// On a narrow terminal the line is cut to fit, so it never wraps.
func TestProgressFitsTheTerminal(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	p := newProgress(&b, true)
	p.now = func() time.Time { return t0 }
	p.width = 30
	p.Update(building("parsing", t0))
	want := "\r\033[Kbuilding net.onnx: stage fas…"
	if b.String() != want || len([]rune(strings.TrimPrefix(b.String(), "\r\033[K"))) != 29 {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
