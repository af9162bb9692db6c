package daemon

import (
	"time"

	"github.com/trtd/trtd/daemon/jobs"
)

// The status is kept in memory and mirrored to the status file, the
// STATUS= line and the optional progress callback on every change.

func (d *Daemon) updateStatus() {
	d.mu.Lock()
	d.status.Updated = time.Now().UTC()
	if d.mem != nil {
		d.status.Memory = d.mem.Now()
	}
	d.status.Line = d.status.OneLine(time.Now())
	s := d.status
	s.Queue = append([]QueueEntry(nil), d.status.Queue...)
	s.Waiting = append([]QueueEntry(nil), d.status.Waiting...)
	s.Last = append([]LastResult(nil), d.status.Last...)
	if d.status.Current != nil {
		c := *d.status.Current
		s.Current = &c
	}
	d.mu.Unlock()
	if err := writeStatus(d.cfg.StatusPath(), &s); err != nil {
		d.log.Debug("cannot write status file", "err", err)
	}
	d.notify.Status(s.Line)
	if d.opts.Progress != nil {
		d.opts.Progress(&s)
	}
}

func (d *Daemon) snapshot() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	s.Line = s.OneLine(time.Now())
	return s
}

func (d *Daemon) setState(state string) {
	d.mu.Lock()
	d.status.State = state
	d.mu.Unlock()
	d.updateStatus()
}

func (d *Daemon) setQueue(q []*jobs.Job) {
	d.mu.Lock()
	d.status.Queue = []QueueEntry{}
	for _, j := range q {
		d.status.Queue = append(d.status.Queue, QueueEntry{Job: j.ID, Model: j.Name, Since: j.Created})
	}
	if d.status.Current == nil && d.status.State != "stopping" && d.status.State != "starting" {
		if len(d.status.Waiting) > 0 && len(q) == 0 {
			d.status.State = "waiting_for_builder"
		} else {
			d.status.State = "idle"
		}
	}
	d.mu.Unlock()
	d.updateStatus()
}

func (d *Daemon) setCurrent(c *Current) {
	d.mu.Lock()
	d.status.Current = c
	d.status.State = "building"
	d.mu.Unlock()
	d.updateStatus()
}

func (d *Daemon) setPhase(part int, phase string, step, steps int) {
	d.mu.Lock()
	if c := d.status.Current; c != nil {
		c.Part, c.Phase, c.Step, c.Steps = part, phase, step, steps
	}
	d.mu.Unlock()
	d.updateStatus()
}

func (d *Daemon) clearCurrent() {
	d.mu.Lock()
	d.status.Current = nil
	d.status.State = "idle"
	d.mu.Unlock()
	d.updateStatus()
}

func (d *Daemon) pushLast(l LastResult) {
	d.mu.Lock()
	d.status.Last = append([]LastResult{l}, d.status.Last...)
	if len(d.status.Last) > 10 {
		d.status.Last = d.status.Last[:10]
	}
	if l.Outcome != "builder_unavailable" && d.status.State == "building" {
		d.status.State = "idle"
	}
	d.mu.Unlock()
	d.updateStatus()
}
