package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/atomicfile"
)

// fleetKey is the registry key of j's build on this device.
func (rn *Runner) fleetKey(j *jobs.Job, rep *report.Report, b *protocol.Builder) fleet.Key {
	return fleet.Key{CacheKey: j.CacheKey, ModelSHA: j.ModelSHA256, Device: fleet.DeviceOf(*b, rep.Device)}
}

// fromFleet publishes the engine a peer with this device's fingerprint
// pushed, after checking its sha256 and provenance; false means build
// (the report says why when the registry could not be used).
func (rn *Runner) fromFleet(ctx context.Context, j *jobs.Job, rep *report.Report, b *protocol.Builder, log *slog.Logger) bool {
	if rn.Fleet == nil {
		return false
	}
	rep.Fleet = &report.Fleet{Registry: rn.Fleet.Client.Registry()}
	switch j.Step {
	case jobs.StepWorkerFinished, jobs.StepEngineTemp, jobs.StepEngineSynced, jobs.StepEngineRenamed, jobs.StepReportPublished:
		return false // an engine is already here: resume publishes it
	}
	engineDir := filepath.Join(rn.Store.Dir(j), "engines")
	if err := os.MkdirAll(engineDir, 0o755); err != nil {
		return false
	}
	_, _ = atomicfile.RemoveTemps(engineDir) // what a pull cut short by a crash left; a temporary not removed is never read
	p, why := rn.Fleet.Obtain(ctx, rn.fleetKey(j, rep, b), engineDir, log)
	rep.Fleet.Pull = why
	if p == nil {
		return false
	}
	defer p.Remove()
	// Kept under the name a restart resumes from (resume), so a crash
	// between here and the outbox publishes it rather than building.
	stage := p.Stage
	if _, ok := rn.Cfg.Stage(stage); !ok {
		stage = "pulled"
	}
	final := filepath.Join(engineDir, stage+".engine")
	if err := os.Rename(p.Engine, final); err != nil {
		rep.Fleet.Pull = "pulled but cannot keep it: " + err.Error()
		return false
	}
	j.Stage, j.EngineSHA = stage, p.EngineSHA
	if err := rn.Store.Transition(j, jobs.Building, jobs.StepWorkerFinished, "engine pulled from "+p.Registry); err != nil {
		log.Error("cannot persist job", "err", err)
	}
	rep.Fleet.Pulled = &report.FleetOrigin{Tag: p.Tag, Digest: p.Digest, BuiltBy: p.BuiltBy, Built: p.Built, Stage: p.Stage,
		Checked: "engine sha256 against the manifest and the provenance, provenance against this device's TensorRT, GPU, compute capability, SoC, L4T and plugins; not re-validated here (the worker has no validate-only operation)"}
	rep.Outcome = report.OutcomeReused
	res := converter.Result{OK: true, Stage: stage, Engine: final, Builder: b, Class: protocol.ClassOK}
	if err := rn.Outbox.Publish(j, rep, res, log); err != nil {
		log.Warn("cannot publish the pulled engine; building", "err", err)
		rep.Outcome, rep.Fleet.Pulled = "", nil
		rep.Fleet.Pull = "pulled but cannot publish: " + err.Error()
		return false
	}
	return true
}

// fleetStart moves the plan's first stage down to the one peers of this
// device kind found first, when that is further down than the local plan.
func (rn *Runner) fleetStart(ctx context.Context, j *jobs.Job, rep *report.Report, b *protocol.Builder, stages []config.Stage, plan *memory.PlanOutput) {
	if rn.Fleet == nil || rep.Fleet == nil {
		return
	}
	st := rn.Fleet.FirstStage(ctx, j.ModelSHA256, fleet.DeviceOf(*b, rep.Device).Kind)
	for i, s := range stages {
		if s.Name == st && i > plan.Start {
			plan.Start = i
			rep.Fleet.Start = st
		}
	}
}

// fleetShare says in the report that the engine will be shared; share
// queues it once it is in the outbox.
func (rn *Runner) fleetShare(j *jobs.Job, rep *report.Report, res converter.Result) {
	if rn.Fleet == nil || rep.Builder == nil || !rn.Fleet.Push {
		return
	}
	if rep.Fleet == nil {
		rep.Fleet = &report.Fleet{Registry: rn.Fleet.Client.Registry()}
	}
	if len(res.Parts) > 0 {
		rep.Fleet.Push = "not shared: segmented engines are not shared"
		return
	}
	rep.Fleet.Push = fmt.Sprintf("queued for %s as %s", rn.Fleet.Client.Registry(), rn.fleetKey(j, rep, rep.Builder).Tag())
}

func (rn *Runner) share(j *jobs.Job, rep *report.Report, stage string, log *slog.Logger) {
	if rep.Fleet == nil || rep.Fleet.Push == "" || rep.Fleet.Pulled != nil || rep.Engine == nil || rep.Engine.File == "" {
		return
	}
	base := filepath.Join(rn.Cfg.Paths.Outbox, outbox.Name(j.Base()))
	a := fleet.Artifact{Key: rn.fleetKey(j, rep, rep.Builder), Engine: filepath.Join(rn.Cfg.Paths.Outbox, rep.Engine.File),
		Provenance: base + provenance.Suffix, Report: base + ".report.json", Model: j.Name, Stage: stage, Built: time.Now().UTC()}
	if line := rn.Fleet.Share(a); line != "" {
		log.Info("fleet: " + line)
	}
}

// count adds a terminal job to the textfile counters and rewrites them.
func (rn *Runner) count(outcome, stage string, rep *report.Report, seconds float64) {
	if rn.Metrics == nil {
		return
	}
	ooms := 0
	for _, a := range rep.Attempts {
		if a.Outcome == protocol.ClassOutOfMemory {
			ooms++
		}
	}
	built := 0.0
	if len(rep.Attempts) > 0 {
		built = seconds
	}
	rn.Metrics.Job(outcome, stage, ooms, built)
	if err := rn.Metrics.Err(); err != nil {
		rn.Log.Warn("cannot write the metrics textfile", "path", rn.Metrics.Path, "err", err)
	}
}
