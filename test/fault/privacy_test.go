package fault

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

// realUser creates a system user for the test (removed at its end).
func realUser(t *testing.T, name, group string, primary bool) (uid, gid int) {
	t.Helper()
	args := []string{"--system", "--no-create-home", "--shell", "/usr/sbin/nologin"}
	if primary {
		args = append(args, "--gid", group)
	} else {
		args = append(args, "--groups", group)
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Skipf("useradd %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// TestUploadsPrivateFromOtherUploaders (F-19), with real users: the worker
// and two uploaders share one group, as the package sets it up (uploaders
// are added to the worker's group). Alice uploads a 0600 model; once it is
// claimed and built, Bob, in the same group, cannot read it in the job
// store (the claim used to make it group-readable for the worker).
func TestUploadsPrivateFromOtherUploaders(t *testing.T) {
	suite(t)
	needRoot(t)
	for _, b := range []string{"useradd", "userdel", "groupadd", "groupdel"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("needs %s (passwd)", b)
		}
	}
	sfx := strconv.Itoa(rand.New(rand.NewSource(time.Now().UnixNano())).Intn(1 << 20))
	group := "trtdt" + sfx
	if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
		t.Skipf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	worker := "trtdw" + sfx
	realUser(t, worker, group, true)
	aliceUID, _ := realUser(t, "trtda"+sfx, group, false)
	bobUID, bobGID := realUser(t, "trtdb"+sfx, group, false)
	g, _ := user.LookupGroup(group)
	groupID, _ := strconv.Atoi(g.Gid)

	e := newEnv(t)
	b, _ := os.ReadFile(e.cfgPath)
	os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), `user = ""`, fmt.Sprintf("user = %q", worker), 1)), 0o644)
	e.start()
	p := filepath.Join(e.inbox, ".up")
	os.WriteFile(p, testmodels.TinyCNN, 0o600)
	os.Chown(p, aliceUID, groupID)
	os.Rename(p, filepath.Join(e.inbox, "alice.onnx"))
	js := e.waitJobs(1, 60*time.Second)
	if js[0].State != "done" {
		t.Fatalf("alice's 0600 upload was not built: %s", js[0].Reason)
	}
	kept := filepath.Join(e.state, "jobs", js[0].ID, "model", "alice.onnx")
	// Every directory on the way is traversable: only the file's own mode
	// can keep Bob out.
	for d := filepath.Dir(kept); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	read := func(uid, gid int) error {
		cmd := exec.Command("cat", kept)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(groupID)}}}
		return cmd.Run()
	}
	if err := read(bobUID, bobGID); err == nil {
		fi, _ := os.Stat(kept)
		t.Fatalf("bob, another uploader in the worker's group, can read alice's private model (%s)", fi.Mode())
	}
}
