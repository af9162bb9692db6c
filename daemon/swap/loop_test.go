package swap

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// needRoot skips tests that swapon, mount or losetup for real.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping real swapfiles on loop devices")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates loop devices, mounts and real swapfiles")
	}
	for _, tool := range []string{"mkswap", "swapon", "swapoff", "mkfs.ext4", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Skipf("needs %s (util-linux / e2fsprogs)", tool)
			}
		}
	}
}

// loopExt4 returns the mount point of a fresh ext4 filesystem of sizeMiB on
// a loop device. Cleanup swaps off anything under it, unmounts and detaches.
func loopExt4(t *testing.T, sizeMiB int64) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device available: losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() {
		swapoffUnder(t, mnt)
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return mnt
}

// swapoffUnder swaps off every active swap below dir (the safety net that
// keeps a failed test from leaking swap on the build machine).
func swapoffUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/swaps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], dir+"/") {
			continue
		}
		if out, err := exec.Command("swapoff", fields[0]).CombinedOutput(); err != nil {
			t.Errorf("cleanup swapoff %s: %v: %s", fields[0], err, out)
		}
	}
}

// mountTmpfs mounts a small tmpfs on a temp dir.
func mountTmpfs(t *testing.T) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// manualSwap makes and activates a swapfile outside the manager.
func manualSwap(t *testing.T, path string, size int64, prio string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("mkswap", path).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v: %s", err, out)
	}
	args := []string{path}
	if prio != "" {
		args = []string{"-p", prio, path}
	}
	if out, err := exec.Command("swapon", args...).CombinedOutput(); err != nil {
		t.Fatalf("swapon: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("swapoff", path).Run() })
}
