package status

import (
	"log/slog"
	"sync"
	"time"

	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/jobs"
)

// Board holds the status in memory and mirrors it to the status file, the
// STATUS= line and the optional progress callback on every change. It is
// safe for concurrent use.
type Board struct {
	// Path is the status file.
	Path string
	// Notify receives the one-line status (systemd STATUS=); may be nil.
	Notify func(line string)
	// Progress receives every change (a terminal line); may be nil.
	Progress func(*Status)
	// Memory reads memory now for the file; may be nil.
	Memory func() *MemoryNow
	// Fleet reads the fleet registry's status; may be nil.
	Fleet func() *fleet.Status
	Log   *slog.Logger

	mu sync.Mutex
	s  Status
}

// NewBoard starts a status in state "starting".
func NewBoard(initial Status) *Board {
	b := &Board{s: initial}
	b.s.State = "starting"
	return b
}

func nonNil(q []QueueEntry) []QueueEntry {
	if q == nil {
		return []QueueEntry{}
	}
	return q
}

// Update writes the status out (file, STATUS=, callback).
func (b *Board) Update() {
	b.mu.Lock()
	b.s.Updated = time.Now().UTC()
	if b.Fleet != nil {
		b.s.Fleet = b.Fleet()
	}
	if b.Memory != nil {
		b.s.Memory = b.Memory()
	}
	b.s.Line = b.s.OneLine(time.Now())
	s := b.s
	s.Queue = append([]QueueEntry(nil), b.s.Queue...)
	s.Waiting = append([]QueueEntry(nil), b.s.Waiting...)
	s.Last = append([]LastResult(nil), b.s.Last...)
	if b.s.Current != nil {
		c := *b.s.Current
		s.Current = &c
	}
	b.mu.Unlock()
	if err := write(b.Path, &s); err != nil && b.Log != nil {
		b.Log.Debug("cannot write status file", "err", err)
	}
	if b.Notify != nil {
		b.Notify(s.Line)
	}
	if b.Progress != nil {
		b.Progress(&s)
	}
}

// SetDisk records the space finished work takes.
func (b *Board) SetDisk(d Disk) {
	b.mu.Lock()
	b.s.Disk = &d
	b.mu.Unlock()
}

// Snapshot is the status now, with its line.
func (b *Board) Snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.Line = s.OneLine(time.Now())
	return s
}

// SetState sets the daemon's state.
func (b *Board) SetState(state string) {
	b.mu.Lock()
	b.s.State = state
	b.mu.Unlock()
	b.Update()
}

// SetQueue replaces the queue; an idle daemon's state follows it.
func (b *Board) SetQueue(q []*jobs.Job) {
	b.mu.Lock()
	b.s.Queue = []QueueEntry{}
	for _, j := range q {
		b.s.Queue = append(b.s.Queue, QueueEntry{Job: j.ID, Model: j.Name, Since: j.Created})
	}
	if b.s.Current == nil && b.s.State != "stopping" && b.s.State != "starting" {
		if len(b.s.Waiting) > 0 && len(q) == 0 {
			b.s.State = "waiting_for_builder"
		} else {
			b.s.State = "idle"
		}
	}
	b.mu.Unlock()
	b.Update()
}

// SetWaiting replaces the jobs waiting for a builder (without writing out:
// a queue change follows).
func (b *Board) SetWaiting(w []QueueEntry) {
	b.mu.Lock()
	b.s.Waiting = nonNil(w)
	b.mu.Unlock()
}

// AddWaiting parks one more job for lack of a builder.
func (b *Board) AddWaiting(e QueueEntry) {
	b.mu.Lock()
	b.s.Waiting = append(b.s.Waiting, e)
	b.s.State = "waiting_for_builder"
	b.mu.Unlock()
	b.Update()
}

// Waiting is the number of jobs waiting for a builder.
func (b *Board) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.s.Waiting)
}

// SetBuilder sets the builder line (or why there is none), without writing
// out.
func (b *Board) SetBuilder(line string) {
	b.mu.Lock()
	b.s.Builder = line
	b.mu.Unlock()
}

// SetCurrent marks a build running.
func (b *Board) SetCurrent(c *Current) {
	b.mu.Lock()
	b.s.Current = c
	b.s.State = "building"
	b.mu.Unlock()
	b.Update()
}

// SetPhase updates the running build's progress.
func (b *Board) SetPhase(part int, phase string, step, steps int) {
	b.mu.Lock()
	if c := b.s.Current; c != nil {
		c.Part, c.Phase, c.Step, c.Steps = part, phase, step, steps
	}
	b.mu.Unlock()
	b.Update()
}

// ClearCurrent marks the build finished.
func (b *Board) ClearCurrent() {
	b.mu.Lock()
	b.s.Current = nil
	b.s.State = "idle"
	b.mu.Unlock()
	b.Update()
}

// PushLast records a finished job (the last ten are kept).
func (b *Board) PushLast(l LastResult) {
	b.mu.Lock()
	b.s.Last = append([]LastResult{l}, b.s.Last...)
	if len(b.s.Last) > 10 {
		b.s.Last = b.s.Last[:10]
	}
	if l.Outcome != "builder_unavailable" && b.s.State == "building" {
		b.s.State = "idle"
	}
	b.mu.Unlock()
	b.Update()
}
