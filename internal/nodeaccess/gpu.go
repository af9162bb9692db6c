package nodeaccess

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// gpuPatterns are the GPU driver's device files, as globs under /dev:
// /dev/nvidia* on discrete GPUs (nvidiactl, nvidia0, nvidia-uvm); /dev/nvmap,
// /dev/nvhost-* and /dev/nvgpu/*/* on Jetson (root:video 0660 on L4T). The
// CUDA runtime opens them at its first call: on an H200 with CUDA 13,
// cudaGetDeviceCount alone opened /dev/nvidiactl, /dev/nvidia0 and
// /dev/nvidia-uvm.
var gpuPatterns = []string{"nvidia*", "nvmap", "nvhost-*", "nvgpu/*/*"}

// IsGPUNode reports whether path, as /proc/PID/fd's links name an open
// file, is one of the GPU driver's device files: /dev/nvmap, or anything
// under /dev whose name starts nvidia, nvhost- or nvgpu/ (MIG's
// /dev/nvidia-caps/nvidia-capN too). A node removed while open reads
// "PATH (deleted)" and still counts.
func IsGPUNode(path string) bool {
	rel, ok := strings.CutPrefix(strings.TrimSuffix(path, " (deleted)"), "/dev/")
	return ok && (rel == "nvmap" || strings.HasPrefix(rel, "nvidia") || strings.HasPrefix(rel, "nvhost-") || strings.HasPrefix(rel, "nvgpu/"))
}

// toolsOnly reports whether a GPU node is one CUDA does not need to run:
// the debugger's, profilers' and scheduler's, which L4T's udev rules
// (99-tegra-devices.rules) give to group debug or to root alone, not to
// video: nvhost-{dbg,prof,prof-ctx,prof-dev,ctxsw,sched}-gpu and
// nvgpu/*/{dbg,prof,prof-ctx,prof-dev,ctxsw,sched,nvsched}. Asking for
// them would send a correctly set-up worker into group debug, or nowhere.
func toolsOnly(path string) bool {
	base := filepath.Base(path)
	for _, w := range []string{"dbg", "prof", "ctxsw", "sched"} {
		if strings.Contains(base, w) {
			return true
		}
	}
	return false
}

// Node is a GPU device file and whether an identity may open it.
type Node struct {
	Path  string
	Mode  os.FileMode
	Owner string // user:group, as ls names it
	Group string
	OK    bool // the identity may open it read-write
}

func (n Node) String() string {
	return fmt.Sprintf("%s (%s %04o)", n.Path, n.Owner, n.Mode.Perm())
}

// GPUNodes lists the GPU driver's device files a CUDA program opens under
// devDir (/dev, or a test's tree), sorted, each with whether the identity
// uid with the groups gids (Self's) may open it read-write. Directories and
// the tools' nodes (toolsOnly) are left out.
func GPUNodes(devDir string, uid int, gids []uint32) []Node {
	var paths []string
	for _, pat := range gpuPatterns {
		m, _ := filepath.Glob(filepath.Join(devDir, pat))
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	var out []Node
	for _, p := range paths {
		if toolsOnly(p) {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		out = append(out, Node{
			Path: p, Mode: fi.Mode(), Owner: Owner(st.Uid, st.Gid), Group: GroupName(st.Gid),
			OK: CanReadWrite(fi.Mode().Perm(), st.Uid, st.Gid, uid, gids),
		})
	}
	return out
}
