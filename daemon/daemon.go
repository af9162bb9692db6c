package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/fault"
	"github.com/trtd/trtd/daemon/fsutil"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/notify"
	"github.com/trtd/trtd/daemon/provenance"
)

// Options are what Run needs besides the config.
type Options struct {
	Log    *slog.Logger
	Notify *notify.Notifier
	// Memory is the memory subsystem; nil uses the real one built from cfg.
	Memory Memory
	// WorkerEnv is the worker's environment (nil: the daemon's, stripped).
	WorkerEnv []string
	// Once processes what is in the inbox and the queue, then returns
	// (used by `trtd convert`).
	Once bool
	// Progress, if set, receives every status change (for a terminal line).
	Progress func(*Status)
}

// Daemon is one running trtd.
type Daemon struct {
	cfg    *config.Config
	log    *slog.Logger
	notify *notify.Notifier
	mem    Memory
	store  *jobs.Store
	worker *converter.Worker
	opts   Options

	mu         sync.Mutex
	status     Status
	builder    *protocol.Builder
	builderErr string
	lastProbe  time.Time
}

// ErrInvalidSetup is returned when the daemon cannot start with its config.
var ErrInvalidSetup = errors.New("cannot start")

// New prepares a daemon: directories, job store, worker description.
func New(cfg *config.Config, o Options) (*Daemon, error) {
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	if o.Notify == nil {
		o.Notify = notify.New("", 0, nil)
	}
	d := &Daemon{cfg: cfg, log: o.Log, notify: o.Notify, opts: o}
	for _, dir := range []string{cfg.Paths.Inbox, cfg.Paths.Outbox, cfg.Paths.State, cfg.Paths.Failed,
		filepath.Join(cfg.Paths.State, "cache"), filepath.Join(cfg.Paths.State, "timing")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSetup, err)
		}
	}
	st, err := jobs.Open(filepath.Join(cfg.Paths.State, "jobs"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSetup, err)
	}
	d.store = st
	d.worker = &converter.Worker{Path: cfg.Paths.Worker, Env: o.WorkerEnv, Timeout: cfg.Worker.Timeout.D(),
		StderrLimit: int(cfg.Worker.StderrLimit), PrivateNet: cfg.Worker.PrivateNet, OOMScoreAdj: 1000, Log: o.Log}
	if cfg.Worker.User == "" {
		o.Log.Debug("worker.user is empty: the worker runs as the daemon's user")
	} else if cred, err := workerCredential(cfg.Worker.User); err != nil {
		o.Log.Warn("worker runs as the daemon's user", "reason", err)
	} else {
		d.worker.Credential = cred
	}
	d.mem = o.Memory
	if d.mem == nil {
		d.mem = newMemory(cfg, o.Log)
	}
	d.status = Status{PID: os.Getpid(), Version: Version, Started: time.Now().UTC(), State: "starting",
		Inbox: cfg.Paths.Inbox, Outbox: cfg.Paths.Outbox, Queue: []QueueEntry{}, Waiting: []QueueEntry{}, Last: []LastResult{}}
	return d, nil
}

// workerCredential resolves the unprivileged user the worker runs as. It
// only applies when the daemon is root.
func workerCredential(name string) (*syscall.Credential, error) {
	if name == "" {
		return nil, errors.New("worker.user is empty")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the daemon is not root, so it cannot switch users")
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("worker.user %q: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Run is the daemon: it returns when ctx ends (or, with Options.Once, when
// the inbox and queue are empty).
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	d, err := New(cfg, o)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Run runs the daemon's main loop.
func (d *Daemon) Run(ctx context.Context) error {
	log := d.log
	log.Info("trtd starting", "version", Version, "inbox", d.cfg.Paths.Inbox, "outbox", d.cfg.Paths.Outbox, "config", d.cfg.File)
	if err := d.mem.Reconcile(ctx); err != nil {
		log.Warn("swap reconciliation", "err", err)
	}
	recs, err := d.store.Reconcile()
	if err != nil {
		return fmt.Errorf("reconcile jobs: %w", err)
	}
	for _, r := range recs {
		log.Info("recovered job after restart", logging.KeyJob, r.Job.ID, logging.KeyModel, r.Job.Name, "action", r.Action, logging.KeyEvent, "job_recovered")
		if r.Action == "failed-too-many-restarts" {
			// The job keeps taking the daemon down: fail it for good, with
			// its model moved aside and a report saying why.
			j := r.Job
			rep := &report.Report{Schema: report.SchemaVersion, Tool: report.Tool{Name: "trtd", Version: Version}, Job: j.ID,
				Model: report.Model{Name: j.Name, Size: j.ModelSize, SHA256: j.ModelSHA256}, Attempts: []report.Attempt{}}
			rep.Recommendations = []string{fmt.Sprintf("The daemon died %d times while building this model (last step: %s). If the board froze or rebooted, try a smaller workspace or a segmented build in %s.toml.", j.Recoveries, j.Step, j.Base())}
			d.fail(j, rep, log.With(logging.KeyJob, j.ID, logging.KeyModel, j.Name), report.OutcomeFailed, j.Reason)
		}
	}
	for _, dir := range []string{d.cfg.Paths.Outbox, d.cfg.Paths.State, filepath.Dir(d.cfg.StatusPath())} {
		if rm, _ := fsutil.RemoveTemps(dir); len(rm) > 0 {
			log.Info("removed partial files left by a crash", "files", strings.Join(rm, ", "))
		}
	}
	d.probe(ctx)
	d.requeueStale()

	events := make(chan inbox.Event, 256)
	w := inbox.New(inbox.Options{Dir: d.cfg.Paths.Inbox, Settle: d.cfg.Inbox.Settle.D(), Rescan: d.cfg.Inbox.Rescan.D(),
		MaxBytes: int64(d.cfg.Inbox.MaxBytes), Check: checkModel, Log: log.With("stage", "inbox")})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ready := make(chan struct{})
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.Run(watchCtx, events, ready) }()
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}

	// The queue: every job not finished, in upload order.
	queue := d.pending()
	if d.currentBuilder() != nil {
		// Jobs parked for lack of a builder in an earlier run: one is here now.
		queue = append(queue, d.waiting()...)
		d.setQueue(queue)
	}
	d.setState("idle")
	snap := d.snapshot()
	d.notify.Ready(snap.Line)
	log.Info("trtd ready", logging.KeyEvent, "ready", "queued", len(queue), "builder", d.builderLine())

	results := make(chan *jobs.Job, 1)
	buildCtx, stopBuilds := context.WithCancel(context.Background())
	defer stopBuilds()
	var building *jobs.Job
	tickEvery := 500 * time.Millisecond
	// Tick at a quarter of the watchdog timeout so a ping (due every half)
	// is never late by a tick.
	if wd := d.notify.WatchdogInterval() / 2; wd > 0 && wd < tickEvery {
		tickEvery = wd
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	quietSince := time.Now()

	startNext := func() {
		if building != nil || len(queue) == 0 {
			return
		}
		j := queue[0]
		queue = queue[1:]
		building = j
		d.setQueue(queue)
		go func() {
			d.process(buildCtx, j)
			results <- j
		}()
	}
	for {
		startNext()
		d.notify.Ping()
		select {
		case <-ctx.Done():
			d.setState("stopping")
			d.notify.Stopping("stopping")
			log.Info("trtd stopping", logging.KeyEvent, "stopping")
			stopWatch()
			if building != nil {
				d.notify.ExtendTimeout(30 * time.Second)
				stopBuilds()
				<-results
			}
			d.setState("stopped")
			return nil
		case ev := <-events:
			if j := d.handleInbox(ev); j != nil {
				queue = append(queue, j)
				d.setQueue(queue)
			}
			quietSince = time.Now()
		case j := <-results:
			building = nil
			if j.State == jobs.Queued { // interrupted, run again
				queue = append([]*jobs.Job{j}, queue...)
			}
			d.setQueue(queue)
			quietSince = time.Now()
		case <-tick.C:
			d.mem.Idle(ctx)
			if d.retryDue() {
				if d.probe(ctx) {
					queue = append(queue, d.waiting()...)
					d.setQueue(queue)
				}
			}
			if d.opts.Once && building == nil && len(queue) == 0 && time.Since(quietSince) > d.cfg.Inbox.Settle.D()+time.Second {
				d.setState("stopped")
				return nil
			}
		case err := <-watchDone:
			if err != nil {
				return fmt.Errorf("inbox: %w", err)
			}
			return nil
		}
	}
}

// requeueStale puts the kept models of engines that a TensorRT or JetPack
// upgrade invalidated back into the inbox, to be rebuilt.
func (d *Daemon) requeueStale() {
	b := d.currentBuilder()
	if b == nil {
		return
	}
	l4t, _ := provenance.ReadL4T("/")
	acts, err := provenance.RequeueStale(d.log, provenance.Dirs{Inbox: d.cfg.Paths.Inbox, Outbox: d.cfg.Paths.Outbox, State: d.cfg.Paths.State},
		provenance.Current{Builder: *b, L4T: l4t, Plugins: provenance.PluginHashes(*b)}, false)
	if err != nil {
		d.log.Warn("stale engine check", "err", err)
	}
	for _, a := range acts {
		if a.Skipped != "" {
			d.log.Warn("stale engine not rebuilt", "engine", a.Name, "reason", a.Skipped)
		} else {
			d.log.Info("engine invalidated by an upgrade: rebuilding", "engine", a.Name, logging.KeyEvent, "stale_requeued")
		}
	}
}

// checkModel is the inbox's content check: a whole ONNX model whose
// external data, if any, is present and confined to the inbox.
func checkModel(f *os.File, path string) error {
	_, err := onnx.ReadFile(f, filepath.Dir(path))
	return err
}

// pending lists queued jobs and jobs waiting for a builder (in order).
func (d *Daemon) pending() []*jobs.Job {
	all, err := d.store.List()
	if err != nil {
		d.log.Error("cannot list jobs", "err", err)
		return nil
	}
	var q []*jobs.Job
	var waiting []QueueEntry
	for _, j := range all {
		switch j.State {
		case jobs.Queued:
			q = append(q, j)
		case jobs.Waiting:
			waiting = append(waiting, QueueEntry{Job: j.ID, Model: j.Name, Since: j.Updated})
		}
	}
	d.mu.Lock()
	d.status.Waiting = nonNil(waiting)
	d.mu.Unlock()
	d.setQueue(q)
	return q
}

func nonNil(q []QueueEntry) []QueueEntry {
	if q == nil {
		return []QueueEntry{}
	}
	return q
}

// waiting returns the jobs parked for lack of a builder, requeued.
func (d *Daemon) waiting() []*jobs.Job {
	all, _ := d.store.List()
	var out []*jobs.Job
	for _, j := range all {
		if j.State == jobs.Waiting {
			if err := d.store.Transition(j, jobs.Queued, "", "builder available: "+d.builderLine()); err == nil {
				out = append(out, j)
				d.log.Info("builder available; retrying", logging.KeyJob, j.ID, logging.KeyModel, j.Name, logging.KeyEvent, "job_requeued")
			}
		}
	}
	d.mu.Lock()
	d.status.Waiting = []QueueEntry{}
	d.mu.Unlock()
	return out
}

// probe asks the worker what builds here; it reports whether a builder is
// available.
func (d *Daemon) probe(ctx context.Context) bool {
	tmp, err := os.MkdirTemp("", "trtd-probe-")
	if err == nil {
		os.Chmod(tmp, 0o755)
		defer os.RemoveAll(tmp)
	}
	b, class, reason := d.worker.Probe(ctx, d.cfg.Worker.Backend, d.cfg.Worker.Trtexec, tmp)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastProbe = time.Now()
	if class == protocol.ClassOK {
		d.builder, d.builderErr = &b, ""
		d.status.Builder = builderLine(&b)
		return true
	}
	d.builder = nil
	if reason == "" {
		reason = string(class)
	}
	d.builderErr = reason
	d.status.Builder = reason
	d.log.Warn("no builder available", "reason", reason, logging.KeyEvent, "builder_unavailable")
	return false
}

func (d *Daemon) retryDue() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.builder == nil && len(d.status.Waiting) > 0 && time.Since(d.lastProbe) >= d.cfg.Worker.RetryInterval.D()
}

func builderLine(b *protocol.Builder) string {
	if b == nil {
		return "none"
	}
	s := b.Backend
	if b.TensorRT != "" {
		s += " TensorRT " + b.TensorRT
	}
	if b.GPU != "" {
		s += " on " + b.GPU
	}
	if b.ComputeCapability != "" {
		s += " (sm " + b.ComputeCapability + ")"
	}
	return s
}

func (d *Daemon) builderLine() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.builder != nil {
		return builderLine(d.builder)
	}
	return d.builderErr
}

// handleInbox claims a ready model into a new job, or reports a rejected
// entry. It never deletes or moves anything it did not claim.
func (d *Daemon) handleInbox(ev inbox.Event) *jobs.Job {
	log := d.log.With(logging.KeyModel, ev.Name)
	if ev.Kind == inbox.Rejected {
		log.Warn("inbox entry rejected", "reason", ev.Err, logging.KeyEvent, "rejected")
		d.publishRejection(ev)
		return nil
	}
	companions := d.companions(ev)
	j, err := d.store.Claim(ev.Path, ev.Name, ev.Size, ev.Ino, companions)
	if err != nil {
		log.Error("cannot claim upload", "err", err)
		return nil
	}
	d.faultpoint(jobs.StepClaimed)
	log.Info("model queued", logging.KeyJob, j.ID, "bytes", ev.Size, logging.KeyEvent, "job_queued")
	return j
}

// companions are the files claimed with a model: its sidecar settings
// (name.toml), its external data files (confined to the inbox) and its
// accuracy samples (name.test/).
func (d *Daemon) companions(ev inbox.Event) []string {
	base := strings.TrimSuffix(ev.Name, inbox.ModelExt)
	var out []string
	for _, c := range []string{base + ".toml", base + ".test"} {
		p := filepath.Join(d.cfg.Paths.Inbox, c)
		if fi, err := os.Lstat(p); err == nil && (fi.Mode().IsRegular() || fi.IsDir()) {
			out = append(out, p)
		}
	}
	// Read the model through a no-follow open: the name may have been
	// swapped for a link since the inbox checked it.
	var m *onnx.Model
	if f, _, err := fsutil.OpenUntrusted(ev.Path); err == nil {
		m, _ = onnx.ReadFile(f, "")
		f.Close()
	}
	if m != nil {
		seen := map[string]bool{}
		for _, r := range m.ExternalRefs() {
			loc := filepath.Clean(r.Location)
			if seen[loc] || filepath.IsAbs(loc) || strings.HasPrefix(loc, "..") || strings.Contains(loc, "/") {
				continue
			}
			seen[loc] = true
			p := filepath.Join(d.cfg.Paths.Inbox, loc)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// faultpoint kills the daemon at a named step for the crash-safety tests;
// it is compiled in only with the trtdfault build tag (package fault).
func (d *Daemon) faultpoint(step string) { fault.At(d.log, step) }
