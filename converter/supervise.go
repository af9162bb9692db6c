package converter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/report"
)

// ErrWorkerMissing means the worker binary is not where the config says.
var ErrWorkerMissing = errors.New("worker binary not found")

// Worker describes how to start trtd-worker.
type Worker struct {
	Path string
	// UID/GID to run as when the daemon is root (nil: the daemon's own).
	Credential *syscall.Credential
	// Env is the worker's environment; nil means the daemon's, minus
	// systemd's notify and watchdog variables (always stripped).
	Env         []string
	Timeout     time.Duration
	StderrLimit int
	// PrivateNet puts the worker in a new network namespace (root only).
	PrivateNet bool
	// OOMScoreAdj is written for the worker so the kernel picks it first.
	OOMScoreAdj int
	Log         *slog.Logger
	// Reason says why the daemon runs this worker binary; it is stamped
	// with Path on every result's Builder.
	Reason string
}

// Sandbox is what the daemon wraps around a worker process: the memory
// cgroup and the memory guard. All methods may be no-ops.
type Sandbox interface {
	// Prepare adjusts the command before it starts (cgroup fd, ...).
	Prepare(cmd *exec.Cmd) error
	// Started is called with the worker's pid right after it started.
	Started(pid int)
	// Finished is called after the worker exited and was reaped.
	Finished() Observation
}

// Observation is what the sandbox saw of one worker run.
type Observation struct {
	Timeline    *report.Timeline
	GuardKilled bool
	CgroupOOM   bool
}

// NopSandbox runs the worker bare.
type NopSandbox struct{}

// Prepare implements Sandbox.
func (NopSandbox) Prepare(*exec.Cmd) error { return nil }

// Started implements Sandbox.
func (NopSandbox) Started(int) {}

// Finished implements Sandbox.
func (NopSandbox) Finished() Observation { return Observation{} }

// Run is the outcome of one worker process.
type Run struct {
	Class    protocol.Class
	Reason   string
	ExitCode int
	Signal   string
	Result   *protocol.Result
	LogTail  []string
	Stderr   []byte
	MemUsage []protocol.MemUsage
	Start    time.Time
	Duration time.Duration
	Obs      Observation
}

// Env returns the daemon's environment without the variables that belong
// to the daemon's own systemd conversation.
func Env() []string {
	var out []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "NOTIFY_SOCKET=") || strings.HasPrefix(e, "WATCHDOG_USEC=") ||
			strings.HasPrefix(e, "WATCHDOG_PID=") || strings.HasPrefix(e, "LISTEN_") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// EventWorkerLine is the supervisor's own event (never on the wire): one
// line the worker wrote to stderr, which is where both backends write the
// builder's log (trtexec's output, TensorRT's logger). The daemon streams
// these to the journal.
const EventWorkerLine = "worker_line"

// lineWriter calls emit with each complete line written to it (without
// the newline), cutting lines longer than maxLine into pieces.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

const maxLine = 4 << 10

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= maxLine {
				l.emit(string(l.buf[:maxLine]))
				l.buf = append(l.buf[:0], l.buf[maxLine:]...)
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		for len(l.buf) > maxLine {
			l.emit(string(l.buf[:maxLine]))
			l.buf = append(l.buf[:0], l.buf[maxLine:]...)
		}
		l.emit(strings.TrimRight(string(l.buf), "\r"))
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// tail keeps the last limit bytes written to it.
type tail struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	total int64
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += int64(len(p))
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

func (t *tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// lastLines returns up to n last non-empty lines of b.
func lastLines(b []byte, n int) []string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimRight(lines[i], "\r"); strings.TrimSpace(l) != "" {
			if len(l) > 500 {
				l = l[:500] + "…"
			}
			out = append([]string{l}, out...)
		}
	}
	return out
}

// RunWorker starts the worker with req, waits for it (or its timeout, or
// ctx's end), and classifies what happened. progress receives the worker's
// progress and memory events as they come.
func (w *Worker) RunWorker(ctx context.Context, req protocol.Request, sb Sandbox, progress func(protocol.Event)) Run {
	if sb == nil {
		sb = NopSandbox{}
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	run := Run{Start: time.Now()}
	req.Version = protocol.Version
	body, err := json.Marshal(req)
	if err != nil {
		run.Class, run.Reason = protocol.ClassBadRequest, err.Error()
		return run
	}
	if _, err := os.Stat(w.Path); err != nil {
		run.Class = protocol.ClassBuilderUnavailable
		run.Reason = fmt.Sprintf("%v at %s (set [paths] worker)", ErrWorkerMissing, w.Path)
		return run
	}
	limit := w.StderrLimit
	if limit <= 0 {
		limit = 64 << 10
	}
	errTail := &tail{limit: limit}
	var stderr io.Writer = errTail
	if progress != nil {
		// Each line the worker writes to stderr also goes to the hook.
		stderr = io.MultiWriter(errTail, &lineWriter{emit: func(l string) {
			progress(protocol.Event{Event: EventWorkerLine, Time: time.Now(), Message: l})
		}})
	}
	p, class, reason := w.start(req, sb, stderr, log)
	if class != "" {
		run.Class, run.Reason = class, reason
		return run
	}
	// start closed our read end once the worker started, and the request
	// writer below closes the write end: these Closes only unblock a writer
	// still stuck on a worker that died, or answer "already closed", which
	// says nothing.
	defer func() { _ = p.stdinW.Close() }()
	defer func() { _ = p.stdinR.Close() }()
	pid := p.cmd.Process.Pid
	if w.OOMScoreAdj != 0 {
		if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(w.OOMScoreAdj)), 0); err != nil {
			log.Debug("cannot set worker oom_score_adj", "err", err)
		}
	}
	sb.Started(pid)
	go func() {
		// A worker that exits before reading its whole request is reported
		// by its exit status and result; the failed write only echoes it.
		if _, err := p.stdinW.Write(body); err != nil {
			log.Debug("request not fully delivered to the worker", "err", err)
		}
		if err := p.stdinW.Close(); err != nil {
			log.Debug("closing the worker's stdin", "err", err)
		}
	}()
	ev := readEvents(p.stdout, progress)
	waitErr := make(chan error, 1)
	go func() {
		<-ev.done
		waitErr <- p.cmd.Wait()
	}()
	werr, timedOut, canceled := w.wait(ctx, pid, waitErr)
	run.Duration = time.Since(run.Start)
	run.Obs = sb.Finished()
	o := classify.Outcome{ExitCode: -1, Log: errTail.Bytes(), GuardKilled: run.Obs.GuardKilled,
		CgroupOOM: run.Obs.CgroupOOM, TimedOut: timedOut, Canceled: canceled, Result: ev.result}
	if ps := p.cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.Signal = ws.Signal()
			run.Signal = ws.Signal().String()
		} else {
			o.ExitCode = ps.ExitCode()
		}
	} else if werr != nil {
		run.Reason = werr.Error()
	}
	run.ExitCode = o.ExitCode
	run.Class, run.Reason = classify.Classify(o)
	if ev.result != nil && w.Reason != "" {
		ev.result.Builder.Worker, ev.result.Builder.WorkerReason = w.Path, w.Reason
	}
	run.Result = ev.result
	run.Stderr = errTail.Bytes()
	run.LogTail = lastLines(run.Stderr, 20)
	run.MemUsage = ev.mem
	if ev.result != nil && len(ev.result.MemUsage) > 0 {
		run.MemUsage = ev.result.MemUsage
	}
	return run
}

// proc is a started worker and its pipes.
type proc struct {
	cmd            *exec.Cmd
	stdout         io.ReadCloser
	stdinR, stdinW *os.File
}

// start starts the worker in its sandbox, retrying without a private
// network namespace where the kernel or container has none. A non-empty
// class says why it could not start.
func (w *Worker) start(req protocol.Request, sb Sandbox, errTail io.Writer, log *slog.Logger) (*proc, protocol.Class, string) {
	// The request goes through a pipe written only after the sandbox has
	// the worker (on cgroup v1 the pid is moved after start; memory the
	// worker touches before that would be charged to the daemon).
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, protocol.ClassCrashed, err.Error()
	}
	p := &proc{stdinR: stdinR, stdinW: stdinW}
	fail := func(c protocol.Class, reason string) (*proc, protocol.Class, string) {
		// The worker did not start: the pipe never carried anything, and
		// the reason returned is what failed.
		_ = stdinW.Close()
		_ = stdinR.Close()
		return nil, c, reason
	}
	cmd := exec.Command(w.Path)
	cmd.Dir = req.WorkDir
	cmd.Stdin = stdinR
	cmd.Env = w.Env
	if cmd.Env == nil {
		cmd.Env = Env()
	}
	cmd.Stderr = errTail
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return fail(protocol.ClassCrashed, err.Error())
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: w.Credential}
	if w.PrivateNet && os.Geteuid() == 0 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	if err := sb.Prepare(cmd); err != nil {
		log.Warn("worker sandbox not applied", "err", err)
	}
	if err := startLocked(cmd); err != nil && cmd.SysProcAttr.Cloneflags != 0 {
		// Kernels or containers without network namespaces: run without.
		log.Warn("cannot give the worker a private network namespace; running it with the host network", "err", err)
		cmd = rebuild(cmd)
		p.stdout, _ = cmd.StdoutPipe()
		cmd.SysProcAttr.Cloneflags = 0
		if err := startLocked(cmd); err != nil {
			return fail(protocol.ClassCrashed, "cannot start worker: "+err.Error())
		}
	} else if err != nil {
		class := protocol.ClassCrashed
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EACCES) {
			class = protocol.ClassBuilderUnavailable
		}
		return fail(class, "cannot start worker: "+err.Error())
	}
	_ = stdinR.Close() // the child holds its own copy; ours was never read from
	p.cmd = cmd
	return p, "", ""
}

// events is what the worker said on stdout; its fields are set once done
// is closed.
type events struct {
	result *protocol.Result
	mem    []protocol.MemUsage
	done   chan struct{}
}

// readEvents reads the worker's events until stdout closes, passing
// progress and memory events on as they come.
func readEvents(stdout io.Reader, progress func(protocol.Event)) *events {
	e := &events{done: make(chan struct{})}
	go func() {
		defer close(e.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var ev protocol.Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			switch ev.Event {
			case protocol.EventResult:
				e.result = ev.Result
			case protocol.EventMemUsage:
				if ev.Mem != nil {
					e.mem = append(e.mem, *ev.Mem)
				}
			}
			if progress != nil && ev.Event != protocol.EventResult {
				progress(ev)
			}
		}
		// Drain what follows an unparsable line so the worker never blocks
		// on a full pipe; a read error here means the worker is gone, which
		// its exit status reports.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return e
}

// wait waits for the worker, killing its process group at the timeout
// (SIGKILL) or when ctx ends (SIGTERM, then SIGKILL after 5 s); whatever is
// left in the group is killed afterwards.
func (w *Worker) wait(ctx context.Context, pid int, waitErr <-chan error) (werr error, timedOut, canceled bool) {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Hour
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case werr = <-waitErr:
	case <-timer.C:
		timedOut = true
		killGroup(pid, syscall.SIGKILL)
		werr = <-waitErr
	case <-ctx.Done():
		canceled = true
		killGroup(pid, syscall.SIGTERM)
		select {
		case werr = <-waitErr:
		case <-time.After(5 * time.Second):
			killGroup(pid, syscall.SIGKILL)
			werr = <-waitErr
		}
	}
	killGroup(pid, syscall.SIGKILL)
	return werr, timedOut, canceled
}

// startLocked starts cmd from a goroutine locked to its OS thread, because
// Pdeathsig fires when the thread that forked the child exits (golang/go
// #27505), and the Go runtime may retire threads at any time.
func startLocked(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		// This thread stays locked (and alive) until the child exits.
		lockThread()
		err := cmd.Start()
		errc <- err
		close(started)
		if err != nil {
			return
		}
		waitChildGone(cmd)
	}()
	<-started
	return <-errc
}

// rebuild clones a command that failed to start so it can be tried again.
func rebuild(old *exec.Cmd) *exec.Cmd {
	c := exec.Command(old.Path, old.Args[1:]...)
	c.Dir, c.Env, c.Stdin, c.Stderr = old.Dir, old.Env, old.Stdin, old.Stderr
	sp := *old.SysProcAttr
	c.SysProcAttr = &sp
	return c
}

func killGroup(pid int, sig syscall.Signal) {
	if pid > 0 {
		// ESRCH (the group is gone) is what the kill is for; the caller
		// waits for the worker either way, so no other error changes what
		// happens next.
		_ = syscall.Kill(-pid, sig)
	}
}
