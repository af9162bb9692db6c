package offload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/testmodels"
)

// fakeBuilder is what cmd/trtd-fake-worker (the worker's test double)
// reports.
var fakeBuilder = protocol.Builder{Backend: "fake", TensorRT: "8.2.1-fake", GPU: "fake GPU (test double)", ComputeCapability: "5.3"}

func TestMismatchAndReason(t *testing.T) {
	nano := Fingerprint{Builder: protocol.Builder{TensorRT: "8.2.1", ComputeCapability: "5.3"}, L4T: "32.7.4"}
	for _, tc := range []struct {
		name string
		peer Fingerprint
		want string
	}{
		{"same", nano, ""},
		{"x86", Fingerprint{Builder: protocol.Builder{TensorRT: "10.3.0", ComputeCapability: "8.9"}},
			"has TensorRT 10.3.0 (this device: 8.2.1), compute capability 8.9, a discrete or data-centre GPU (compute capability 8.9), not a Jetson (this device: 5.3), L4T none (this device: 32.7.4)"},
		{"older jetpack", Fingerprint{Builder: protocol.Builder{TensorRT: "8.2.1", ComputeCapability: "5.3"}, L4T: "32.6.1"}, "has L4T 32.6.1 (this device: 32.7.4)"},
		{"orin", Fingerprint{Builder: protocol.Builder{TensorRT: "8.2.1", ComputeCapability: "8.7"}, L4T: "32.7.4"}, "compute capability 8.7, a Jetson Orin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Mismatch(nano, tc.peer)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Mismatch = %q, want %q", got, tc.want)
			}
		})
	}
	r := noPeerReason(nano, []string{"peer x86: has TensorRT 10.3.0"})
	for _, want := range []string{"no matching offload peer", "peer x86", "a Jetson Nano or TX1 with TensorRT 8.2.1 on L4T 32.7.4", "an x86 GPU cannot build a Jetson engine"} {
		if !strings.Contains(r, want) {
			t.Errorf("reason %q lacks %q", r, want)
		}
	}
}

func TestSSHOptionsAreStrict(t *testing.T) {
	o := strings.Join(sshOpts(Peer{PeerConf: config.PeerConf{Key: "/k", KnownHosts: "/kh"}}), " ")
	for _, want := range []string{"-F /dev/null", "BatchMode=yes", "StrictHostKeyChecking=yes", "-i /k", "IdentitiesOnly=yes", "UserKnownHostsFile=/kh", "GlobalKnownHostsFile=/dev/null"} {
		if !strings.Contains(o, want) {
			t.Errorf("ssh options %q lack %q", o, want)
		}
	}
	for in, want := range map[string]string{"/var/lib/trtd/inbox/a.onnx": "/var/lib/trtd/inbox/a.onnx", "a b": "'a b'", "x'; rm -rf /": `'x'\''; rm -rf /'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	engine := filepath.Join(dir, "e.engine")
	os.WriteFile(engine, []byte("engine bytes"), 0o644)
	esha, _ := filehash.SHA256(engine)
	msha := strings.Repeat("ab", 32)
	local := Fingerprint{Builder: fakeBuilder, L4T: "32.7.4"}
	for _, tc := range []struct {
		name string
		edit func(p *provenance.Provenance)
		want string
	}{
		{"good", func(p *provenance.Provenance) {}, ""},
		{"good, L4T not recorded", func(p *provenance.Provenance) { p.L4T = "" }, ""},
		{"other model", func(p *provenance.Provenance) { p.ModelSHA = strings.Repeat("cd", 32) }, "not the one sent"},
		{"other TensorRT", func(p *provenance.Provenance) { b := fakeBuilder; b.TensorRT = "8.5.2"; p.Builder = &b }, "TensorRT 8.5.2"},
		{"other L4T", func(p *provenance.Provenance) { p.L4T = "32.6.1" }, "L4T 32.6.1"},
		{"engine changed", func(p *provenance.Provenance) { p.EngineSHA = strings.Repeat("0", 64) }, "hashes to"},
		{"no builder", func(p *provenance.Provenance) { p.Builder = nil }, "no builder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fakeBuilder
			p := &provenance.Provenance{Engine: "e.engine", EngineSHA: esha, ModelSHA: msha, Builder: &b, L4T: "32.7.4"}
			tc.edit(p)
			prov := filepath.Join(dir, tc.name+".json")
			provenance.Write(prov, p)
			err := Verify(engine, prov, msha, local)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Verify = %v, want %q", err, tc.want)
			}
		})
	}
}

// --- two daemons on loopback -------------------------------------------

var bin struct{ dir, trtd, fake string }

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "trtd-offload-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		bin.dir, bin.trtd, bin.fake = dir, filepath.Join(dir, "trtd"), filepath.Join(dir, "trtd-fake-worker")
		for out, pkg := range map[string]string{bin.trtd: "github.com/trtd/trtd/cmd/trtd", bin.fake: "github.com/trtd/trtd/cmd/trtd-fake-worker"} {
			c := exec.Command("go", "build", "-o", out, pkg)
			c.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := c.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// sshd is a real OpenSSH server on 127.0.0.1 with a throw-away host key
// and one authorized client key.
type sshd struct {
	port            int
	key, knownHosts string
	user            string
}

func startSSHD(t *testing.T) *sshd {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs no external tools (sshd)")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("OpenSSH server not installed (Debian package openssh-server): offload over ssh is not tested")
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd needs root for its privilege separation: offload over ssh is not tested")
	}
	for _, b := range []string{"ssh", "scp", "ssh-keygen"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (Debian package openssh-client)", b)
		}
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	gen := func(name string) {
		if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, b)
		}
	}
	gen("host_key")
	gen("client_key")
	pub, _ := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	// A free port is picked, closed and handed to sshd: another process
	// may take it in between. sshd then exits (it cannot bind), and the
	// start is tried again on another port; a port is taken as sshd's only
	// while sshd runs and the answer is an OpenSSH banner.
	var port int
	for try := 1; ; try++ {
		var up bool
		port, up = trySSHD(t, dir)
		if up {
			break
		}
		if try == 5 {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Fatalf("sshd did not start on 127.0.0.1 in 5 tries; its log:\n%s", b)
		}
	}
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	fields := strings.Fields(string(hostPub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1])), 0o644)
	u, _ := user.Current()
	return &sshd{port: port, key: filepath.Join(dir, "client_key"), knownHosts: kh, user: u.Username}
}

// trySSHD starts sshd on a port that was free a moment ago and reports
// whether it answers there; a start that failed is cleaned up.
func trySSHD(t *testing.T, dir string) (int, bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))), 0o644)
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	logf, _ := os.OpenFile(filepath.Join(dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		logf.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited: // could not bind: the port was taken meanwhile
			logf.Close()
			return port, false
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		banner := make([]byte, 16)
		n, _ := io.ReadFull(c, banner)
		c.Close()
		if strings.HasPrefix(string(banner[:n]), "SSH-2.0-OpenSSH") {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
					t.Logf("sshd log:\n%s", b)
				}
			})
			return port, true
		}
		break // another server holds the port
	}
	stop()
	return port, false
}

// peerDaemon is a second trtd (`trtd run`, its own directories) whose
// worker is the test double.
type peerDaemon struct {
	root, config, inbox, outbox string
}

func startPeer(t *testing.T, fakeBehaviour string) *peerDaemon {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	p := &peerDaemon{root: root, config: filepath.Join(root, "config.toml"), inbox: filepath.Join(root, "inbox"), outbox: filepath.Join(root, "outbox")}
	os.WriteFile(p.config, []byte(fmt.Sprintf(`log_format = "text"
log_level = "debug"
[paths]
inbox = %q
outbox = %q
state = %q
failed = %q
worker = %q
[inbox]
settle = "200ms"
rescan = "1s"
[worker]
user = ""
validate_runs = 1
[swap]
enabled = false
`, p.inbox, p.outbox, filepath.Join(root, "state"), filepath.Join(root, "failed"), bin.fake)), 0o644)
	cmd := exec.Command(bin.trtd, "run", "--config", p.config)
	cmd.Env = append(os.Environ(), "TRTD_FAKE_WORKER="+fakeBehaviour)
	logf, _ := os.Create(filepath.Join(root, "trtd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() || os.Getenv("TRTD_TEST_LOGS") != "" {
			b, _ := os.ReadFile(filepath.Join(root, "trtd.log"))
			t.Logf("peer trtd log:\n%s", b)
		}
	})
	for i := 0; ; i++ {
		var st struct{ State string }
		if b, err := os.ReadFile(filepath.Join(root, "state", "status.json")); err == nil && json.Unmarshal(b, &st) == nil && st.State == "idle" {
			break
		}
		if i > 400 {
			t.Fatal("the peer daemon did not become idle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (s *sshd) peer(name string, p *peerDaemon) Peer {
	return Peer{PeerConf: config.PeerConf{Name: name, Host: "127.0.0.1", Port: s.port, User: s.user, Key: s.key, KnownHosts: s.knownHosts,
		Inbox: p.inbox, Outbox: p.outbox}, Trtd: bin.trtd, Config: p.config}
}

// x86Peer is a peer whose trtd answers with the fingerprint of an x86
// GPU: a script standing in for a TensorRT 10 builder, which cannot exist
// here.
func x86Peer(t *testing.T, s *sshd, p *peerDaemon) Peer {
	script := filepath.Join(t.TempDir(), "trtd-x86")
	os.WriteFile(script, []byte(`#!/bin/sh
echo '{"builder":{"backend":"api","tensorrt":"10.3.0","gpu":"NVIDIA L4","compute_capability":"8.9"}}'
`), 0o755)
	os.Chmod(filepath.Dir(script), 0o755)
	pe := s.peer("x86-box", p)
	pe.Trtd, pe.Config = script, ""
	return pe
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// input is a local job whose every stage failed: the model (and its
// settings file) in a work directory.
func input(t *testing.T) converter.Input {
	work, engines := t.TempDir(), t.TempDir()
	testmodels.Write(t, work, "tiny.onnx", testmodels.TinyCNN)
	os.WriteFile(filepath.Join(work, "tiny.toml"), []byte("precision = \"fp16\"\n"), 0o644)
	return converter.Input{WorkDir: work, Model: "tiny.onnx", EngineDir: engines}
}

func TestOffloadBetweenTwoDaemons(t *testing.T) {
	s := startSSHD(t)
	peer := startPeer(t, "fast=oom,lean=ok") // the peer itself steps down its ladder
	down := s.peer("down", peer)
	down.Port = closedPort(t)
	validated := ""
	o := &Offloader{
		Peers: []Peer{down, x86Peer(t, s, peer), s.peer("nano-2", peer)},
		Local: func() (Fingerprint, bool) { return Fingerprint{Builder: fakeBuilder}, true },
		Validate: func(ctx context.Context, engine string) error {
			validated = engine
			return nil
		},
		Timeout: 2 * time.Minute, Poll: 200 * time.Millisecond, Log: testLog(t),
	}
	in := input(t)
	t0 := time.Now()
	engine, reason, ok := o.Offload(context.Background(), in, converter.Stage{Name: "offload", Kind: converter.KindOffload})
	t.Logf("offload took %s", time.Since(t0).Round(time.Millisecond))
	if !ok {
		t.Fatalf("offload failed: %s", reason)
	}
	if engine != filepath.Join(in.EngineDir, "offload.engine") || validated != engine {
		t.Errorf("engine %s, validated %q", engine, validated)
	}
	data, err := os.ReadFile(engine)
	if err != nil || len(data) == 0 {
		t.Fatalf("engine: %v", err)
	}
	pv, err := provenance.Read(filepath.Join(in.EngineDir, "offload.engine.json"))
	if err != nil {
		t.Fatal(err)
	}
	if pv.Offload != "peer nano-2" || pv.Stage != "lean" || !strings.HasPrefix(pv.Model, "trtd-offload-") {
		t.Errorf("provenance: offload %q, stage %q, model %q", pv.Offload, pv.Stage, pv.Model)
	}
	// The peer got the settings file along, and its outbox was tidied.
	if b, _ := os.ReadFile(filepath.Join(peer.root, "trtd.log")); !strings.Contains(string(b), ".toml") {
		t.Log("note: the peer's log does not mention the settings file")
	}
	ents, _ := os.ReadDir(peer.outbox)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "trtd-offload-") {
			t.Errorf("left in the peer's outbox: %s", e.Name())
		}
	}
	ents, _ = os.ReadDir(peer.inbox)
	if len(ents) != 0 {
		t.Errorf("left in the peer's inbox: %v", ents)
	}
}

func TestOffloadNoMatchingPeerSaysWhoCouldBuild(t *testing.T) {
	s := startSSHD(t)
	peer := startPeer(t, "")
	nano := Fingerprint{Builder: protocol.Builder{Backend: "api", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"}, L4T: "32.7.4"}
	o := &Offloader{Peers: []Peer{x86Peer(t, s, peer), s.peer("fake-nano", peer)}, Local: func() (Fingerprint, bool) { return nano, true }, Poll: 100 * time.Millisecond}
	_, reason, ok := o.Offload(context.Background(), input(t), converter.Stage{Name: "offload"})
	if ok {
		t.Fatal("offloaded to a peer that does not match")
	}
	for _, want := range []string{"peer x86-box: has TensorRT 10.3.0", "not a Jetson", "peer fake-nano: has TensorRT 8.2.1-fake", "L4T none (this device: 32.7.4)",
		"Only a Jetson Nano or TX1 with TensorRT 8.2.1 on L4T 32.7.4 can build", "an x86 GPU cannot build a Jetson engine"} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason lacks %q:\n%s", want, reason)
		}
	}
	if ents, _ := os.ReadDir(peer.inbox); len(ents) != 0 {
		t.Errorf("a model was sent to a peer that does not match: %v", ents)
	}
}

func TestOffloadPeerBuildFails(t *testing.T) {
	s := startSSHD(t)
	peer := startPeer(t, "*=unsupported")
	o := &Offloader{Peers: []Peer{s.peer("nano-2", peer)}, Local: func() (Fingerprint, bool) { return Fingerprint{Builder: fakeBuilder}, true },
		Poll: 200 * time.Millisecond, Timeout: 2 * time.Minute}
	in := input(t)
	_, reason, ok := o.Offload(context.Background(), in, converter.Stage{Name: "offload"})
	if ok || !strings.Contains(reason, "offload to peer nano-2 failed: the peer could not build it") || !strings.Contains(reason, "NonMaxSuppression") {
		t.Fatalf("ok %v, reason %q", ok, reason)
	}
	if _, err := os.Stat(filepath.Join(in.EngineDir, "offload.engine")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an engine was left: %v", err)
	}
}

func TestOffloadUnknownHostKeyRefused(t *testing.T) {
	s := startSSHD(t)
	peer := startPeer(t, "")
	pe := s.peer("nano-2", peer)
	pe.KnownHosts = filepath.Join(t.TempDir(), "empty_known_hosts")
	os.WriteFile(pe.KnownHosts, nil, 0o644)
	o := &Offloader{Peers: []Peer{pe}, Local: func() (Fingerprint, bool) { return Fingerprint{Builder: fakeBuilder}, true }}
	_, reason, ok := o.Offload(context.Background(), input(t), converter.Stage{Name: "offload"})
	if ok || !strings.Contains(reason, "Host key verification failed") {
		t.Fatalf("ok %v, reason %q", ok, reason)
	}
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
