package inbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsnotify/fsnotify"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/internal/testmodels"
)

// onnxCheck is the real content check the daemon uses.
func onnxCheck(f *os.File, path string) error {
	_, err := onnx.ReadFile(f, "")
	return err
}

type harness struct {
	t    *testing.T
	dir  string
	w    *Watcher
	out  chan Event
	stop context.CancelFunc
	done chan error
}

// start runs a watcher on a new inbox (rescans every second unless
// rescan says otherwise).
func start(t *testing.T, settle time.Duration, setup func(dir string), rescan ...time.Duration) *harness {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "inbox")
	os.MkdirAll(dir, 0o755)
	if setup != nil {
		setup(dir)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, dir: dir, out: make(chan Event, 1024), stop: cancel, done: make(chan error, 1)}
	every := time.Second
	if len(rescan) > 0 {
		every = rescan[0]
	}
	h.w = New(Options{Dir: dir, Settle: settle, Rescan: every, MaxBytes: 1 << 30, Check: onnxCheck})
	ready := make(chan struct{})
	go func() { h.done <- h.w.Run(ctx, h.out, ready) }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher never became ready")
	}
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

// next waits for the next event (failing after limit).
func (h *harness) next(limit time.Duration) Event {
	h.t.Helper()
	select {
	case ev := <-h.out:
		return ev
	case <-time.After(limit):
		h.t.Fatalf("no inbox event within %v", limit)
	}
	return Event{}
}

// none asserts no event arrives for d.
func (h *harness) none(d time.Duration) {
	h.t.Helper()
	select {
	case ev := <-h.out:
		h.t.Fatalf("unexpected event %s %s (err %v)", ev.Kind, ev.Name, ev.Err)
	case <-time.After(d):
	}
}

func TestFilePresentAtStartIsPickedUp(t *testing.T) {
	// No periodic rescan within the test: one would hand the unclaimed
	// file out again a second after the first delivery (on purpose, see
	// TestRedeliverUnclaimed), which a reader held 300 ms on a loaded
	// machine saw inside its 700 ms window.
	h := start(t, 200*time.Millisecond, func(dir string) {
		testmodels.Write(t, dir, "a.onnx", testmodels.TinyCNN)
	}, time.Hour)
	ev := h.next(10 * time.Second)
	if ev.Kind != Ready || ev.Name != "a.onnx" || ev.Size != int64(len(testmodels.TinyCNN)) {
		t.Fatalf("got %+v", ev)
	}
	h.none(2 * time.Second) // not delivered twice
}

// TestSlowWriterNeverReadyEarly trickles a model in chunks with pauses
// shorter than settle, as an scp over a slow link does: nothing may be
// reported before the last byte is written.
func TestSlowWriterNeverReadyEarly(t *testing.T) {
	// The writer pauses a tenth of settle between chunks: a loaded
	// machine may hold this goroutine for a second or more, and a pause
	// that long is a stall (judged on the content so far, as it should be).
	settle := 2 * time.Second
	h := start(t, settle, nil)
	data := testmodels.SmallCNN
	f, err := os.OpenFile(filepath.Join(h.dir, "slow.onnx"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	chunks := 12
	step := len(data) / chunks
	for i := 0; i < chunks; i++ {
		end := (i + 1) * step
		if i == chunks-1 {
			end = len(data)
		}
		f.Write(data[i*step : end])
		select {
		case ev := <-h.out:
			t.Fatalf("event before the upload finished (chunk %d/%d): %s %v", i+1, chunks, ev.Kind, ev.Err)
		case <-time.After(settle / 10):
		}
	}
	f.Close()
	ev := h.next(10 * time.Second)
	if ev.Kind != Ready || ev.Size != int64(len(data)) {
		t.Fatalf("got %s size %d err %v", ev.Kind, ev.Size, ev.Err)
	}
}

// TestStalledUploadIsRejectedNotBuiltThenResumes: an upload that stalls
// longer than settle is judged on its content (truncated: rejected, not
// ready); when the upload resumes and completes it becomes ready.
func TestStalledUploadIsRejectedNotBuiltThenResumes(t *testing.T) {
	settle := 200 * time.Millisecond
	h := start(t, settle, nil)
	data := testmodels.SmallCNN
	p := filepath.Join(h.dir, "stall.onnx")
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	f.Write(data[:len(data)/2])
	ev := h.next(10 * time.Second)
	if ev.Kind != Rejected || !errors.Is(ev.Err, onnx.ErrTruncated) {
		t.Fatalf("half file: got %s err %v, want rejected as truncated", ev.Kind, ev.Err)
	}
	h.none(3 * settle) // reported once, not on every tick
	f.Write(data[len(data)/2:])
	f.Close()
	ev = h.next(10 * time.Second)
	if ev.Kind != Ready || ev.Size != int64(len(data)) {
		t.Fatalf("completed file: got %s size %d err %v", ev.Kind, ev.Size, ev.Err)
	}
}

// TestRenameIntoInboxIsReadyAtOnce: the settle period is a minute, yet a
// .filepart renamed to its final name is ready well before it.
func TestRenameIntoInboxIsReadyAtOnce(t *testing.T) {
	h := start(t, time.Minute, nil)
	part := testmodels.Write(t, h.dir, "m.onnx.filepart", testmodels.SmallCNN)
	h.none(300 * time.Millisecond) // .filepart is ignored
	os.Rename(part, filepath.Join(h.dir, "m.onnx"))
	ev := h.next(20 * time.Second)
	if ev.Kind != Ready || ev.Name != "m.onnx" || !ev.MovedIn {
		t.Fatalf("got %+v", ev)
	}
	// And from outside the inbox (mv from another directory).
	outside := testmodels.Write(t, t.TempDir(), "n.onnx", testmodels.TinyCNN)
	os.Rename(outside, filepath.Join(h.dir, "n.onnx"))
	ev = h.next(20 * time.Second)
	if ev.Kind != Ready || ev.Name != "n.onnx" {
		t.Fatalf("got %+v", ev)
	}
}

func TestManyFilesAtOnceEachExactlyOnce(t *testing.T) {
	h := start(t, 150*time.Millisecond, nil)
	const n = 60
	for i := 0; i < n; i++ {
		testmodels.Write(t, h.dir, fmt.Sprintf("m%02d.onnx", i), testmodels.TinyCNN)
	}
	got := map[string]int{}
	for len(got) < n {
		ev := h.next(20 * time.Second)
		if ev.Kind != Ready {
			t.Fatalf("%s: %v", ev.Name, ev.Err)
		}
		got[ev.Name]++
		// Take it, as the daemon's claim does: a ready file left in the
		// inbox is handed out again by a periodic rescan (on purpose, see
		// TestRedeliverUnclaimed), which made this test fail whenever the
		// 60 deliveries took longer than a rescan period.
		os.Remove(filepath.Join(h.dir, ev.Name))
	}
	h.none(time.Second)
	for name, c := range got {
		if c != 1 {
			t.Errorf("%s delivered %d times", name, c)
		}
	}
}

func TestHostileAndBrokenEntries(t *testing.T) {
	h := start(t, 150*time.Millisecond, nil)
	d := h.dir
	os.WriteFile(filepath.Join(d, "garbage.onnx"), []byte("this is not a model, just text\n"), 0o644)
	os.WriteFile(filepath.Join(d, "truncated.onnx"), testmodels.TinyCNN[:len(testmodels.TinyCNN)-7], 0o644)
	os.WriteFile(filepath.Join(d, "empty.onnx"), nil, 0o644)
	os.Symlink("/etc/shadow", filepath.Join(d, "shadow.onnx"))
	syscall.Mkfifo(filepath.Join(d, "fifo.onnx"), 0o644)
	os.Mkdir(filepath.Join(d, "dir.onnx"), 0o755)
	l, err := net.Listen("unix", filepath.Join(d, "sock.onnx"))
	if err == nil {
		defer l.Close()
	}
	// Ignored names produce nothing at all.
	testmodels.Write(t, d, ".hidden.onnx", testmodels.TinyCNN)
	testmodels.Write(t, d, "x.onnx.part", testmodels.TinyCNN)
	testmodels.Write(t, d, "y.onnx.tmp", testmodels.TinyCNN)
	testmodels.Write(t, d, "notes.txt", []byte("hi"))
	want := map[string]string{
		"garbage.onnx":   "",
		"truncated.onnx": "",
		"empty.onnx":     "empty file",
		"shadow.onnx":    "symbolic link",
		"fifo.onnx":      "FIFO",
		"dir.onnx":       "directory",
		"sock.onnx":      "socket",
	}
	if err != nil {
		delete(want, "sock.onnx")
	}
	got := map[string]Event{}
	for len(got) < len(want) {
		ev := h.next(10 * time.Second)
		if ev.Kind != Rejected {
			t.Fatalf("%s was %s", ev.Name, ev.Kind)
		}
		if _, dup := got[ev.Name]; dup {
			t.Fatalf("%s reported twice", ev.Name)
		}
		got[ev.Name] = ev
	}
	h.none(600 * time.Millisecond)
	for name, sub := range want {
		ev := got[name]
		if ev.Err == nil || !strings.Contains(ev.Err.Error(), name) && !strings.Contains(ev.Err.Error(), strings.TrimSuffix(name, ".onnx")) {
			t.Errorf("%s: error %v does not name the file", name, ev.Err)
		}
		if sub != "" && !strings.Contains(ev.Err.Error(), sub) {
			t.Errorf("%s: error %q lacks %q", name, ev.Err, sub)
		}
	}
	// Nothing was moved, deleted or followed.
	if target, _ := os.Readlink(filepath.Join(d, "shadow.onnx")); target != "/etc/shadow" {
		t.Error("symlink was touched")
	}
}

func TestDeletedAndRecreatedInboxIsWatchedAgain(t *testing.T) {
	h := start(t, 150*time.Millisecond, nil)
	if err := os.RemoveAll(h.dir); err != nil {
		t.Fatal(err)
	}
	// The watcher notices the deletion and recreates its inbox: wait for
	// that (not a guessed delay), then ask for the rescan that watches it
	// again (the periodic one, 1s here, would do the same).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(h.dir); err == nil && fi.IsDir() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not recreate its deleted inbox")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not ordering
	}
	h.w.Rescan()
	testmodels.Write(t, h.dir, "again.onnx", testmodels.TinyCNN)
	ev := h.next(15 * time.Second)
	if ev.Kind != Ready || ev.Name != "again.onnx" {
		t.Fatalf("got %+v", ev)
	}
}

func TestIgnoredNames(t *testing.T) {
	cases := map[string]bool{
		"a.onnx": true, ".a.onnx": false, "a.onnx.filepart": false, "a.onnx.part": false,
		"a.onnx.tmp": false, "a.toml": false, ".onnx": false, "with space.onnx": true, "-lead.onnx": true,
	}
	for name, want := range cases {
		if IsCandidate(name) != want {
			t.Errorf("IsCandidate(%q) = %v", name, !want)
		}
	}
}

// A rejected file whose verdict changes without the file changing (its
// external data arrived) is picked up by the periodic rescan; a verdict
// that stays the same is not reported again.
func TestRecheckOnRescan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	os.MkdirAll(dir, 0o755)
	flag := filepath.Join(t.TempDir(), "data-arrived")
	check := func(f *os.File, path string) error {
		if _, err := os.Stat(flag); err != nil {
			return errors.New("external data missing")
		}
		return nil
	}
	os.WriteFile(filepath.Join(dir, "m.onnx"), testmodels.TinyCNN, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 64)
	w := New(Options{Dir: dir, Settle: 100 * time.Millisecond, Rescan: 300 * time.Millisecond, Check: check})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out, nil) }()
	defer func() { cancel(); <-done }()
	ev := <-out
	if ev.Kind != Rejected {
		t.Fatalf("first event %v, want rejected", ev.Kind)
	}
	select {
	case ev := <-out:
		t.Fatalf("same verdict reported again: %v %v", ev.Kind, ev.Err)
	case <-time.After(time.Second): // three rescans
	}
	os.WriteFile(flag, nil, 0o644)
	select {
	case ev := <-out:
		if ev.Kind != Ready {
			t.Fatalf("after the data arrived: %v %v, want ready", ev.Kind, ev.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not rechecked by the periodic rescan")
	}
}

// A ready file the consumer did not take away (its claim failed) is handed
// out again by a later periodic rescan.
func TestRedeliverUnclaimed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "m.onnx"), testmodels.TinyCNN, 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 64)
	w := New(Options{Dir: dir, Settle: 100 * time.Millisecond, Rescan: 300 * time.Millisecond, Check: onnxCheck})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out, nil) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 2; i++ {
		select {
		case ev := <-out:
			if ev.Kind != Ready {
				t.Fatalf("event %d: %v %v", i, ev.Kind, ev.Err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d: the unclaimed model was not handed out again", i)
		}
	}
}

// An inbox directory replaced by a symbolic link is not read: a model in
// the link's target stays where it is.
func TestInboxReplacedByLink(t *testing.T) {
	h := start(t, 100*time.Millisecond, nil)
	elsewhere := t.TempDir()
	os.WriteFile(filepath.Join(elsewhere, "x.onnx"), testmodels.TinyCNN, 0o644)
	// Swap the directory and a link in one step, as an attacker would: a
	// remove-then-link leaves a window in which the watcher (rightly)
	// recreates its missing inbox and the link cannot be made.
	link := h.dir + ".link"
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, link, unix.AT_FDCWD, h.dir, unix.RENAME_EXCHANGE); err != nil {
		t.Fatalf("exchange %s and %s: %v", link, h.dir, err)
	}
	os.RemoveAll(link) // the old inbox directory, now under the link's name
	if l, err := os.Readlink(h.dir); err != nil || l != elsewhere {
		t.Fatalf("the inbox is not the link: %q %v", l, err)
	}
	h.w.Rescan()
	h.none(2 * time.Second)
}

// An inbox that is a symbolic link from the start (set up by the admin) is
// used.
func TestInboxLinkAtStart(t *testing.T) {
	real := t.TempDir()
	os.WriteFile(filepath.Join(real, "x.onnx"), testmodels.TinyCNN, 0o644)
	h := start(t, 100*time.Millisecond, func(dir string) {
		os.Remove(dir)
		os.Symlink(real, dir)
	})
	if ev := h.next(5 * time.Second); ev.Kind != Ready {
		t.Fatalf("%v %v", ev.Kind, ev.Err)
	}
}

// The content check's findings travel with the event (Inspect), so the
// consumer does not read the model a second time (issue 13, F-4).
func TestInspectionReachesTheEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inbox")
	os.MkdirAll(dir, 0o755)
	testmodels.Write(t, dir, "m.onnx", testmodels.TinyCNN)
	calls := 0
	w := New(Options{Dir: dir, Settle: 100 * time.Millisecond, Rescan: time.Hour,
		Inspect: func(f *os.File, path string) (*onnx.Summary, error) {
			calls++
			return &onnx.Summary{ExternalData: []onnx.ExternalRef{{Location: "w.bin"}}}, nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 4)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out, nil) }()
	defer func() { cancel(); <-done }()
	select {
	case ev := <-out:
		if ev.Kind != Ready || ev.Model == nil || len(ev.Model.ExternalData) != 1 || ev.Model.ExternalData[0].Location != "w.bin" || calls != 1 {
			t.Fatalf("event %+v after %d checks", ev, calls)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
}

// Closing the watch of an inbox that was renamed and deleted must not
// hang: fsnotify's reader then waits, holding the lock Close needs, to
// hand over the error of removing a watch the kernel already dropped.
// (A plain fw.Close() here deadlocks every time.)
func TestCloseWatchOfAVanishedInbox(t *testing.T) {
	for i := 0; i < 20; i++ {
		in := filepath.Join(t.TempDir(), "inbox")
		if err := os.Mkdir(in, 0o755); err != nil {
			t.Fatal(err)
		}
		fw, err := fsnotify.NewBufferedWatcher(1024)
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Add(in); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(in, in+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(in + ".old"); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { closeFsnotify(fw); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: closing the watch hung", i)
		}
	}
}
