// Package buildlog streams a build's own log lines (trtexec's output,
// TensorRT's logger, as the worker writes them to stderr) to the daemon's
// log, so `journalctl -u trtd -f` shows an hour-long build moving. Each
// line carries the job, model, stage and part (TRTD_JOB, TRTD_STAGE, ...
// in the journal). A builder can print thousands of lines a second (a
// verbose trtexec, tactic timing), so lines are rate-limited: a burst,
// then a steady rate; errors and warnings always pass; lines held back
// are counted and the count is said with the next line that passes.
package buildlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/daemon/logging"
)

// Defaults: 20 lines at once, then one every 2 s on average.
const (
	DefaultBurst = 20
	DefaultEvery = 2 * time.Second
)

// Streamer forwards the lines of one job's builds. It is safe for
// concurrent use.
type Streamer struct {
	Log   *slog.Logger
	Burst int
	Every time.Duration
	Now   func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

// New returns a Streamer with the default limits.
func New(log *slog.Logger) *Streamer {
	return &Streamer{Log: log, Burst: DefaultBurst, Every: DefaultEvery, Now: time.Now}
}

// Line logs one builder line of job (model) at stage (part > 0 in a
// segmented build), unless the rate limit holds it back.
func (s *Streamer) Line(job, model, stage string, part int, line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	urgent := isUrgent(line)
	s.mu.Lock()
	now := s.Now()
	if s.last.IsZero() {
		s.tokens = float64(s.Burst)
	} else if s.Every > 0 {
		s.tokens = min(float64(s.Burst), s.tokens+float64(now.Sub(s.last))/float64(s.Every))
	}
	s.last = now
	if s.tokens < 1 && !urgent {
		s.dropped++
		s.mu.Unlock()
		return
	}
	if s.tokens >= 1 {
		s.tokens--
	}
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()

	args := []any{logging.KeyJob, job, logging.KeyModel, model, logging.KeyStage, stage, logging.KeyEvent, "builder_log"}
	if part > 0 {
		args = append(args, "part", part)
	}
	if dropped > 0 {
		args = append(args, "lines_not_shown", dropped)
	}
	lvl := slog.LevelInfo
	switch {
	case strings.Contains(line, "[E]") || strings.Contains(line, "ERROR"):
		lvl = slog.LevelError
	case strings.Contains(line, "[W]") || strings.Contains(line, "WARNING"):
		lvl = slog.LevelWarn
	}
	s.Log.Log(context.Background(), lvl, "builder: "+line, args...)
}

func isUrgent(line string) bool {
	return strings.Contains(line, "[E]") || strings.Contains(line, "[W]") || strings.Contains(line, "ERROR") || strings.Contains(line, "WARNING")
}
