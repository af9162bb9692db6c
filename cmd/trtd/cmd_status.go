package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/safetext"
)

func init() {
	register(&command{
		Name:    "status",
		Summary: "show what the running daemon is doing",
		Usage: `Usage: trtd status [--json] [--watch] [--config PATH]

Reads the daemon's status file: the queue, the model being built and its
stage, memory now, and the last results.

Examples:
  trtd status
  trtd status --json | jq .current
  trtd status --watch`,
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := newFlagSet("status", e)
			cfgPath := fs.String("config", "", "config file")
			asJSON := fs.Bool("json", false, "print the status file as JSON")
			watch := fs.Bool("watch", false, "refresh every second until interrupted")
			if code, done := parse(fs, args); done {
				return code
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				cliout.Fprintf(e.Stderr, "trtd status: %v\n", err)
				return 2
			}
			for {
				code := showStatus(e, cfg.StatusPath(), *asJSON, *watch)
				if !*watch {
					return code
				}
				select {
				case <-ctx.Done():
					return code
				case <-time.After(time.Second):
				}
			}
		},
	})
}

func showStatus(e *Env, path string, asJSON, clear bool) int {
	s, err := status.Read(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			cliout.Fprintf(e.Stderr, "trtd status: no status file at %s: trtd has not run with this config\n", path)
		} else {
			cliout.Fprintf(e.Stderr, "trtd status: %v\n", err)
		}
		return 1
	}
	running := alive(s.PID) && s.State != "stopped"
	if asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			cliout.Fprintf(e.Stderr, "trtd status: %v\n", err)
			return 1
		}
		if !running {
			return 3
		}
		return 0
	}
	if clear {
		cliout.Fprint(e.Stdout, "\033[H\033[2J")
	}
	printStatus(e.Stdout, s, running, time.Now())
	if !running {
		return 3
	}
	return 0
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// printStatus shows the status file to a person. Every string in it may
// come from an upload (a file name, a reason quoting it) or from a peer:
// each goes through safetext.Terminal, so no escape sequence in a name
// reaches the admin's terminal.
func printStatus(w io.Writer, s *status.Status, running bool, now time.Time) {
	t := safetext.Terminal
	if running {
		cliout.Fprintf(w, "trtd %s: %s (pid %d, up %s)\n", t(s.Version), t(s.State), s.PID, now.Sub(s.Started).Round(time.Second))
	} else {
		cliout.Fprintf(w, "trtd is not running (last status %s ago: %s)\n", now.Sub(s.Updated).Round(time.Second), t(s.State))
	}
	cliout.Fprintf(w, "  inbox:   %s\n  outbox:  %s\n  builder: %s\n", t(s.Inbox), t(s.Outbox), t(s.Builder))
	if c := s.Current; c != nil {
		cliout.Fprintf(w, "  building %s (job %s): stage %s (%d of %d)", t(c.Model), t(c.Job), t(c.Stage), c.StageIndex, c.Stages)
		if c.Part > 0 {
			cliout.Fprintf(w, ", part %d", c.Part)
		}
		cliout.Fprintf(w, ", %s elapsed", now.Sub(c.Started).Round(time.Second))
		if c.Phase != "" {
			cliout.Fprintf(w, ", %s", t(c.Phase))
			if c.Steps > 0 {
				cliout.Fprintf(w, " %d/%d", c.Step, c.Steps)
			}
		}
		cliout.Fprintln(w)
	}
	if m := s.Memory; m != nil {
		cliout.Fprintf(w, "  memory:  %s available, %s swap used, trtd itself %s\n", bytesize.Format(m.MemAvailable), bytesize.Format(m.SwapUsed), bytesize.Format(m.DaemonRSS))
	}
	if f := s.Fleet; f != nil {
		cliout.Fprintf(w, "  fleet:   %s (pull %v, push %v), %d push(es) queued", f.Registry, f.Pull, f.Push, f.Queued)
		if f.LastError != "" {
			cliout.Fprintf(w, ", last error: %s", f.LastError)
		}
		cliout.Fprintln(w)
	}
	if d := s.Disk; d != nil {
		cliout.Fprintf(w, "  disk:    job store %s, failed %s, cache %s\n", bytesize.Format(d.Jobs), bytesize.Format(d.Failed), bytesize.Format(d.Cache))
	}
	cliout.Fprintf(w, "  queue:   %d\n", len(s.Queue))
	for _, q := range s.Queue {
		cliout.Fprintf(w, "    %s (since %s)\n", t(q.Model), q.Since.Local().Format("15:04:05"))
	}
	if len(s.Waiting) > 0 {
		cliout.Fprintf(w, "  waiting for a builder: %d\n", len(s.Waiting))
		for _, q := range s.Waiting {
			cliout.Fprintf(w, "    %s\n", t(q.Model))
		}
	}
	if len(s.Last) > 0 {
		cliout.Fprintln(w, "  last results:")
		for _, l := range s.Last {
			line := fmt.Sprintf("    %s  %-20s %s", l.At.Local().Format("01-02 15:04:05"), t(l.Outcome), t(l.Model))
			if l.Stage != "" {
				line += " (stage " + t(l.Stage) + ")"
			}
			if l.Reason != "" {
				r := l.Reason
				if len(r) > 100 {
					r = r[:97] + "..."
				}
				line += ": " + t(strings.ReplaceAll(r, "\n", " "))
			}
			cliout.Fprintln(w, line)
		}
	}
}
