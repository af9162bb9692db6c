package selftest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/internal/nodeaccess"
)

// The GPU node check lists the nodes the worker's user cannot open and
// names the nodes' own group in the fix (L4T: root:video 0660), leaving
// out the debugger's and profilers' nodes, which are not video's.
func TestCheckDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the nodes another group")
	}
	d := t.TempDir()
	const gid = 44 // video on Debian and L4T
	nodes := map[string]uint32{"nvmap": gid, "nvhost-ctrl-gpu": gid, "null": gid,
		// The tools' nodes: L4T gives them to group debug (or root alone),
		// and CUDA does not open them; a member of video passes without.
		"nvhost-dbg-gpu": 4242, "nvhost-prof-gpu": 4242, "nvhost-sched-gpu": 0}
	for n, g := range nodes {
		p := filepath.Join(d, n)
		if err := os.WriteFile(p, nil, 0o660); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o660); err != nil { // past the umask
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, int(g)); err != nil {
			t.Fatal(err)
		}
	}
	group := nodeaccess.GroupName(gid)
	for _, c := range []struct {
		name string
		gids []uint32
		pass bool
	}{{"stranger", []uint32{99999}, false}, {"member", []uint32{99999, gid}, true}} {
		r := &Result{Identity: Identity{User: "trtd", UID: 99999, gids: c.gids}}
		r.Devices = devices(d, r.Identity)
		r.checkDevices()
		if len(r.Devices) != 2 || len(r.Checks) != 1 {
			t.Fatalf("%s: devices %+v checks %+v", c.name, r.Devices, r.Checks)
		}
		ch := r.Checks[0]
		if ch.Pass != c.pass {
			t.Errorf("%s: %+v", c.name, ch)
		}
		if !c.pass && (!strings.Contains(ch.Detail, "trtd cannot open "+filepath.Join(d, "nvhost-ctrl-gpu")+" (") || !strings.Contains(ch.Detail, filepath.Join(d, "nvmap")+" (") ||
			ch.Fix != "sudo usermod -aG "+group+" trtd && sudo systemctl restart trtd") {
			t.Errorf("%s: detail %q fix %q", c.name, ch.Detail, ch.Fix)
		}
	}
}
