package trt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// devDir lays out L4T's GPU nodes as regular files with L4T's modes
// (root:video 0660 on /dev/nvmap and /dev/nvhost-*; here owned by the test's
// own uid and gid) and returns the dir and the gid that owns them.
func devDir(t *testing.T) (string, uint32) {
	t.Helper()
	d := t.TempDir()
	for _, n := range []string{"nvmap", "nvhost-ctrl-gpu", "nvhost-as-gpu", "nvidiactl"} {
		p := filepath.Join(d, n)
		if err := os.WriteFile(p, nil, 0o660); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o660)
	}
	os.WriteFile(filepath.Join(d, "null"), nil, 0o666)
	fi, _ := os.Stat(filepath.Join(d, "nvmap"))
	return d, fi.Sys().(*syscall.Stat_t).Gid
}

func TestBlockedGPUNodes(t *testing.T) {
	d, gid := devDir(t)
	stranger, strangerGroups := 99999, []uint32{99999}
	blocked, any := BlockedGPUNodes(d, stranger, strangerGroups)
	if !any || len(blocked) != 4 {
		t.Fatalf("blocked %v any %v", blocked, any)
	}
	if !strings.HasSuffix(blocked[0].String(), " 0660)") {
		t.Errorf("%s", blocked[0])
	}
	if b, _ := BlockedGPUNodes(d, 99999, []uint32{99999, gid}); len(b) != 0 {
		t.Errorf("a member of the nodes' group is blocked: %v", b)
	}
	if b, _ := BlockedGPUNodes(d, 0, nil); len(b) != 0 {
		t.Errorf("root blocked: %v", b)
	}
	if _, any := BlockedGPUNodes(t.TempDir(), stranger, strangerGroups); any {
		t.Error("GPU nodes found in an empty dir")
	}
}

// The CUDA runtime's answer to a process that cannot open the device nodes
// (cudaErrorNoDevice on a discrete GPU, cudaErrorInsufficientDriver after
// Jetson's "NvRmMemInitNvmap failed with Permission denied") becomes
// builder_unavailable with the fix in the reason.
func TestCUDAUnavailable(t *testing.T) {
	d, gid := devDir(t)
	stranger, strangerGroups := 99999, []uint32{99999}
	for _, c := range []struct {
		name string
		code int
		err  string
		want string
	}{
		{"no device", CUDAErrorNoDevice, "cudaGetDeviceCount: cudaErrorNoDevice: no CUDA-capable device is detected", "add "},
		{"insufficient driver", CUDAErrorInsufficientDriver, "cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version", "to group "},
		{"nvmap", 999, "NvRmMemInitNvmap failed with Permission denied", "sudo usermod -aG "},
	} {
		msg := CUDAUnavailable(c.code, errors.New(c.err), d, stranger, strangerGroups)
		if !strings.HasPrefix(msg, "no usable GPU: "+c.err) || !strings.Contains(msg, c.want) || !strings.Contains(msg, filepath.Join(d, "nvmap")) || !strings.Contains(msg, "and restart trtd") {
			t.Errorf("%s: %q", c.name, msg)
		}
	}
	// Out of memory is no permission problem.
	if msg := CUDAUnavailable(2, errors.New("cudaMemGetInfo: cudaErrorMemoryAllocation: out of memory"), d, stranger, strangerGroups); strings.Contains(msg, "group") {
		t.Errorf("oom: %q", msg)
	}
	// A group member with the same error: no group advice.
	if msg := CUDAUnavailable(CUDAErrorNoDevice, errors.New("cudaErrorNoDevice"), d, 99999, []uint32{gid}); strings.Contains(msg, "usermod") {
		t.Errorf("member: %q", msg)
	}
	if msg := CUDAUnavailable(CUDAErrorNoDevice, errors.New("cudaErrorNoDevice"), t.TempDir(), stranger, strangerGroups); !strings.Contains(msg, "no NVIDIA device nodes") {
		t.Errorf("no nodes: %q", msg)
	}
}

func TestGPUFiles(t *testing.T) {
	fd := t.TempDir()
	for name, target := range map[string]string{"0": "/dev/null", "3": "/dev/nvidiactl", "4": "/dev/nvidia0", "5": "/dev/nvidia-uvm", "6": "/dev/nvmap", "7": "/dev/nvhost-ctrl-gpu", "8": "/dev/nvidia0"} {
		os.Symlink(target, filepath.Join(fd, name))
	}
	got := strings.Join(GPUFiles(fd), " ")
	if got != "/dev/nvhost-ctrl-gpu /dev/nvidia-uvm /dev/nvidia0 /dev/nvidiactl /dev/nvmap" {
		t.Errorf("GPUFiles = %q", got)
	}
	if m := SelfMemory("test"); m.RSSBytes <= 0 || m.At != "test" {
		t.Errorf("SelfMemory = %+v", m)
	}
}
