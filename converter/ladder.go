package converter

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
)

// Input is one model's build.
type Input struct {
	// WorkDir is the worker's empty working directory holding the model
	// (and its external data): the only place the worker reads from.
	WorkDir string
	// Model is the model's file name inside WorkDir.
	Model string
	// EngineDir receives the engines (inside the job, not the outbox).
	EngineDir string
	Stages    []Stage
	// Start is the index of the first stage to try (the planner's pick).
	Start int
	// Skip maps stage names the planner ruled out to the reason.
	Skip         map[string]string
	Shapes       []protocol.Shape
	TimingCache  string
	ValidateRuns int
	Backend      string
	Trtexec      string
	Accuracy     *protocol.Accuracy
	// CalibrationData and Calibration go to int8 stages as
	// protocol.Request's fields of those names (uploaded batches, and the
	// cache the API worker writes and trtexec --calib= reads). Like
	// Accuracy they never leave this machine: segmented parts drop them
	// (a part's inputs are not the model's) and an offload peer is sent
	// the model and its settings only, so it refuses int8 and says why.
	CalibrationData []string
	Calibration     string
	// Precision overrides every stage's precision (sidecar); "" keeps them.
	Precision string
	// WorkspaceCap caps every stage's workspace (sidecar); 0 = none.
	WorkspaceCapMiB int64

	// workspaceFloorMiB is set by the ladder after a no_tactic_fits
	// stage: later stages get no less workspace than TensorRT asked for.
	workspaceFloorMiB int64
}

// Step is what the ladder does after a stage ended in a class.
type Step int

// The ladder's steps.
const (
	// Stop: the outcome is final (success, or a failure a cheaper stage
	// cannot fix).
	Stop Step = iota
	// StepDown: try the next, cheaper stage.
	StepDown
	// StepDownKeepWorkspace: try the next stage, with no less workspace
	// than TensorRT asked for (at most this stage's): no tactic fitted the
	// memory it could get, and a smaller workspace leaves fewer tactics.
	StepDownKeepWorkspace
	// NoLessWorkspace: try only later stages with at least this stage's
	// workspace. No implementation was found and nothing ran short of
	// memory (an op this GPU cannot run, a missing plugin); less memory
	// cannot help, other tactic sources might.
	NoLessWorkspace
)

// NextStep is the ladder's choice per class. Classes not listed stop it.
var NextStep = map[protocol.Class]Step{
	protocol.ClassOutOfMemory:      StepDown,
	protocol.ClassNoTactic:         StepDownKeepWorkspace,
	protocol.ClassNoImplementation: NoLessWorkspace,
}

// Part is one sub-model of a segmented build.
type Part struct {
	Model  string // file name inside WorkDir
	Engine string // engine file name
}

// Hooks let the daemon act around each stage.
type Hooks struct {
	// BeforeStage prepares the machine for a stage (swap, page cache). An
	// error is logged and the stage runs anyway: it may fit without what
	// could not be prepared, and if it does not, its own failure is what
	// the report shows.
	BeforeStage func(ctx context.Context, st Stage) error
	// Sandbox returns the cgroup + guard wrapper for one worker run.
	Sandbox func(st Stage) Sandbox
	// Started and Finished bracket each worker run (for persisted steps).
	Started  func(st Stage, part int)
	Finished func(st Stage, part int, r Run)
	// Progress receives the worker's events.
	Progress func(st Stage, part int, ev protocol.Event)
	// Split cuts the model into parts for a segmented stage and writes a
	// manifest; nil means segmented builds are not available.
	Split func(ctx context.Context, in Input, parts int) (files []Part, manifest string, err error)
	// Offload hands the model to a peer; nil means no offload.
	Offload func(ctx context.Context, in Input, st Stage) (engine string, reason string, ok bool)
}

// Result of the whole ladder.
type Result struct {
	OK       bool
	Stage    string
	Engine   string   // path of the engine (single-engine stages)
	Parts    []string // engine paths of a segmented build
	Manifest string
	// Offload names the peer that built the engine, when one did.
	Offload  string
	Class    protocol.Class
	Reason   string
	Attempts []report.Attempt
	Builder  *protocol.Builder
	Runs     []Run
}

// Ladder walks the stages from in.Start, moving on only when a stage ran
// out of memory (or no tactic fit its workspace).
func (w *Worker) Ladder(ctx context.Context, in Input, h Hooks) Result {
	var res Result
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if in.Start < 0 || in.Start >= len(in.Stages) {
		in.Start = 0
	}
	var minWorkspace int64 // NoLessWorkspace: the failed stage's workspace
	for i := in.Start; i < len(in.Stages); i++ {
		st := in.Stages[i]
		if ws := w.settings(in, st).WorkspaceMiB; minWorkspace > 0 && ws > 0 && ws < minWorkspace {
			res.Attempts = append(res.Attempts, report.Attempt{Stage: st.Name, Kind: kind(st), Settings: w.settings(in, st),
				Start: time.Now().UTC(), Outcome: "skipped", Reason: fmt.Sprintf("a stage with %d MiB of workspace found no implementation without running short of memory; this one has %d MiB, which cannot help", minWorkspace, ws)})
			continue
		}
		if reason, skip := in.Skip[st.Name]; skip {
			res.Attempts = append(res.Attempts, report.Attempt{Stage: st.Name, Kind: kind(st), Settings: w.settings(in, st),
				Start: time.Now().UTC(), Outcome: "skipped", Reason: reason})
			continue
		}
		if ctx.Err() != nil {
			res.Class, res.Reason = protocol.ClassCanceled, "trtd is shutting down"
			return res
		}
		if h.BeforeStage != nil {
			if err := h.BeforeStage(ctx, st); err != nil {
				w.Log.Warn("stage preparation failed; trying the stage anyway", "stage", st.Name, "err", err)
			}
		}
		var runs []Run
		var atts []report.Attempt
		switch st.EffectiveKind() {
		case KindSegmented:
			runs, atts = w.segmented(ctx, in, st, h, &res)
		case KindOffload:
			atts = []report.Attempt{w.offload(ctx, in, st, h, &res)}
		default:
			r, a := w.one(ctx, in, st, h, 0, in.Model, st.Name+".engine")
			runs, atts = []Run{r}, []report.Attempt{a}
			if r.Class == protocol.ClassOK {
				res.Engine = filepath.Join(in.EngineDir, st.Name+".engine")
			}
		}
		res.Runs = append(res.Runs, runs...)
		res.Attempts = append(res.Attempts, atts...)
		for _, r := range runs {
			if r.Result != nil && r.Result.Builder.Backend != "" {
				b := r.Result.Builder
				res.Builder = &b
			}
		}
		last := atts[len(atts)-1]
		res.Class, res.Reason = last.Outcome, last.Reason
		if last.Outcome == protocol.ClassOK && allOK(atts) {
			res.OK, res.Stage = true, st.Name
			return res
		}
		switch NextStep[last.Outcome] {
		case Stop:
			return res
		case StepDownKeepWorkspace:
			in.workspaceFloorMiB = workspaceFloor(last.Settings.WorkspaceMiB, runs)
		case NoLessWorkspace:
			minWorkspace = last.Settings.WorkspaceMiB
			if minWorkspace == 0 {
				// TensorRT's default workspace (all of the device from
				// 8.4): every stage that names one has less.
				minWorkspace = 1 << 62
			}
		}
	}
	if res.Class == "" {
		res.Class, res.Reason = protocol.ClassOutOfMemory, "every stage was skipped by the planner as predicted to run out of memory"
	}
	return res
}

// workspaceFloor is the workspace later stages keep after a
// no_tactic_fits stage that had ws MiB: what TensorRT asked for and did
// not get (classify.WorkspaceAsked), at most ws; ws itself when the log
// names no figure.
func workspaceFloor(ws int64, runs []Run) int64 {
	var asked int64
	for _, r := range runs {
		if a := classify.WorkspaceAsked(r.Stderr); a > asked {
			asked = a
		}
	}
	askedMiB := (asked + 1<<20 - 1) >> 20
	if ws == 0 {
		return askedMiB
	}
	if askedMiB > 0 && askedMiB < ws {
		return askedMiB
	}
	return ws
}

func allOK(atts []report.Attempt) bool {
	for _, a := range atts {
		if a.Outcome != protocol.ClassOK {
			return false
		}
	}
	return true
}

func kind(st Stage) string { return string(st.EffectiveKind()) }

func (w *Worker) settings(in Input, st Stage) protocol.Settings {
	s := st.Settings
	if in.Precision != "" {
		s.Precision = in.Precision
	}
	if in.workspaceFloorMiB > 0 && s.WorkspaceMiB > 0 && s.WorkspaceMiB < in.workspaceFloorMiB {
		s.WorkspaceMiB = in.workspaceFloorMiB
	}
	if in.WorkspaceCapMiB > 0 && (s.WorkspaceMiB == 0 || s.WorkspaceMiB > in.WorkspaceCapMiB) {
		s.WorkspaceMiB = in.WorkspaceCapMiB
	}
	return s
}

// one runs the worker once for a stage (part > 0: one part of a segmented
// build).
func (w *Worker) one(ctx context.Context, in Input, st Stage, h Hooks, part int, model, engine string) (Run, report.Attempt) {
	req := protocol.Request{
		Op: protocol.OpBuild, Backend: in.Backend, Trtexec: in.Trtexec, WorkDir: in.WorkDir, Model: model,
		Engine: filepath.Join(in.EngineDir, engine), Stage: st.Name, Settings: w.settings(in, st),
		Shapes: in.Shapes, TimingCache: in.TimingCache, ValidateRuns: in.ValidateRuns, Accuracy: in.Accuracy,
	}
	if req.Settings.Precision == protocol.PrecisionINT8 {
		req.CalibrationData, req.Calibration = in.CalibrationData, in.Calibration
	}
	if part > 0 {
		// Parts have fixed shapes from the split, and the model's
		// accuracy samples and calibration batches (the model's inputs)
		// fit no single part.
		req.Shapes, req.Accuracy = nil, nil
		req.CalibrationData, req.Calibration = nil, ""
	}
	var sb Sandbox = NopSandbox{}
	if h.Sandbox != nil {
		sb = h.Sandbox(st)
	}
	if h.Started != nil {
		h.Started(st, part)
	}
	ww := *w
	if st.Timeout > 0 {
		ww.Timeout = st.Timeout
	}
	r := ww.RunWorker(ctx, req, sb, func(ev protocol.Event) {
		if h.Progress != nil {
			h.Progress(st, part, ev)
		}
	})
	if h.Finished != nil {
		h.Finished(st, part, r)
	}
	reason := r.Reason
	if r.Class == protocol.ClassOK {
		reason = ""
	}
	a := report.Attempt{
		Stage: st.Name, Kind: kind(st), Settings: req.Settings, Start: r.Start.UTC(), DurationMs: r.Duration.Milliseconds(),
		Outcome: r.Class, Reason: reason, ExitCode: r.ExitCode, Signal: r.Signal, LogTail: r.LogTail,
		MemUsage: r.MemUsage, Memory: r.Obs.Timeline, Part: part,
	}
	if r.Result != nil {
		a.Validation, a.Calls, a.Skipped = r.Result.Validation, r.Result.Calls, r.Result.Skipped
		a.Int8 = report.Int8Text(r.Result.Int8)
	}
	return r, a
}

func (w *Worker) segmented(ctx context.Context, in Input, st Stage, h Hooks, res *Result) ([]Run, []report.Attempt) {
	if h.Split == nil {
		return nil, []report.Attempt{{Stage: st.Name, Kind: string(KindSegmented), Settings: w.settings(in, st), Start: time.Now().UTC(),
			Outcome: protocol.ClassUnsupportedModel, Reason: "segmented builds are not available: this trtd has no graph splitter configured"}}
	}
	parts, manifest, err := h.Split(ctx, in, st.Parts)
	if err != nil {
		return nil, []report.Attempt{{Stage: st.Name, Kind: string(KindSegmented), Settings: w.settings(in, st), Start: time.Now().UTC(),
			Outcome: protocol.ClassUnsupportedModel, Reason: "cannot split the model: " + err.Error()}}
	}
	var runs []Run
	var atts []report.Attempt
	var engines []string
	for i, p := range parts {
		r, a := w.one(ctx, in, st, h, i+1, p.Model, p.Engine)
		runs, atts = append(runs, r), append(atts, a)
		if r.Class != protocol.ClassOK {
			return runs, atts
		}
		engines = append(engines, filepath.Join(in.EngineDir, p.Engine))
	}
	res.Parts, res.Manifest = engines, manifest
	return runs, atts
}

func (w *Worker) offload(ctx context.Context, in Input, st Stage, h Hooks, res *Result) report.Attempt {
	a := report.Attempt{Stage: st.Name, Kind: string(KindOffload), Settings: w.settings(in, st), Start: time.Now().UTC()}
	if h.Offload == nil {
		a.Outcome, a.Reason = protocol.ClassBuilderUnavailable, "offload is not configured ([offload] has no peers)"
		return a
	}
	t0 := time.Now()
	engine, reason, ok := h.Offload(ctx, in, st)
	a.DurationMs = time.Since(t0).Milliseconds()
	if !ok {
		a.Outcome, a.Reason = protocol.ClassBuilderUnavailable, reason
		return a
	}
	a.Outcome, a.Reason = protocol.ClassOK, reason
	res.Engine, res.Offload = engine, reason
	return a
}

// Probe asks the worker who builds here (TensorRT version, GPU).
func (w *Worker) Probe(ctx context.Context, backend, trtexec, workDir string) (protocol.Builder, protocol.Class, string) {
	if workDir == "" {
		workDir = os.TempDir()
	}
	ww := *w
	ww.Timeout = time.Minute
	ww.PrivateNet = false
	r := ww.RunWorker(ctx, protocol.Request{Op: protocol.OpProbe, Backend: backend, Trtexec: trtexec, WorkDir: workDir}, nil, nil)
	var b protocol.Builder
	if r.Result != nil {
		b = r.Result.Builder
	}
	reason := r.Reason
	if r.Class != protocol.ClassOK && r.Result != nil && r.Result.Message != "" {
		reason = r.Result.Message
	}
	if reason == "" && r.Class != protocol.ClassOK {
		reason = strings.Join(r.LogTail, "; ")
	}
	if r.Class != protocol.ClassOK && reason == "" {
		reason = fmt.Sprintf("worker probe ended with %s", r.Class)
	}
	return b, r.Class, reason
}
