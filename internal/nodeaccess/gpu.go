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
// file, is one of the GPU driver's device files.
func IsGPUNode(path string) bool {
	rel, ok := strings.CutPrefix(path, "/dev/")
	if !ok {
		return false
	}
	for _, p := range gpuPatterns {
		if m, _ := filepath.Match(p, rel); m {
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

// GPUNodes lists the GPU driver's device files under devDir (/dev, or a
// test's tree), sorted, each with whether the identity uid with the groups
// gids (Self's) may open it read-write. Directories are not nodes.
func GPUNodes(devDir string, uid int, gids []uint32) []Node {
	var paths []string
	for _, pat := range gpuPatterns {
		m, _ := filepath.Glob(filepath.Join(devDir, pat))
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	var out []Node
	for _, p := range paths {
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
