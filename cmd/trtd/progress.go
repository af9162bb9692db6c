package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/cliout"
)

// progress owns the terminal while `trtd convert` runs. On a terminal it
// keeps one status line (the build's stage, phase, elapsed time and
// memory) at the bottom, redrawn in place; a log line is
// written above it (the status line is cleared first and drawn again
// after), so the two never run into each other. Elsewhere (a pipe, a file,
// CI) it writes plain lines: one when the stage, part or phase changes,
// and at most one every plainEvery while nothing changes.
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	tty        bool
	status     *status.Status
	drawn      string    // the line on the terminal now
	lastKey    string    // plain mode: what the last line said, without the clock
	lastPlain  time.Time // plain mode: when it was written
	plainEvery time.Duration
	now        func() time.Time
	// width is the terminal's width: a longer line would wrap, and "\r"
	// with erase-line only clears its last row.
	width int
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, plainEvery: 30 * time.Second, now: time.Now}
}

// Update takes a status change from the daemon.
func (p *progress) Update(s *status.Status) {
	// Only a build or a wait is news here: "idle, watching" would name
	// the private inbox convert works in.
	if s.Current == nil && s.State != "waiting_for_builder" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := *s
	p.status = &c
	p.render(false)
}

// Tick redraws the line so its elapsed time moves (terminal only).
func (p *progress) Tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.render(false)
	}
}

func (p *progress) render(force bool) {
	if p.status == nil {
		return
	}
	now := p.now()
	line := p.status.OneLine(now)
	if p.tty {
		if r := []rune(line); p.width > 1 && len(r) > p.width-1 {
			line = string(r[:p.width-2]) + "…"
		}
		if line != p.drawn || force {
			cliout.Fprintf(p.w, "\r\033[K%s", line)
			p.drawn = line
		}
		return
	}
	key := progressKey(p.status)
	if key == p.lastKey && now.Sub(p.lastPlain) < p.plainEvery {
		return
	}
	p.lastKey, p.lastPlain = key, now
	cliout.Fprintln(p.w, line)
}

// progressKey is what a status says apart from the clock.
func progressKey(s *status.Status) string {
	if c := s.Current; c != nil {
		return fmt.Sprintf("%s|%s|%d|%s|%d/%d", c.Job, c.Stage, c.Part, c.Phase, c.Step, c.Steps)
	}
	return s.OneLine(time.Time{})
}

// Write is the log's writer: each log record goes above the status line.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty || p.drawn == "" {
		return p.w.Write(b)
	}
	cliout.Fprint(p.w, "\r\033[K")
	n, err := p.w.Write(b)
	if !bytes.HasSuffix(b, []byte("\n")) {
		cliout.Fprintln(p.w)
	}
	cliout.Fprint(p.w, p.drawn)
	return n, err
}

// Done clears the status line, leaving the terminal as it was.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn != "" {
		cliout.Fprint(p.w, "\r\033[K")
		p.drawn = ""
	}
}
