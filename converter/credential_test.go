package converter

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWorkerCredentialSupplementaryGroups creates a real user in a real
// group named like L4T's video group (and one it is not in), starts a
// process with the credential and reads the groups the kernel gave it.
func TestWorkerCredentialSupplementaryGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs useradd and id")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create users and switch to them")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e8)
	gpu, other, usr := "tvid"+sfx, "toth"+sfx, "tusr"+sfx
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("groupadd", gpu)
	t.Cleanup(func() { exec.Command("groupdel", gpu).Run() })
	run("groupadd", other)
	t.Cleanup(func() { exec.Command("groupdel", other).Run() })
	run("useradd", "--system", "--no-create-home", "--user-group", "--groups", gpu, usr)
	t.Cleanup(func() { exec.Command("userdel", usr).Run(); exec.Command("groupdel", usr).Run() })

	cred, err := WorkerCredential(usr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/id", "-Gn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	has := func(g string) bool {
		for _, x := range got {
			if x == g {
				return true
			}
		}
		return false
	}
	if !has(usr) || !has(gpu) || has(other) || has("root") {
		t.Errorf("groups of the worker = %v; want %s and %s only", got, usr, gpu)
	}
	// What the daemon did before: no supplementary groups at all.
	cmd = exec.Command("/usr/bin/id", "-Gn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: cred.Uid, Gid: cred.Gid, Groups: []uint32{}}}
	if out, _ := cmd.Output(); strings.Contains(string(out), gpu) {
		t.Errorf("control: empty Groups still gave %s", out)
	}
	if _, err := WorkerCredential("no-such-user-" + sfx); err == nil {
		t.Error("unknown user accepted")
	}
}
