package fault

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Binaries built once for the whole suite.
var bins struct{ dir, trtd, worker string }

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// flag parsing happens in m.Run; read -short ourselves. The tests
	// still run, each reporting itself skipped (suite), so the suite never
	// reads "ok" when it did not run.
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" {
			skipSuite = "fault suite: skipped with -short (it drives the daemon as a real process)"
			fmt.Println(skipSuite)
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "trtd-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bins.dir, bins.trtd, bins.worker = dir, filepath.Join(dir, "trtd"), filepath.Join(dir, "trtd-fake-worker")
	// TRTD_FAULT_SRC builds the binaries from another checkout of the
	// module (e.g. a clean export while the working tree is being edited).
	root := moduleRoot()
	if src := os.Getenv("TRTD_FAULT_SRC"); src != "" {
		root = src
	}
	for _, b := range [][2]string{{bins.trtd, "./cmd/trtd"}, {bins.worker, "./cmd/trtd-fake-worker"}} {
		// The fault-injection hook (TRTD_TEST_CRASH_AT) exists only with this tag.
		cmd := exec.Command("go", "build", "-tags", "trtdfault", "-o", b[0], b[1])
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			return 1
		}
	}
	return m.Run()
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func soak() bool { return os.Getenv("TRTD_SOAK") == "1" }

// skipSuite, when set, is why no test of the suite runs.
var skipSuite string

// suite is every test's first call: it skips the test when the suite does
// not run, so `go test -v` and -json say SKIP for each, not a bare ok.
func suite(t *testing.T) {
	t.Helper()
	if skipSuite != "" {
		t.Skip(skipSuite)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root)")
	}
}

// env is one daemon with its own directories and config.
type env struct {
	t                                    *testing.T
	root                                 string
	inbox, outbox, state, failed, status string
	cfgPath, logPath                     string
	worker                               string // this env's copy of the fake worker
	cfgExtra                             string
	settle                               time.Duration
	cmd                                  *exec.Cmd
	exited                               chan struct{}
	waitErr                              error
	wrap                                 []string // command prefix (prlimit ...)
}

type envOpt func(*env)

func withConfig(extra string) envOpt    { return func(e *env) { e.cfgExtra += extra + "\n" } }
func withSettle(d time.Duration) envOpt { return func(e *env) { e.settle = d } }
func withDirs(in, out, st, fail string) envOpt {
	return func(e *env) {
		if in != "" {
			e.inbox = in
		}
		if out != "" {
			e.outbox = out
		}
		if st != "" {
			e.state = st
		}
		if fail != "" {
			e.failed = fail
		}
	}
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Dir(root), 0o755) // the worker may run as another user
	e := &env{t: t, root: root, inbox: filepath.Join(root, "inbox"), outbox: filepath.Join(root, "outbox"),
		state: filepath.Join(root, "state"), failed: filepath.Join(root, "failed"),
		cfgPath: filepath.Join(root, "config.toml"), logPath: filepath.Join(root, "daemon.log"), settle: 200 * time.Millisecond}
	for _, o := range opts {
		o(e)
	}
	e.status = filepath.Join(e.state, "status.json")
	// A private copy of the worker, so its processes are this env's alone.
	e.worker = filepath.Join(root, "bin", "trtd-fake-worker")
	os.MkdirAll(filepath.Dir(e.worker), 0o755)
	if b, err := os.ReadFile(bins.worker); err != nil || os.WriteFile(e.worker, b, 0o755) != nil {
		t.Fatalf("copy worker: %v", err)
	}
	cfg := fmt.Sprintf(`log_level = "debug"
log_format = "json"
[paths]
inbox = %q
outbox = %q
state = %q
failed = %q
worker = %q
[inbox]
settle = %q
rescan = "1s"
[worker]
user = ""
timeout = "60s"
retry_interval = "1s"
private_network = false
[swap]
enabled = false
`, e.inbox, e.outbox, e.state, e.failed, e.worker, e.settle.String())
	if err := os.WriteFile(e.cfgPath, []byte(cfg+e.cfgExtra), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.kill()
		if t.Failed() {
			if b, err := os.ReadFile(e.logPath); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("daemon log (tail):\n%s", strings.Join(lines, "\n"))
			}
		}
	})
	return e
}

// start runs `trtd run` with extra environment and waits until it is ready.
func (e *env) start(extraEnv ...string) {
	e.t.Helper()
	e.startNoWait(extraEnv...)
	e.waitReady()
}

func (e *env) startNoWait(extraEnv ...string) {
	e.t.Helper()
	if e.cmd != nil && e.running() {
		e.t.Fatal("daemon already running")
	}
	os.Remove(e.status)
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	args := append(append([]string{}, e.wrap...), bins.trtd, "run", "--config", e.cfgPath)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(cleanEnv(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
	e.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		e.waitErr = c.Wait()
		logf.Close()
		close(done)
	}(cmd, e.exited)
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TRTD_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "WATCHDOG_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (e *env) pid() int { return e.cmd.Process.Pid }

func (e *env) running() bool {
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

// waitReady waits for the status file of this process in a ready state.
func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !e.running() {
			e.t.Fatalf("daemon exited before it was ready: %v", e.waitErr)
		}
		var st struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		}
		if b, err := os.ReadFile(e.status); err == nil && json.Unmarshal(b, &st) == nil && st.PID == e.pid() && st.State != "starting" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("daemon not ready after 30s")
}

// stop sends SIGTERM and waits.
func (e *env) stop() {
	e.t.Helper()
	if e.cmd == nil || !e.running() {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(40 * time.Second):
		e.kill()
		e.t.Fatal("daemon did not stop within 40s of SIGTERM")
	}
}

func (e *env) kill() {
	if e.cmd == nil || !e.running() {
		return
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	e.cmd.Process.Kill()
	<-e.exited
}

// waitExit waits for the daemon to exit and reports whether SIGKILL ended it.
func (e *env) waitExit(d time.Duration) (killed bool) {
	e.t.Helper()
	select {
	case <-e.exited:
	case <-time.After(d):
		e.t.Fatalf("daemon still running after %s", d)
	}
	var ee *exec.ExitError
	if errors.As(e.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	return false
}

func (e *env) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// drop writes a model into the inbox the way a rename-based client does:
// a dot-temp name, then a rename (ready at once).
func (e *env) drop(name string, data []byte) string {
	e.t.Helper()
	tmp := filepath.Join(e.inbox, ".up-"+strconv.Itoa(len(name))+"-"+hash(data)[:8])
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.inbox, name)
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type jobRec struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	State      string `json:"state"`
	Step       string `json:"step"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason"`
	Stage      string `json:"stage"`
	ModelSHA   string `json:"model_sha256"`
	Recoveries int    `json:"recoveries"`
}

func (e *env) jobs() []jobRec {
	ents, _ := os.ReadDir(filepath.Join(e.state, "jobs"))
	var out []jobRec
	for _, en := range ents {
		b, err := os.ReadFile(filepath.Join(e.state, "jobs", en.Name(), "job.json"))
		if err != nil {
			continue
		}
		var j jobRec
		if json.Unmarshal(b, &j) == nil {
			out = append(out, j)
		}
	}
	return out
}

func terminal(s string) bool { return s == "done" || s == "failed" }

// waitJobs waits until n jobs exist and all are terminal.
func (e *env) waitJobs(n int, d time.Duration) []jobRec {
	e.t.Helper()
	deadline := time.Now().Add(d)
	var js []jobRec
	for time.Now().Before(deadline) {
		js = e.jobs()
		done := len(js) >= n
		for _, j := range js {
			if !terminal(j.State) {
				done = false
			}
		}
		if done {
			return js
		}
		if e.cmd != nil && !e.running() {
			e.t.Fatalf("daemon exited while waiting for jobs: %v", e.waitErr)
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("after %s: %d jobs, want %d terminal: %+v", d, len(js), n, js)
	return nil
}

// waitOutboxBlocked waits until n jobs exist and each is either terminal
// or built and waiting for the outbox to take its engine.
func (e *env) waitOutboxBlocked(n int, d time.Duration) []jobRec {
	e.t.Helper()
	var js []jobRec
	if !eventually(d, func() bool {
		js = e.jobs()
		ok := len(js) >= n
		for _, j := range js {
			ok = ok && (terminal(j.State) || j.Step == "outbox_blocked")
		}
		return ok
	}) {
		e.t.Fatalf("after %s: %+v, want %d jobs terminal or waiting for the outbox", d, js, n)
	}
	return js
}

type reportRec struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Model   struct {
		Name    string `json:"name"`
		SHA256  string `json:"sha256"`
		Sidecar string `json:"sidecar"`
	} `json:"model"`
	Engine *struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
		Stage  string `json:"stage"`
	} `json:"engine"`
	KeptModel string `json:"kept_model"`
	Attempts  []struct {
		Stage   string `json:"stage"`
		Outcome string `json:"outcome"`
	} `json:"attempts"`
}

// reports reads every report.json in the outbox, by model name.
func (e *env) reports() map[string][]reportRec {
	out := map[string][]reportRec{}
	ents, _ := os.ReadDir(e.outbox)
	for _, en := range ents {
		if !strings.HasSuffix(en.Name(), ".report.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.outbox, en.Name()))
		if err != nil {
			continue
		}
		var r reportRec
		if json.Unmarshal(b, &r) == nil {
			out[r.Model.Name] = append(out[r.Model.Name], r)
		}
	}
	return out
}

// engines returns the outbox engines with the model sha256 the fake worker
// wrote into each.
func (e *env) engines() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir(e.outbox)
	for _, en := range ents {
		if !strings.HasSuffix(en.Name(), ".engine") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(e.outbox, en.Name()))
		out[en.Name()] = engineModelSHA(b)
	}
	return out
}

func engineModelSHA(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "model-sha256: "); ok {
			return v
		}
	}
	return ""
}

// temps lists trtd temporary files anywhere under the daemon's trees
// (outbox, state, failed), skipping the worker's work directories.
func (e *env) temps() []string {
	var out []string
	for _, dir := range []string{e.outbox, e.state, e.failed} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".trtd-tmp-") {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// workers lists running processes of this env's fake worker.
func (e *env) workers() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, en := range ents {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", en.Name(), "exe"))
		if err == nil && strings.TrimSuffix(exe, " (deleted)") == e.worker {
			out = append(out, pid)
		}
	}
	return out
}

// waitWorker waits for a running fake worker and returns its pid.
func (e *env) waitWorker(d time.Duration) int {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if w := e.workers(); len(w) > 0 {
			return w[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no worker started")
	return 0
}

func (e *env) waitNoWorkers(d time.Duration) {
	t := e.t
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if len(e.workers()) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("worker processes still alive after %s: %v", d, e.workers())
}

// rssKiB reads VmRSS of pid.
func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func listDir(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// eventually polls cond for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
