package swap

import (
	"fmt"
	"strconv"
	"strings"
)

// Filesystem magic numbers (statfs f_type) the manager cares about.
const (
	magicExt4     = 0xEF53
	magicXFS      = 0x58465342
	magicBtrfs    = 0x9123683E
	magicF2FS     = 0xF2F52010
	magicTmpfs    = 0x01021994
	magicRamfs    = 0x858458F6
	magicOverlay  = 0x794C7630
	magicNFS      = 0x6969
	magicSMB      = 0x517B
	magicCIFS     = 0xFF534D42
	magicSMB2     = 0xFE534D42
	magicFUSE     = 0x65735546
	magicMSDOS    = 0x4D44
	magicExFAT    = 0x2011BAB0
	magicSquashFS = 0x73717368
	magic9P       = 0x01021997
	magicZFS      = 0x2FC12FC1
	magicCeph     = 0x00C36400
	magicEcryptFS = 0xF15F
)

// fsKind describes how a filesystem can hold a swapfile.
type fsKind struct {
	Name string
	// Refuse is the reason the filesystem cannot hold a swapfile ("" = ok).
	Refuse string
	// Fallocate is true where fallocate'd extents are accepted by swapon.
	Fallocate bool
	// NOCOW is true on btrfs: the file needs the NOCOW attribute before data.
	NOCOW bool
}

// classifyFS maps a statfs type to what the manager may do there. kernel is
// the running kernel release (uname -r), for XFS's fallocate support.
func classifyFS(magic int64, kernel string) fsKind {
	switch uint32(magic) {
	case magicExt4:
		return fsKind{Name: "ext4", Fallocate: true}
	case magicXFS:
		// XFS accepts preallocated swapfiles since Linux 4.18.
		return fsKind{Name: "xfs", Fallocate: kernelAtLeast(kernel, 4, 18)}
	case magicBtrfs:
		return fsKind{Name: "btrfs", Fallocate: true, NOCOW: true}
	case magicF2FS:
		// f2fs returns EINVAL for swapfiles with unwritten extents: write zeroes.
		return fsKind{Name: "f2fs"}
	case magicTmpfs:
		return fsKind{Name: "tmpfs", Refuse: "tmpfs lives in RAM (and swapon rejects it with EINVAL): a swapfile there frees nothing"}
	case magicRamfs:
		return fsKind{Name: "ramfs", Refuse: "ramfs lives in RAM: a swapfile there frees nothing"}
	case magicOverlay:
		return fsKind{Name: "overlayfs", Refuse: "overlayfs cannot hold a swapfile (swapon fails with EINVAL, and on an overlay root the file lands in the RAM-backed upper layer)"}
	case magicNFS:
		return fsKind{Name: "nfs", Refuse: "swap over NFS is unreliable and may deadlock under memory pressure"}
	case magicSMB, magicCIFS, magicSMB2:
		return fsKind{Name: "smb", Refuse: "swap over a network filesystem (SMB/CIFS) is not supported"}
	case magicFUSE:
		return fsKind{Name: "fuse", Refuse: "FUSE filesystems cannot hold a swapfile"}
	case magicMSDOS:
		return fsKind{Name: "vfat", Refuse: "vfat cannot hold a swapfile (no unix permissions, no files of 4 GiB or more)"}
	case magicExFAT:
		return fsKind{Name: "exfat", Refuse: "exfat cannot hold a swapfile"}
	case magicSquashFS:
		return fsKind{Name: "squashfs", Refuse: "squashfs is read-only"}
	case magic9P:
		return fsKind{Name: "9p", Refuse: "9p (a network/virtual filesystem) cannot hold a swapfile"}
	case magicZFS:
		return fsKind{Name: "zfs", Refuse: "swapfiles on ZFS are not supported by Linux (use a zvol instead)"}
	case magicCeph:
		return fsKind{Name: "ceph", Refuse: "swap over a network filesystem (ceph) is not supported"}
	case magicEcryptFS:
		return fsKind{Name: "ecryptfs", Refuse: "ecryptfs cannot hold a swapfile"}
	}
	// Unknown local filesystems: try, writing zeroes (the portable way), and
	// let swapon plus the /proc/swaps check decide.
	return fsKind{Name: fmt.Sprintf("0x%x", uint32(magic))}
}

func kernelAtLeast(release string, major, minor int) bool {
	f := strings.FieldsFunc(release, func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(f[0])
	mi, _ := strconv.Atoi(f[1])
	return ma > major || ma == major && mi >= minor
}
