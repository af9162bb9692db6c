package pipeline

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/untrusted"
)

// readSidecar parses a job's settings file strictly and checks its
// [[shape]] tables against the model; nil without a settings file.
func (rn *Runner) readSidecar(j *jobs.Job, model *onnx.Summary) (*config.Sidecar, error) {
	if j.Sidecar == "" {
		return nil, nil
	}
	// Capped before anything reads it (jobs.DefaultLimits; the claim
	// already refused a larger one), opened without following a link.
	data, err := untrusted.ReadFileLimit(filepath.Join(filepath.Dir(rn.Store.ModelPath(j)), j.Sidecar), jobs.DefaultLimits.Sidecar)
	if err != nil {
		return nil, err
	}
	side, err := config.ParseSidecar(j.Sidecar, data, rn.Cfg.Stages)
	if err != nil {
		return nil, err
	}
	if err := config.CheckSidecarModel(j.Sidecar, data, side, modelInputs(model.Inputs)); err != nil {
		return nil, err
	}
	return side, nil
}

// admit checks a just-claimed job's settings file against its model and,
// when it does not fit, rejects the job at once with a report naming the
// key: it is never queued behind the builds before it, nor handed to a
// builder. It reports whether the job may be queued.
func (rn *Runner) admit(j *jobs.Job, log *slog.Logger) bool {
	if j.Sidecar == "" || j.Refused != "" {
		// A job the claim refused (a companion over its cap, F-5) is
		// reported by Process with the claim's reason; its settings file
		// is not read at all.
		return true
	}
	// The model as the inbox read it (issue 13, F-4: it is not parsed
	// again here).
	model, _, err := rn.Inspector.Job(j.ID, rn.Store.ModelPath(j))
	if err != nil {
		return true // Process reports a model it cannot read
	}
	_, err = rn.readSidecar(j, model)
	if err == nil {
		return true
	}
	rep := &report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: rn.Version}, Job: j.ID,
		Model: report.Model{Name: j.Name, Size: j.ModelSize, Sidecar: j.Sidecar}, Attempts: []report.Attempt{}}
	rep.Model.Summary = model
	reason := fmt.Sprintf("settings file %s: %v", j.Sidecar, err)
	rn.Inspector.Done(j.ID)
	rn.Outbox.Fail(j, rep, log, report.OutcomeRejected, reason)
	rn.Status.PushLast(status.LastResult{Job: j.ID, Model: j.Name, Outcome: report.OutcomeRejected, Reason: err.Error(), At: time.Now().UTC()})
	return false
}
