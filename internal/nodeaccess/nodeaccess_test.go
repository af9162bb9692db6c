package nodeaccess

import (
	"os"
	"os/user"
	"testing"
)

func TestCanReadWrite(t *testing.T) {
	const owner, group = 1000, 44 // a user and group video
	for _, c := range []struct {
		name string
		perm uint32
		uid  int
		gids []uint32
		want bool
	}{
		{"root opens anything", 0o000, 0, nil, true},
		{"owner with rw", 0o600, owner, nil, true},
		{"owner without w", 0o466, owner, []uint32{group}, false}, // the owner's class only
		{"group member rw", 0o660, 2000, []uint32{5, group}, true},
		{"group member without rw", 0o606, 2000, []uint32{group}, false},
		{"outsider, L4T's 0660", 0o660, 2000, []uint32{5}, false},
		{"outsider, others rw", 0o666, 2000, nil, true},
	} {
		if got := CanReadWrite(fileMode(c.perm), owner, group, c.uid, c.gids); got != c.want {
			t.Errorf("%s: CanReadWrite(%04o) = %v, want %v", c.name, c.perm, got, c.want)
		}
	}
}

func TestNames(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Skip("no user 0 in this system's user database")
	}
	g, err := user.LookupGroupId("0")
	if err != nil {
		t.Skip("no group 0 in this system's group database")
	}
	if got, want := Owner(0, 0), root.Username+":"+g.Name; got != want {
		t.Errorf("Owner(0, 0) = %q, want %q", got, want)
	}
	// An id nobody has stays a number.
	const none = 3999999999
	if got := Owner(none, none); got != "3999999999:3999999999" {
		t.Errorf("Owner of an unknown id = %q, want the numbers", got)
	}
	if got := GroupNames([]uint32{0, none}); len(got) != 2 || got[0] != g.Name || got[1] != "3999999999" {
		t.Errorf("GroupNames = %q", got)
	}
}

func fileMode(p uint32) os.FileMode { return os.FileMode(p) }

func TestSelf(t *testing.T) {
	uid, gids := Self()
	if uid != os.Getuid() || len(gids) == 0 || gids[0] != uint32(os.Getgid()) {
		t.Fatalf("Self() = %d, %v; want uid %d and primary group %d first", uid, gids, os.Getuid(), os.Getgid())
	}
	seen := map[uint32]bool{}
	for _, g := range gids {
		if seen[g] {
			t.Errorf("group %d twice in %v", g, gids)
		}
		seen[g] = true
	}
}
