package main

import (
	"context"
	"io"
	"path/filepath"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/daemon/workers"
	"github.com/trtd/trtd/internal/cliout"
)

// workerInfo is what `trtd version` and `trtd diagnose` say about the
// workers: which are installed, which one matches the TensorRT found (by
// soname; not probed here, so no CUDA context is made), and which one the
// daemon uses and why, from its status file.
type workerInfo struct {
	Dir     string             `json:"dir"`
	Present []workers.Worker   `json:"present"`
	Match   *workers.Selection `json:"match,omitempty"`
	// InUse is the daemon's choice (probed), from its status file.
	InUse *workers.Selection `json:"in_use,omitempty"`
	// Running says whether that daemon is running now.
	Running bool   `json:"running"`
	Error   string `json:"error,omitempty"`
}

func collectWorkers(cfg *config.Config) workerInfo {
	wi := workerInfo{Dir: filepath.Dir(cfg.Paths.Worker)}
	present, err := workers.Discover(cfg.Paths.Worker)
	if err != nil {
		wi.Error = err.Error()
	} else {
		wi.Present = present
		m := workers.Select(context.Background(), present, workers.Installed(workers.LibDirs(nil)), nil)
		wi.Match = &m
	}
	if s, err := status.Read(cfg.StatusPath()); err == nil && s.Worker != nil {
		wi.InUse = s.Worker
		wi.Running = alive(s.PID) && s.State != "stopped"
	}
	return wi
}

func (wi workerInfo) writeText(w io.Writer) {
	if wi.Error != "" {
		cliout.Fprintf(w, "workers: %s\n", wi.Error)
		return
	}
	sel := workers.Selection{Present: wi.Present}
	cliout.Fprintf(w, "workers: %s (in %s)\n", sel.PresentNames(), wi.Dir)
	if wi.Match != nil {
		cliout.Fprintf(w, "matches this system: %s\n", wi.Match.Line())
	}
	switch {
	case wi.InUse != nil && wi.Running:
		cliout.Fprintf(w, "in use by the daemon: %s\n", wi.InUse.Line())
	case wi.InUse != nil:
		cliout.Fprintf(w, "last used by the daemon (not running): %s\n", wi.InUse.Line())
	default:
		cliout.Fprintln(w, "in use by the daemon: none yet (the daemon has not probed a worker with this config)")
	}
}
