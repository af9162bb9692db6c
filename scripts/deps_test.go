// Package scripts holds the shell scripts the Makefile runs; this test
// checks scripts/deps.sh.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make deps says what it installs and why before installing, and leaves
// no service enabled that was not: the installer here stands for a
// package whose maintainer script enables its unit (openssh-server's
// enables ssh.service) and would start it unless policy-rc.d forbids it.
func TestDepsSaysWhatAndLeavesNoServiceEnabled(t *testing.T) {
	if testing.Short() {
		t.Skip("-short runs no external tools (bash)")
	}
	root := t.TempDir()
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	os.Symlink("/lib/systemd/system/cron.service", filepath.Join(wants, "cron.service")) // enabled before: stays
	installer := filepath.Join(root, "install.sh")
	log := filepath.Join(root, "install.log")
	os.WriteFile(installer, []byte(`#!/bin/sh
echo "install $*" >> `+log+`
# what deb-systemd-invoke asks before starting a daemon
if [ -x "`+root+`/usr/sbin/policy-rc.d" ]; then "`+root+`/usr/sbin/policy-rc.d" ssh start; echo "policy $?" >> `+log+`; fi
ln -s /lib/systemd/system/ssh.service "`+wants+`/ssh.service"
`), 0o755)
	cmd := exec.Command("bash", "deps.sh")
	cmd.Env = append(os.Environ(), "TRTD_DEPS_ROOT="+root, "TRTD_DEPS_INSTALL="+installer,
		"TRTD_DEPS_TABLE=trtd-no-such-package-a|why a\ntrtd-no-such-package-b|why b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deps.sh: %v\n%s", err, out)
	}
	s := string(out)
	say := strings.Index(s, "trtd-no-such-package-a")
	if say < 0 || !strings.Contains(s, "why a") || !strings.Contains(s, "why b") {
		t.Errorf("output does not say what and why:\n%s", s)
	}
	data, _ := os.ReadFile(log)
	if !strings.Contains(string(data), "install trtd-no-such-package-a trtd-no-such-package-b") {
		t.Errorf("installer ran as %q", data)
	}
	if !strings.Contains(string(data), "policy 101") {
		t.Errorf("services could start during the install: %q", data)
	}
	if _, err := os.Lstat(filepath.Join(wants, "ssh.service")); err == nil {
		t.Error("ssh.service was left enabled")
	}
	if _, err := os.Lstat(filepath.Join(wants, "cron.service")); err != nil {
		t.Error("a unit enabled before was disabled")
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/sbin/policy-rc.d")); err == nil {
		t.Error("policy-rc.d left behind")
	}
	if !strings.Contains(s, "left ssh.service disabled") {
		t.Errorf("output does not say ssh.service was left disabled:\n%s", s)
	}
	// --dry only says.
	cmd = exec.Command("bash", "deps.sh", "--dry")
	cmd.Env = append(os.Environ(), "TRTD_DEPS_ROOT="+root, "TRTD_DEPS_INSTALL=/bin/false", "TRTD_DEPS_TABLE=trtd-no-such-package-a|why a")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "why a") {
		t.Errorf("--dry: %v\n%s", err, out)
	}
}
