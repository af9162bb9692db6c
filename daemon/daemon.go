package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/memory"
	"github.com/trtd/trtd/daemon/notify"
	"github.com/trtd/trtd/daemon/outbox"
	"github.com/trtd/trtd/daemon/pipeline"
	"github.com/trtd/trtd/daemon/statelock"
	"github.com/trtd/trtd/daemon/status"
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
	opts   Options
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
	d.status.Notify = func(line string) { o.Notify.Status(line) }
	d.jobs = &pipeline.Runner{Cfg: cfg, Log: o.Log, Store: st, Worker: worker, Mem: d.mem, Status: d.status, Version: Version}
	d.jobs.Outbox = &outbox.Outbox{Dir: cfg.Paths.Outbox, Failed: cfg.Paths.Failed, State: cfg.Paths.State, Store: st, Log: o.Log,
		Version: Version, TimingCache: d.jobs.TimingCache, StageSettings: func(name string) (protocol.Settings, bool) {
			s, ok := cfg.Stage(name)
			return s.Settings(), ok
		}}
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
	// One process per state directory: a second daemon would take over
	// the first one's jobs and swap.
	lock, err := statelock.Acquire(d.cfg.Paths.State)
	if err != nil {
		return err
	}
	defer lock.Release()
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
	d.jobs.RequeueStale()

	events := make(chan inbox.Event, 256)
	w := inbox.New(inbox.Options{Dir: d.cfg.Paths.Inbox, Settle: d.cfg.Inbox.Settle.D(), Rescan: d.cfg.Inbox.Rescan.D(),
		MaxBytes: int64(d.cfg.Inbox.MaxBytes), CheckRefs: pipeline.CheckModelRefs, Log: log.With("stage", "inbox")})
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
	queue := d.jobs.Pending()
	if d.jobs.Builder() != nil {
		// Jobs parked for lack of a builder in an earlier run: one is here now.
		queue = append(queue, d.jobs.Requeue()...)
		d.status.SetQueue(queue)
	}
	d.status.SetState("idle")
	snap := d.status.Snapshot()
	d.notify.Ready(snap.Line)
	log.Info("trtd ready", logging.KeyEvent, "ready", "queued", len(queue), "builder", d.jobs.BuilderLine())

	results := make(chan *jobs.Job, 1)
	buildCtx, stopBuilds := context.WithCancel(context.Background())
	defer stopBuilds()
	var building *jobs.Job
	// Housekeeping (the idle swap release, retrying parked jobs) needs no
	// fine clock: once a minute, or every retry interval if that is
	// shorter. An idle daemon wakes up a few times a minute, not twice a
	// second (issue 13: 680 wake-ups a minute idle). Only `trtd convert`
	// (Once) watches for its end more often.
	tickEvery := time.Minute
	if ri := d.cfg.Worker.RetryInterval.D(); ri > 0 && ri < tickEvery {
		tickEvery = ri
	}
	if d.opts.Once {
		tickEvery = 500 * time.Millisecond
	}
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	// The watchdog has its own clock: a quarter of its timeout, so a ping
	// (due every half) is never late by a tick.
	var watchdog <-chan time.Time
	if wd := d.notify.WatchdogInterval() / 2; wd > 0 {
		wt := time.NewTicker(wd)
		defer wt.Stop()
		watchdog = wt.C
	}
	quietSince := time.Now()

	// F-6: nothing slow runs on this loop, which pings the watchdog. Claims
	// (a copy across filesystems, the model's parse), probes of the
	// builder and the idle swap release run in their own goroutines; the
	// loop only hands work out and takes results in.
	type claimResult struct {
		name string
		job  *jobs.Job
	}
	claimReq := make(chan inbox.Event, 1024)
	claimed := make(chan claimResult, 1024)
	claiming := map[string]bool{} // names whose claim is in progress: never delivered twice
	claimerDone := make(chan struct{})
	go func() {
		defer close(claimerDone)
		for ev := range claimReq {
			if ctx.Err() != nil {
				continue // stopping: the inbox keeps it for the next start
			}
			claimed <- claimResult{ev.Name, d.jobs.HandleInbox(ev)}
		}
	}()
	probed := make(chan []*jobs.Job, 1)
	probing := false
	idleDone := make(chan struct{}, 1)
	idling := false
	// On every way out: the claim under way ends (a claim is never cut
	// short by the daemon itself), and so do a probe and an idle release.
	defer func() {
		close(claimReq)
		<-claimerDone
		if probing {
			<-probed
		}
		if idling {
			<-idleDone
		}
	}()

	startNext := func() {
		if building != nil || len(queue) == 0 {
			return
		}
		j := queue[0]
		queue = queue[1:]
		building = j
		d.status.SetQueue(queue)
		go func() {
			d.jobs.Process(buildCtx, j)
			results <- j
		}()
	}
	for {
		startNext()
		d.notify.Ping()
		select {
		case <-ctx.Done():
			d.status.SetState("stopping")
			d.notify.Stopping("stopping")
			log.Info("trtd stopping", logging.KeyEvent, "stopping")
			stopWatch()
			if building != nil {
				d.notify.ExtendTimeout(30 * time.Second)
				stopBuilds()
				<-results
			}
			d.status.SetState("stopped")
			return nil
		case ev := <-events:
			quietSince = time.Now()
			if claiming[ev.Name] {
				continue // its claim is under way: a rescan saw it again
			}
			select {
			case claimReq <- ev:
				claiming[ev.Name] = true
			default: // the claimer is far behind: a later rescan delivers it again
			}
		case c := <-claimed:
			delete(claiming, c.name)
			if c.job != nil {
				queue = append(queue, c.job)
				d.status.SetQueue(queue)
			}
			quietSince = time.Now()
		case js := <-probed:
			probing = false
			if len(js) > 0 {
				queue = append(queue, js...)
				d.status.SetQueue(queue)
			}
		case <-idleDone:
			idling = false
		case j := <-results:
			building = nil
			if j.State == jobs.Queued { // interrupted, run again
				queue = append([]*jobs.Job{j}, queue...)
			}
			d.status.SetQueue(queue)
			quietSince = time.Now()
		case <-watchdog:
			// d.notify.Ping above, at the top of the loop, sends it.
		case <-tick.C:
			if !idling {
				idling = true
				go func() { d.mem.Idle(ctx); idleDone <- struct{}{} }()
			}
			if !probing && building == nil && d.jobs.RetryDue() {
				probing = true
				go func() {
					var js []*jobs.Job
					if d.jobs.Probe(ctx) {
						js = d.jobs.Requeue()
					}
					probed <- js
				}()
			}
			if d.opts.Once && building == nil && len(queue) == 0 && len(claiming) == 0 && !probing &&
				time.Since(quietSince) > d.cfg.Inbox.Settle.D()+time.Second {
				d.status.SetState("stopped")
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
