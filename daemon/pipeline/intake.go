package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/daemon/status"
)

// Recovered logs the jobs the store reconciled after a restart and fails
// for good, with its model moved aside and a report saying why, a job that
// keeps taking the daemon down.
func (rn *Runner) Recovered(recs []jobs.Recovery) {
	for _, r := range recs {
		rn.Log.Info("recovered job after restart", logging.KeyJob, r.Job.ID, logging.KeyModel, r.Job.Name, "action", r.Action, logging.KeyEvent, "job_recovered")
		switch r.Action {
		case "failed-too-many-restarts", "finish-failure", "unreadable-record":
			rn.finishFailure(r)
		}
	}
}

// finishFailure records the failure of a job found Failing at start: with
// the report saved when the failure began (attempts and all), or a new one
// saying why. A job whose record was unreadable but whose engine is in the
// outbox was built: it is marked done, its report left as it is.
func (rn *Runner) finishFailure(r jobs.Recovery) {
	j := r.Job
	log := rn.Log.With(logging.KeyJob, j.ID, logging.KeyModel, j.Name)
	if r.Action == "unreadable-record" && rn.builtInOutbox(j) {
		j.Outcome, j.Reason = report.OutcomeBuilt, ""
		if err := rn.Store.Transition(j, jobs.Done, jobs.StepCommitted, "record rebuilt after a crash: the outbox holds its engine"); err != nil {
			log.Error("cannot save the job", "err", err)
		}
		return
	}
	var rep report.Report
	if b := rn.Store.FailureReport(j); b == nil || json.Unmarshal(b, &rep) != nil {
		rep = report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: rn.Version}, Job: j.ID,
			Model: report.Model{Name: j.Name, Size: j.ModelSize, SHA256: j.ModelSHA256, Sidecar: j.Sidecar}, Attempts: []report.Attempt{}}
		if r.Action == "failed-too-many-restarts" {
			rep.Recommendations = []string{fmt.Sprintf("The daemon died %d times while building this model (last step: %s). If the board froze or rebooted, try a smaller workspace or a segmented build in %s.toml.", j.Recoveries, j.Step, j.Base())}
		}
	}
	outcome := j.Outcome
	if outcome != report.OutcomeRejected {
		outcome = report.OutcomeFailed
	}
	rn.Outbox.Fail(j, &rep, log, outcome, j.Reason)
}

// builtInOutbox reports whether the outbox's report for j says its engine
// was built or reused by this very job.
func (rn *Runner) builtInOutbox(j *jobs.Job) bool {
	b, err := os.ReadFile(filepath.Join(rn.Cfg.Paths.Outbox, outbox.Name(j.Base())+".report.json"))
	if err != nil {
		return false
	}
	var rep report.Report
	return json.Unmarshal(b, &rep) == nil && rep.Job == j.ID && (rep.Outcome == report.OutcomeBuilt || rep.Outcome == report.OutcomeReused)
}

// RequeueStale puts the kept models of engines that a TensorRT or JetPack
// upgrade invalidated back into the inbox, to be rebuilt.
func (rn *Runner) RequeueStale() {
	b := rn.currentBuilder()
	if b == nil {
		return
	}
	l4t, _ := provenance.ReadL4T("/")
	acts, err := provenance.RequeueStale(rn.Log, provenance.Dirs{Inbox: rn.Cfg.Paths.Inbox, Outbox: rn.Cfg.Paths.Outbox, State: rn.Cfg.Paths.State},
		provenance.Current{Builder: *b, L4T: l4t, Plugins: provenance.PluginHashes(*b)}, false)
	if err != nil {
		rn.Log.Warn("stale engine check", "err", err)
	}
	for _, a := range acts {
		if a.Skipped != "" {
			rn.Log.Warn("stale engine not rebuilt", "engine", a.Name, "reason", a.Skipped)
		} else {
			rn.Log.Info("engine invalidated by an upgrade: rebuilding", "engine", a.Name, logging.KeyEvent, "stale_requeued")
		}
	}
}

// HandleInbox claims a ready model into a new job, or reports a rejected
// entry. It never deletes or moves anything it did not claim.
func (rn *Runner) HandleInbox(ev inbox.Event) *jobs.Job {
	log := rn.Log.With(logging.KeyModel, ev.Name)
	if ev.Kind == inbox.Rejected {
		log.Warn("inbox entry rejected", "reason", ev.Err, logging.KeyEvent, "rejected")
		if err := rn.Outbox.Reject(ev); err != nil {
			rn.Log.Error("cannot write rejection report", "err", err)
		}
		rn.Status.PushLast(status.LastResult{Model: ev.Name, Outcome: report.OutcomeRejected, Reason: ev.Err.Error(), At: time.Now().UTC()})
		return nil
	}
	// The inbox's check read the model (issue 13, F-4: once); an event
	// without its reading gets one here, through a no-follow open: the
	// name may have been swapped for a link since the inbox saw it.
	model := ev.Model
	v := version{dev: ev.Dev, ino: ev.Ino, size: ev.Size, mtime: ev.ModTime.UnixNano()}
	if model == nil {
		model, v, _ = rn.Inspector.inboxModel(ev.Path)
	}
	companions := rn.companions(ev, model)
	j, err := rn.Store.Claim(ev.Path, ev.Name, ev.Size, ev.Ino, companions)
	if err != nil {
		log.Error("cannot claim upload", "err", err)
		return nil
	}
	// What was read of the model goes with its job, to its report.
	rn.Inspector.Claimed(ev.Path, j.ID, model, v)
	rn.faultpoint(jobs.StepClaimed)
	if !rn.admit(j, log.With(logging.KeyJob, j.ID)) {
		return nil
	}
	log.Info("model queued", logging.KeyJob, j.ID, "bytes", ev.Size, logging.KeyEvent, "job_queued")
	return j
}

// companions are the files claimed with a model: its sidecar settings
// (name.toml), its external data files (confined to the inbox) and its
// accuracy samples (name.test/) and its int8 calibration data (name.calib/,
// the same layout, taken under the same rules).
func (rn *Runner) companions(ev inbox.Event, model *onnx.Summary) []string {
	base := strings.TrimSuffix(ev.Name, inbox.ModelExt)
	var out []string
	for _, c := range []string{base + ".toml", base + ".test", base + ".calib"} {
		p := filepath.Join(rn.Cfg.Paths.Inbox, c)
		if fi, err := os.Lstat(p); err == nil && (fi.Mode().IsRegular() || fi.IsDir()) {
			out = append(out, p)
		}
	}
	// The external data the inbox's check found (and allowed).
	{
		seen := map[string]bool{}
		for _, r := range locations(model) {
			loc := filepath.Clean(r)
			if seen[loc] || filepath.IsAbs(loc) || strings.HasPrefix(loc, "..") || strings.Contains(loc, "/") {
				continue
			}
			seen[loc] = true
			// Only what CheckModel allowed (it ran moments ago): never a
			// candidate, sidecar, samples or hidden name.
			if inbox.Ignored(loc) || inbox.IsCandidate(loc) || strings.HasSuffix(loc, ".toml") || jobs.IsDirCompanion(loc) {
				continue
			}
			p := filepath.Join(rn.Cfg.Paths.Inbox, loc)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}
