package converter

import (
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"syscall"
)

// WorkerCredential is the identity the worker runs as: name's uid, its
// primary gid and every group it is a member of, as initgroups(3) would
// set them (os/user's GroupIds: the primary group plus each group of
// /etc/group listing the user). On L4T the GPU nodes /dev/nvmap and
// /dev/nvhost-* are root:video 0660 (the render nodes root:render), so a
// worker started with no supplementary groups cannot open the GPU, and CUDA
// reports no device at all.
func WorkerCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("worker.user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("worker.user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("worker.user %q: gid %q: %w", name, u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("worker.user %q: its groups: %w", name, err)
	}
	groups := []uint32{uint32(gid)}
	for _, s := range ids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("worker.user %q: group id %q: %w", name, s, err)
		}
		if uint32(g) != uint32(gid) {
			groups = append(groups, uint32(g))
		}
	}
	sort.Slice(groups[1:], func(i, j int) bool { return groups[1+i] < groups[1+j] })
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}
