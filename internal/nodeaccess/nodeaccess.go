// Package nodeaccess answers, without opening anything, whether a user may
// open a device node read-write, and names a node's owner: the one place
// trtd applies Unix permission bits to an identity, turns uids and gids
// into names, and says which device files are the GPU's (the selftest's
// node check, the worker's explanation of a CUDA failure, and its test for
// a CUDA context).
package nodeaccess

import (
	"os"
	"os/user"
	"strconv"
)

// CanReadWrite reports whether the identity uid with the groups gids may
// open a file of permission bits perm, owned by owner:group, for reading
// and writing. Like the kernel it looks at one class only: the owner's
// bits when uid owns the file, else the group's when one of gids is its
// group, else the others'. Root may open anything.
func CanReadWrite(perm os.FileMode, owner, group uint32, uid int, gids []uint32) bool {
	if uid == 0 {
		return true
	}
	if uint32(uid) == owner {
		return perm&0o600 == 0o600
	}
	for _, g := range gids {
		if g == group {
			return perm&0o060 == 0o060
		}
	}
	return perm&0o006 == 0o006
}

// Self is this process's identity for CanReadWrite: its uid, and its
// primary group followed by its supplementary groups (each once). trtd is
// never setuid, so real and effective ids are the same.
func Self() (uid int, gids []uint32) {
	gids = []uint32{uint32(os.Getgid())}
	gs, _ := os.Getgroups()
	for _, g := range gs {
		if uint32(g) != gids[0] {
			gids = append(gids, uint32(g))
		}
	}
	return os.Getuid(), gids
}

// UserName is uid's login name, or the number when no user has it.
func UserName(uid uint32) string {
	s := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(s); err == nil {
		return u.Username
	}
	return s
}

// GroupName is gid's group name, or the number when no group has it.
func GroupName(gid uint32) string {
	s := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(s); err == nil {
		return g.Name
	}
	return s
}

// Owner names a file's owner as ls does: "root:video".
func Owner(uid, gid uint32) string { return UserName(uid) + ":" + GroupName(gid) }

// GroupNames names each of gids.
func GroupNames(gids []uint32) []string {
	var out []string
	for _, g := range gids {
		out = append(out, GroupName(g))
	}
	return out
}
