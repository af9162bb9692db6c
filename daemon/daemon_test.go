package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/testmodels"
)

var bin struct{ trtd, fake string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trtd-daemon-test-")
	if err != nil {
		panic(err)
	}
	bin.trtd = filepath.Join(dir, "trtd")
	bin.fake = filepath.Join(dir, "trtd-fake-worker")
	for out, pkg := range map[string]string{bin.trtd: "./cmd/trtd", bin.fake: "./cmd/trtd-fake-worker"} {
		c := exec.Command("go", "build", "-o", out, pkg)
		c.Dir = ".."
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type tree struct {
	root string
	cfg  *config.Config
	path string // config file
}

func newTree(t *testing.T, extra string) *tree {
	t.Helper()
	root := t.TempDir()
	src := fmt.Sprintf(`log_level = "debug"
log_format = "text"
[paths]
inbox = %q
outbox = %q
state = %q
failed = %q
worker = %q
[inbox]
settle = "300ms"
rescan = "2s"
[worker]
user = ""
retry_interval = "1s"
validate_runs = 2
[swap]
enabled = false
%s`, filepath.Join(root, "inbox"), filepath.Join(root, "outbox"), filepath.Join(root, "state"), filepath.Join(root, "failed"), bin.fake, extra)
	p := filepath.Join(root, "config.toml")
	os.WriteFile(p, []byte(src), 0o644)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{cfg.Paths.Inbox, cfg.Paths.Outbox} {
		os.MkdirAll(d, 0o755)
	}
	return &tree{root: root, cfg: cfg, path: p}
}

// drop places a model in the inbox the way a finished upload ends: a rename.
func (tr *tree) drop(t *testing.T, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(tr.cfg.Paths.Inbox, "."+name+".part")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(tr.cfg.Paths.Inbox, name)); err != nil {
		t.Fatal(err)
	}
}

func (tr *tree) report(name string) (*report.Report, error) {
	b, err := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, strings.TrimSuffix(name, ".onnx")+".report.json"))
	if err != nil {
		return nil, err
	}
	var r report.Report
	return &r, json.Unmarshal(b, &r)
}

// waitReport waits for name's report to have one of the outcomes.
func (tr *tree) waitReport(t *testing.T, name string, limit time.Duration, outcomes ...string) *report.Report {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last *report.Report
	for time.Now().Before(deadline) {
		if r, err := tr.report(name); err == nil {
			last = r
			for _, o := range outcomes {
				if r.Outcome == o {
					return r
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := "none"
	if last != nil {
		got = last.Outcome + ": " + last.Reason
	}
	t.Fatalf("%s: no report with outcome %v within %v (last: %s)", name, outcomes, limit, got)
	return nil
}

// noTemps asserts no temporary file is visible anywhere under dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".trtd-tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// runInProcess runs the daemon in this process; the returned function
// stops it (it is also stopped when the test ends).
func (tr *tree) runInProcess(t *testing.T, env ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, tr.cfg, Options{WorkerEnv: append(converter.Env(), env...)})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitIdle waits until the daemon has nothing queued or building.
func (tr *tree) waitIdle(t *testing.T, limit time.Duration) *status.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if st, err := status.Read(tr.cfg.StatusPath()); err == nil && st.Current == nil && len(st.Queue) == 0 && st.State != "starting" {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon not idle within %v", limit)
	return nil
}

func TestBuildThroughTheLadder(t *testing.T) {
	tr := newTree(t, "")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=fast=oom,lean=no_tactic,minimal=ok")
	tr.drop(t, "net.onnx", testmodels.SmallCNN)
	r := tr.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt)
	var path []string
	for _, a := range r.Attempts {
		path = append(path, a.Stage+":"+string(a.Outcome))
	}
	if strings.Join(path, " ") != "fast:out_of_memory lean:no_tactic_fits minimal:ok" {
		t.Fatalf("attempts %v", path)
	}
	if r.Engine == nil || r.Engine.Stage != "minimal" || r.Model.SHA256 == "" || r.Schema != report.SchemaVersion {
		t.Fatalf("report %+v", r)
	}
	eng, err := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "net.engine"))
	if err != nil || !strings.Contains(string(eng), r.Model.SHA256) {
		t.Fatalf("engine %q %v", eng, err)
	}
	for _, f := range []string{"net.engine.json", "net.report.md"} {
		if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Outbox, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Inbox, "net.onnx")); !os.IsNotExist(err) {
		t.Error("the claimed model is still in the inbox")
	}
	if _, err := os.Stat(r.KeptModel); err != nil {
		t.Errorf("model not kept: %v", err)
	}
	tr.waitIdle(t, 10*time.Second)
	stop()
	noTemps(t, tr.root)
}

func TestIdenticalUploadReusesEngine(t *testing.T) {
	tr := newTree(t, "")
	rec := filepath.Join(tr.root, "record.jsonl")
	tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_RECORD="+rec)
	tr.drop(t, "a.onnx", testmodels.TinyCNN)
	tr.waitReport(t, "a.onnx", 30*time.Second, report.OutcomeBuilt)
	tr.drop(t, "b.onnx", testmodels.TinyCNN)
	r := tr.waitReport(t, "b.onnx", 30*time.Second, report.OutcomeReused, report.OutcomeBuilt)
	if r.Outcome != report.OutcomeReused || r.Reuse == nil {
		t.Fatalf("second identical upload: outcome %s", r.Outcome)
	}
	a, _ := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "a.engine"))
	b, _ := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "b.engine"))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatal("reused engine differs")
	}
	builds := 0
	data, _ := os.ReadFile(rec)
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, `"op":"build"`) {
			builds++
		}
	}
	if builds != 1 {
		t.Fatalf("%d builds for two identical uploads, want 1", builds)
	}
}

func TestWaitsForBuilderThenBuilds(t *testing.T) {
	tr := newTree(t, "")
	flag := filepath.Join(tr.root, "no-tensorrt")
	os.WriteFile(flag, nil, 0o644)
	tr.runInProcess(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.drop(t, "w.onnx", testmodels.TinyCNN)
	r := tr.waitReport(t, "w.onnx", 30*time.Second, report.OutcomeBuilderUnavailable)
	if r.Waiting == nil || !strings.Contains(r.Waiting.Missing, "TensorRT not available") || len(r.Waiting.WouldDo) == 0 {
		t.Fatalf("waiting report %+v", r.Waiting)
	}
	if _, err := os.Stat(r.KeptModel); err != nil {
		t.Fatalf("model not kept while waiting: %v", err)
	}
	st := tr.waitIdle(t, 10*time.Second)
	if len(st.Waiting) != 1 || st.State != "waiting_for_builder" || !strings.HasPrefix(st.Line, "waiting: TensorRT not available") {
		t.Fatalf("status: state %s waiting %v line %q", st.State, st.Waiting, st.Line)
	}
	os.Remove(flag) // TensorRT "installed"
	tr.waitReport(t, "w.onnx", 30*time.Second, report.OutcomeBuilt)
}

func TestBadInputsAreReportedAndKept(t *testing.T) {
	tr := newTree(t, "")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	tr.drop(t, "garbage.onnx", []byte("GIF89a not a model"))
	r := tr.waitReport(t, "garbage.onnx", 30*time.Second, report.OutcomeRejected)
	if !strings.Contains(r.Reason, "garbage.onnx") {
		t.Errorf("reason does not name the file: %q", r.Reason)
	}
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Inbox, "garbage.onnx")); err != nil {
		t.Error("a rejected upload must stay where it is")
	}
	// A bad settings file fails the job with the key named; the model is kept.
	os.WriteFile(filepath.Join(tr.cfg.Paths.Inbox, "cfg.toml"), []byte("precison = \"fp32\"\n"), 0o644)
	tr.drop(t, "cfg.onnx", testmodels.TinyCNN)
	r = tr.waitReport(t, "cfg.onnx", 30*time.Second, report.OutcomeRejected)
	if !strings.Contains(r.Reason, `unknown key "precison"`) {
		t.Errorf("reason %q", r.Reason)
	}
	if _, err := os.Stat(r.KeptModel); err != nil {
		t.Errorf("model not kept: %v", err)
	}
	// The daemon keeps serving: a good model still builds.
	tr.drop(t, "good.onnx", testmodels.TinyCNN)
	tr.waitReport(t, "good.onnx", 30*time.Second, report.OutcomeBuilt)
	tr.waitIdle(t, 10*time.Second)
	stop()
	noTemps(t, tr.root)
}

func TestFailedModelMovedAsideWithReport(t *testing.T) {
	tr := newTree(t, "")
	tr.runInProcess(t, "TRTD_FAKE_WORKER=fast=unsupported")
	tr.drop(t, "det.onnx", testmodels.TinyCNN)
	r := tr.waitReport(t, "det.onnx", 30*time.Second, report.OutcomeFailed)
	if len(r.Attempts) != 1 || r.Attempts[0].Outcome != "unsupported_model" || !strings.Contains(r.Reason, "NonMaxSuppression") {
		t.Fatalf("attempts %+v reason %q", r.Attempts, r.Reason)
	}
	if !strings.HasPrefix(r.KeptModel, tr.cfg.Paths.Failed) {
		t.Fatalf("kept at %s, want under %s", r.KeptModel, tr.cfg.Paths.Failed)
	}
	if b, err := os.ReadFile(r.KeptModel); err != nil || len(b) != len(testmodels.TinyCNN) {
		t.Fatal("failed model lost")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.KeptModel), "det.report.json")); err != nil {
		t.Error("report not kept beside the failed model")
	}
	if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Outbox, "det.engine")); !os.IsNotExist(err) {
		t.Error("an engine appeared for a failed build")
	}
}

// notifyListener collects sd_notify datagrams.
type notifyListener struct {
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) (string, *notifyListener) {
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, string(b[:n]))
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return p, l
}

func (l *notifyListener) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func startDaemon(t *testing.T, tr *tree, env ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(bin.trtd, "run", "--config", tr.path)
	c.Env = append(os.Environ(), env...)
	logf, _ := os.OpenFile(filepath.Join(tr.root, "trtd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
		logf.Close()
	})
	return c
}

// TestKilledMidJobEachModelExactlyOnce runs the daemon as a real process
// under a real sd_notify socket, SIGKILLs it in the middle of a build, and
// starts it again: every model ends exactly once in the outbox, nothing is
// lost and no temporary file is left.
func TestKilledMidJobEachModelExactlyOnce(t *testing.T) {
	tr := newTree(t, "")
	sock, nl := listenNotify(t)
	env := []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=1000000", "TRTD_FAKE_WORKER=fast=oom,lean=slow=2500ms"}
	d := startDaemon(t, tr, env...)
	deadline := time.Now().Add(20 * time.Second)
	for nl.count("READY=1") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if nl.count("READY=1") != 1 {
		t.Fatal("no READY=1 from the daemon")
	}
	names := []string{"m1.onnx", "m2.onnx", "m3.onnx"}
	for i, n := range names {
		data := append([]byte(nil), testmodels.TinyCNN...)
		// Distinct content per model (a trailing metadata-free byte
		// change would break the model; use different real models).
		if i == 1 {
			data = testmodels.SmallCNN
		}
		if i == 2 {
			tr.drop(t, "m3.toml", []byte("precision = \"fp32\"\n"))
		}
		tr.drop(t, n, data)
	}
	// Kill the daemon while a build runs.
	for time.Now().Before(deadline) {
		if st, err := status.Read(tr.cfg.StatusPath()); err == nil && st.Current != nil && st.Current.Stage == "lean" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The watchdog (1s) must be pinged at least every half second while
	// the build runs.
	for nl.count("WATCHDOG=1") < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	d.Process.Kill()
	d.Wait()
	if nl.count("WATCHDOG=1") < 3 {
		t.Errorf("only %d watchdog pings in the first run", nl.count("WATCHDOG=1"))
	}
	if nl.count("STATUS=building") == 0 {
		t.Error("no STATUS=building line")
	}
	d2 := startDaemon(t, tr, env...)
	for _, n := range names {
		tr.waitReport(t, n, 60*time.Second, report.OutcomeBuilt, report.OutcomeReused)
	}
	tr.waitIdle(t, 20*time.Second)
	d2.Process.Signal(syscall.SIGTERM)
	d2.Wait()
	ents, _ := os.ReadDir(tr.cfg.Paths.Outbox)
	engines := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".engine") {
			engines++
		}
	}
	if engines != len(names) {
		t.Errorf("%d engines in the outbox for %d models", engines, len(names))
	}
	st, _ := jobs.Open(filepath.Join(tr.cfg.Paths.State, "jobs"))
	all, _ := st.List()
	done := 0
	for _, j := range all {
		if j.State == jobs.Done {
			done++
			if _, err := os.Stat(st.ModelPath(j)); err != nil {
				t.Errorf("%s: model lost", j.Name)
			}
		} else {
			t.Errorf("job %s (%s) ended in %s", j.ID, j.Name, j.State)
		}
	}
	if done != len(names) {
		t.Errorf("%d done jobs, want %d", done, len(names))
	}
	noTemps(t, tr.root)
}

func TestSegmentedBuildPublishesPartsAndManifest(t *testing.T) {
	tr := newTree(t, "")
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER=fast=oom,lean=oom,minimal=oom,segmented=ok")
	tr.drop(t, "seg.onnx", testmodels.SmallCNN)
	r := tr.waitReport(t, "seg.onnx", 60*time.Second, report.OutcomeBuilt, report.OutcomeFailed)
	if r.Outcome != report.OutcomeBuilt || r.Engine == nil || r.Engine.Stage != "segmented" {
		t.Fatalf("outcome %s (%s)", r.Outcome, r.Reason)
	}
	if len(r.Engine.Parts) != 2 || r.Engine.Manifest != "seg.manifest.json" {
		t.Fatalf("engine %+v", r.Engine)
	}
	b, err := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "seg.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Parts []struct {
			Engine string `json:"engine"`
			File   string `json:"file"`
		} `json:"parts"`
		HowToRun string `json:"how_to_run"`
	}
	if err := json.Unmarshal(b, &man); err != nil || len(man.Parts) != 2 || man.Parts[0].Engine != "seg.part1.engine" || man.HowToRun == "" {
		t.Fatalf("manifest %s (%v)", b, err)
	}
	for _, p := range r.Engine.Parts {
		if _, err := os.Stat(filepath.Join(tr.cfg.Paths.Outbox, p.File)); err != nil {
			t.Error(err)
		}
	}
	tr.waitIdle(t, 10*time.Second)
	stop()
	noTemps(t, tr.root)
}

// TestWaitingJobsRetriedAtStartWhenABuilderIsThere: a job parked for lack
// of TensorRT in one run is built by the next run if TensorRT is now there.
func TestWaitingJobsRetriedAtStartWhenABuilderIsThere(t *testing.T) {
	tr := newTree(t, "")
	tr.cfg.Worker.RetryInterval = config.Duration(time.Hour) // no periodic retry
	flag := filepath.Join(tr.root, "no-tensorrt")
	os.WriteFile(flag, nil, 0o644)
	stop := tr.runInProcess(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.drop(t, "later.onnx", testmodels.TinyCNN)
	tr.waitReport(t, "later.onnx", 30*time.Second, report.OutcomeBuilderUnavailable)
	tr.waitIdle(t, 10*time.Second)
	stop()
	os.Remove(flag) // TensorRT installed while trtd was down
	tr.runInProcess(t, "TRTD_FAKE_WORKER_UNAVAILABLE_IF="+flag)
	tr.waitReport(t, "later.onnx", 30*time.Second, report.OutcomeBuilt)
}
