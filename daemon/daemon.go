package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/notify"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/pipeline"
	"github.com/trtd/trtd/daemon/retention"
	"github.com/trtd/trtd/daemon/statelock"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/daemon/workers"
	"github.com/trtd/trtd/internal/atomicfile"
)

// Options are what Run needs besides the config.
type Options struct {
	Log    *slog.Logger
	Notify *notify.Notifier
	// Memory is the memory subsystem; nil uses the real one built from cfg.
	Memory memory.Memory
	// WorkerEnv is the worker's environment (nil: the daemon's, stripped).
	WorkerEnv []string
	// Once processes what is in the inbox and the queue, then returns
	// (used by `trtd convert`).
	Once bool
	// Progress, if set, receives every status change (for a terminal line).
	Progress func(*status.Status)
	// ReadModel parses an uploaded model (nil: onnx.ReadFile). The daemon
	// parses each upload once, at the inbox (pipeline.Inspector): tests
	// count the calls.
	ReadModel func(f *os.File, dir string) (*onnx.Model, error)
}

// Daemon is one running trtd: the main loop over the pieces it wires.
type Daemon struct {
	cfg    *config.Config
	log    *slog.Logger
	notify *notify.Notifier
	mem    memory.Memory
	store  *jobs.Store
	status *status.Board
	jobs   *pipeline.Runner
	prune  *retention.Pruner
	opts   Options
	// gcPercent is the GC percentage to restore after the start (startGC).
	gcPercent int
}

// ErrInvalidSetup is returned when the daemon cannot start with its config.
var ErrInvalidSetup = errors.New("cannot start")

// New prepares a daemon: directories, job store, worker description, and
// the pipeline with its memory subsystem, outbox and status board.
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
	worker := &converter.Worker{Path: cfg.Paths.Worker, Env: o.WorkerEnv, Timeout: cfg.Worker.Timeout.D(),
		StderrLimit: int(cfg.Worker.StderrLimit), PrivateNet: cfg.Worker.PrivateNet, OOMScoreAdj: 1000, Log: o.Log}
	if cfg.Worker.User == "" {
		o.Log.Debug("worker.user is empty: the worker runs as the daemon's user")
	} else if cred, err := workerCredential(cfg.Worker.User); err != nil {
		o.Log.Warn("worker runs as the daemon's user", "reason", err)
	} else {
		worker.Credential = cred
	}
	d.mem = o.Memory
	if d.mem == nil {
		d.mem = memory.New(cfg, o.Log)
	}
	d.status = status.NewBoard(status.Status{PID: os.Getpid(), Version: Version, Started: time.Now().UTC(),
		Inbox: cfg.Paths.Inbox, Outbox: cfg.Paths.Outbox, Queue: []status.QueueEntry{}, Waiting: []status.QueueEntry{}, Last: []status.LastResult{}})
	d.status.Path, d.status.Progress, d.status.Memory, d.status.Log = cfg.StatusPath(), o.Progress, d.mem.Now, o.Log
	d.status.Notify = func(line string) { _ = o.Notify.Status(line) } // text only, sent often: the socket's failures show in Ready's and Ping's warnings
	d.prune = &retention.Pruner{Store: st, Failed: cfg.Paths.Failed, Outbox: cfg.Paths.Outbox, Policy: cfg.Retention, Log: o.Log}
	d.jobs = &pipeline.Runner{Cfg: cfg, Log: o.Log, Store: st, Worker: worker, Mem: d.mem, Status: d.status, Version: Version,
		Inspector: &pipeline.Inspector{Read: o.ReadModel}}
	if err := d.wireFleet(); err != nil {
		return nil, err
	}
	d.jobs.Outbox = &outbox.Outbox{Dir: cfg.Paths.Outbox, Failed: cfg.Paths.Failed, State: cfg.Paths.State, Store: st, Log: o.Log,
		Version: Version, TimingCache: d.jobs.TimingCache, StageSettings: func(name string) (protocol.Settings, bool) {
			s, ok := cfg.Stage(name)
			return s.Settings(), ok
		}}
	return d, nil
}

// workerCredential resolves the unprivileged user the worker runs as, with
// its supplementary groups (daemon/workers). It only applies when the
// daemon is root.
func workerCredential(name string) (*syscall.Credential, error) { return workers.Credential(name) }

// notified logs a message systemd did not get: a READY or watchdog ping
// lost makes systemd fail or restart the daemon, which the journal must
// explain.
func (d *Daemon) notified(what string, err error) {
	if err != nil {
		d.log.Warn("systemd notification not sent", "message", what, "err", err)
	}
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

// recover brings the machine and the store back to a known state before
// the daemon serves: swap, jobs caught by a crash (finished, failed or
// requeued), temporary files, the builder.
func (d *Daemon) recover(ctx context.Context) error {
	log := d.log
	log.Info("trtd starting", "version", Version, "inbox", d.cfg.Paths.Inbox, "outbox", d.cfg.Paths.Outbox, "config", d.cfg.File)
	if err := d.mem.Reconcile(ctx); err != nil {
		log.Warn("swap reconciliation", "err", err)
	}
	recs, err := d.store.Reconcile()
	if err != nil {
		return fmt.Errorf("reconcile jobs: %w", err)
	}
	d.jobs.Recovered(recs)
	if rm := d.jobs.Sweep(); len(rm) > 0 {
		log.Info("removed partial files left by a crash", "files", strings.Join(rm, ", "))
	}
	for _, dir := range []string{d.cfg.Paths.Outbox, d.cfg.Paths.State, filepath.Dir(d.cfg.StatusPath())} {
		if rm, _ := atomicfile.RemoveTemps(dir); len(rm) > 0 {
			log.Info("removed partial files left by a crash", "files", strings.Join(rm, ", "))
		}
	}
	d.jobs.Probe(ctx)
	// Engines a TensorRT or JetPack upgrade made stale are looked for
	// after READY, off the loop (offLoop.prune): with a long history
	// that is thousands of provenance files to read.
	return nil
}

// ready builds the queue (every job not finished, in upload order, and the
// jobs parked for lack of a builder in an earlier run when one is here now)
// and tells systemd the daemon is ready.
func (d *Daemon) ready() []*jobs.Job {
	queue := d.jobs.Pending()
	if d.jobs.Builder() != nil {
		queue = append(queue, d.jobs.Requeue()...)
		d.status.SetQueue(queue)
	}
	d.status.SetState("idle")
	snap := d.status.Snapshot()
	d.notified("READY", d.notify.Ready(snap.Line))
	d.log.Info("trtd ready", logging.KeyEvent, "ready", "queued", len(queue), "builder", d.jobs.BuilderLine())
	return queue
}

// Run runs the daemon's main loop.
func (d *Daemon) Run(ctx context.Context) error {
	// One process per state directory: a second daemon would take over
	// the first one's jobs and swap.
	lock, err := statelock.Acquire(d.cfg.Paths.State)
	if err != nil {
		return err
	}
	defer lock.Release()
	// The start reads every job record and directory of a long history
	// (10,000 finished jobs: tens of MiB of garbage over a live heap under
	// 1 MiB). At the runtime's default the heap grows to 4 MiB between
	// collections and those pages stay resident; a lower percentage for
	// the start keeps it near 1 MiB for a few more sub-millisecond
	// collections. The first prune after READY, which ends the start's
	// walks, restores it.
	d.gcPercent = startGC()
	defer restoreGC(d.gcPercent) // a start cut short
	if err := d.recover(ctx); err != nil {
		return err
	}
	defer d.startFleet(ctx)()
	events, watchDone, stopWatch, err := d.startWatch(ctx)
	// The watcher stops before Run returns: it may recreate a missing
	// inbox, and nothing of this daemon runs once Run has returned.
	defer stopWatch()
	if err != nil || events == nil {
		return err
	}

	b := &buildQueue{d: d, queue: d.ready(), results: make(chan *jobs.Job, 1)}
	var buildCtx context.Context
	buildCtx, b.stopBuilds = context.WithCancel(context.Background())
	defer b.stopBuilds()
	tick, watchdog, stopClocks := d.clocks()
	defer stopClocks()
	quietSince := time.Now()
	// The claimer and the other off-loop work stop with Run on every way
	// out (an inbox that fails, too): stopOff runs before off.close, so
	// the uploads still waiting to be claimed stay in the inbox.
	offCtx, stopOff := context.WithCancel(ctx)
	off := newOffLoop(offCtx, d)
	defer off.close()
	defer stopOff()
	off.prune() // at start, off the loop: READY does not wait for it
	b.statusTicker = time.NewTicker(statusEvery)
	b.statusTicker.Stop()
	defer b.statusTicker.Stop()
	// A build under way is stopped and waited for on every way out of
	// Run, not only on ctx's end.
	defer b.wait()

	// stopping ends Run on ctx's end: the build under way is interrupted
	// (its job stays queued for the next start) and waited for.
	stopping := func() error {
		d.status.SetState("stopping")
		d.notified("STOPPING", d.notify.Stopping("stopping"))
		d.log.Info("trtd stopping", logging.KeyEvent, "stopping")
		stopWatch()
		if b.building != nil {
			d.notified("EXTEND_TIMEOUT_USEC", d.notify.ExtendTimeout(30*time.Second))
		}
		b.wait()
		d.status.SetState("stopped")
		return nil
	}
	for {
		b.startNext(buildCtx)
		_, perr := d.notify.Ping() // throttled: at most one warning per half watchdog interval
		d.notified("WATCHDOG", perr)
		select {
		case <-ctx.Done():
			return stopping()
		case ev := <-events:
			quietSince = time.Now()
			off.claim(ev)
		case c := <-off.claimed:
			if j := off.done(c); j != nil {
				off.changed = true
				b.add(j)
			}
			quietSince = time.Now()
		case js := <-off.probed:
			off.probing = false
			b.add(js...)
		case <-off.idleDone:
			off.idling = false
		case <-off.releaseDone:
			off.releasing = false
		case dk := <-off.pruned:
			off.pruning = false
			// The first one put the kept models of stale engines in the
			// inbox: `trtd convert` waits for them to settle.
			quietSince = time.Now()
			d.status.SetDisk(dk)
			d.status.Update()
			if off.pruneN > 1 && b.idle() && !off.busy() {
				off.release() // the walk of the store is done (the first, at start, returns its own)
			}
		case j := <-b.results:
			b.ended(j)
			off.changed = true
			quietSince = time.Now()
			if b.idle() && !off.busy() {
				off.release() // the queue has drained
			}
		case <-b.statusTicker.C:
			if b.building != nil {
				d.status.Update()
			}
		case <-watchdog:
			// d.notify.Ping above, at the top of the loop, sends it.
		case <-tick:
			off.housekeeping(b.building != nil)
			if d.opts.Once && b.idle() && !off.busy() && time.Since(quietSince) > d.cfg.Inbox.Settle.D()+time.Second {
				d.status.SetState("stopped")
				return nil
			}
		case err := <-watchDone:
			if err != nil {
				return fmt.Errorf("inbox: %w", err)
			}
			// The watcher ends without an error only when ctx does; the
			// select may take this case before ctx.Done's.
			return stopping()
		}
	}
}

// statusEvery: while a build runs, STATUS= (and the status file) is
// rewritten at least this often, so the elapsed time and memory move in
// `systemctl status` during an hour-long build. The ticker runs only
// while a build does: an idle daemon does not wake for it.
const statusEvery = 5 * time.Second

// buildQueue is the main loop's queue and the one build under way.
type buildQueue struct {
	d            *Daemon
	queue        []*jobs.Job
	building     *jobs.Job
	results      chan *jobs.Job
	stopBuilds   context.CancelFunc
	statusTicker *time.Ticker
}

// add queues js.
func (b *buildQueue) add(js ...*jobs.Job) {
	if len(js) == 0 {
		return
	}
	b.queue = append(b.queue, js...)
	b.d.status.SetQueue(b.queue)
}

// startNext starts the next build unless one runs or nothing waits.
func (b *buildQueue) startNext(ctx context.Context) {
	if b.building != nil || len(b.queue) == 0 {
		return
	}
	j := b.queue[0]
	b.queue = b.queue[1:]
	b.building = j
	b.d.status.SetQueue(b.queue)
	b.statusTicker.Reset(statusEvery)
	go func() {
		b.d.jobs.Process(ctx, j)
		b.results <- j
	}()
}

// ended takes a build's end in: an interrupted job runs again first.
func (b *buildQueue) ended(j *jobs.Job) {
	b.building = nil
	b.statusTicker.Stop()
	if j.State == jobs.Queued {
		b.queue = append([]*jobs.Job{j}, b.queue...)
	}
	b.d.status.SetQueue(b.queue)
}

// wait interrupts the build under way, if any, and waits for it.
func (b *buildQueue) wait() {
	if b.building != nil {
		b.stopBuilds()
		<-b.results
		b.building = nil
	}
}

// idle: no build runs and none waits.
func (b *buildQueue) idle() bool { return b.building == nil && len(b.queue) == 0 }

// startFleet runs the fleet pusher; the returned function stops it and
// waits. The pusher stops before Run returns (and before the state lock
// is released): a push cut short by the stop leaves its queue item as it
// was, never a half-written one under a daemon that has exited.
func (d *Daemon) startFleet(ctx context.Context) (stop func()) {
	fleetCtx, stopFleet := context.WithCancel(ctx)
	fleetDone := make(chan struct{})
	go func() { defer close(fleetDone); d.jobs.Fleet.Run(fleetCtx, time.Minute) }()
	return func() { stopFleet(); <-fleetDone }
}

// startWatch starts the inbox watcher and waits until it watches (or
// cannot, or ctx ends: then events is nil). stop ends the watcher and
// waits for it; watchDone gives its end while it runs.
func (d *Daemon) startWatch(ctx context.Context) (events chan inbox.Event, watchDone chan error, stop func(), err error) {
	events = make(chan inbox.Event, 256)
	w := inbox.New(inbox.Options{Dir: d.cfg.Paths.Inbox, Settle: d.cfg.Inbox.Settle.D(), Rescan: d.cfg.Inbox.Rescan.D(),
		MaxBytes: int64(d.cfg.Inbox.MaxBytes), Inspect: d.jobs.Inspector.Check, Log: d.log.With("stage", "inbox")})
	watchCtx, stopWatch := context.WithCancel(ctx)
	ready := make(chan struct{})
	watchDone = make(chan error, 1)
	watchExited := make(chan struct{})
	go func() { defer close(watchExited); watchDone <- w.Run(watchCtx, events, ready) }()
	stop = func() { stopWatch(); <-watchExited }
	select {
	case <-ready:
		return events, watchDone, stop, nil
	case err := <-watchDone: // the watch could not start
		if err != nil {
			return nil, nil, stop, fmt.Errorf("inbox: %w", err)
		}
	case <-ctx.Done():
	}
	return nil, nil, stop, nil // nothing to watch for: Run returns
}

// startGCPercent is the GC percentage while the daemon starts: the
// collector runs once the heap has grown by a quarter over what is live.
const startGCPercent = 25

// startGC lowers the GC percentage for the start and returns the one to
// restore. GOGC=off, or a lower GOGC, is left as it is.
func startGC() int {
	prev := debug.SetGCPercent(startGCPercent)
	if prev < startGCPercent {
		debug.SetGCPercent(prev)
	}
	return prev
}

func restoreGC(prev int) { debug.SetGCPercent(prev) }
