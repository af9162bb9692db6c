package daemon

import (
	"context"
	"errors"
	"os"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/workers"
)

// selectWorker points d.worker at the worker that matches the installed
// TensorRT (daemon/workers), probing the cgo one, and records the choice
// and its reason for the status file, reports and `trtd diagnose`.
func (d *Daemon) selectWorker(ctx context.Context, workDir string) {
	present, err := workers.Discover(d.cfg.Paths.Worker)
	if err != nil {
		d.log.Warn("no worker found", "reason", err)
		return
	}
	probe := func(ctx context.Context, w workers.Worker) error {
		ww := *d.worker
		ww.Path = w.Path
		_, class, reason := ww.Probe(ctx, "api", "", workDir)
		if class != protocol.ClassOK {
			return errors.New(reason)
		}
		return nil
	}
	sel := workers.Select(ctx, present, workers.Installed(workers.LibDirs(d.workerEnv())), probe)
	if sel.Chosen.Path == "" {
		return
	}
	d.mu.Lock()
	d.worker.Path, d.worker.Reason = sel.Chosen.Path, sel.Reason
	d.status.Worker = &sel
	d.mu.Unlock()
	d.log.Info("worker selected", "worker", sel.Chosen.Path, "present", sel.PresentNames(), "reason", sel.Reason,
		logging.KeyEvent, "worker_selected")
}

func (d *Daemon) workerEnv() []string {
	if d.opts.WorkerEnv != nil {
		return d.opts.WorkerEnv
	}
	return os.Environ()
}
