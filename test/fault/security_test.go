package fault

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

func procField(pid int, key string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestWorkerSandbox: the worker runs as the unprivileged worker.user, in a
// working directory holding only its model, in its own network namespace,
// without the daemon's systemd variables, first in line for the OOM killer.
func TestWorkerSandbox(t *testing.T) {
	suite(t)
	needRoot(t)
	e := newEnv(t)
	b, _ := os.ReadFile(e.cfgPath)
	cfg := strings.Replace(string(b), `user = ""`, `user = "nobody"`, 1)
	cfg = strings.Replace(cfg, "private_network = false", "private_network = true", 1)
	os.WriteFile(e.cfgPath, []byte(cfg), 0o644)
	e.start("TRTD_FAKE_WORKER=*=slow=2s", "NOTIFY_SOCKET=/run/nonexistent-notify", "WATCHDOG_USEC=0", "TRTD_SECRET_TOKEN=s3cr3t-must-not-leak")
	e.drop("sec.onnx", testmodels.TinyCNN)
	pid := e.waitWorker(30 * time.Second)
	t.Run("unprivileged", func(t *testing.T) {
		if uid := strings.Fields(procField(pid, "Uid")); len(uid) == 0 || uid[0] != "65534" || uid[1] != "65534" {
			t.Errorf("worker uid %v, want nobody (65534)", uid)
		}
		if capEff := procField(pid, "CapEff"); capEff != "0000000000000000" {
			t.Errorf("worker has capabilities %s", capEff)
		}
	})
	t.Run("own_network_namespace", func(t *testing.T) {
		wn, err1 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		dn, err2 := os.Readlink("/proc/" + strconv.Itoa(e.pid()) + "/ns/net")
		if err1 != nil || err2 != nil || wn == dn {
			t.Errorf("worker network namespace %s, daemon's %s (%v %v)", wn, dn, err1, err2)
		}
	})
	t.Run("empty_cwd", func(t *testing.T) {
		cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
		if !strings.HasPrefix(cwd, e.state) {
			t.Errorf("worker cwd %s is not a per-job directory", cwd)
		}
		if ents := listDir(cwd); len(ents) != 1 || ents[0] != "sec.onnx" {
			t.Errorf("worker cwd holds %v, want only the model", ents)
		}
	})
	t.Run("environment", func(t *testing.T) {
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		for _, k := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC="} {
			if bytes.Contains(env, []byte(k)) {
				t.Errorf("worker environment has %s", k)
			}
		}
	})
	t.Run("oom_score_adj", func(t *testing.T) {
		// The daemon writes it right after the worker starts, before the
		// worker gets its request; the worker may be seen a moment earlier.
		var b []byte
		eventually(2*time.Second, func() bool {
			b, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
			return strings.TrimSpace(string(b)) == "1000"
		})
		if strings.TrimSpace(string(b)) != "1000" {
			t.Errorf("worker oom_score_adj %q, want 1000", b)
		}
	})
	e.waitJobs(1, 60*time.Second)
	t.Run("built", func(t *testing.T) {
		if e.engines()["sec.engine"] != hash(testmodels.TinyCNN) {
			t.Error("no engine")
		}
	})
	t.Run("status_and_reports_leak_nothing", func(t *testing.T) {
		files := []string{e.status}
		for _, n := range listDir(e.outbox) {
			files = append(files, filepath.Join(e.outbox, n))
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte("s3cr3t-must-not-leak")) {
				t.Errorf("%s leaks the daemon's environment", f)
			}
		}
	})
}

// TestWorkerReadsPrivateUpload: scp keeps the client's mode, so a model
// often arrives 0600 and owned by the uploading user. The unprivileged
// worker must still be able to read the copy it is given.
func TestWorkerReadsPrivateUpload(t *testing.T) {
	suite(t)
	needRoot(t)
	e := newEnv(t)
	b, _ := os.ReadFile(e.cfgPath)
	os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), `user = ""`, `user = "nobody"`, 1)), 0o644)
	e.start()
	p := filepath.Join(e.inbox, ".up")
	os.WriteFile(p, testmodels.TinyCNN, 0o600)
	os.Chown(p, 12345, 12345) // an uploading user who is not the worker
	os.Rename(p, filepath.Join(e.inbox, "private.onnx"))
	js := e.waitJobs(1, 60*time.Second)
	if js[0].State != "done" {
		t.Fatalf("a 0600 upload of another user failed: %s", js[0].Reason)
	}
}

// TestNoLinkFollowing: the daemon never writes through a symbolic link it
// finds in its own directories, and never reads an inbox that was replaced
// by a link to somewhere else.
func TestNoLinkFollowing(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Run("outbox_names_precreated_as_links", func(t *testing.T) {
		e := newEnv(t)
		os.MkdirAll(e.outbox, 0o755)
		outside := filepath.Join(e.root, "outside")
		os.MkdirAll(outside, 0o755)
		var victims []string
		for _, n := range []string{"m.engine", "m.report.json", "m.report.md", "m.engine.json"} {
			v := filepath.Join(outside, n)
			os.WriteFile(v, []byte("victim"), 0o644)
			os.Symlink(v, filepath.Join(e.outbox, n))
			victims = append(victims, v)
		}
		e.start()
		e.drop("m.onnx", testmodels.TinyCNN)
		e.waitJobs(1, 60*time.Second)
		for _, v := range victims {
			if b, _ := os.ReadFile(v); string(b) != "victim" {
				t.Errorf("%s was written through a link in the outbox", v)
			}
		}
		if fi, err := os.Lstat(filepath.Join(e.outbox, "m.engine")); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("m.engine in the outbox is not a regular file: %v", err)
		}
	})
	t.Run("inbox_replaced_by_link", func(t *testing.T) {
		e := newEnv(t)
		e.start()
		outside := filepath.Join(e.root, "elsewhere")
		os.MkdirAll(outside, 0o755)
		os.WriteFile(filepath.Join(outside, "x.onnx"), testmodels.TinyCNN, 0o644)
		os.RemoveAll(e.inbox)
		os.Symlink(outside, e.inbox)
		time.Sleep(3 * time.Second) // three rescans
		if _, err := os.Stat(filepath.Join(outside, "x.onnx")); err != nil {
			t.Fatalf("a model was taken from the link's target outside the inbox: %v", err)
		}
		if js := e.jobs(); len(js) != 0 {
			t.Fatalf("jobs from outside the inbox: %+v", js)
		}
	})
}

// TestStatusCommand: `trtd status` reads what the daemon wrote and shows
// only inbox names.
func TestStatusCommand(t *testing.T) {
	suite(t)
	needRoot(t)
	e := newEnv(t)
	e.start()
	e.drop("st.onnx", testmodels.TinyCNN)
	e.waitJobs(1, 60*time.Second)
	// The status file is written after the job record turns terminal:
	// poll for the condition, with a deadline a loaded machine meets.
	var out []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		out, err = exec.Command(bins.trtd, "status", "--config", e.cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("trtd status: %v %s", err, out)
		}
		if strings.Contains(string(out), "st.onnx") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(out), "st.onnx") {
		t.Errorf("status does not show the last model:\n%s", out)
	}
}

// TestOutboxNameCollision: two different uploads whose names sanitize to
// the same outbox name must not overwrite each other's engine or report.
func TestOutboxNameCollision(t *testing.T) {
	suite(t)
	needRoot(t)
	e := newEnv(t)
	e.start()
	a, b := identityModel(dimV(11)), identityModel(dimV(12))
	e.drop("a\nb.onnx", a)
	e.waitJobs(1, 60*time.Second)
	e.drop("a_b.onnx", b)
	e.waitJobs(2, 60*time.Second)
	engs := e.engines()
	got := map[string]bool{}
	for _, sum := range engs {
		got[sum] = true
	}
	if !got[hash(a)] || !got[hash(b)] {
		t.Fatalf("outbox engines %v: one upload's engine overwrote the other's (\"a\\nb.onnx\" and \"a_b.onnx\" both publish as a_b.*)", engs)
	}
}
