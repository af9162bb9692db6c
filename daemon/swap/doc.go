// Package swap provides, grows and releases trtd's own swapfiles.
//
// The daemon owns at most the files it created in the configured directory;
// they are listed in a marker file under the state directory, written before
// a file is created, so that a crash at any step can be reconciled on the
// next start: marker vs /proc/swaps vs the files on disk. It never touches
// zram devices, swap it did not create, or /etc/fstab.
//
// Creation refuses filesystems that cannot hold a swapfile (tmpfs, ramfs,
// overlayfs, NFS, SMB, FUSE, vfat/exfat, squashfs and btrfs without NOCOW),
// checks free space against the size plus a reserve, preallocates with
// fallocate where the filesystem supports it for swap (ext4, xfs) and writes
// zeroes in chunks otherwise (or when swapon reports holes), makes the file
// root-owned 0600, runs mkswap and swapon with a priority below every other
// swap device, and verifies the result in /proc/swaps instead of trusting
// exit codes.
//
// Growing adds a new, larger file, swaps it on and only then swaps the old
// one off, and only when MemAvailable covers what the old file holds. No
// swapoff happens while a build runs (SetBusy), including from another
// process: the busy flag is a file under the state directory holding the
// daemon's pid.
package swap
