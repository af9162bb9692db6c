// Package packaging_test checks the package's scripts and systemd unit
// against what a Jetson needs to let the worker open its GPU.
package packaging_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// deviceBinding lists the directives that put the service into a device
// allow-list, with the systemd release that knows each. Any one of them
// shuts /dev/nvmap and /dev/nvhost-* out: systemd.resource-control(5),
// DevicePolicy=auto "allows access to all devices if no explicit
// DeviceAllow= is present"; systemd.exec(5), ProtectClock= implies
// "DeviceAllow=char-rtc r" and PrivateDevices= a private /dev.
var deviceBinding = map[string]string{
	"PrivateDevices": "every release",
	"DevicePolicy":   "every release",
	"DeviceAllow":    "every release",
	"ProtectClock":   "systemd 245 and later (JetPack 5, 6)",
}

func TestUnitLeavesGPUNodesOpen(t *testing.T) {
	f, err := os.Open("../systemd/trtd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, "=")
		if why, ok := deviceBinding[key]; ok && !(key == "DevicePolicy" && val == "auto") && val != "no" && val != "false" {
			t.Errorf("systemd/trtd.service:%d: %s binds the device cgroup (%s) and blocks the Jetson GPU nodes", n, line, why)
		}
	}
}

// TestPostinstGPUGroups runs the postinst's gpu_groups on a real user: it
// must join the GPU groups that exist, once, and skip those that do not.
func TestPostinstGPUGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs useradd and id")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create users")
	}
	for _, tool := range []string{"useradd", "adduser", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
	body, err := os.ReadFile("scripts/postinst")
	if err != nil {
		t.Fatal(err)
	}
	fn := extractFunc(t, string(body), "gpu_groups")
	if !strings.Contains(string(body), "\tgpu_groups trtd\n") {
		t.Error("postinst does not call gpu_groups trtd on configure")
	}
	usr := fmt.Sprintf("tpkg%d", time.Now().UnixNano()%1e8)
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group", usr).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", usr).Run(); exec.Command("groupdel", usr).Run() })
	// Twice: the second run must change nothing and not fail.
	for i := 0; i < 2; i++ {
		if out, err := exec.Command("sh", "-ec", fn+"\ngpu_groups "+usr).CombinedOutput(); err != nil {
			t.Fatalf("gpu_groups (run %d): %v\n%s", i+1, err, out)
		}
	}
	out, err := exec.Command("id", "-nG", usr).Output()
	if err != nil {
		t.Fatal(err)
	}
	groups := strings.Fields(string(out))
	for _, g := range []string{"video", "render"} {
		exists := exec.Command("getent", "group", g).Run() == nil
		if in := contains(groups, g); in != exists {
			t.Errorf("group %s exists=%v, user in it=%v (groups %v)", g, exists, in, groups)
		}
	}
}

func extractFunc(t *testing.T, script, name string) string {
	t.Helper()
	start := strings.Index(script, "\n"+name+"() {")
	if start < 0 {
		t.Fatalf("no %s() in postinst", name)
	}
	end := strings.Index(script[start:], "\n}\n")
	if end < 0 {
		t.Fatalf("%s() not closed", name)
	}
	return script[start+1 : start+end+3]
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
