// Package outbox places a job's results where the user finds them: the
// engine (or parts and manifest), its provenance and the reports, each
// atomically and with every step recorded in the job; it reuses an earlier
// identical build's engine, and moves a failed job's model aside with its
// reports.
package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/device"
	"github.com/trtd/trtd/internal/faultpoint"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/safename"
	"github.com/trtd/trtd/internal/treecopy"
)

// Outbox writes into the outbox directory.
type Outbox struct {
	// Dir is the outbox; Failed receives failed jobs' models; State holds
	// the engine cache (State/cache/<key>).
	Dir, Failed, State string
	Store              *jobs.Store
	Log                *slog.Logger
	// Version is trtd's version for the provenance.
	Version string
	// StageSettings returns a configured stage's worker settings.
	StageSettings func(name string) (protocol.Settings, bool)
	// TimingCache names the timing cache file of a builder ("" for none).
	TimingCache func(*protocol.Builder) string
}

func (o *Outbox) faultpoint(step string) { faultpoint.Hit(o.Log, step) }

// mark records step in the job. A step not recorded only makes the
// recovery after a crash start the publication from an earlier step, so
// it is logged rather than stopping a publication that can go on.
func (o *Outbox) mark(j *jobs.Job, step string, log *slog.Logger) {
	if err := o.Store.Mark(j, step); err != nil {
		log.Warn("cannot record the step in the job", "step", step, "err", err)
	}
}

// removeIfThere removes path; a failure other than "not there" is logged.
func removeIfThere(path string, log *slog.Logger, why string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error(why, "path", path, "err", err)
	}
}

func linkOrCopy(src, dst string) error { return treecopy.Copy(src, dst, true) }

// jetsonOf reads the L4T release and SoC from the device diagnosis.
func jetsonOf(d *device.Device) (l4t, soc string) {
	if d != nil && d.Jetson != nil {
		return d.Jetson.L4T, d.Jetson.SoC
	}
	return "", ""
}

// Publish places the engine (or parts), its provenance and the reports in
// the outbox, each atomically, records every step, and commits the job.
func (o *Outbox) Publish(j *jobs.Job, rep *report.Report, res converter.Result, log *slog.Logger) error {
	out := o.Dir
	base := Name(j.Base())
	cacheDir := filepath.Join(o.State, "cache", j.CacheKey)
	// The cache is for reuse; a build whose engine it cannot keep is still
	// published (only the reuse is lost).
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		log.Warn("engine cache unavailable; the engine is not kept for reuse", "err", err)
	}
	engines := map[string]string{} // outbox name -> source
	cached := map[string]string{}  // outbox name -> name in the cache
	if len(res.Parts) > 0 {
		for i, p := range res.Parts {
			n := fmt.Sprintf("%s.part%d.engine", base, i+1)
			engines[n], cached[n] = p, fmt.Sprintf("part%d.engine", i+1)
		}
		if res.Manifest != "" {
			engines[base+".manifest.json"], cached[base+".manifest.json"] = res.Manifest, "manifest.json"
		}
	} else {
		engines[base+".engine"], cached[base+".engine"] = res.Engine, "model.engine"
	}
	rep.Engine = &report.Engine{Stage: res.Stage}
	prov := provenance.Provenance{Schema: provenance.SchemaVersion, ModelSHA: j.ModelSHA256, Model: j.Name, Stage: res.Stage, Builder: rep.Builder,
		CacheKey: j.CacheKey, Job: j.ID, Built: time.Now().UTC(), Tool: "trtd " + o.Version, Parts: map[string]string{}}
	if rep.Builder != nil {
		prov.Fingerprint = rep.Builder.Fingerprint()
		prov.Plugins = provenance.PluginHashes(*rep.Builder)
		prov.TimingCache = provenance.TimingCacheID(o.TimingCache(rep.Builder))
	}
	prov.L4T, prov.SoC = jetsonOf(rep.Device)
	if st, ok := o.StageSettings(res.Stage); ok {
		prov.Settings, _ = json.Marshal(st)
	}
	if res.Offload != "" {
		prov.Offload = res.Offload
	}
	// Keep the engine in the state directory first, for reuse by identical
	// uploads and so that an outbox that cannot be written (read-only,
	// deleted) never costs a finished build: it is published from here
	// once the outbox takes it.
	// A reuse publishes the cache's own files: nothing to keep.
	if c, err := readCache(cacheDir); (err != nil || c.Job != j.ID) && !allIn(engines, cacheDir) {
		kept := true
		for name, src := range engines {
			if err := linkOrCopy(src, filepath.Join(cacheDir, cached[name])); err != nil {
				log.Warn("engine not kept in the cache for reuse", "file", name, "err", err)
				kept = false
			}
		}
		if kept {
			if err := writeJSON(filepath.Join(cacheDir, cacheFile), cacheEntry{Job: j.ID, Stage: res.Stage, Files: sortedValues(cached), ModelSHA256: j.ModelSHA256}); err != nil {
				log.Warn("engine cache entry not written; the engine is not reused", "err", err)
			}
		}
	}
	// Parts in their order (part2 before part10), as the report lists them.
	for _, name := range sortByPart(sortedKeys(engines)) {
		src := engines[name]
		sum, size, err := o.placeEngine(j, src, filepath.Join(out, name), log)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrOutbox, err)
		}
		if strings.HasSuffix(name, ".manifest.json") {
			rep.Engine.Manifest = name
			continue
		}
		if len(res.Parts) > 0 {
			rep.Engine.Parts = append(rep.Engine.Parts, report.EnginePart{File: name, Bytes: size, SHA256: sum})
			prov.Parts[name] = sum
		} else {
			rep.Engine.File, rep.Engine.Bytes, rep.Engine.SHA256 = name, size, sum
			prov.Engine, prov.EngineSHA = name, sum
		}
	}
	if len(res.Parts) > 0 {
		rep.Engine.File = rep.Engine.Manifest
	}
	if rep.Outcome == "" {
		rep.Outcome = report.OutcomeBuilt
	}
	rep.Portability = portability(rep)
	rep.KeptModel = o.Store.ModelPath(j)
	rep.Generated = time.Now().UTC()
	// If the provenance or the reports cannot be written (a full disk),
	// take the engine back out: the outbox never shows an engine without
	// its report.
	// An engine the rollback cannot remove breaks that rule: it is an
	// error in the journal, naming the file.
	rollback := func() {
		for name := range engines {
			removeIfThere(filepath.Join(out, name), log, "engine without its report left in the outbox")
		}
		removeIfThere(filepath.Join(out, base+".engine.json"), log, "provenance without its report left in the outbox")
		// Best effort: the publication is failing and says so; a crash
		// before this reaches the disk is recovered from the job's steps.
		_ = atomicfile.SyncDir(out)
	}
	if err := provenance.Write(filepath.Join(out, base+".engine.json"), &prov); err != nil {
		rollback()
		return fmt.Errorf("%w: %v", ErrOutbox, err)
	}
	if _, err := report.Publish(out, base, rep); err != nil {
		rollback()
		return fmt.Errorf("%w: %v", ErrOutbox, err)
	}
	o.mark(j, jobs.StepReportPublished, log)
	o.faultpoint(jobs.StepReportPublished)
	if rep.Reuse == nil {
		// The build's own report, so a reuse can show what made the engine.
		if err := writeJSON(filepath.Join(cacheDir, cacheReport), rep); err != nil {
			log.Warn("build report not kept in the cache; a reuse shows less of the build", "err", err)
		}
	}
	removeIfThere(filepath.Join(o.Store.Dir(j), PendingReport), log, "pending report not removed")
	j.Outcome, j.Reason = rep.Outcome, ""
	j.Outputs = append(sortedKeys(engines), base+".engine.json", base+".report.json", base+".report.md", base+".report.html")
	if err := o.Store.Transition(j, jobs.Done, jobs.StepCommitted, "engine published"); err != nil {
		return err
	}
	o.faultpoint(jobs.StepCommitted)
	log.Info("engine published", logging.KeyStage, res.Stage, "engine", filepath.Join(out, base+".engine"), logging.KeyEvent, "job_done")
	return nil
}

// placeEngine copies src into the outbox as dst: temp file in the outbox,
// fsync, rename, fsync dir, with each step persisted in the job.
func (o *Outbox) placeEngine(j *jobs.Job, src, dst string, log *slog.Logger) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = in.Close() }() // read-only; read errors come from io.Copy
	h := filehash.New()
	var n int64
	err = atomicfile.WriteWith(dst, 0o644, func(w io.Writer) (err error) {
		n, err = io.Copy(io.MultiWriter(w, h), in)
		return err
	}, atomicfile.Options{
		Written: func() { o.mark(j, jobs.StepEngineTemp, log); o.faultpoint(jobs.StepEngineTemp) },
		Synced:  func() { o.mark(j, jobs.StepEngineSynced, log); o.faultpoint(jobs.StepEngineSynced) },
	})
	if err != nil {
		return "", 0, err
	}
	o.mark(j, jobs.StepEngineRenamed, log)
	o.faultpoint(jobs.StepEngineRenamed)
	return h.Sum(), n, nil
}

// cacheFile describes a cached build in State/cache/<key>/.
const cacheFile = "cache.json"

// cacheReport is the build's report kept beside its cached engine.
const cacheReport = "report.json"

// cacheEntry is what cacheFile says: the job that built the engine, its
// stage, the cached files and the model's sha256.
type cacheEntry struct {
	Job         string   `json:"job"`
	Stage       string   `json:"stage"`
	Files       []string `json:"files"`
	ModelSHA256 string   `json:"model_sha256"`
}

// Reuse publishes an earlier identical build's engine; false means build.
func (o *Outbox) Reuse(j *jobs.Job, rep *report.Report, log *slog.Logger) (bool, error) {
	cacheDir := filepath.Join(o.State, "cache", j.CacheKey)
	c, err := readCache(cacheDir)
	if err != nil {
		return false, nil
	}
	res := converter.Result{OK: true, Stage: c.Stage}
	for _, f := range c.Files {
		p := filepath.Join(cacheDir, f)
		if _, err := os.Stat(p); err != nil {
			return false, nil
		}
		switch {
		case f == "manifest.json":
			res.Manifest = p
		case strings.HasPrefix(f, "part"):
			res.Parts = append(res.Parts, p)
		default:
			res.Engine = p
		}
	}
	// cache.json lists names in text order (part10 before part2): the parts
	// go back in their build order, or part 10 would be published as part 2.
	res.Parts = sortByPart(res.Parts)
	j.Stage = c.Stage
	own := c.Job == j.ID // this job's own build, kept while the outbox could not take it
	if own {
		if b, err := os.ReadFile(filepath.Join(o.Store.Dir(j), PendingReport)); err == nil {
			var saved report.Report
			if json.Unmarshal(b, &saved) == nil {
				*rep = saved
			}
		}
		rep.Outcome, rep.Reason = report.OutcomeBuilt, ""
	} else {
		rep.Reuse = &report.Reuse{FromJob: c.Job, CacheKey: j.CacheKey}
		reuseBuildReport(cacheDir, rep)
		rep.Outcome = report.OutcomeReused
	}
	if err := o.Store.Transition(j, jobs.Building, jobs.StepPlanned, "publishing the engine of job "+c.Job); err != nil {
		return false, nil
	}
	if err := o.Publish(j, rep, res, log); err != nil {
		if errors.Is(err, ErrOutbox) {
			return false, err
		}
		log.Warn("cannot reuse the cached engine; building", "err", err)
		rep.Outcome, rep.Reuse = "", nil
		return false, nil
	}
	if own {
		log.Info("engine kept while the outbox was unwritable is published", logging.KeyEvent, "job_published")
	} else {
		log.Info("identical build found: engine reused", "from_job", c.Job, logging.KeyEvent, "job_reused")
	}
	return true, nil
}

// ErrOutbox wraps every failure to write into the outbox: the engine is
// kept (in the state's cache) and published when the outbox takes it.
var ErrOutbox = errors.New("the outbox cannot be written")

// PendingReport is, inside a job's directory, the report of a build whose
// engine waits for the outbox.
const PendingReport = "pending-report.json"

func readCache(dir string) (cacheEntry, error) {
	var c cacheEntry
	b, err := os.ReadFile(filepath.Join(dir, cacheFile))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil || len(c.Files) == 0 {
		return c, fmt.Errorf("unusable cache entry %s", dir)
	}
	return c, nil
}

// reuseBuildReport carries the earlier build's attempts, plan and builder
// into a reuse report: the engine's report keeps saying how it was made
// (memory plot included), and the reuse is recorded beside that.
func reuseBuildReport(cacheDir string, rep *report.Report) {
	b, err := os.ReadFile(filepath.Join(cacheDir, cacheReport))
	if err != nil {
		return
	}
	var built report.Report
	if json.Unmarshal(b, &built) != nil {
		return
	}
	rep.Attempts, rep.Plan, rep.Reuse.Built = built.Attempts, built.Plan, built.Generated
	if built.Builder != nil {
		rep.Builder = built.Builder
	}
}

// Fail ends a job: the model is moved aside into the failed directory with
// copies of its reports (never deleted), and the reports go to the outbox.
func (o *Outbox) Fail(j *jobs.Job, rep *report.Report, log *slog.Logger, outcome, reason string) {
	base := Name(j.Base())
	dest := filepath.Join(o.Failed, j.ID)
	// A persisted step first: the outcome and the whole report (attempts
	// included) are saved in the job before anything moves, so a crash
	// below is finished at the next start with this report, not rebuilt
	// from a half-moved job.
	rep.Outcome, rep.Reason = outcome, reason
	if b, err := json.Marshal(rep); err == nil {
		if err := o.Store.BeginFailure(j, outcome, reason, b); err != nil {
			log.Error("cannot record the failure in the job", "err", err)
		}
	}
	o.faultpoint(jobs.StepFailing)
	// Nothing here may stop the job from ending with its report: each
	// failure is an error in the journal, and a model file that cannot be
	// moved or copied stays where it is (in the job), never lost.
	if err := os.MkdirAll(dest, 0o755); err != nil {
		log.Error("cannot make the failed directory; the model stays in the job", "dir", dest, "err", err)
	}
	src := filepath.Dir(o.Store.ModelPath(j))
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			if err := linkOrCopy(filepath.Join(src, e.Name()), filepath.Join(dest, e.Name())); err != nil {
				log.Error("input not kept in the failed directory; it stays in the job", "file", e.Name(), "err", err)
			}
		}
	}
	if err := atomicfile.SyncDir(dest); err != nil {
		log.Warn("failed directory not synced; a crash now may lose what was moved there", "dir", dest, "err", err)
	}
	rep.Outcome, rep.Reason = outcome, reason
	rep.KeptModel = filepath.Join(dest, j.Name)
	rep.Generated = time.Now().UTC()
	// The failed directory first: once the outbox shows the report,
	// everything it points to is in place.
	if _, err := report.Publish(dest, base, rep); err != nil {
		log.Error("report not written beside the kept model", "dir", dest, "err", err)
	}
	if _, err := report.Publish(o.Dir, base, rep); err != nil {
		log.Error("report not written to the outbox", "dir", o.Dir, "err", err)
	}
	j.Outcome, j.Reason = outcome, reason
	if err := o.Store.Transition(j, jobs.Failed, jobs.StepInputArchived, reason); err != nil {
		log.Error("cannot record the failure's end in the job", "err", err)
	}
	o.faultpoint(jobs.StepInputArchived)
	log.Warn("build failed; model kept", "reason", reason, "kept", rep.KeptModel, logging.KeyEvent, "job_failed")
}

// Reject reports an inbox entry trtd will not build.
func (o *Outbox) Reject(ev inbox.Event) error {
	rep := &report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: o.Version},
		Model: report.Model{Name: ev.Name, Size: ev.Size}, Outcome: report.OutcomeRejected, Attempts: []report.Attempt{},
		Reason: ev.Err.Error(), Generated: time.Now().UTC(), KeptModel: ev.Path}
	rep.Recommendations = []string{"The file was left untouched in the inbox. If an upload is still in progress it is picked up once it completes; otherwise replace it with a complete ONNX model."}
	_, err := report.Publish(o.Dir, Name(strings.TrimSuffix(ev.Name, inbox.ModelExt)), rep)
	return err
}

// Report publishes a job's reports (no engine) under its outbox name.
func (o *Outbox) Report(base string, rep *report.Report) error {
	_, err := report.Publish(o.Dir, Name(base), rep)
	return err
}

// Name is an uploaded name made safe for outbox file names
// (safename.File).
func Name(base string) string { return safename.File(base) }

func portability(rep *report.Report) string {
	b := rep.Builder
	if b == nil || b.TensorRT == "" {
		return ""
	}
	return fmt.Sprintf("This engine runs only with TensorRT %s on a GPU of compute capability %s (%s). Rebuild it after a JetPack or TensorRT upgrade; an engine cannot be built for a Jetson on another kind of GPU.", b.TensorRT, b.ComputeCapability, b.GPU)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for k := i; k > 0 && out[k] < out[k-1]; k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	return out
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// allIn says whether engines has files and every one is in dir.
func allIn(engines map[string]string, dir string) bool {
	for _, src := range engines {
		if filepath.Dir(src) != dir {
			return false
		}
	}
	return len(engines) > 0
}
