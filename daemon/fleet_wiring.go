package daemon

import (
	"fmt"
	"path/filepath"

	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/metrics"
)

// wireFleet gives the pipeline its textfile counters and, when [fleet]
// names a registry, the service that pulls before building and pushes
// after publishing. Credentials readable by others stop the start.
func (d *Daemon) wireFleet() error {
	d.jobs.Metrics = metrics.New(d.cfg.Fleet.Textfile)
	// node_exporter sees the counters (at zero) from the start.
	if err := d.jobs.Metrics.Write(d.cfg.Fleet.Textfile); err != nil {
		d.log.Warn("cannot write the metrics textfile", "path", d.cfg.Fleet.Textfile, "err", err)
	}
	if !d.cfg.Fleet.Enabled() {
		return nil
	}
	svc, err := fleet.NewService(fleet.OptionsFrom(d.cfg, "trtd "+Version), d.cfg.Fleet.Pull, d.cfg.Fleet.Push,
		d.cfg.Paths.State, d.log.With("stage", "fleet"), d.jobs.Metrics)
	if err != nil {
		return fmt.Errorf("%w: [fleet] in %s: %v", ErrInvalidSetup, filepath.Base(d.cfg.File), err)
	}
	d.jobs.Fleet = svc
	d.status.Fleet = svc.Status
	svc.OnChange = d.status.Update
	return nil
}
