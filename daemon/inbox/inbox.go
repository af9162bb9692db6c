// Package inbox decides when an uploaded model is complete.
//
// Events are only a wake-up hint: OpenSSH's scp and sftp write in place
// under the final name, and an aborted transfer closes its file like a
// finished one. A file is ready when its size, mtime and inode have been
// quiet for the settle period and its content passes the check (a whole
// ONNX model); a file renamed into the inbox (rsync, WinSCP's .filepart,
// `mv`) is checked at once. A periodic rescan, and one after an inotify
// queue overflow, covers lost events; a deleted and recreated inbox is
// watched again.
//
// Hostile entries (symbolic links, FIFOs, sockets, directories named
// *.onnx) are never followed and never block: they are reported once as
// rejected and left where they are. Nothing in the inbox is ever written,
// moved or deleted by this package.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/internal/untrusted"
)

// ModelExt is the extension of the files the inbox picks up.
const ModelExt = ".onnx"

// ErrTooLarge rejects files over Options.MaxBytes.
var ErrTooLarge = errors.New("file is larger than inbox.max_bytes")

// Kind of an Event.
type Kind int

// Event kinds.
const (
	Ready    Kind = iota // complete and valid: claim it
	Rejected             // not a model trtd will build; Err says why
)

func (k Kind) String() string {
	if k == Ready {
		return "ready"
	}
	return "rejected"
}

// Event is a decision about one inbox entry.
type Event struct {
	Kind    Kind
	Name    string // base name in the inbox
	Path    string
	Size    int64
	ModTime time.Time
	Dev     uint64
	Ino     uint64
	MovedIn bool  // arrived by rename
	Err     error // for Rejected
	// Model is what the content check (Options.Inspect) read of the
	// model: the one parse of the upload, handed on so that nothing after
	// the inbox reads it again (issue 13, F-4). nil when no Inspect is set
	// or it returned none (a summary its owner does not keep is not
	// carried: events waiting to be claimed stay within its budget).
	Model *onnx.Summary
}

// Checker checks the content of an opened candidate; a non-nil error means
// the file is not (yet) a whole model.
type Checker func(f *os.File, path string) error

// Options configure a Watcher.
type Options struct {
	Dir      string
	Settle   time.Duration
	Rescan   time.Duration
	MaxBytes int64
	Check    Checker
	// Inspect, when set, is used instead of Check and also returns what it
	// read of the model, handed on in Event.Model so the consumer does not
	// read the content a second time.
	Inspect func(f *os.File, path string) (*onnx.Summary, error)
	Log     *slog.Logger
	Now     func() time.Time
}

// Ignored reports whether name is never a candidate: hidden files and the
// temporary names of upload clients.
func Ignored(name string) bool {
	if strings.HasPrefix(name, ".") {
		return true
	}
	for _, suf := range []string{".filepart", ".tmp", ".part", ".partial", "~"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// IsCandidate reports whether name is a model the inbox considers.
func IsCandidate(name string) bool {
	return !Ignored(name) && strings.HasSuffix(name, ModelExt) && len(name) > len(ModelExt)
}

type sig struct {
	size    int64
	mtime   time.Time
	dev     uint64
	ino     uint64
	mode    fs.FileMode
	present bool
}

type entry struct {
	sig        sig
	changedAt  time.Time
	movedIn    bool
	reported   bool // rejection reported for this signature
	lastErr    string
	checkedSig sig // signature at the last failed content check
}

// Watcher watches one inbox directory.
type Watcher struct {
	o       Options
	entries map[string]*entry
	// Done marks a name as claimed (consumer moved it away) or delivered.
	delivered map[string]delivery
	rescanNow chan struct{}
	movedIn   chan string
	// recheck is set during a periodic rescan: rejected entries are checked
	// again (their external data may have arrived since) and ready ones
	// still present long after delivery are delivered again (the
	// consumer's claim failed, e.g. on a full disk).
	recheck bool
	// link is the inbox path's symlink target when trtd started ("" when
	// it is a real directory): an admin may point the inbox elsewhere, but
	// a directory later replaced by a link is not followed.
	link string
}

type delivery struct {
	sig sig
	at  time.Time
}

// New returns a Watcher; call Run.
func New(o Options) *Watcher {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Rescan <= 0 {
		o.Rescan = 30 * time.Second
	}
	return &Watcher{o: o, entries: map[string]*entry{}, delivered: map[string]delivery{},
		rescanNow: make(chan struct{}, 1), movedIn: make(chan string, 256)}
}

// Rescan asks for a full scan soon (e.g. after the consumer freed a slot).
func (w *Watcher) Rescan() {
	select {
	case w.rescanNow <- struct{}{}:
	default:
	}
}

// dueTimer fires when the next entry's settle period ends; c is nil while
// no entry waits.
type dueTimer struct {
	t *time.Timer
	c <-chan time.Time
}

// arm sets the timer for the next entry due, or stops it.
func (w *Watcher) arm(due *dueTimer) {
	next, ok := w.nextDue()
	if !ok {
		due.t.Stop()
		due.c = nil
		return
	}
	d := next.Sub(w.o.Now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	due.t.Reset(d)
	due.c = due.t.C
}

// watchError logs an inotify error; the caller rescans.
func (w *Watcher) watchError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.o.Log.Warn("inotify queue overflowed; rescanning the inbox")
	} else {
		w.o.Log.Warn("inbox watch error; rescanning", "err", err)
	}
}

// closeFsnotify closes fw while draining its channels. fsnotify's reader
// can hold the watcher's lock while it waits to hand over an error (an
// IN_MOVE_SELF for a watch the kernel already dropped: the inbox renamed,
// then deleted), and Close takes that same lock: closing without reading
// deadlocks the inbox loop, and with it the daemon (fsnotify v1.10.1,
// backend_inotify.go handleEvent and shared.go close).
func closeFsnotify(fw *fsnotify.Watcher) error {
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func(events <-chan fsnotify.Event, errs <-chan error) {
		defer close(drained)
		for events != nil || errs != nil {
			select {
			case _, ok := <-events:
				if !ok {
					events = nil
				}
			case _, ok := <-errs:
				if !ok {
					errs = nil
				}
			case <-stop:
				return
			}
		}
	}(fw.Events, fw.Errors)
	err := fw.Close()
	close(stop)
	<-drained
	return err
}

// Run watches until ctx ends, sending decisions to out. ready, if not nil,
// is closed once the watch is set and the first scan is done.
func (w *Watcher) Run(ctx context.Context, out chan<- Event, ready chan<- struct{}) error {
	if err := os.MkdirAll(w.o.Dir, 0o755); err != nil {
		return fmt.Errorf("inbox %s: %w", w.o.Dir, err)
	}
	w.link, _ = os.Readlink(w.o.Dir)
	dw := &dirWatch{w: w}
	defer dw.close()
	ensureWatch := dw.ensure
	ensureWatch()
	w.scan(ctx, out)
	if ready != nil {
		close(ready)
	}
	// No fixed tick: a timer fires when the next entry's settle period
	// ends, so a finished upload is judged right then (not up to a tick
	// later) and an idle daemon does not wake up for the inbox at all.
	due := &dueTimer{t: time.NewTimer(time.Hour)}
	due.t.Stop()
	defer due.t.Stop()
	arm := func() { w.arm(due) }
	arm()
	rescan := time.NewTicker(w.o.Rescan)
	defer rescan.Stop()
	for {
		if due.c == nil {
			arm()
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-dw.events:
			if !ok {
				dw.events = nil
				continue
			}
			if ev.Name == w.o.Dir {
				ensureWatch()
				continue
			}
			if filepath.Dir(ev.Name) == filepath.Clean(w.o.Dir) {
				w.touch(filepath.Base(ev.Name), false)
				arm()
			}
		case name := <-w.movedIn:
			w.touch(name, true)
			w.evaluate(ctx, out)
			arm()
		case err, ok := <-dw.errs:
			if !ok {
				dw.errs = nil
				continue
			}
			w.watchError(err)
			w.scan(ctx, out)
			arm()
		case <-w.rescanNow:
			ensureWatch()
			w.scan(ctx, out)
			arm()
		case <-rescan.C:
			ensureWatch()
			w.recheck = true
			w.scan(ctx, out)
			w.recheck = false
			arm()
		case <-due.c:
			due.c = nil
			w.evaluate(ctx, out)
			arm()
		}
	}
}

// dirWatch is the inotify watch of the inbox directory and of renames
// into it, set again when the directory is new or replaced.
type dirWatch struct {
	w      *Watcher
	fw     *fsnotify.Watcher
	mv     *movedInWatch
	id     sig
	events <-chan fsnotify.Event
	errs   <-chan error
}

// close ends the watches. One that does not close leaks its descriptor:
// worth a line in the journal, though rescans miss nothing for it.
func (d *dirWatch) close() {
	if d.fw != nil {
		if err := closeFsnotify(d.fw); err != nil {
			d.w.o.Log.Warn("inbox watch not closed", "err", err)
		}
		d.fw, d.events, d.errs = nil, nil, nil
	}
	if d.mv != nil {
		if err := d.mv.Close(); err != nil {
			d.w.o.Log.Warn("inbox rename watch not closed", "err", err)
		}
		d.mv = nil
	}
}

// ensure (re)establishes the watch when the inbox directory is new or
// replaced, and makes a missing one again.
func (d *dirWatch) ensure() {
	o := d.w.o
	st, err := statSig(o.Dir)
	if err != nil || !st.mode.IsDir() {
		if d.fw != nil {
			o.Log.Warn("inbox directory is gone; waiting for it to come back", "dir", o.Dir)
			d.close()
		}
		d.id = sig{}
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(o.Dir, 0o755); err != nil {
				o.Log.Warn("cannot make the inbox directory again; retrying", "dir", o.Dir, "err", err)
			}
		}
		return
	}
	if d.fw != nil && st.dev == d.id.dev && st.ino == d.id.ino {
		return
	}
	d.close()
	nw, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		o.Log.Error("inotify unavailable; relying on rescans", "err", err)
		return
	}
	if err := nw.Add(o.Dir); err != nil {
		_ = nw.Close() // watching nothing yet; the Add's error is what is logged
		o.Log.Error("cannot watch inbox; relying on rescans", "dir", o.Dir, "err", err)
		return
	}
	d.fw, d.events, d.errs, d.id = nw, nw.Events, nw.Errors, st
	if m, err := newMovedInWatch(o.Dir, d.w.movedIn); err == nil {
		d.mv = m
	} else {
		o.Log.Warn("cannot watch for renames into the inbox; renamed files wait for the settle period", "err", err)
	}
	o.Log.Debug("watching inbox", "dir", o.Dir)
}

// nextDue is when the earliest undecided entry's settle period ends.
func (w *Watcher) nextDue() (time.Time, bool) {
	var next time.Time
	found := false
	for name, e := range w.entries {
		if d, ok := w.delivered[name]; ok && d.sig == e.sig {
			continue
		}
		if e.reported {
			continue
		}
		at := e.changedAt.Add(w.o.Settle)
		if e.movedIn || !e.sig.mode.IsRegular() {
			at = e.changedAt
		}
		if !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}

// dirOK reports whether the inbox path still is what it was at start: a
// directory replaced by a symbolic link (to anywhere) is not read.
func (w *Watcher) dirOK() bool {
	l, err := os.Readlink(w.o.Dir)
	if err != nil {
		return w.link == "" || !errors.Is(err, syscall.EINVAL)
	}
	if l != w.link {
		w.o.Log.Warn("the inbox was replaced by a symbolic link; not reading it", "dir", w.o.Dir, "target", l)
		return false
	}
	return true
}

func (w *Watcher) scan(ctx context.Context, out chan<- Event) {
	if !w.dirOK() {
		return
	}
	ents, err := os.ReadDir(w.o.Dir)
	if err != nil {
		w.o.Log.Warn("cannot read inbox", "dir", w.o.Dir, "err", err)
		return
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if IsCandidate(e.Name()) {
			seen[e.Name()] = true
			w.touch(e.Name(), false)
		}
	}
	for name := range w.entries {
		if !seen[name] {
			delete(w.entries, name)
		}
	}
	for name := range w.delivered {
		if !seen[name] {
			delete(w.delivered, name)
		}
	}
	w.evaluate(ctx, out)
}

func statSig(p string) (sig, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return sig{}, err
	}
	dev, ino := untrusted.Inode(fi)
	return sig{size: fi.Size(), mtime: fi.ModTime(), dev: dev, ino: ino, mode: fi.Mode(), present: true}, nil
}

// touch records that name may have changed.
func (w *Watcher) touch(name string, movedIn bool) {
	if !IsCandidate(name) {
		return
	}
	now := w.o.Now()
	s, err := statSig(filepath.Join(w.o.Dir, name))
	if err != nil {
		delete(w.entries, name)
		return
	}
	e, ok := w.entries[name]
	if !ok {
		e = &entry{sig: s, changedAt: now}
		w.entries[name] = e
	} else if s != e.sig {
		e.sig, e.changedAt, e.reported = s, now, false
		if !movedIn {
			e.movedIn = false
		}
	}
	if movedIn {
		e.movedIn = true
	}
}

// evaluate decides every entry that has settled.
func (w *Watcher) evaluate(ctx context.Context, out chan<- Event) {
	if len(w.entries) == 0 || !w.dirOK() {
		return
	}
	names := make([]string, 0, len(w.entries))
	for n := range w.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	now := w.o.Now()
	for _, name := range names {
		e := w.entries[name]
		p := filepath.Join(w.o.Dir, name)
		cur, err := statSig(p)
		if err != nil {
			delete(w.entries, name)
			continue
		}
		if cur != e.sig {
			e.sig, e.changedAt, e.reported = cur, now, false
			e.movedIn = false
			continue
		}
		if d, ok := w.delivered[name]; ok && d.sig == cur {
			if !w.recheck || now.Sub(d.at) < w.o.Rescan {
				continue // already handed out, consumer has not claimed it yet
			}
			w.o.Log.Warn("model still in the inbox long after it was handed out; handing it out again", "file", name)
		}
		special := !cur.mode.IsRegular()
		if !special && !e.movedIn && now.Sub(e.changedAt) < w.o.Settle {
			continue
		}
		if e.reported && !w.recheck {
			continue
		}
		ev := Event{Name: name, Path: p, Size: cur.size, ModTime: cur.mtime, Dev: cur.dev, Ino: cur.ino, MovedIn: e.movedIn}
		var cerr error
		if ev.Model, cerr = w.check(p, cur); cerr != nil {
			err := cerr
			if !special && e.movedIn && !errors.Is(err, untrusted.ErrChanged) {
				// A renamed-in file that fails may still be written to;
				// give it the normal settle period before judging.
				e.movedIn = false
				e.changedAt = now
				continue
			}
			if e.reported && err.Error() == e.lastErr {
				continue // rechecked, same verdict: already reported
			}
			ev.Kind, ev.Err = Rejected, err
			e.reported, e.lastErr = true, err.Error()
		} else {
			ev.Kind = Ready
			w.delivered[name] = delivery{sig: cur, at: now}
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Watcher) check(p string, want sig) (model *onnx.Summary, err error) {
	f, fi, err := untrusted.Open(p)
	if err != nil {
		if fi != nil && errors.Is(err, untrusted.ErrNotRegular) {
			return nil, fmt.Errorf("%s is a %s, not a regular file: ignored", filepath.Base(p), untrusted.Kind(fi.Mode()))
		}
		if errors.Is(err, untrusted.ErrSymlink) {
			return nil, fmt.Errorf("%s is a symbolic link: not followed", filepath.Base(p))
		}
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only; read errors are returned below
	dev, ino := untrusted.Inode(fi)
	if dev != want.dev || ino != want.ino || fi.Size() != want.size {
		return nil, fmt.Errorf("%s: %w", filepath.Base(p), untrusted.ErrChanged)
	}
	if w.o.MaxBytes > 0 && fi.Size() > w.o.MaxBytes {
		return nil, fmt.Errorf("%s: %w (%d > %d bytes)", filepath.Base(p), ErrTooLarge, fi.Size(), w.o.MaxBytes)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s: empty file", filepath.Base(p))
	}
	switch {
	case w.o.Inspect != nil:
		if model, err = w.o.Inspect(f, p); err != nil {
			return nil, err
		}
	case w.o.Check != nil:
		if err := w.o.Check(f, p); err != nil {
			return nil, err
		}
	}
	// The content check took time: make sure nothing changed meanwhile.
	after, err := statSig(p)
	if err != nil || after != want {
		return nil, fmt.Errorf("%s: %w", filepath.Base(p), untrusted.ErrChanged)
	}
	return model, nil
}
