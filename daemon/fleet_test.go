package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/report"
	"github.com/trtd/trtd/daemon/fleet"
	"github.com/trtd/trtd/daemon/fleet/registrytest"
	"github.com/trtd/trtd/daemon/status"
	"github.com/trtd/trtd/internal/testmodels"
)

// fleetTree is a device whose [fleet] section points at registry addr
// (the server's CA and account).
func fleetTree(t *testing.T, s *registrytest.Server, addr, extra string) *tree {
	t.Helper()
	dir := t.TempDir()
	creds := filepath.Join(dir, "auth.json")
	if err := registrytest.WriteCredentials(creds, addr, registrytest.User, registrytest.Password); err != nil {
		t.Fatal(err)
	}
	return newTree(t, fmt.Sprintf("[fleet]\nregistry = %q\ncredentials = %q\nca = %q\ntextfile = %q\n%s",
		addr+"/trtd/engines", creds, s.CA, filepath.Join(dir, "trtd.prom"), extra))
}

func builds(t *testing.T, record string) int {
	t.Helper()
	data, _ := os.ReadFile(record)
	return strings.Count(string(data), `"op":"build"`)
}

// waitPushed waits until the registry lists n engines.
func waitPushed(t *testing.T, s *registrytest.Server, n int) []fleet.Entry {
	t.Helper()
	c, err := fleet.New(fleet.Options{Registry: s.Repository("trtd/engines"), CA: s.CA, Credentials: mustCreds(t, s)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		es, _, err := c.List(context.Background(), "")
		if err == nil && len(es) >= n {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry holds %d engines (want %d): %v", len(es), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFile waits until path contains want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q:\n%s", path, want, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustCreds(t *testing.T, s *registrytest.Server) string {
	p, err := s.Creds(t.TempDir(), registrytest.Password)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Device A builds (fake worker) and pushes; device B, same fingerprint,
// publishes A's engine without running its worker's build; device C, a
// GPU of another compute capability, builds its own; device D, whose
// registry is down, builds and says why in its report.
func TestFleetDevicesShareEngines(t *testing.T) {
	s := registrytest.T(t)
	model := testmodels.TinyCNN

	a := fleetTree(t, s, s.Addr, "")
	stop := a.runInProcess(t, "TRTD_FAKE_WORKER=fast=oom,lean=ok")
	a.drop(t, "net.onnx", model)
	ra := a.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt)
	if ra.Fleet == nil || !strings.Contains(ra.Fleet.Push, "queued for "+s.Addr) || ra.Fleet.Pulled != nil {
		t.Fatalf("A's report fleet section: %+v", ra.Fleet)
	}
	es := waitPushed(t, s, 1)
	if es[0].Annotations[fleet.AnnStage] != "lean" || es[0].Model() != ra.Model.SHA256 {
		t.Fatalf("pushed %+v", es[0].Annotations)
	}
	st := a.waitIdle(t, 10*time.Second)
	waitFile(t, a.cfg.Fleet.Textfile, "trtd_fleet_engines_pushed_total 1")
	// The status file follows the queue without another job happening.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, _ = status.Read(a.cfg.StatusPath())
		if st != nil && st.Fleet != nil && st.Fleet.Queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed an empty push queue: %+v", st.Fleet)
		}
	}
	stop()
	if st.Fleet.Registry != s.Addr+"/trtd/engines" || !st.Fleet.Pull || !st.Fleet.Push {
		t.Errorf("status fleet: %+v", st.Fleet)
	}
	prom, _ := os.ReadFile(a.cfg.Fleet.Textfile)
	for _, want := range []string{`trtd_jobs_total{outcome="built"} 1`, `trtd_stage_reached_total{stage="lean"} 1`, "trtd_oom_kills_total 1", "trtd_fleet_engines_pushed_total 1"} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("textfile lacks %q:\n%s", want, prom)
		}
	}

	b := fleetTree(t, s, s.Addr, "")
	recB := filepath.Join(b.root, "record.jsonl")
	stop = b.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_RECORD="+recB)
	b.drop(t, "net.onnx", model)
	rb := b.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeReused, report.OutcomeBuilt)
	b.waitIdle(t, 10*time.Second)
	stop()
	if rb.Outcome != report.OutcomeReused || rb.Fleet == nil || rb.Fleet.Pulled == nil || rb.Fleet.Pulled.Digest != es[0].Digest || rb.Fleet.Pulled.Stage != "lean" {
		t.Fatalf("B: outcome %s, fleet %+v", rb.Outcome, rb.Fleet)
	}
	if n := builds(t, recB); n != 0 {
		t.Fatalf("B ran %d builds; it should have pulled", n)
	}
	// The worker never sees the registry's credentials.
	if rec, _ := os.ReadFile(recB); strings.Contains(string(rec), registrytest.Password) || strings.Contains(string(rec), b.cfg.Fleet.Credentials) {
		t.Error("the worker saw the registry credentials")
	}
	engA, _ := os.ReadFile(filepath.Join(a.cfg.Paths.Outbox, "net.engine"))
	engB, _ := os.ReadFile(filepath.Join(b.cfg.Paths.Outbox, "net.engine"))
	if len(engA) == 0 || !bytes.Equal(engA, engB) {
		t.Fatal("B's engine differs from A's")
	}
	for _, view := range []string{"net.report.md", "net.report.html"} {
		b, _ := os.ReadFile(filepath.Join(b.cfg.Paths.Outbox, view))
		if !strings.Contains(string(b), "pulled from the fleet registry") || !strings.Contains(string(b), es[0].Digest) {
			t.Errorf("B's %s does not say where the engine came from", view)
		}
	}
	noTemps(t, b.root)

	c := fleetTree(t, s, s.Addr, "")
	recC := filepath.Join(c.root, "record.jsonl")
	stop = c.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_CC=7.2", "TRTD_FAKE_WORKER_RECORD="+recC)
	c.drop(t, "net.onnx", model)
	rc := c.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeReused)
	c.waitIdle(t, 10*time.Second)
	waitPushed(t, s, 2)
	stop()
	if rc.Outcome != report.OutcomeBuilt || builds(t, recC) == 0 || rc.Fleet.Pulled != nil {
		t.Fatalf("C: outcome %s, %d builds, fleet %+v", rc.Outcome, builds(t, recC), rc.Fleet)
	}
	// C built on another GPU, but it is the same kind of device: the ladder
	// started where A succeeded (A's "fast" ran out of memory).
	if rc.Fleet.Start != "lean" || rc.Attempts[0].Stage != "lean" {
		t.Errorf("C started at %s (fleet start %q), want lean", rc.Attempts[0].Stage, rc.Fleet.Start)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	d := fleetTree(t, s, down, "timeout = \"1s\"\n")
	stop = d.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	d.drop(t, "net.onnx", model)
	rd := d.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeReused, report.OutcomeFailed)
	st = d.waitIdle(t, 10*time.Second)
	stop()
	if rd.Outcome != report.OutcomeBuilt || rd.Fleet == nil || !strings.Contains(rd.Fleet.Pull, "registry not used") {
		t.Fatalf("D (registry down): outcome %s, fleet %+v", rd.Outcome, rd.Fleet)
	}
	q, _ := fleet.NewQueue(filepath.Join(d.cfg.Paths.State, "fleet", "queue"))
	if items, _ := q.Items(); len(items) != 1 {
		t.Errorf("D's push should wait in the queue: %+v", items)
	}
}

// holdProxy forwards TCP to target until more than after bytes came back
// on one connection; then it stops forwarding (a registry that stalls
// mid-transfer) and closes held.
type holdProxy struct {
	l      net.Listener
	target string
	after  int64
	held   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

func newHoldProxy(t *testing.T, target string, after int64) *holdProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{l: l, target: target, after: after, held: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *holdProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go io.Copy(u, c)
		go func() {
			var n atomic.Int64
			buf := make([]byte, 32<<10)
			for {
				k, err := u.Read(buf)
				if k > 0 {
					if n.Add(int64(k)) > p.after {
						p.once.Do(func() { close(p.held) })
						return // hold: nothing more reaches the client
					}
					c.Write(buf[:k])
				}
				if err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

func (p *holdProxy) close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// A daemon killed while it pulls an engine leaves no engine and no
// temporary file behind once restarted, and the restarted daemon pulls
// the engine and publishes it exactly once.
func TestFleetPullInterruptedByKill(t *testing.T) {
	s := registrytest.T(t)
	const size = 8 << 20
	a := fleetTree(t, s, s.Addr, "")
	stop := a.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", fmt.Sprint("TRTD_FAKE_WORKER_ENGINE_PAD=", size))
	a.drop(t, "big.onnx", testmodels.TinyCNN)
	a.waitReport(t, "big.onnx", 30*time.Second, report.OutcomeBuilt)
	waitPushed(t, s, 1)
	a.waitIdle(t, 10*time.Second)
	stop()

	proxy := newHoldProxy(t, s.Addr, 1<<20)
	b := fleetTree(t, s, proxy.l.Addr().String(), "timeout = \"1h\"\n")
	// The certificate names 127.0.0.1, which the proxy also is.
	d := startDaemon(t, b, "TRTD_FAKE_WORKER=*=ok")
	b.drop(t, "big.onnx", testmodels.TinyCNN)
	select {
	case <-proxy.held:
	case <-time.After(60 * time.Second):
		t.Fatal("the pull never got 1 MiB into the engine")
	}
	d.Process.Signal(syscall.SIGKILL)
	d.Wait()
	if _, err := os.Stat(filepath.Join(b.cfg.Paths.Outbox, "big.engine")); !os.IsNotExist(err) {
		t.Fatalf("an engine is visible after the kill: %v", err)
	}

	// Restart pointing straight at the registry.
	cfgText, _ := os.ReadFile(b.path)
	os.WriteFile(b.path, bytes.ReplaceAll(cfgText, []byte(proxy.l.Addr().String()), []byte(s.Addr)), 0o644)
	if err := registrytest.WriteCredentials(b.cfg.Fleet.Credentials, s.Addr, registrytest.User, registrytest.Password); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, b, "TRTD_FAKE_WORKER=*=ok")
	r := b.waitReport(t, "big.onnx", 60*time.Second, report.OutcomeReused, report.OutcomeBuilt)
	if r.Outcome != report.OutcomeReused || r.Fleet == nil || r.Fleet.Pulled == nil {
		t.Fatalf("after restart: outcome %s fleet %+v", r.Outcome, r.Fleet)
	}
	engA, _ := os.ReadFile(filepath.Join(a.cfg.Paths.Outbox, "big.engine"))
	engB, _ := os.ReadFile(filepath.Join(b.cfg.Paths.Outbox, "big.engine"))
	if len(engB) != len(engA) || !bytes.Equal(engA, engB) {
		t.Fatalf("engine after restart: %d bytes, want %d", len(engB), len(engA))
	}
	// The report is published before the job ends (the pulled files are
	// removed and the job recorded done after it), and a pull never shows
	// as the current build in the status file: stop the daemon, which
	// returns once its job has ended, and look at what it leaves.
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("the restarted daemon: %v", err)
	}
	outs, _ := filepath.Glob(filepath.Join(b.cfg.Paths.Outbox, "big*.engine"))
	if len(outs) != 1 {
		t.Fatalf("outbox engines %v, want exactly one", outs)
	}
	noTemps(t, b.cfg.Paths.Outbox)
	noTemps(t, filepath.Join(b.cfg.Paths.State, "jobs"))
}

// Two daemons (separate processes) build the same model at once and both
// push: the registry ends with one artifact for it, and a third device
// pulls that one.
func TestFleetConcurrentPushesFromTwoDaemons(t *testing.T) {
	s := registrytest.T(t)
	trees := []*tree{fleetTree(t, s, s.Addr, ""), fleetTree(t, s, s.Addr, "")}
	for i, tr := range trees {
		// Different engine bytes for the same build, as real TensorRT gives.
		startDaemon(t, tr, "TRTD_FAKE_WORKER=*=slow=2s", fmt.Sprint("TRTD_FAKE_WORKER_ENGINE_PAD=", 4096+i))
	}
	for _, tr := range trees {
		tr.drop(t, "net.onnx", testmodels.TinyCNN)
	}
	built := 0
	for _, tr := range trees {
		r := tr.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeReused)
		switch {
		case r.Outcome == report.OutcomeBuilt:
			built++
		case r.Fleet == nil || r.Fleet.Pulled == nil:
			t.Fatalf("outcome %s without a pull", r.Outcome)
		}
	}
	es := waitPushed(t, s, 1)
	// Both queues drain (pushed, or kept the peer's artifact).
	for _, tr := range trees {
		dir := filepath.Join(tr.cfg.Paths.State, "fleet", "queue")
		deadline := time.Now().Add(30 * time.Second)
		for {
			ents, _ := os.ReadDir(dir)
			if len(ents) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still holds %d pushes", dir, len(ents))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	es2 := waitPushed(t, s, 1)
	if len(es) != 1 || len(es2) != 1 || es[0].Tag != es2[0].Tag {
		t.Fatalf("registry holds %+v then %+v, want one artifact", es, es2)
	}
	c := fleetTree(t, s, s.Addr, "")
	rec := filepath.Join(c.root, "record.jsonl")
	c.runInProcess(t, "TRTD_FAKE_WORKER=*=ok", "TRTD_FAKE_WORKER_RECORD="+rec)
	c.drop(t, "net.onnx", testmodels.TinyCNN)
	r := c.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeReused, report.OutcomeBuilt)
	if r.Fleet == nil || r.Fleet.Pulled == nil || r.Fleet.Pulled.Digest != es2[0].Digest || builds(t, rec) != 0 {
		t.Fatalf("third device: outcome %s fleet %+v", r.Outcome, r.Fleet)
	}
	got, _ := os.ReadFile(filepath.Join(c.cfg.Paths.Outbox, "net.engine"))
	var match int
	for _, tr := range trees {
		e, _ := os.ReadFile(filepath.Join(tr.cfg.Paths.Outbox, "net.engine"))
		if bytes.Equal(e, got) {
			match++
		}
	}
	// Both built (the usual case: the builds overlap): the pulled engine is
	// one of theirs. One pulled the other's: all three are the same.
	if want := 3 - built; match != want {
		t.Fatalf("%d built; the pulled engine matches %d of the two devices' engines, want %d", built, match, want)
	}
}

// An engine corrupted on the registry's disk is refused with the reason in
// the report, and the device builds its own.
func TestFleetCorruptEngineRefusedWithReport(t *testing.T) {
	s := registrytest.T(t)
	a := fleetTree(t, s, s.Addr, "")
	stop := a.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	a.drop(t, "net.onnx", testmodels.TinyCNN)
	ra := a.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt)
	waitPushed(t, s, 1)
	a.waitIdle(t, 10*time.Second)
	waitFile(t, a.cfg.Fleet.Textfile, "trtd_fleet_engines_pushed_total 1")
	stop()
	blob := s.Blob(ra.Engine.SHA256)
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	os.WriteFile(blob, data, 0o644)

	b := fleetTree(t, s, s.Addr, "")
	stop = b.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	b.drop(t, "net.onnx", testmodels.TinyCNN)
	rb := b.waitReport(t, "net.onnx", 30*time.Second, report.OutcomeBuilt, report.OutcomeReused)
	b.waitIdle(t, 10*time.Second)
	stop()
	if rb.Outcome != report.OutcomeBuilt || rb.Fleet == nil || rb.Fleet.Pulled != nil ||
		!strings.Contains(rb.Fleet.Pull, "refused") || !strings.Contains(rb.Fleet.Pull, "hashes to") {
		t.Fatalf("B: outcome %s, fleet %+v", rb.Outcome, rb.Fleet)
	}
	waitFile(t, b.cfg.Fleet.Textfile, `trtd_fleet_registry_errors_total{op="pull"} 1`)
	noTemps(t, b.root)
}
