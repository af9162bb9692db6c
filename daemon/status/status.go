// Package status is what `trtd status` shows: the daemon's state, queue,
// current build and last results, kept in memory by a Board and mirrored to
// the status file, systemd's STATUS= line and an optional callback.
package status

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/workers"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/bytesize"
)

// Status is what `trtd status` shows: the daemon keeps it in a file it
// replaces atomically on every change.
type Status struct {
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	State   string    `json:"state"` // starting, idle, building, waiting_for_builder, stopping, stopped
	Inbox   string    `json:"inbox"`
	Outbox  string    `json:"outbox"`
	Builder string    `json:"builder"`
	// Worker is the worker binary in use and why (daemon/workers).
	Worker    *workers.Selection `json:"worker,omitempty"`
	Queue     []QueueEntry       `json:"queue"`
	Waiting   []QueueEntry       `json:"waiting"`
	Current   *Current           `json:"current,omitempty"`
	Last      []LastResult       `json:"last"`
	Memory    *MemoryNow         `json:"memory,omitempty"`
	Line      string             `json:"line"`
	LastError string             `json:"last_error,omitempty"`
	// Fleet is the registry engines are shared through and the pushes
	// waiting for it (nil: sharing is off).
	Fleet *fleet.Status `json:"fleet,omitempty"`
	// Disk is the space finished work takes ([retention] bounds it),
	// measured at start and once a minute.
	Disk *Disk `json:"disk,omitempty"`
}

// Disk is the space used by the job store (uploads being built and the
// kept models of finished jobs), failed/ and the engine cache, in bytes.
type Disk struct {
	Jobs     int64     `json:"jobs"`
	Failed   int64     `json:"failed"`
	Cache    int64     `json:"cache"`
	Measured time.Time `json:"measured"`
}

// QueueEntry is a job waiting its turn.
type QueueEntry struct {
	Job   string    `json:"job"`
	Model string    `json:"model"`
	Since time.Time `json:"since"`
}

// Current is the job being built.
type Current struct {
	Job        string    `json:"job"`
	Model      string    `json:"model"`
	Stage      string    `json:"stage"`
	StageIndex int       `json:"stage_index"` // 1-based
	Stages     int       `json:"stages"`
	Part       int       `json:"part,omitempty"`
	Phase      string    `json:"phase,omitempty"`
	Step       int       `json:"step,omitempty"`
	Steps      int       `json:"steps,omitempty"`
	Started    time.Time `json:"started"`
	StageStart time.Time `json:"stage_started"`
}

// LastResult is a finished job.
type LastResult struct {
	Job     string    `json:"job"`
	Model   string    `json:"model"`
	Outcome string    `json:"outcome"`
	Stage   string    `json:"stage,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Engine  string    `json:"engine,omitempty"`
	At      time.Time `json:"at"`
	Seconds float64   `json:"seconds"`
}

// MemoryNow is the latest memory reading while a build runs.
type MemoryNow struct {
	MemAvailable int64 `json:"mem_available"`
	SwapUsed     int64 `json:"swap_used"`
	WorkerRSS    int64 `json:"worker_rss"`
	DaemonRSS    int64 `json:"daemon_rss"`
}

// Read reads a status file.
func Read(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: not a trtd status file: %w", path, err)
	}
	return &s, nil
}

func write(path string, s *Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// Rewritten on every change and worthless after a crash: no fsync.
	return atomicfile.Replace(path, append(b, '\n'), 0o644)
}

// OneLine renders the status as the single line systemd shows.
func (s *Status) OneLine(now time.Time) string {
	var b strings.Builder
	switch {
	case s.Current != nil:
		c := s.Current
		fmt.Fprintf(&b, "building %s: stage %s (%d/%d)", c.Model, c.Stage, c.StageIndex, c.Stages)
		if c.Part > 0 {
			fmt.Fprintf(&b, " part %d", c.Part)
		}
		if c.Phase != "" {
			fmt.Fprintf(&b, ", %s", c.Phase)
			if c.Steps > 0 {
				fmt.Fprintf(&b, " %d/%d", c.Step, c.Steps)
			}
		}
		fmt.Fprintf(&b, ", %s", now.Sub(c.Started).Round(time.Second))
		if m := s.Memory; m != nil && m.MemAvailable > 0 {
			fmt.Fprintf(&b, "; RAM available %s, swap used %s", bytesize.Format(m.MemAvailable), bytesize.Format(m.SwapUsed))
			if m.WorkerRSS > 0 {
				fmt.Fprintf(&b, ", worker %s", bytesize.Format(m.WorkerRSS))
			}
		}
	case s.State == "waiting_for_builder" || (len(s.Waiting) > 0 && len(s.Queue) == 0):
		fmt.Fprintf(&b, "waiting: %s; %d model(s) kept until a builder is available", s.Builder, len(s.Waiting))
	default:
		b.WriteString("idle, watching " + s.Inbox)
	}
	if n := len(s.Queue); n > 0 {
		fmt.Fprintf(&b, "; %d queued", n)
	}
	if len(s.Last) > 0 && s.Current == nil {
		l := s.Last[0]
		fmt.Fprintf(&b, "; last: %s %s", l.Model, l.Outcome)
		if l.Stage != "" {
			fmt.Fprintf(&b, " (%s)", l.Stage)
		}
	}
	return b.String()
}
