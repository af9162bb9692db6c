// Package pipeline runs the daemon's jobs: it claims uploads from the
// inbox, inspects and plans each model, runs the converter's ladder with
// the memory subsystem's hooks, and hands the result to the outbox. It also
// tracks which builder (TensorRT version and GPU) the worker offers.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/buildlog"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/offload"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/planner"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/safename"
)

// Process builds one job to its end: done, failed, waiting for a builder,
// or back to queued when the daemon is stopping.
func (rn *Runner) Process(ctx context.Context, j *jobs.Job) {
	// F-21: whatever the job's end, no temporary file stays in its directory.
	defer sweepTemps(rn.Store.Dir(j))
	// What was read of the model is kept while the job waits to run again
	// (a shutdown, no builder, a blocked outbox), with its bytes unchanged.
	defer func() {
		if (j.State != jobs.Queued && j.State != jobs.Waiting) || j.ModelSHA256 == "" {
			rn.Inspector.Done(j.ID)
		}
	}()
	log := rn.Log.With(logging.KeyJob, j.ID, logging.KeyModel, j.Name)
	t0 := time.Now()
	rep := &report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: rn.Version}, Job: j.ID,
		Model: report.Model{Name: j.Name, Size: j.ModelSize}, Attempts: []report.Attempt{}}
	finish := func(outcome, stage, reason, engine string) {
		rn.Status.PushLast(status.LastResult{Job: j.ID, Model: j.Name, Outcome: outcome, Stage: stage, Reason: reason, Engine: engine,
			At: time.Now().UTC(), Seconds: time.Since(t0).Seconds()})
		rn.count(outcome, stage, rep, time.Since(t0).Seconds())
	}
	modelPath := rn.Store.ModelPath(j)
	if j.Refused != "" {
		rn.Outbox.Fail(j, rep, log, report.OutcomeRejected, j.Refused)
		finish(report.OutcomeRejected, "", j.Refused, "")
		return
	}
	// The model as the inbox read it (issue 13, F-4: once; after a
	// restart or a change, read again here, streaming: weights are never
	// loaded), hashed: the summary, sha256 and size in the report describe
	// the same bytes.
	model, err := rn.jobModel(j, modelPath)
	if err != nil {
		outcome, why := report.OutcomeRejected, fmt.Sprintf("%s is not a valid ONNX model: %v", j.Name, err)
		if errors.Is(err, errClaimedUnreadable) {
			outcome, why = report.OutcomeFailed, err.Error()
		} else if j.ModelSHA256 == "" {
			if h, herr := filehash.SHA256(modelPath); herr == nil {
				j.ModelSHA256 = h // the report names the bytes it refused
			}
		}
		rep.Model.SHA256, rep.Model.Size = j.ModelSHA256, j.ModelSize
		rn.Outbox.Fail(j, rep, log, outcome, why)
		finish(outcome, "", err.Error(), "")
		return
	}
	rep.Model.SHA256, rep.Model.Size = j.ModelSHA256, j.ModelSize
	rep.Model.Sidecar = j.Sidecar
	rep.Model.Summary = model
	side, err := rn.readSidecar(j, model)
	if err != nil {
		rn.Outbox.Fail(j, rep, log, report.OutcomeRejected, fmt.Sprintf("settings file %s: %v", j.Sidecar, err))
		finish(report.OutcomeRejected, "", err.Error(), "")
		return
	}
	// F-9: when the user uploaded samples, the gate runs or the job fails
	// saying why; never a silent publish.
	samples := j.Base() + ".test"
	_, serr := os.Lstat(filepath.Join(filepath.Dir(modelPath), samples))
	hasSamples := serr == nil
	if hasSamples && accuracySamples(filepath.Dir(modelPath), samples) == nil {
		why := fmt.Sprintf("accuracy samples %s/ need at least one input_N.pb and one output_N.pb; the model was not built, so no engine is published without its check", samples)
		rn.Outbox.Fail(j, rep, log, report.OutcomeRejected, why)
		finish(report.OutcomeRejected, "", why, "")
		return
	}
	stages := rn.withOffload(side.Ladder(rn.Cfg.Stages))
	shapes, warnings := resolveShapes(model.Inputs, j.Name, side)
	rep.Model.Warnings = warnings
	for _, w := range warnings {
		log.Warn(w)
	}

	// Same content + settings + builder = reuse.
	builder := rn.currentBuilder()
	dev, recs := rn.Mem.Device(ctx)
	rep.Device, rep.Recommendations = dev, recs
	plan := rn.Mem.Plan(memory.PlanInput{Model: planner.Facts(*model, shapes, j.ModelSHA256), Stages: stages})
	rep.Plan = plan.Report
	if builder == nil {
		rn.park(j, rep, log, stages)
		finish(report.OutcomeBuilderUnavailable, "", rn.BuilderLine(), "")
		return
	}
	rep.Builder = builder
	// The samples and tolerances are part of what was built: an engine
	// reused from a build without them (or with others) would skip the gate.
	// So is the int8 calibration data (F-9): a different set never
	// reuses an engine calibrated from another.
	calib := calibSum(filepath.Dir(modelPath), j.Base()+".calib")
	j.CacheKey = cacheKey(j.ModelSHA256, sidecarSum(rn.Store, j)+samplesSum(filepath.Dir(modelPath), samples)+calib+
		fmt.Sprintf(" tolerances %g %g", rn.Cfg.Validation.ATol, rn.Cfg.Validation.RTol), stages, shapes, builder)
	if ok, err := rn.Outbox.Reuse(j, rep, log); err != nil {
		rn.parkForOutbox(j, rep, log, err)
		finish(waitingForOutbox, j.Stage, err.Error(), "")
		return
	} else if ok {
		finish(rep.Outcome, j.Stage, "", j.Base()+".engine")
		return
	}
	if rn.fromFleet(ctx, j, rep, builder, log) {
		finish(report.OutcomeReused, j.Stage, "", j.Base()+".engine")
		return
	}
	rn.fleetStart(ctx, j, rep, builder, stages, &plan)

	if err := rn.Store.Transition(j, jobs.Building, jobs.StepPlanned, ""); err != nil {
		log.Error("cannot persist job", "err", err)
	}
	rn.faultpoint(jobs.StepPlanned)
	log.Info("build started", logging.KeyEvent, "job_started", "stages", stageNames(stages), "start", stages[clamp(plan.Start, len(stages))].Name)

	// A restart after the worker finished resumes at publishing.
	engineDir := filepath.Join(rn.Store.Dir(j), "engines")
	var res converter.Result
	if resumed, ok := rn.resume(j, engineDir); ok {
		res = resumed
		log.Info("resuming after restart: the engine was already built", logging.KeyStage, res.Stage)
	} else {
		res = rn.build(ctx, j, stages, shapes, side, plan, calib, engineDir, log)
	}
	rep.Attempts = append(rep.Attempts, res.Attempts...)
	if res.Builder != nil {
		rep.Builder = res.Builder
	}
	rn.Status.ClearCurrent()

	switch {
	case res.OK && rn.modelChanged(j, modelPath, log):
		// F-14: an upload that paused at a field boundary (a complete
		// model) went on after the claim: what was built is a prefix.
		// Build again from the bytes now there; the report always
		// describes the bytes that were built.
		finish("requeued", "", "the model changed while it was built", "")
	case res.OK:
		rn.fleetShare(j, rep, res)
		if err := rn.Outbox.Publish(j, rep, res, log); err != nil {
			if errors.Is(err, outbox.ErrOutbox) {
				// F-13: the engine is kept; published once the outbox takes it.
				rn.parkForOutbox(j, rep, log, err)
				finish(waitingForOutbox, res.Stage, err.Error(), "")
				return
			}
			log.Error("cannot publish the engine", "err", err)
			rn.Outbox.Fail(j, rep, log, report.OutcomeFailed, "cannot write the engine to the outbox: "+err.Error())
			finish(report.OutcomeFailed, res.Stage, err.Error(), "")
			return
		}
		rn.Mem.Record(j.ModelSHA256, res.Stage)
		rn.share(j, rep, res.Stage, log)
		finish(report.OutcomeBuilt, res.Stage, "", j.Base()+".engine")
	case res.Class == protocol.ClassCanceled:
		// Shutdown: the job goes back to the queue, not to failed.
		if err := rn.Store.Transition(j, jobs.Queued, "", "interrupted by shutdown"); err != nil {
			log.Error("cannot record the job as queued again; the next start recovers it from its last step", "err", err)
		}
		log.Info("build interrupted by shutdown; it will run again", logging.KeyEvent, "job_interrupted")
	case res.Class == protocol.ClassBuilderUnavailable:
		rn.markUnavailable(res.Reason)
		rn.park(j, rep, log, stages)
		finish(report.OutcomeBuilderUnavailable, "", res.Reason, "")
	default:
		rn.Outbox.Fail(j, rep, log, report.OutcomeFailed, res.Reason)
		finish(report.OutcomeFailed, "", res.Reason, "")
	}
}

func clamp(i, n int) int {
	if i < 0 || i >= n {
		return 0
	}
	return i
}

func stageNames(st []config.Stage) string {
	var n []string
	for _, s := range st {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

// build runs the ladder for j.
func (rn *Runner) build(ctx context.Context, j *jobs.Job, stages []config.Stage, shapes []protocol.Shape,
	side *config.Sidecar, plan memory.PlanOutput, calib, engineDir string, log interface {
		Info(string, ...any)
		Warn(string, ...any)
	}) converter.Result {
	// The worker's world: an empty directory with the model and its
	// companions hard-linked in, writable by the worker's user.
	work := rn.Store.WorkDir(j)
	for _, dir := range []string{work, engineDir} {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("an earlier attempt's files not removed", "dir", dir, "err", err)
		}
	}
	for _, dir := range []string{work, engineDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			log.Warn("cannot make the worker's directory; the stage fails for it", "dir", dir, "err", err)
		}
		rn.chownWorker(dir)
	}
	src := filepath.Dir(rn.Store.ModelPath(j))
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if err := linkOrCopy(filepath.Join(src, e.Name()), filepath.Join(work, e.Name())); err != nil {
			log.Warn("cannot place file in the work directory", "file", e.Name(), "err", err)
		}
		rn.shareWithWorker(filepath.Join(work, e.Name()))
	}
	in := converter.Input{WorkDir: work, Model: j.Name, EngineDir: engineDir, Stages: config.ConverterStages(stages), Start: plan.Start, Skip: plan.Skip,
		Shapes: shapes, ValidateRuns: rn.Cfg.Worker.ValidateRuns, Backend: rn.Cfg.Worker.Backend, Trtexec: rn.Cfg.Worker.Trtexec}
	in.TimingCache = rn.TimingCache(rn.currentBuilder())
	if side != nil {
		in.Precision = side.Precision
		in.WorkspaceCapMiB = int64(side.Workspace) >> 20
	}
	samples := j.Base() + ".test"
	_, serr := os.Lstat(filepath.Join(src, samples))
	acc := accuracySamples(work, samples)
	if serr == nil && acc == nil {
		return converter.Result{Class: protocol.ClassBadRequest,
			Reason: fmt.Sprintf("accuracy samples %s/ could not be given to the worker; the model was not built, so no engine is published without its check", samples)}
	}
	if acc != nil {
		acc.ATol, acc.RTol = rn.Cfg.Validation.ATol, rn.Cfg.Validation.RTol
		if side != nil && side.Accuracy.ATol != nil {
			acc.ATol = *side.Accuracy.ATol
		}
		if side != nil && side.Accuracy.RTol != nil {
			acc.RTol = *side.Accuracy.RTol
		}
		in.Accuracy = acc
	}
	restore := rn.calibration(j, calib, work, &in, log)
	defer restore()
	started := time.Now()
	stageIdx := map[string]int{}
	for i, s := range stages {
		stageIdx[s.Name] = i + 1
	}
	rn.Mem.Busy(true)
	defer rn.Mem.Busy(false)
	lines := buildlog.New(rn.Log)
	hooks := converter.Hooks{
		BeforeStage: func(ctx context.Context, st converter.Stage) error {
			rn.Status.SetCurrent(&status.Current{Job: j.ID, Model: j.Name, Stage: st.Name, StageIndex: stageIdx[st.Name], Stages: len(stages),
				Started: started, StageStart: time.Now()})
			j.Stage = st.Name
			if err := rn.Mem.BeforeStage(ctx, st, plan); err != nil {
				return err
			}
			if err := rn.Store.Mark(j, jobs.StepSwapReady); err != nil {
				log.Warn("cannot record the step in the job", "step", jobs.StepSwapReady, "err", err)
			}
			rn.faultpoint(jobs.StepSwapReady)
			return nil
		},
		Sandbox: rn.Mem.Sandbox,
		Started: func(st converter.Stage, part int) {
			if err := rn.Store.Mark(j, jobs.StepWorkerStarted); err != nil {
				log.Warn("cannot record the step in the job", "step", jobs.StepWorkerStarted, "err", err)
			}
			rn.Log.Info("stage started", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyStage, st.Name, "part", part, logging.KeyEvent, "stage_started")
			rn.faultpoint(jobs.StepWorkerStarted)
		},
		Finished: func(st converter.Stage, part int, r converter.Run) {
			if r.Class == protocol.ClassOK && r.Result != nil {
				j.EngineSHA = r.Result.EngineSHA256
			}
			if err := rn.Store.Mark(j, jobs.StepWorkerFinished); err != nil {
				log.Warn("cannot record the step in the job", "step", jobs.StepWorkerFinished, "err", err)
			}
			lvl := rn.Log.Info
			if r.Class != protocol.ClassOK {
				lvl = rn.Log.Warn
			}
			lvl("stage finished", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyStage, st.Name, "part", part,
				"class", string(r.Class), "reason", r.Reason, "seconds", r.Duration.Seconds(), logging.KeyEvent, "stage_finished")
			for _, l := range r.LogTail {
				rn.Log.Debug("worker: "+l, logging.KeyJob, j.ID, logging.KeyStage, st.Name)
			}
			rn.faultpoint(jobs.StepWorkerFinished)
		},
		Progress: func(st converter.Stage, part int, ev protocol.Event) {
			switch ev.Event {
			case protocol.EventProgress:
				rn.Status.SetPhase(part, ev.Phase, ev.Step, ev.Steps)
			case converter.EventWorkerLine:
				lines.Line(j.ID, j.Name, st.Name, part, ev.Message) // to the journal, rate-limited
			}
		},
		Split: rn.splitter(),
	}
	if rn.Cfg.Offload.Enabled && len(rn.Cfg.Offload.Peers) > 0 {
		hooks.Offload = offload.New(rn.Cfg, func() (offload.Fingerprint, bool) {
			b := rn.currentBuilder()
			if b == nil {
				return offload.Fingerprint{}, false
			}
			l4t, _ := provenance.ReadL4T("/")
			return offload.Fingerprint{Builder: *b, L4T: l4t}, true
		}, rn.Log).Offload
	}
	return rn.Worker.Ladder(ctx, in, hooks)
}

// TimingCache is the timing cache file for a builder (TensorRT version and
// GPU), or "" for the test double.
func (rn *Runner) TimingCache(b *protocol.Builder) string {
	if b == nil || b.Backend == "fake" {
		return ""
	}
	return filepath.Join(rn.Cfg.Paths.State, "timing", safename.Portable(b.TensorRT+"-sm"+b.ComputeCapability+"-"+b.GPU)+".cache")
}

// withOffload appends an offload stage to the ladder when peers are
// configured and the ladder has none: it runs only when every local stage
// failed for lack of memory.
func (rn *Runner) withOffload(stages []config.Stage) []config.Stage {
	if !rn.Cfg.Offload.Enabled || len(rn.Cfg.Offload.Peers) == 0 {
		return stages
	}
	for _, s := range stages {
		if converter.Kind(s.Kind) == converter.KindOffload {
			return stages
		}
	}
	out := append([]config.Stage(nil), stages...)
	return append(out, config.Stage{Name: "offload", Kind: string(converter.KindOffload), Timeout: rn.Cfg.Offload.Timeout})
}

// resume recognises a job whose worker already produced its engine before
// a restart, so the build is not repeated.
func (rn *Runner) resume(j *jobs.Job, engineDir string) (converter.Result, bool) {
	switch j.Step {
	case jobs.StepWorkerFinished, jobs.StepEngineTemp, jobs.StepEngineSynced, jobs.StepEngineRenamed, jobs.StepReportPublished:
	default:
		return converter.Result{}, false
	}
	if j.EngineSHA == "" || j.Stage == "" {
		return converter.Result{}, false
	}
	p := filepath.Join(engineDir, j.Stage+".engine")
	if sum, err := filehash.SHA256(p); err != nil || sum != j.EngineSHA {
		return converter.Result{}, false
	}
	return converter.Result{OK: true, Stage: j.Stage, Engine: p, Class: protocol.ClassOK,
		Attempts: []report.Attempt{{Stage: j.Stage, Kind: string(converter.KindBuild), Outcome: protocol.ClassOK, Start: time.Now().UTC(),
			Reason: "engine built before a restart; published now"}}}, true
}

// park keeps a job for later: no builder is available on this machine.
func (rn *Runner) park(j *jobs.Job, rep *report.Report, log *slog.Logger, stages []config.Stage) {
	missing := rn.BuilderLine()
	next := time.Now().Add(rn.Cfg.Worker.RetryInterval.D()).UTC()
	var would []string
	for _, st := range config.ConverterStages(stages) {
		would = append(would, fmt.Sprintf("stage %s (%s): precision %s, workspace %d MiB, swap %s",
			st.Name, st.EffectiveKind(), st.Settings.Precision, st.Settings.WorkspaceMiB, orNone(string(st.Swap))))
	}
	rep.Outcome = report.OutcomeBuilderUnavailable
	rep.Reason = missing // what is missing: the worker binary, TensorRT, trtexec
	rep.Waiting = &report.Waiting{Missing: missing, WouldDo: would, NextRetry: next}
	rep.KeptModel = rn.Store.ModelPath(j)
	// report.Recommend says how to get the missing builder.
	j.Outcome, j.Reason, j.NextRetry = report.OutcomeBuilderUnavailable, missing, next
	if err := rn.Store.Transition(j, jobs.Waiting, "", missing); err != nil {
		log.Error("cannot record the job as waiting for a builder", "err", err)
	}
	rn.Status.AddWaiting(status.QueueEntry{Job: j.ID, Model: j.Name, Since: time.Now().UTC()})
	rep.Generated = time.Now().UTC()
	if err := rn.Outbox.Report(j.Base(), rep); err != nil {
		log.Error("waiting report not written to the outbox", "err", err)
	}
	log.Warn("no builder: model kept until one is available", "reason", missing, "next_retry", next, logging.KeyEvent, "job_waiting")
}

// maxModelChanges bounds how often a job is rebuilt because its model kept
// changing under it.
const maxModelChanges = 3

// errClaimedUnreadable: the job's model cannot be read (or will not hold
// still long enough to be read), as opposed to bytes that are not a model.
var errClaimedUnreadable = errors.New("cannot read the claimed model")

// jobModel hashes job j's model (unless it was hashed before, at this
// size) and returns its summary, both of one version of the bytes. A file
// that changes in between (a writer that kept the upload open across the
// claim) is read again, up to three times; modelChanged catches a change
// after this point.
func (rn *Runner) jobModel(j *jobs.Job, path string) (*onnx.Summary, error) {
	for try := 1; ; try++ {
		sum, v, err := rn.Inspector.Job(j.ID, path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil, fmt.Errorf("%w: %w", errClaimedUnreadable, err)
			}
			return nil, err
		}
		if j.ModelSHA256 == "" || j.ModelSize != v.size {
			h, err := filehash.SHA256(path)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errClaimedUnreadable, err)
			}
			j.ModelSHA256, j.ModelSize = h, v.size
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errClaimedUnreadable, err)
		}
		if sameBytes(versionOf(fi), v) {
			return sum, nil
		}
		rn.Inspector.Done(j.ID)
		j.ModelSHA256 = ""
		if try == 3 {
			return nil, fmt.Errorf("%w: it kept changing while it was read (an upload still being written?)", errClaimedUnreadable)
		}
	}
}

// modelChanged reports whether the claimed model's bytes differ from those
// hashed before the build, and if so requeues the job to be built again
// from the current bytes (failing it after maxModelChanges).
func (rn *Runner) modelChanged(j *jobs.Job, modelPath string, log *slog.Logger) bool {
	sum, err := filehash.SHA256(modelPath)
	if err != nil || sum == j.ModelSHA256 {
		return false
	}
	j.ModelChanges++
	if j.ModelChanges > maxModelChanges {
		return false // published as built from the bytes hashed; the report says which
	}
	log.Warn("the model changed after it was claimed (an upload still being written?): building it again", "was", j.ModelSHA256, "now", sum, logging.KeyEvent, "model_changed")
	j.ModelSHA256, j.CacheKey = "", ""
	if err := rn.Store.Transition(j, jobs.Queued, "", "the model changed while it was built: building again from its current bytes"); err != nil {
		log.Error("cannot persist job", "err", err)
	}
	return true
}

// waitingForOutbox is the status line's outcome of a build whose engine
// waits for the outbox.
const waitingForOutbox = "waiting_for_outbox"

// parkForOutbox keeps a finished build whose outbox cannot be written:
// its engine is in the state's cache, its report saved in the job; the job
// waits and is retried every worker.retry_interval, and published (as
// built, with this report) once the outbox takes it.
func (rn *Runner) parkForOutbox(j *jobs.Job, rep *report.Report, log *slog.Logger, err error) {
	if b, merr := json.Marshal(rep); merr == nil {
		if werr := atomicfile.WriteFile(filepath.Join(rn.Store.Dir(j), outbox.PendingReport), b, 0o644); werr != nil {
			log.Error("the built engine's report not kept in the job while the outbox waits", "err", werr)
		}
	}
	next := time.Now().Add(rn.Cfg.Worker.RetryInterval.D()).UTC()
	j.Reason, j.NextRetry = "the engine is built and kept; "+err.Error(), next
	if terr := rn.Store.Transition(j, jobs.Waiting, jobs.StepOutboxBlocked, j.Reason); terr != nil {
		log.Error("cannot persist job", "err", terr)
	}
	rn.mu.Lock()
	rn.outboxRetry = next
	rn.mu.Unlock()
	log.Error("the outbox cannot be written: the engine is kept and will be published when it can", "err", err, "next_retry", next, logging.KeyEvent, "job_outbox_blocked")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
