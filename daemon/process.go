package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fsutil"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/offload"
	"github.com/trtd/trtd/daemon/provenance"
)

// process builds one job to its end: done, failed, waiting for a builder,
// or back to queued when the daemon is stopping.
func (d *Daemon) process(ctx context.Context, j *jobs.Job) {
	log := d.log.With(logging.KeyJob, j.ID, logging.KeyModel, j.Name)
	t0 := time.Now()
	rep := &report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: Version}, Job: j.ID,
		Model: report.Model{Name: j.Name, Size: j.ModelSize}, Attempts: []report.Attempt{}}
	finish := func(outcome, stage, reason, engine string) {
		d.pushLast(LastResult{Job: j.ID, Model: j.Name, Outcome: outcome, Stage: stage, Reason: reason, Engine: engine,
			At: time.Now().UTC(), Seconds: time.Since(t0).Seconds()})
	}
	modelPath := d.store.ModelPath(j)
	if j.Refused != "" {
		d.fail(j, rep, log, report.OutcomeRejected, j.Refused)
		finish(report.OutcomeRejected, "", j.Refused, "")
		return
	}
	if j.ModelSHA256 == "" {
		sum, err := fsutil.HashFile(modelPath)
		if err != nil {
			d.fail(j, rep, log, "crashed", fmt.Sprintf("cannot read the claimed model: %v", err))
			finish(report.OutcomeFailed, "", err.Error(), "")
			return
		}
		j.ModelSHA256 = sum
	}
	rep.Model.SHA256 = j.ModelSHA256
	rep.Model.Sidecar = j.Sidecar

	// Inspect (streaming: weights are never loaded) and read the sidecar.
	model, err := onnx.Open(modelPath)
	if err != nil {
		d.fail(j, rep, log, report.OutcomeRejected, fmt.Sprintf("%s is not a valid ONNX model: %v", j.Name, err))
		finish(report.OutcomeRejected, "", err.Error(), "")
		return
	}
	sum := model.Summary()
	if b, err := json.Marshal(sum); err == nil {
		rep.Model.Summary = b
	}
	var side *config.Sidecar
	if j.Sidecar != "" {
		data, err := fsutil.ReadFileLimit(filepath.Join(filepath.Dir(modelPath), j.Sidecar), jobs.DefaultLimits.Sidecar)
		if err == nil {
			side, err = config.ParseSidecar(j.Sidecar, data, d.cfg.Stages)
		}
		if err != nil {
			d.fail(j, rep, log, report.OutcomeRejected, fmt.Sprintf("settings file %s: %v", j.Sidecar, err))
			finish(report.OutcomeRejected, "", err.Error(), "")
			return
		}
	}
	stages := d.withOffload(side.Ladder(d.cfg.Stages))
	shapes, warnings := resolveShapes(model, j.Name, side)
	rep.Model.Warnings = warnings
	for _, w := range warnings {
		log.Warn(w)
	}

	// Same content + settings + builder = reuse.
	builder := d.currentBuilder()
	dev, recs := d.mem.Device(ctx)
	rep.Device, rep.Recommendations = dev, recs
	plan := d.mem.Plan(PlanInput{SHA256: j.ModelSHA256, WeightBytes: sum.Initializers.Bytes, Params: sum.Parameters,
		InputBytes: inputBytes(model, shapes), Dynamic: len(sum.DynamicInputs) > 0, NodeCount: sum.NodeCount, Stages: stages})
	rep.Plan = plan.Report
	if builder == nil {
		d.park(j, rep, log, stages)
		finish(report.OutcomeBuilderUnavailable, "", d.builderLine(), "")
		return
	}
	rep.Builder = builder
	j.CacheKey = cacheKey(j.ModelSHA256, sidecarSum(d.store, j), stages, shapes, builder)
	if d.reuse(j, rep, log) {
		finish(report.OutcomeReused, j.Stage, "", j.Base()+".engine")
		return
	}

	if err := d.store.Transition(j, jobs.Building, jobs.StepPlanned, ""); err != nil {
		log.Error("cannot persist job", "err", err)
	}
	d.faultpoint(jobs.StepPlanned)
	log.Info("build started", logging.KeyEvent, "job_started", "stages", stageNames(stages), "start", stages[clamp(plan.Start, len(stages))].Name)

	// A restart after the worker finished resumes at publishing.
	engineDir := filepath.Join(d.store.Dir(j), "engines")
	var res converter.Result
	if resumed, ok := d.resume(j, engineDir); ok {
		res = resumed
		log.Info("resuming after restart: the engine was already built", logging.KeyStage, res.Stage)
	} else {
		res = d.build(ctx, j, model, stages, shapes, side, plan, engineDir, log)
	}
	rep.Attempts = append(rep.Attempts, res.Attempts...)
	if res.Builder != nil {
		rep.Builder = res.Builder
	}
	d.clearCurrent()

	switch {
	case res.OK:
		if err := d.publish(j, rep, res, log); err != nil {
			log.Error("cannot publish the engine", "err", err)
			d.fail(j, rep, log, report.OutcomeFailed, "cannot write the engine to the outbox: "+err.Error())
			finish(report.OutcomeFailed, res.Stage, err.Error(), "")
			return
		}
		d.mem.Record(j.ModelSHA256, res.Stage)
		finish(report.OutcomeBuilt, res.Stage, "", j.Base()+".engine")
	case res.Class == protocol.ClassCanceled:
		// Shutdown: the job goes back to the queue, not to failed.
		d.store.Transition(j, jobs.Queued, "", "interrupted by shutdown")
		log.Info("build interrupted by shutdown; it will run again", logging.KeyEvent, "job_interrupted")
	case res.Class == protocol.ClassBuilderUnavailable:
		d.markUnavailable(res.Reason)
		d.park(j, rep, log, stages)
		finish(report.OutcomeBuilderUnavailable, "", res.Reason, "")
	default:
		d.fail(j, rep, log, report.OutcomeFailed, res.Reason)
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
func (d *Daemon) build(ctx context.Context, j *jobs.Job, model *onnx.Model, stages []config.Stage, shapes []protocol.Shape,
	side *config.Sidecar, plan PlanOutput, engineDir string, log interface {
		Info(string, ...any)
		Warn(string, ...any)
	}) converter.Result {
	// The worker's world: an empty directory with the model and its
	// companions hard-linked in, writable by the worker's user.
	work := d.store.WorkDir(j)
	os.RemoveAll(work)
	os.RemoveAll(engineDir)
	for _, dir := range []string{work, engineDir} {
		os.MkdirAll(dir, 0o755)
		d.chownWorker(dir)
	}
	src := filepath.Dir(d.store.ModelPath(j))
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if err := linkOrCopy(filepath.Join(src, e.Name()), filepath.Join(work, e.Name())); err != nil {
			log.Warn("cannot place file in the work directory", "file", e.Name(), "err", err)
		}
		d.shareWithWorker(filepath.Join(work, e.Name()))
	}
	in := converter.Input{WorkDir: work, Model: j.Name, EngineDir: engineDir, Stages: stages, Start: plan.Start, Skip: plan.Skip,
		Shapes: shapes, ValidateRuns: d.cfg.Worker.ValidateRuns, Backend: d.cfg.Worker.Backend, Trtexec: d.cfg.Worker.Trtexec}
	in.TimingCache = d.timingCache(d.currentBuilder())
	if side != nil {
		in.Precision = side.Precision
		in.WorkspaceCapMiB = int64(side.Workspace) >> 20
	}
	if acc := accuracySamples(work, j.Base()+".test"); acc != nil {
		acc.ATol, acc.RTol = d.cfg.Validation.ATol, d.cfg.Validation.RTol
		if side != nil && side.Accuracy.ATol != nil {
			acc.ATol = *side.Accuracy.ATol
		}
		if side != nil && side.Accuracy.RTol != nil {
			acc.RTol = *side.Accuracy.RTol
		}
		in.Accuracy = acc
	}
	started := time.Now()
	stageIdx := map[string]int{}
	for i, s := range stages {
		stageIdx[s.Name] = i + 1
	}
	d.mem.Busy(true)
	defer d.mem.Busy(false)
	hooks := converter.Hooks{
		BeforeStage: func(ctx context.Context, st config.Stage) error {
			d.setCurrent(&Current{Job: j.ID, Model: j.Name, Stage: st.Name, StageIndex: stageIdx[st.Name], Stages: len(stages),
				Started: started, StageStart: time.Now()})
			j.Stage = st.Name
			if err := d.mem.BeforeStage(ctx, st, plan); err != nil {
				return err
			}
			d.store.Mark(j, jobs.StepSwapReady)
			d.faultpoint(jobs.StepSwapReady)
			return nil
		},
		Sandbox: d.mem.Sandbox,
		Started: func(st config.Stage, part int) {
			d.store.Mark(j, jobs.StepWorkerStarted)
			d.log.Info("stage started", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyStage, st.Name, "part", part, logging.KeyEvent, "stage_started")
			d.faultpoint(jobs.StepWorkerStarted)
		},
		Finished: func(st config.Stage, part int, r converter.Run) {
			if r.Class == protocol.ClassOK && r.Result != nil {
				j.EngineSHA = r.Result.EngineSHA256
			}
			d.store.Mark(j, jobs.StepWorkerFinished)
			lvl := d.log.Info
			if r.Class != protocol.ClassOK {
				lvl = d.log.Warn
			}
			lvl("stage finished", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyStage, st.Name, "part", part,
				"class", string(r.Class), "reason", r.Reason, "seconds", r.Duration.Seconds(), logging.KeyEvent, "stage_finished")
			for _, l := range r.LogTail {
				d.log.Debug("worker: "+l, logging.KeyJob, j.ID, logging.KeyStage, st.Name)
			}
			d.faultpoint(jobs.StepWorkerFinished)
		},
		Progress: func(st config.Stage, part int, ev protocol.Event) {
			if ev.Event == protocol.EventProgress {
				d.setPhase(part, ev.Phase, ev.Step, ev.Steps)
			}
		},
		Split: d.splitter(),
	}
	if d.cfg.Offload.Enabled && len(d.cfg.Offload.Peers) > 0 {
		hooks.Offload = offload.New(d.cfg, func() (offload.Fingerprint, bool) {
			b := d.currentBuilder()
			if b == nil {
				return offload.Fingerprint{}, false
			}
			l4t, _ := provenance.ReadL4T("/")
			return offload.Fingerprint{Builder: *b, L4T: l4t}, true
		}, d.log).Offload
	}
	return d.worker.Ladder(ctx, in, hooks)
}

// timingCache is the timing cache file for a builder (TensorRT version and
// GPU), or "" for the test double.
func (d *Daemon) timingCache(b *protocol.Builder) string {
	if b == nil || b.Backend == "fake" {
		return ""
	}
	return filepath.Join(d.cfg.Paths.State, "timing", sanitize(b.TensorRT+"-sm"+b.ComputeCapability+"-"+b.GPU)+".cache")
}

// withOffload appends an offload stage to the ladder when peers are
// configured and the ladder has none: it runs only when every local stage
// failed for lack of memory.
func (d *Daemon) withOffload(stages []config.Stage) []config.Stage {
	if !d.cfg.Offload.Enabled || len(d.cfg.Offload.Peers) == 0 {
		return stages
	}
	for _, s := range stages {
		if s.Kind == "offload" {
			return stages
		}
	}
	out := append([]config.Stage(nil), stages...)
	return append(out, config.Stage{Name: "offload", Kind: "offload", Timeout: d.cfg.Offload.Timeout})
}

// resume recognises a job whose worker already produced its engine before
// a restart, so the build is not repeated.
func (d *Daemon) resume(j *jobs.Job, engineDir string) (converter.Result, bool) {
	switch j.Step {
	case jobs.StepWorkerFinished, jobs.StepEngineTemp, jobs.StepEngineSynced, jobs.StepEngineRenamed, jobs.StepReportPublished:
	default:
		return converter.Result{}, false
	}
	if j.EngineSHA == "" || j.Stage == "" {
		return converter.Result{}, false
	}
	p := filepath.Join(engineDir, j.Stage+".engine")
	if sum, err := fsutil.HashFile(p); err != nil || sum != j.EngineSHA {
		return converter.Result{}, false
	}
	return converter.Result{OK: true, Stage: j.Stage, Engine: p, Class: protocol.ClassOK,
		Attempts: []report.Attempt{{Stage: j.Stage, Kind: "build", Outcome: protocol.ClassOK, Start: time.Now().UTC(),
			Reason: "engine built before a restart; published now"}}}, true
}

// resolveShapes turns the sidecar's shapes into optimization profiles and
// gives dynamic inputs without shapes the documented default: every
// symbolic dimension 1 for min, opt and max, with a warning.
func resolveShapes(m *onnx.Model, name string, side *config.Sidecar) ([]protocol.Shape, []string) {
	var shapes []protocol.Shape
	given := map[string]bool{}
	if side != nil {
		shapes = side.ProtocolShapes()
		for _, s := range shapes {
			given[s.Input] = true
		}
	}
	var warn []string
	for _, v := range m.Inputs() {
		if !v.Dynamic() || given[v.Name] {
			continue
		}
		dims, ok := v.Shape()
		if !ok {
			warn = append(warn, fmt.Sprintf("input %q has an unknown rank and no [[shape]] in the settings file: TensorRT will refuse it", v.Name))
			continue
		}
		fixed := make([]int64, len(dims))
		var sym []string
		for i, dd := range dims {
			if dd.Fixed() && dd.Value > 0 {
				fixed[i] = dd.Value
			} else {
				fixed[i] = 1
				sym = append(sym, dd.String())
			}
		}
		shapes = append(shapes, protocol.Shape{Input: v.Name, Min: fixed, Opt: fixed, Max: fixed})
		warn = append(warn, fmt.Sprintf("input %q has dynamic dimension(s) %s and no [[shape]] in a settings file: built for 1 (min = opt = max = %v); upload %s with shapes to change it",
			v.Name, strings.Join(sym, ", "), fixed, strings.TrimSuffix(name, ".onnx")+".toml"))
	}
	return shapes, warn
}

// inputBytes estimates the bytes of all inputs at their max shapes.
func inputBytes(m *onnx.Model, shapes []protocol.Shape) int64 {
	var n int64
	for _, s := range shapes {
		e := int64(4)
		for _, d := range s.Max {
			e *= d
		}
		n += e
	}
	for _, v := range m.Inputs() {
		if v.Dynamic() {
			continue
		}
		dims, _ := v.Shape()
		e := int64(4)
		for _, d := range dims {
			e *= d.Value
		}
		n += e
	}
	return n
}

// cacheKey identifies a build: model content, sidecar, the ladder's
// settings, shapes and the builder (TensorRT version and GPU).
func cacheKey(modelSHA, sideSHA string, stages []config.Stage, shapes []protocol.Shape, b *protocol.Builder) string {
	h := sha256.New()
	fmt.Fprintf(h, "model %s\nsidecar %s\nbuilder %s\n", modelSHA, sideSHA, b.Fingerprint())
	enc := json.NewEncoder(h)
	for _, s := range stages {
		enc.Encode(s)
	}
	enc.Encode(shapes)
	return hex.EncodeToString(h.Sum(nil))
}

func sidecarSum(s *jobs.Store, j *jobs.Job) string {
	if j.Sidecar == "" {
		return ""
	}
	sum, _ := fsutil.HashFile(filepath.Join(filepath.Dir(s.ModelPath(j)), j.Sidecar))
	return sum
}

func linkOrCopy(src, dst string) error { return fsutil.CopyTree(src, dst, true) }

// shareWithWorker makes a claimed file readable by the unprivileged worker:
// uploads often arrive 0600 (scp and sftp keep the client's mode). The
// file now belongs to the job store, so it gets the worker's group and
// group read permission; nobody else gains access.
func (d *Daemon) shareWithWorker(path string) {
	c := d.worker.Credential
	if c == nil {
		return
	}
	filepath.Walk(path, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		os.Lchown(p, -1, int(c.Gid))
		if fi.IsDir() {
			os.Chmod(p, fi.Mode().Perm()|0o050)
		} else {
			os.Chmod(p, fi.Mode().Perm()|0o040)
		}
		return nil
	})
}

func (d *Daemon) chownWorker(dir string) {
	if c := d.worker.Credential; c != nil {
		os.Chown(dir, int(c.Uid), int(c.Gid))
	}
}

// accuracySamples finds ONNX test-data .pb files in work/<base>.test/
// (input_0.pb ..., output_0.pb ...).
func accuracySamples(work, dir string) *protocol.Accuracy {
	ents, err := os.ReadDir(filepath.Join(work, dir))
	if err != nil {
		return nil
	}
	acc := &protocol.Accuracy{}
	for _, e := range ents {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "input_") && strings.HasSuffix(n, ".pb"):
			acc.Inputs = append(acc.Inputs, filepath.Join(dir, n))
		case strings.HasPrefix(n, "output_") && strings.HasSuffix(n, ".pb"):
			acc.Outputs = append(acc.Outputs, filepath.Join(dir, n))
		}
	}
	if len(acc.Inputs) == 0 || len(acc.Outputs) == 0 {
		return nil
	}
	return acc
}

// sanitize makes a string safe as a file name component.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (d *Daemon) currentBuilder() *protocol.Builder {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.builder
}

func (d *Daemon) markUnavailable(reason string) {
	d.mu.Lock()
	d.builder, d.builderErr, d.lastProbe = nil, reason, time.Now()
	d.status.Builder = reason
	d.mu.Unlock()
}

// splitter returns the graph splitter for segmented stages.
func (d *Daemon) splitter() func(ctx context.Context, in converter.Input, parts int) ([]converter.Part, string, error) {
	return splitModel
}
