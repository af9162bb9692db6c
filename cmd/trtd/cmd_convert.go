package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/statelock"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/safename"
	"github.com/trtd/trtd/internal/safetext"
	"github.com/trtd/trtd/internal/treecopy"
)

func init() {
	register(&command{
		Name:    "convert",
		Summary: "build one model now, in the foreground",
		Usage: `Usage: trtd convert MODEL.onnx [--out DIR] [--config PATH] [--state DIR]

Runs the daemon's whole pipeline once for MODEL: inspection, plan, swap,
the stage ladder in the worker, validation, and writes MODEL.engine and
MODEL.report.{json,md,html} to --out (default: the model's directory). A
settings file MODEL.toml beside the model is used too. The model itself is
never moved or changed. Exits 0 only when an engine was written.

While it runs, a status line on stderr shows the stage, phase and elapsed
time, updated in place on a terminal; when stderr is not a terminal, plain
lines are written instead (one per change, and every 30 s).

Examples:
  trtd convert yolov8n.onnx
  trtd convert ./resnet50.onnx --out /tmp/engines`,
		Run: runConvert,
	})
}

func runConvert(ctx context.Context, e *Env, args []string) int {
	fs := newFlagSet("convert", e)
	cfgPath := fs.String("config", "", "config file (ladder, worker, swap settings)")
	out := fs.String("out", "", "directory for the engine and reports (default: the model's directory)")
	stateDir := fs.String("state", "", "state directory to keep (default: a temporary one)")
	if code, done := parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		cliout.Fprintln(e.Stderr, "trtd convert: need exactly one MODEL.onnx (see trtd convert -h)")
		return 2
	}
	model, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 2
	}
	fi, err := os.Stat(model)
	if err != nil || !fi.Mode().IsRegular() {
		cliout.Fprintf(e.Stderr, "trtd convert: %s: not a readable regular file\n", fs.Arg(0))
		return 2
	}
	if !strings.HasSuffix(model, ".onnx") {
		cliout.Fprintf(e.Stderr, "trtd convert: %s: the model's name must end in .onnx\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 2
	}
	if *out == "" {
		*out = filepath.Dir(model)
	}
	if *out, err = filepath.Abs(*out); err != nil {
		return 2
	}
	// The configured state directory belongs to the daemon when one runs:
	// its swapfiles are recorded there, and swap.dir is shared. Refuse
	// rather than build beside it; when none runs, hold the directory for
	// the build so swap made here is recorded where the daemon will find it.
	swapCfg := *cfg
	lock, lerr := statelock.Acquire(cfg.Paths.State)
	if lerr != nil && !errors.Is(lerr, statelock.ErrHeld) {
		if cerr := statelock.Check(cfg.Paths.State); cerr != nil {
			lerr = cerr
		}
	}
	if lerr == nil {
		defer lock.Release()
	} else if err := lerr; errors.Is(err, statelock.ErrHeld) {
		cliout.Fprintf(e.Stderr, "trtd convert: %v: the daemon is running and owns this machine's build swap.\n"+
			"Put the model in its inbox (%s); its engine and report appear in %s. Or stop the daemon first (sudo systemctl stop trtd).\n",
			err, cfg.Paths.Inbox, cfg.Paths.Outbox)
		return 1
	} else {
		// Not ours to write (not root): no daemon there, and swap needs root anyway.
		swapCfg.Paths.State = ""
	}
	root, cleanup, err := convertRoot(e, *stateDir)
	defer cleanup()
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 1
	}
	cfg.Paths.Inbox = filepath.Join(root, "inbox")
	cfg.Paths.State = filepath.Join(root, "state")
	cfg.Paths.Failed = filepath.Join(root, "failed")
	cfg.Paths.Outbox = *out
	cfg.Paths.Status = filepath.Join(root, "status.json")
	if os.Geteuid() != 0 {
		cfg.Worker.User = ""
	}
	if err := os.MkdirAll(cfg.Paths.Inbox, 0o755); err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 1
	}
	staged, err := stageModel(model, cfg.Paths.Inbox)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 1
	}
	cfg.Inbox.Settle = config.Duration(100 * time.Millisecond)
	pr := newProgress(e.Stderr, isTerminal(e.Stderr))
	pr.width = terminalWidth(e.Stderr)
	level := cfg.LogLevel
	if level == "info" {
		level = "warn"
	}
	log := logging.New("text", logging.ParseLevel(level), pr)
	tick := time.NewTicker(time.Second)
	stopTick := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				pr.Tick()
			case <-stopTick:
				return
			}
		}
	}()
	opts := daemon.Options{Log: log, Once: true, Progress: pr.Update}
	if swapCfg.Paths.State != "" {
		// The settings this build adjusted; only its swap and planner
		// history stay with the configured state directory.
		swapCfg.Stages, swapCfg.Guard, swapCfg.Swap, swapCfg.Worker = cfg.Stages, cfg.Guard, cfg.Swap, cfg.Worker
		opts.Memory = memory.New(&swapCfg, log)
	}
	err = daemon.Run(ctx, cfg, opts)
	tick.Stop()
	close(stopTick)
	pr.Done()
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
		return 1
	}
	// The daemon names outbox files after the staged name (-x.onnx -> _x-<hash>).
	outBase := safename.File(staged)
	// The daemon's reports name the copy it worked on, in a directory
	// removed on exit: they are rewritten to name the model itself.
	if err := pointReportsAt(*out, outBase, model); err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %v\n", err)
	}
	return convertResult(e, *out, outBase)
}

// convertResult prints where the results are and returns the exit code:
// 0 only when an engine was written.
func convertResult(e *Env, out, base string) int {
	rp := filepath.Join(out, base+".report.json")
	b, err := os.ReadFile(rp)
	if err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: no report was written (%v)\n", err)
		return 1
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		cliout.Fprintf(e.Stderr, "trtd convert: %s: %v\n", rp, err)
		return 1
	}
	md := filepath.Join(out, base+".report.md")
	html := filepath.Join(out, base+".report.html")
	e = &Env{Stdout: safetext.TerminalWriter(e.Stdout), Stderr: e.Stderr, Log: e.Log} // names come from the upload
	switch r.Outcome {
	case report.OutcomeBuilt, report.OutcomeReused:
		cliout.Fprintf(e.Stdout, "engine: %s (stage %s)\nreport: %s\n        %s\n", filepath.Join(out, r.Engine.File), r.Engine.Stage, md, html)
		return 0
	}
	cliout.Fprintf(e.Stdout, "no engine: %s", r.Outcome)
	if r.Reason != "" {
		cliout.Fprintf(e.Stdout, ": %s", r.Reason)
	}
	cliout.Fprintf(e.Stdout, "\nreport: %s\n        %s\n", md, html)
	return 1
}

// pointReportsAt rewrites the reports in out so that they name the model
// where the user has it, not the private copy the daemon built from.
func pointReportsAt(out, base, model string) error {
	rp := filepath.Join(out, base+".report.json")
	b, err := os.ReadFile(rp)
	if err != nil {
		return nil // convertResult says there is no report
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", rp, err)
	}
	r.KeptModel = model
	// The model summary's input types do not survive JSON (it is written
	// for people and scripts, not read back): take them from the model.
	if m, err := onnx.Open(model); err == nil && r.Model.Summary != nil {
		sum := m.Summary()
		r.Model.Summary = &sum
	}
	_, err = report.Publish(out, base, &r)
	return err
}

// copyTree copies, never links: the daemon adjusts the group and mode of
// the files it claims, which must not reach the user's own files.
func copyTree(src, dst string) error { return treecopy.Copy(src, dst, false) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalWidth is w's width in columns, or 0 when unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// convertRoot is the build's state directory: dir when given (kept), else
// a temporary one that cleanup removes.
func convertRoot(e *Env, dir string) (root string, cleanup func(), err error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	root, err = os.MkdirTemp("", "trtd-convert-")
	if err != nil {
		return "", func() {}, err
	}
	cleanup = func() {
		if err := os.RemoveAll(root); err != nil {
			e.Log.Warn("temporary state directory not removed", "dir", root, "err", err)
		}
	}
	// The unprivileged worker must reach its work directory inside.
	return root, cleanup, os.Chmod(root, 0o755)
}

// stageModel copies model and its companions (name.toml, name.test/,
// name.calib/) into the private inbox dir under a temporary name, then
// renames the model in: the original is never touched. A name the inbox
// would pass over (a hidden ".x.onnx") is staged under its outbox name,
// which the inbox takes.
func stageModel(model, dir string) (staged string, err error) {
	base := strings.TrimSuffix(filepath.Base(model), ".onnx")
	staged = base
	if !inbox.IsCandidate(filepath.Base(model)) {
		staged = safename.File(base)
	}
	for _, ext := range []string{".toml", ".test", ".calib"} {
		src := filepath.Join(filepath.Dir(model), base+ext)
		if _, err := os.Stat(src); err == nil {
			// A companion left out would build a different engine.
			if err := copyTree(src, filepath.Join(dir, staged+ext)); err != nil {
				return "", err
			}
		}
	}
	tmp := filepath.Join(dir, "."+filepath.Base(model)+".staging")
	if err := copyTree(model, tmp); err != nil {
		return "", err
	}
	return staged, os.Rename(tmp, filepath.Join(dir, staged+".onnx"))
}
