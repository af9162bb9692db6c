// Package systemd holds trtd's unit file; this test keeps docs/PACKAGING.md
// true about which of its directives systemd 237 (Jetson Nano, Ubuntu
// 18.04) does not know.
package systemd

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// since is the systemd release that introduced each directive the unit
// uses (systemd's NEWS file); 0 = known long before 237.
var since = map[string]int{
	"After": 0, "AmbientCapabilities": 0, "CapabilityBoundingSet": 0, "Delegate": 0, "Description": 0, "Documentation": 0,
	"ExecStart": 0, "KeyringMode": 235, "KillMode": 0, "LockPersonality": 235, "NoNewPrivileges": 0, "NotifyAccess": 0,
	"OOMScoreAdjust": 0, "PrivateNetwork": 0, "PrivateTmp": 0, "ProtectControlGroups": 0, "ProtectHome": 0,
	"ProtectKernelModules": 0, "ProtectKernelTunables": 0, "ProtectSystem": 0, "ReadWritePaths": 0, "Restart": 0,
	"RestartSec": 0, "RestrictAddressFamilies": 0, "RestrictNamespaces": 0, "RestrictRealtime": 0, "RuntimeDirectory": 0,
	"RuntimeDirectoryMode": 0, "StartLimitBurst": 0, "StartLimitIntervalSec": 0, "StateDirectory": 235,
	"StateDirectoryMode": 235, "SystemCallArchitectures": 0, "SystemCallErrorNumber": 0, "SystemCallFilter": 0,
	"TimeoutStartSec": 0, "TimeoutStopSec": 0, "Type": 0, "UMask": 0, "WantedBy": 0, "WatchdogSec": 0,
	// Newer than 237: ignored there with a warning.
	"PrivateMounts": 239, "ProtectHostname": 242, "RestrictSUIDSGID": 242, "OOMPolicy": 243,
	"ProtectKernelLogs": 244, "ProtectClock": 245, "PrivateIPC": 248,
}

const nanoSystemd = 237

func TestOlderSystemdDocListsEveryIgnoredDirective(t *testing.T) {
	f, err := os.Open("trtd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	used := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
			used[k] = true
		}
	}
	doc, err := os.ReadFile("../docs/PACKAGING.md")
	if err != nil {
		t.Fatal(err)
	}
	sect := string(doc)
	if i := strings.Index(sect, "### Older systemd"); i >= 0 {
		sect = sect[i:]
		if j := strings.Index(sect[4:], "\n## "); j >= 0 {
			sect = sect[:j+4]
		}
	} else {
		t.Fatal(`docs/PACKAGING.md has no "### Older systemd" section`)
	}
	for k := range used {
		v, ok := since[k]
		if !ok {
			t.Errorf("the unit uses %s=: add the systemd release that introduced it to this test", k)
			continue
		}
		if v > nanoSystemd && !strings.Contains(sect, "`"+k+"=`") {
			t.Errorf("%s= needs systemd %d; docs/PACKAGING.md's \"Older systemd\" does not list it among the directives systemd %d ignores", k, v, nanoSystemd)
		}
	}
}
