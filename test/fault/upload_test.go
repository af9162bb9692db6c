package fault

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

// sshd is an OpenSSH server on 127.0.0.1 for the whole package.
type sshServer struct {
	port int
	key  string
	dir  string
	cmd  *exec.Cmd
	err  error
}

var (
	sshOnce sync.Once
	sshSrv  sshServer
)

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD starts one sshd for every upload test (stopped by the OS when
// the test binary exits: it runs in the foreground with -D as our child,
// killed by Pdeathsig).
func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	needRoot(t)
	for _, b := range []string{"/usr/sbin/sshd", "scp", "sftp", "ssh", "ssh-keygen", "rsync"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (apt-get install openssh-server openssh-client rsync)", b)
		}
	}
	sshOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trtd-sshd-")
		if err != nil {
			sshSrv.err = err
			return
		}
		os.MkdirAll("/run/sshd", 0o755)
		s := &sshSrv
		s.dir, s.key, s.port = dir, filepath.Join(dir, "client"), freePort()
		for _, k := range []string{"host", "client"} {
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
				s.err = fmt.Errorf("ssh-keygen: %v %s", err, out)
				return
			}
		}
		pub, _ := os.ReadFile(s.key + ".pub")
		os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
		cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
MaxStartups 100
MaxSessions 100
LogLevel ERROR
`, s.port, dir, dir, dir)
		os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600)
		s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		logf, _ := os.Create(filepath.Join(dir, "sshd.log"))
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		if err := s.cmd.Start(); err != nil {
			s.err = err
			return
		}
		if !eventually(10*time.Second, func() bool {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
			if err == nil {
				c.Close()
			}
			return err == nil
		}) {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			s.err = fmt.Errorf("sshd did not listen: %s", b)
		}
	})
	if sshSrv.err != nil {
		t.Skipf("cannot run sshd on 127.0.0.1: %v", sshSrv.err)
	}
	return &sshSrv
}

func (s *sshServer) sshOpts() []string {
	return []string{"-i", s.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// uploadCmd is a client command that uploads src to the remote path dst;
// limit is in KiB/s (0: none); resume asks for the client's resume mode.
func (s *sshServer) uploadCmd(client, src, dst string, limitKiB int, resume bool) *exec.Cmd {
	port := strconv.Itoa(s.port)
	remote := "root@127.0.0.1:" + dst
	var args []string
	switch client {
	case "scp", "scp-O":
		args = append([]string{"scp", "-q", "-P", port}, s.sshOpts()...)
		if client == "scp-O" {
			args = append(args, "-O")
		}
		if limitKiB > 0 {
			args = append(args, "-l", strconv.Itoa(limitKiB*8))
		}
		args = append(args, src, remote)
	case "sftp":
		verb := "put"
		if resume {
			verb = "reput"
		}
		batch := src + ".batch-" + verb
		os.WriteFile(batch, []byte(fmt.Sprintf("%s %q %q\n", verb, src, dst)), 0o644)
		args = append([]string{"sftp", "-q", "-P", port, "-b", batch}, s.sshOpts()...)
		if limitKiB > 0 {
			args = append(args, "-l", strconv.Itoa(limitKiB*8))
		}
		args = append(args, "root@127.0.0.1")
	case "rsync", "rsync-inplace":
		args = []string{"rsync", "-e", "ssh -p " + port + " " + strings.Join(s.sshOpts(), " ")}
		if client == "rsync-inplace" {
			args = append(args, "--inplace")
		}
		if limitKiB > 0 {
			args = append(args, "--bwlimit="+strconv.Itoa(limitKiB))
		}
		args = append(args, src, remote)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// partialSize is the size of what the client has written so far under the
// final name or, for rsync, its dot-temp file.
func partialSize(inbox, name string) int64 {
	var n int64
	for _, en := range listDir(inbox) {
		if en == name || strings.HasPrefix(en, "."+name+".") {
			if fi, err := os.Lstat(filepath.Join(inbox, en)); err == nil && fi.Size() > n {
				n = fi.Size()
			}
		}
	}
	return n
}

// checkOneBuild: exactly one job, built from the complete content, and one
// engine; never a job on partial content.
func checkOneBuild(t *testing.T, e *env, name string, data []byte) {
	t.Helper()
	js := e.waitJobs(1, 60*time.Second)
	// a little longer: a second (wrong) claim would show up now
	time.Sleep(3 * e.settle)
	js = e.jobs()
	if len(js) != 1 {
		t.Fatalf("want exactly one job, got %d: %+v", len(js), js)
	}
	if js[0].ModelSHA != hash(data) || js[0].State != "done" {
		t.Fatalf("job %+v: built from other content than the upload (sha %s)", js[0], hash(data)[:12])
	}
	base := strings.TrimSuffix(name, ".onnx")
	if engs := e.engines(); len(engs) != 1 || engs[base+".engine"] != hash(data) {
		t.Fatalf("outbox engines %v", engs)
	}
}

// TestUploadClients uploads a real model with real clients over loopback:
// complete, killed at 50 % then resumed, and trickled with stalls longer
// than the settle period.
func TestUploadClients(t *testing.T) {
	suite(t)
	s := startSSHD(t)
	data := testmodels.SmallCNN
	limit := 100 // KiB/s: the 340 KB model takes ~3.4 s
	trickle := limit
	stall := 3 // stalls of 3 settle periods
	if soak() {
		trickle = 1 // the 1 KB/s trickle (a 48 KB model: ~48 s plus stalls)
	}
	for _, client := range []string{"scp", "scp-O", "sftp", "rsync", "rsync-inplace"} {
		for _, mode := range []string{"complete", "interrupted", "trickle"} {
			client, mode := client, mode
			t.Run(client+"/"+mode, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				e.start()
				name := "up.onnx"
				payload := data
				rate := trickle
				if mode == "trickle" && soak() {
					payload = paddedModel(48 << 10) // ~48 s at 1 KB/s
					if client == "scp" || client == "sftp" {
						// SFTP's -l does not throttle a file that fits its
						// request window: 8 KB/s on the 340 KB model.
						payload, rate = data, 8
					}
				}
				src := filepath.Join(e.root, "src.onnx")
				os.WriteFile(src, payload, 0o644)
				dst := filepath.Join(e.inbox, name)
				switch mode {
				case "complete":
					if out, err := s.uploadCmd(client, src, dst, 0, false).CombinedOutput(); err != nil {
						t.Fatalf("%s: %v %s", client, err, out)
					}
				case "interrupted":
					cmd := s.uploadCmd(client, src, dst, limit, false)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					if !eventually(60*time.Second, func() bool { return partialSize(e.inbox, name) >= int64(len(payload)/2) }) {
						syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
						cmd.Wait()
						t.Fatal("upload never reached 50%")
					}
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					cmd.Wait()
					// the partial file sits there longer than settle: no job
					time.Sleep(5*e.settle + 500*time.Millisecond)
					if js := e.jobs(); len(js) != 0 {
						t.Fatalf("a job was made from a partial upload: %+v", js)
					}
					if out, err := s.uploadCmd(client, src, dst, 0, true).CombinedOutput(); err != nil {
						t.Fatalf("%s resume: %v %s", client, err, out)
					}
				case "trickle":
					cmd := s.uploadCmd(client, src, dst, rate, false)
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					done := make(chan error, 1)
					go func() { done <- cmd.Wait() }()
					// Stall twice, at about 1/4 and 2/3 of the transfer's
					// time, for longer than settle (by time: rsync buffers
					// before its temp file grows).
					expected := time.Duration(len(payload)) * time.Second / time.Duration(rate*1024)
				stalls:
					for _, wait := range []time.Duration{expected / 4, expected*2/3 - expected/4} {
						select {
						case err := <-done:
							done <- err
							break stalls // finished early: no stall left to make
						case <-time.After(wait):
						}
						syscall.Kill(-cmd.Process.Pid, syscall.SIGSTOP)
						time.Sleep(time.Duration(stall) * e.settle)
						for _, j := range e.jobs() {
							// (the upload may have ended just before the stop)
							if j.ModelSHA != "" && j.ModelSHA != hash(payload) || j.State == "failed" {
								syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
								t.Fatalf("a job was made from partial content during a stall: %+v", j)
							}
						}
						syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
					}
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("%s trickle: %v", client, err)
						}
					case <-time.After(10 * time.Minute):
						syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
						t.Fatal("trickle upload did not finish")
					}
				}
				checkOneBuild(t, e, name, payload)
			})
		}
	}
}

// TestUploadMove covers mv within the inbox's filesystem (a rename) and
// across filesystems (copy under the final name, then unlink).
func TestUploadMove(t *testing.T) {
	suite(t)
	needRoot(t)
	for _, across := range []bool{false, true} {
		across := across
		name := "within"
		if across {
			name = "across"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.start()
			srcDir := e.root
			if across {
				if _, err := os.Stat("/dev/shm"); err != nil {
					t.Skip("no /dev/shm for a second filesystem")
				}
				d, err := os.MkdirTemp("/dev/shm", "trtd-mv-")
				if err != nil {
					t.Skip(err)
				}
				t.Cleanup(func() { os.RemoveAll(d) })
				srcDir = d
			}
			src := filepath.Join(srcDir, "m.onnx")
			os.WriteFile(src, testmodels.SmallCNN, 0o644)
			if out, err := exec.Command("mv", src, filepath.Join(e.inbox, "m.onnx")).CombinedOutput(); err != nil {
				t.Fatalf("mv: %v %s", err, out)
			}
			checkOneBuild(t, e, "m.onnx", testmodels.SmallCNN)
		})
	}
}

// TestUploadExternalDataLater: a model uploaded before its external data
// file must wait for it, not fail.
func TestUploadExternalDataLater(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start()
	model := externalModel("late.bin")
	e.drop("late.onnx", model)
	time.Sleep(5*e.settle + 500*time.Millisecond)
	e.drop("late.bin", make([]byte, 16))
	checkOneBuild(t, e, "late.onnx", model)
}

// TestUploadZeroByteThenContent: an upload that creates the file empty
// (as every in-place client does) and fills it after a pause.
func TestUploadZeroByteThenContent(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start()
	p := filepath.Join(e.inbox, "z.onnx")
	os.WriteFile(p, nil, 0o644)
	time.Sleep(5 * e.settle)
	if js := e.jobs(); len(js) != 0 {
		t.Fatalf("a job for an empty file: %+v", js)
	}
	os.WriteFile(p, testmodels.TinyCNN, 0o644)
	checkOneBuild(t, e, "z.onnx", testmodels.TinyCNN)
}

// TestUploadFilepart: WinSCP's way, a temporary .filepart name written
// slowly, then renamed: ignored while written, built once after the rename.
func TestUploadFilepart(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start()
	part := filepath.Join(e.inbox, "w.onnx.filepart")
	f, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	data := testmodels.SmallCNN
	for off := 0; off < len(data); off += len(data) / 4 {
		end := off + len(data)/4
		if end > len(data) {
			end = len(data)
		}
		f.Write(data[off:end])
		time.Sleep(2 * e.settle)
	}
	f.Close()
	if js := e.jobs(); len(js) != 0 {
		t.Fatalf("a job for a .filepart file: %+v", js)
	}
	os.Rename(part, filepath.Join(e.inbox, "w.onnx"))
	checkOneBuild(t, e, "w.onnx", data)
}

// TestUploadSameNameDuringBuild: the same name uploaded again, with other
// content, while the first is being built: two jobs, each built from its
// own bytes, and the outbox ends with the newer engine.
func TestUploadSameNameDuringBuild(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	e.start("TRTD_FAKE_WORKER=*=slow=1s")
	first, second := identityModel(dimV(31)), identityModel(dimV(32))
	e.drop("same.onnx", first)
	e.waitWorker(30 * time.Second)
	e.drop("same.onnx", second)
	js := e.waitJobs(2, 60*time.Second)
	sums := map[string]bool{}
	for _, j := range js {
		if j.State != "done" {
			t.Fatalf("job %+v", j)
		}
		sums[j.ModelSHA] = true
	}
	if !sums[hash(first)] || !sums[hash(second)] || len(js) != 2 {
		t.Fatalf("jobs %+v: want one per content", js)
	}
	if got := e.engines()["same.engine"]; got != hash(second) {
		t.Fatalf("outbox engine from %s, want the newer upload", got)
	}
}
