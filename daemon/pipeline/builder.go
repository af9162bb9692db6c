package pipeline

import (
	"context"
	"os"
	"time"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/status"
)

// Probe asks the worker what builds here; it reports whether a builder is
// available.
func (rn *Runner) Probe(ctx context.Context) bool {
	tmp, err := os.MkdirTemp("", "trtd-probe-")
	if err == nil {
		if err := os.Chmod(tmp, 0o755); err != nil {
			rn.Log.Warn("probe directory not reachable by the worker's user", "dir", tmp, "err", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }() // a probe's scratch under the system's temporary directory
	}
	rn.selectWorker(ctx, tmp)
	b, class, reason := rn.Worker.Probe(ctx, rn.Cfg.Worker.Backend, rn.Cfg.Worker.Trtexec, tmp)
	rn.mu.Lock()
	defer rn.mu.Unlock()
	rn.lastProbe = time.Now()
	if class == protocol.ClassOK {
		rn.builder, rn.builderErr = &b, ""
		rn.Status.SetBuilder(builderLine(&b))
		return true
	}
	rn.builder = nil
	if reason == "" {
		reason = string(class)
	}
	if rn.fallback != "" {
		reason += " (" + rn.fallback + ")"
	}
	rn.builderErr = reason
	rn.Status.SetBuilder(reason)
	rn.Log.Warn("no builder available", "reason", reason, logging.KeyEvent, "builder_unavailable")
	return false
}

// RetryDue reports whether jobs wait for a builder and the retry interval
// has passed since the last probe.
func (rn *Runner) RetryDue() bool {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if !rn.outboxRetry.IsZero() && time.Now().After(rn.outboxRetry) {
		return true // a built engine waits for the outbox
	}
	return rn.builder == nil && rn.Status.Waiting() > 0 && time.Since(rn.lastProbe) >= rn.Cfg.Worker.RetryInterval.D()
}

func builderLine(b *protocol.Builder) string {
	if b == nil {
		return "none"
	}
	s := b.Backend
	if b.TensorRT != "" {
		s += " TensorRT " + b.TensorRT
	}
	if b.GPU != "" {
		s += " on " + b.GPU
	}
	if b.ComputeCapability != "" {
		s += " (sm " + b.ComputeCapability + ")"
	}
	return s
}

// BuilderLine names the builder, or says why there is none.
func (rn *Runner) BuilderLine() string {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.builder != nil {
		return builderLine(rn.builder)
	}
	return rn.builderErr
}

// Builder is the builder the last probe found, or nil.
func (rn *Runner) Builder() *protocol.Builder {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return rn.builder
}

func (rn *Runner) currentBuilder() *protocol.Builder { return rn.Builder() }

func (rn *Runner) markUnavailable(reason string) {
	rn.mu.Lock()
	rn.builder, rn.builderErr, rn.lastProbe = nil, reason, time.Now()
	rn.mu.Unlock()
	rn.Status.SetBuilder(reason)
}

// Pending lists queued jobs (in order) and shows the jobs waiting for a
// builder in the status.
func (rn *Runner) Pending() []*jobs.Job {
	all, err := rn.Store.ListWhere(jobs.Unfinished)
	if err != nil {
		rn.Log.Error("cannot list jobs", "err", err)
		return nil
	}
	var q []*jobs.Job
	var waiting []status.QueueEntry
	for _, j := range all {
		switch j.State {
		case jobs.Queued:
			q = append(q, j)
		case jobs.Waiting:
			waiting = append(waiting, status.QueueEntry{Job: j.ID, Model: j.Name, Since: j.Updated})
		}
	}
	rn.Status.SetWaiting(waiting)
	rn.Status.SetQueue(q)
	return q
}

// Requeue returns the jobs parked for lack of a builder, queued again.
func (rn *Runner) Requeue() []*jobs.Job {
	all, _ := rn.Store.ListWhere(jobs.Unfinished)
	var out []*jobs.Job
	for _, j := range all {
		if j.State == jobs.Waiting {
			if err := rn.Store.Transition(j, jobs.Queued, "", "builder available: "+rn.BuilderLine()); err == nil {
				out = append(out, j)
				rn.Log.Info("builder available; retrying", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyEvent, "job_requeued")
			}
		}
	}
	rn.Status.SetWaiting(nil)
	rn.mu.Lock()
	rn.outboxRetry = time.Time{}
	rn.mu.Unlock()
	return out
}
