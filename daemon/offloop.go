package daemon

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/trtd/trtd/daemon/inbox"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/logging"
	"github.com/trtd/trtd/daemon/retention"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/bytesize"
)

// offLoop runs the main loop's slow work in goroutines (issue 13, F-6):
// nothing slow runs on the loop that pings the watchdog. Claims (a copy
// across filesystems, the model's parse) run one at a time, in order, in
// a claimer goroutine; a builder probe and the idle swap release in their
// own. The loop only hands work out and takes results in.
type offLoop struct {
	d   *Daemon
	ctx context.Context

	claimReq    chan inbox.Event
	claimed     chan claimResult
	claiming    map[string]bool // names whose claim is under way: never handed out twice
	claimerDone chan struct{}

	probed  chan []*jobs.Job
	probing bool

	idleDone chan struct{}
	idling   bool

	pruned  chan status.Disk
	pruning bool
	pruneN  int
	// changed: a job was claimed or finished since the last prune;
	// prunedAt: when the last one started. Without a change, the store is
	// walked again only every pruneEvery (for keep_days, and files removed
	// by hand), not at every tick: 10,000 finished jobs are 10,000 records
	// and 20,000 directories to read.
	changed  bool
	prunedAt time.Time

	releaseDone chan struct{}
	releasing   bool
}

// pruneEvery is how often retention and the disk measure run when no job
// was claimed or finished.
const pruneEvery = time.Hour

// pruneDue reports whether housekeeping at now should prune and measure.
func (o *offLoop) pruneDue(now time.Time) bool {
	return o.changed || now.Sub(o.prunedAt) >= pruneEvery
}

type claimResult struct {
	name string
	job  *jobs.Job
}

func newOffLoop(ctx context.Context, d *Daemon) *offLoop {
	o := &offLoop{d: d, ctx: ctx, claimReq: make(chan inbox.Event, 1024), claimed: make(chan claimResult, 1024),
		claiming: map[string]bool{}, claimerDone: make(chan struct{}), probed: make(chan []*jobs.Job, 1),
		idleDone: make(chan struct{}, 1), pruned: make(chan status.Disk, 1), releaseDone: make(chan struct{}, 1)}
	go func() {
		defer close(o.claimerDone)
		for ev := range o.claimReq {
			if ctx.Err() != nil {
				continue // stopping: the inbox keeps it for the next start
			}
			o.claimed <- claimResult{ev.Name, d.jobs.HandleInbox(ev)}
		}
	}()
	return o
}

// claim hands ev to the claimer, unless its claim is already under way (a
// rescan saw the name again) or the claimer is far behind (a later rescan
// delivers it again).
func (o *offLoop) claim(ev inbox.Event) {
	if o.claiming[ev.Name] {
		return
	}
	select {
	case o.claimReq <- ev:
		o.claiming[ev.Name] = true
	default:
	}
}

// done takes a claim's result in.
func (o *offLoop) done(c claimResult) *jobs.Job {
	delete(o.claiming, c.name)
	return c.job
}

// housekeeping starts the idle swap release and, when no build runs and a
// retry is due, a probe of the builder (its requeued jobs come on probed).
func (o *offLoop) housekeeping(building bool) {
	if !o.idling {
		o.idling = true
		go func() { o.d.mem.Idle(o.ctx); o.idleDone <- struct{}{} }()
	}
	if o.pruneDue(time.Now()) {
		o.prune()
	}
	if !o.probing && !building && o.d.jobs.RetryDue() {
		o.probing = true
		go func() {
			var js []*jobs.Job
			if o.d.jobs.Probe(o.ctx) {
				js = o.d.jobs.Requeue()
			}
			o.probed <- js
		}()
	}
}

// prune applies [retention] and measures the space finished work takes,
// in a goroutine: with thousands of finished jobs it reads every job.json
// (and, when something could go, every engine provenance in the outbox).
// The first one, just after READY, also finishes the start: stale
// engines, and the sweep of finished jobs' directories.
func (o *offLoop) prune() {
	if o.pruning {
		return
	}
	o.pruning = true
	o.changed, o.prunedAt = false, time.Now()
	o.pruneN++
	first := o.pruneN == 1
	d := o.d
	go func() {
		if first {
			// The start's stale-engine check (every provenance in the
			// outbox), after READY: the kept models of engines a TensorRT
			// or JetPack upgrade invalidated go back to the inbox, which
			// the watcher already serves.
			d.jobs.RequeueStale()
		}
		if _, err := d.prune.Prune(); err != nil {
			d.log.Warn("retention: some finished jobs were not removed", "err", err)
		}
		var jobsSize int64
		if first {
			// The start swept only the unfinished jobs' directories; the
			// finished ones (10,000 in a long history) are swept here, off
			// the loop and after READY, in the walk that measures them.
			var rm []string
			jobsSize, rm = d.jobs.SweepStore()
			if len(rm) > 0 {
				d.log.Info("removed partial files left by a crash", "files", strings.Join(rm, ", "))
			}
		} else {
			jobsSize = retention.Size(d.store.Root)
		}
		dk := status.Disk{Jobs: jobsSize, Failed: retention.Size(d.cfg.Paths.Failed),
			Cache: retention.Size(filepath.Join(d.cfg.Paths.State, "cache")), Measured: time.Now().UTC()}
		if first {
			// The start read every job record and walked every job
			// directory: all garbage now, but the runtime's scavenger
			// gives it back to the kernel only over minutes. On a 4 GB
			// board those pages are worth returning at once. The start is
			// over: the runtime's GC percentage again.
			restoreGC(d.gcPercent)
			debug.FreeOSMemory()
		}
		o.pruned <- dk
	}()
}

// release hands the memory that work left free back to the kernel, once
// the daemon has nothing left to do: a collection, then every free page
// returned (debug.FreeOSMemory), in a goroutine. On a Jetson the CPU and
// the GPU share the RAM; the Go runtime alone gives such pages back over
// minutes (after a burst of 200 uploads the idle daemon held 16.8 MiB
// against 12.2 MiB fresh, and its scavenger kept waking).
func (o *offLoop) release() {
	if o.releasing {
		return
	}
	o.releasing = true
	go func() {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		debug.FreeOSMemory()
		runtime.ReadMemStats(&after)
		// A claim running beside it may take released pages back: never
		// less than nothing released.
		o.d.log.Debug("idle: free memory returned to the kernel", "released", bytesize.Format(max(0, int64(after.HeapReleased)-int64(before.HeapReleased))),
			"heap_in_use", bytesize.Format(int64(after.HeapInuse)), logging.KeyEvent, "memory_released")
		o.releaseDone <- struct{}{}
	}()
}

// busy reports whether a claim, a probe or a prune (the first one
// requeues stale engines) is under way.
func (o *offLoop) busy() bool { return len(o.claiming) > 0 || o.probing || o.pruning }

// close ends the claimer after the claim under way (a claim is never cut
// short by the daemon itself) and waits for a probe and an idle release.
func (o *offLoop) close() {
	close(o.claimReq)
	<-o.claimerDone
	if o.probing {
		<-o.probed
	}
	if o.idling {
		<-o.idleDone
	}
	if o.pruning {
		<-o.pruned
	}
	if o.releasing {
		<-o.releaseDone
	}
}

// clocks are the main loop's two tickers: housekeeping (the idle swap
// release, retries of parked jobs) once a minute, or every retry interval
// when that is shorter — an idle daemon used to wake twice a second for it
// (680 wake-ups a minute) — and the watchdog at a quarter of its timeout,
// so a ping (due every half) is never late. Only `trtd convert` (Once)
// watches for its end every 500 ms.
func (d *Daemon) clocks() (tick, watchdog <-chan time.Time, stop func()) {
	every := time.Minute
	if ri := d.cfg.Worker.RetryInterval.D(); ri > 0 && ri < every {
		every = ri
	}
	if d.opts.Once {
		every = 500 * time.Millisecond
	}
	t := time.NewTicker(every)
	stop = t.Stop
	if wd := d.notify.WatchdogInterval() / 2; wd > 0 {
		w := time.NewTicker(wd)
		watchdog = w.C
		stop = func() { t.Stop(); w.Stop() }
	}
	return t.C, watchdog, stop
}
