package pipeline

import (
	"context"
	"errors"
	"os"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/workers"
)

// selectWorker points rn.Worker at the worker that matches the installed
// TensorRT (daemon/workers), probing the cgo one, and records the choice
// and its reason for the status file, reports and `trtd diagnose`.
func (rn *Runner) selectWorker(ctx context.Context, workDir string) {
	present, err := workers.Discover(rn.Cfg.Paths.Worker)
	if err != nil {
		rn.Log.Warn("no worker found", "reason", err)
		return
	}
	probe := func(ctx context.Context, w workers.Worker) error {
		ww := *rn.Worker
		ww.Path = w.Path
		if _, class, reason := ww.Probe(ctx, "api", "", workDir); class != protocol.ClassOK {
			return errors.New(reason)
		}
		return nil
	}
	env := rn.Worker.Env
	if env == nil {
		env = os.Environ()
	}
	sel := workers.Select(ctx, present, workers.Installed(workers.LibDirs(env)), probe)
	if sel.Chosen.Path == "" {
		return
	}
	rn.mu.Lock()
	rn.Worker.Path, rn.Worker.Reason = sel.Chosen.Path, sel.Reason
	rn.fallback = ""
	if sel.Fallback {
		rn.fallback = sel.Reason
	}
	rn.mu.Unlock()
	rn.Status.SetWorker(&sel)
	rn.Log.Info("worker selected", "worker", sel.Chosen.Path, "present", sel.PresentNames(), "reason", sel.Reason,
		logging.KeyEvent, "worker_selected")
}
