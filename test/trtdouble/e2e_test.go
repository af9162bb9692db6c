package trtdouble

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The daemon under test, built once with the race detector.
var trtd string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" {
			fmt.Println("trtdouble: skipped with -short (it runs the daemon and the cgo worker)")
			return 0
		}
	}
	if os.Getenv("TRTDOUBLE_DIR") == "" {
		fmt.Println("trtdouble: skipped: run through `make test-trt TRT_HEADERS=dir`, which builds the TensorRT test double and the cgo worker")
		return 0
	}
	dir, err := os.MkdirTemp("", "trtd-trtdouble-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	trtd = filepath.Join(dir, "trtd")
	cmd := exec.Command("go", "build", "-race", "-o", trtd, "./cmd/trtd")
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -race ./cmd/trtd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func versions() []string { return strings.Fields(os.Getenv("TRTDOUBLE_VERSIONS")) }

// testdata returns a libonnx-testdata node sample (model.onnx and
// test_data_set_0). make test-trt installs the package (make deps); a
// missing one fails the case rather than passing it unrun.
func testdata(t *testing.T, name string) (model []byte, set string) {
	t.Helper()
	dir := filepath.Join("/usr/share/libonnx-testdata/data/node", name)
	b, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		t.Fatalf("libonnx-testdata not installed (make deps, or apt-get install libonnx-testdata): %v", err)
	}
	return b, filepath.Join(dir, "test_data_set_0")
}

// env is one daemon whose worker is the cgo worker of one TensorRT
// version, loading the test double's libraries.
type env struct {
	t                            *testing.T
	version, root                string
	inbox, outbox, state, failed string
	san, logPath                 string
	cmd                          *exec.Cmd
	exited                       chan struct{}
	extraEnv                     map[string]string
}

type opts struct {
	script  string // TRTD_DOUBLE
	stages  string // [[stage]] tables; "" = the three-rung test ladder
	extra   string // more config
	planner bool
	user    string            // worker.user ("" = the daemon's)
	env     map[string]string // more environment for the daemon and its worker
}

// precision of the test ladder: fp16, as the default ladder. On 11.x
// (strongly typed networks, no fp16 flag) the worker builds the model's own
// types and says so.
func (e *env) precision() string { return "fp16" }

func ladder(prec string) string {
	return fmt.Sprintf(`
[[stage]]
name = "fast"
kind = "build"
precision = %[1]q
workspace = "1G"
swap = "none"

[[stage]]
name = "lean"
kind = "build"
precision = %[1]q
workspace = "256M"
swap = "none"

[[stage]]
name = "minimal"
kind = "build"
precision = %[1]q
workspace = "16M"
tactic_sources = []
swap = "none"
`, prec)
}

func newEnv(t *testing.T, version string, o opts) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, version: version, root: root, inbox: filepath.Join(root, "inbox"), outbox: filepath.Join(root, "outbox"),
		state: filepath.Join(root, "state"), failed: filepath.Join(root, "failed"), san: filepath.Join(root, "sanitizer"),
		logPath: filepath.Join(root, "daemon.log")}
	// The worker may run as another user: it must reach its binary's
	// directory tree and write its sanitizer reports.
	os.Chmod(root, 0o755)
	os.Chmod(filepath.Dir(root), 0o755)
	for _, d := range []string{e.inbox, e.outbox, e.san} {
		os.MkdirAll(d, 0o755)
	}
	os.Chmod(e.san, 0o777)
	stages := o.stages
	if stages == "" {
		stages = ladder(e.precision())
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
settle = "100ms"
rescan = "1s"
[worker]
user = %q
backend = "api"
timeout = "60s"
retry_interval = "1s"
private_network = false
[swap]
enabled = false
[planner]
enabled = %v
[validate]
runs = 3
atol = 0.001
rtol = 0.01
%s
%s`, e.inbox, e.outbox, e.state, e.failed, filepath.Join(os.Getenv("TRTDOUBLE_DIR"), version, "trtd-worker"), o.user, o.planner, o.extra, stages)
	if err := os.WriteFile(filepath.Join(root, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.kill()
		if t.Failed() {
			b, _ := os.ReadFile(e.logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("daemon log (tail):\n%s", strings.Join(lines, "\n"))
		}
		e.noSanitizerReports()
	})
	e.extraEnv = o.env
	e.start(o.script)
	return e
}

func (e *env) start(script string) {
	e.t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(trtd, "run", "--config", filepath.Join(e.root, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRTD_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"LD_LIBRARY_PATH="+filepath.Join(os.Getenv("TRTDOUBLE_DIR"), e.version),
		"TRTD_DOUBLE="+script,
		// Every sanitizer report lands in e.san; the test fails on any.
		"ASAN_OPTIONS=detect_leaks=1:log_path="+filepath.Join(e.san, "asan"),
		"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path="+filepath.Join(e.san, "ubsan"),
		"GORACE=halt_on_error=1 log_path="+filepath.Join(e.san, "race"),
	)
	for k, v := range e.extraEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
	e.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(e.exited)
	}()
	e.waitReady()
}

func (e *env) running() bool {
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

type status struct {
	PID     int    `json:"pid"`
	State   string `json:"state"`
	Builder string `json:"builder"`
	Current *struct {
		Stage string `json:"stage"`
		Phase string `json:"phase"`
		Step  int    `json:"step"`
		Steps int    `json:"steps"`
	} `json:"current"`
}

func (e *env) status() (status, bool) {
	var st status
	b, err := os.ReadFile(filepath.Join(e.state, "status.json"))
	return st, err == nil && json.Unmarshal(b, &st) == nil && st.PID == e.cmd.Process.Pid
}

func (e *env) waitReady() {
	e.t.Helper()
	if !poll(60*time.Second, func() bool {
		st, ok := e.status()
		return !e.running() || ok && st.State != "starting"
	}) || !e.running() {
		e.t.Fatal("daemon not ready")
	}
}

func (e *env) kill() {
	if e.cmd == nil || !e.running() {
		return
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.exited
}

func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// noSanitizerReports fails the test for every ASan, UBSan or race report
// that a process of this env wrote.
func (e *env) noSanitizerReports() {
	ents, _ := os.ReadDir(e.san)
	for _, en := range ents {
		b, _ := os.ReadFile(filepath.Join(e.san, en.Name()))
		e.t.Errorf("sanitizer report %s:\n%s", en.Name(), b)
	}
}

// drop puts a model (and its name.test/ or name.calib/ samples, copied
// from a libonnx-testdata set) into the inbox: samples first, the model
// last, each by rename.
func (e *env) drop(name string, model []byte, dirs map[string]string) {
	e.t.Helper()
	for suffix, src := range dirs {
		tmp := filepath.Join(e.inbox, "."+name+suffix+".tmp")
		os.MkdirAll(tmp, 0o755)
		ents, _ := os.ReadDir(src)
		for _, en := range ents {
			b, err := os.ReadFile(filepath.Join(src, en.Name()))
			if err != nil {
				e.t.Fatal(err)
			}
			if suffix == ".calib" && !strings.HasPrefix(en.Name(), "input_") {
				continue
			}
			os.WriteFile(filepath.Join(tmp, en.Name()), b, 0o644)
		}
		if err := os.Rename(tmp, filepath.Join(e.inbox, name+suffix)); err != nil {
			e.t.Fatal(err)
		}
	}
	tmp := filepath.Join(e.inbox, ".up-"+name)
	if err := os.WriteFile(tmp, model, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.inbox, name+".onnx")); err != nil {
		e.t.Fatal(err)
	}
}

type attempt struct {
	Stage    string   `json:"stage"`
	Outcome  string   `json:"outcome"`
	Reason   string   `json:"reason"`
	Calls    []string `json:"calls"`
	LogTail  []string `json:"log_tail"`
	Int8     string   `json:"int8"`
	Settings struct {
		Precision    string `json:"precision"`
		WorkspaceMiB int64  `json:"workspace_mib"`
	} `json:"settings"`
	MemUsage   []json.RawMessage `json:"mem_usage"`
	Validation *struct {
		AccuracyOK *bool `json:"accuracy_ok"`
		Accuracy   []struct {
			Output    string  `json:"output"`
			MaxAbsErr float64 `json:"max_abs_err"`
			OK        bool    `json:"ok"`
		} `json:"accuracy"`
		DeviceMemUsed int64 `json:"device_mem_used"`
	} `json:"validation"`
	DurationMs int64 `json:"duration_ms"`
}

type report struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	Engine  *struct {
		File  string `json:"file"`
		Stage string `json:"stage"`
	} `json:"engine"`
	Builder *struct {
		Backend  string `json:"backend"`
		TensorRT string `json:"tensorrt"`
	} `json:"builder"`
	Attempts []attempt `json:"attempts"`
	Waiting  *struct {
		Missing string `json:"missing"`
	} `json:"waiting"`
}

// report waits for name's report in the outbox.
func (e *env) report(name string, d time.Duration) report {
	e.t.Helper()
	var r report
	p := filepath.Join(e.outbox, name+".report.json")
	if !poll(d, func() bool {
		b, err := os.ReadFile(p)
		return err == nil && json.Unmarshal(b, &r) == nil
	}) {
		e.t.Fatalf("no report %s after %s (outbox: %v)", p, d, ls(e.outbox))
	}
	return r
}

func ls(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, en := range ents {
		out = append(out, en.Name())
	}
	return out
}

func (r report) stages() string {
	var s []string
	for _, a := range r.Attempts {
		s = append(s, a.Stage+"="+a.Outcome)
	}
	return strings.Join(s, " ")
}

func (r report) calls() string {
	var s []string
	for _, a := range r.Attempts {
		s = append(s, a.Calls...)
	}
	return strings.Join(s, "\n")
}

func (e *env) engineExists(r report) bool {
	if r.Engine == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(e.outbox, filepath.Base(r.Engine.File)))
	return err == nil
}
