package config

import (
	"fmt"
	"math"
	"time"
)

// Bounds every value must lie in. They are wide — they reject only values
// that cannot be meant (a negative count, a 1 KiB workspace, a 100-year
// timeout) — and each message names the key and the range.
const (
	maxSize     = Size(1 << 40) // 1 TiB: beyond any Jetson disk or memory
	minMiBValue = Size(1 << 20) // TensorRT takes workspace and tactic DRAM in whole MiB
	maxDuration = Duration(7 * 24 * time.Hour)
	maxRuns     = 100000
	maxParts    = 64
	maxKeepJobs = 1000000
	maxKeepDays = 36500
)

// rangeProblems reports every value outside its range through bad, each
// message starting with its key.
func (c *Config) rangeProblems(bad func(format string, a ...any)) {
	sizes := []struct {
		key    string
		v, min Size
	}{
		{"inbox.max_bytes", c.Inbox.MaxBytes, 0},
		{"worker.stderr_limit", c.Worker.StderrLimit, 0},
		{"swap.max_size", c.Swap.MaxSize, 0},
		{"swap.reserve", c.Swap.Reserve, 0},
		{"guard.floor", c.Guard.Floor, 0},
		{"guard.memory_max", c.Guard.MemoryMax, 0},
		{"overheads.cuda_context", c.Overheads.CUDAContext, 0},
		{"overheads.cudnn", c.Overheads.CUDNN, 0},
		{"overheads.cublas", c.Overheads.CUBLAS, 0},
		{"overheads.builder", c.Overheads.Builder, 0},
	}
	for _, s := range sizes {
		if s.v < s.min || s.v > maxSize {
			bad("%s: %s is not in 0..%s", s.key, s.v, maxSize)
		}
	}
	durs := []struct {
		key string
		v   Duration
	}{
		{"inbox.settle", c.Inbox.Settle}, {"inbox.rescan", c.Inbox.Rescan},
		{"worker.timeout", c.Worker.Timeout}, {"worker.retry_interval", c.Worker.RetryInterval},
		{"swap.idle_release", c.Swap.IdleRelease}, {"guard.interval", c.Guard.Interval},
		{"offload.timeout", c.Offload.Timeout},
	}
	for _, d := range durs {
		if d.v < 0 || d.v > maxDuration {
			bad("%s: %s is not in 0s..%s", d.key, d.v, maxDuration)
		}
	}
	if c.Worker.RetryInterval < Duration(time.Second) && c.Worker.RetryInterval >= 0 {
		bad("worker.retry_interval: %s is too short (minimum 1s)", c.Worker.RetryInterval)
	}
	if c.Offload.Timeout <= 0 {
		bad("offload.timeout: must be positive")
	}
	counts := []struct {
		key string
		v   int
		max int
	}{{"worker.validate_runs", c.Worker.ValidateRuns, maxRuns}, {"validate.runs", c.Validation.Runs, maxRuns},
		{"retention.keep_jobs", c.Retention.KeepJobs, maxKeepJobs}, {"retention.keep_days", c.Retention.KeepDays, maxKeepDays}}
	for _, n := range counts {
		if n.v < 0 || n.v > n.max {
			bad("%s: %d is not in 0..%d", n.key, n.v, n.max)
		}
	}
	tolerances := []struct {
		key string
		v   float64
	}{{"validate.atol", c.Validation.ATol}, {"validate.rtol", c.Validation.RTol}}
	for _, t := range tolerances {
		if !validTolerance(t.v) {
			bad("%s: %v is not a finite number >= 0", t.key, t.v)
		}
	}
	c.stageRangeProblems(bad)
	for i, peer := range c.Offload.Peers {
		if peer.Port < 0 || peer.Port > 65535 {
			bad("offload.peer[%d].port: %d is not in 0..65535", i, peer.Port)
		}
	}
}

// stageRangeProblems reports the stages' values outside their ranges.
func (c *Config) stageRangeProblems(bad func(format string, a ...any)) {
	for i, s := range c.Stages {
		at := fmt.Sprintf("stage[%d]", i)
		if s.Name != "" {
			at = fmt.Sprintf("stage[%d] (%s)", i, s.Name)
		}
		for _, m := range []struct {
			key string
			v   Size
		}{{"workspace", s.Workspace}, {"tactic_dram", s.TacticDRAM}} {
			if m.v != 0 && (m.v < minMiBValue || m.v > maxSize) {
				bad("%s.%s: %s is not 0 or in 1M..%s (TensorRT takes whole MiB)", at, m.key, m.v, maxSize)
			}
		}
		if s.Parts < 0 || s.Parts > maxParts {
			bad("%s.parts: %d is not in 0..%d", at, s.Parts, maxParts)
		}
		if s.Timeout < 0 || s.Timeout > maxDuration {
			bad("%s.timeout: %s is not in 0s..%s (0 = worker.timeout)", at, s.Timeout, maxDuration)
		}
		if s.DLACore != nil && (*s.DLACore < 0 || *s.DLACore > 15) {
			bad("%s.dla_core: %d is not in 0..15", at, *s.DLACore)
		}
		if s.MaxAuxStreams != nil && *s.MaxAuxStreams > 64 {
			bad("%s.max_aux_streams: %d is not in 0..64", at, *s.MaxAuxStreams)
		}
	}
}

// validTolerance reports whether v is usable as an accuracy tolerance: a
// finite number >= 0 (NaN would make every comparison pass).
func validTolerance(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
