package trt

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/internal/nodeaccess"
)

// CUDA runtime error codes (cudaError_t, CUDA's driver_types.h) that a
// process gets when it cannot open the GPU's device nodes. Observed on an
// H200 with CUDA 13 run by a user outside the nodes' group: see
// docs/TENSORRT.md.
const (
	CUDAErrorInsufficientDriver = 35
	CUDAErrorNoDevice           = 100
)

// BlockedGPUNodes lists the GPU device nodes under devDir that the identity
// uid with the groups gids (nodeaccess.Self's) cannot open, and whether any
// GPU node exists at all.
func BlockedGPUNodes(devDir string, uid int, gids []uint32) (blocked []nodeaccess.Node, any bool) {
	nodes := nodeaccess.GPUNodes(devDir, uid, gids)
	for _, n := range nodes {
		if !n.OK {
			blocked = append(blocked, n)
		}
	}
	return blocked, len(nodes) > 0
}

// permissionFailure reports whether a CUDA failure looks like one of
// device-node access: the runtime's codes for it, or the Jetson memory
// manager's "NvRmMemInitNvmap failed ... Permission denied".
func permissionFailure(code int, msg string) bool {
	return code == CUDAErrorNoDevice || code == CUDAErrorInsufficientDriver ||
		strings.Contains(msg, "NvRmMemInitNvmap") || strings.Contains(msg, "Permission denied")
}

// CUDAUnavailable explains a CUDA failure for the report: when the GPU's
// device nodes exist but this process may not open them, it names them and
// the fix (the worker's user into the nodes' group). uid and gids are the
// process's identity (nodeaccess.Self).
func CUDAUnavailable(code int, err error, devDir string, uid int, gids []uint32) string {
	msg := "no usable GPU: " + err.Error()
	if !permissionFailure(code, err.Error()) {
		return msg
	}
	blocked, any := BlockedGPUNodes(devDir, uid, gids)
	switch {
	case len(blocked) > 0:
		var names []string
		groups := map[string]bool{}
		for _, b := range blocked {
			names = append(names, b.String())
			groups[b.Group] = true
		}
		var gs []string
		for g := range groups {
			gs = append(gs, g)
		}
		sort.Strings(gs)
		user := "trtd" // when no user has the uid, UserName gives it back as a number
		if u := nodeaccess.UserName(uint32(uid)); u != strconv.Itoa(uid) {
			user = u
		}
		msg += fmt.Sprintf("; this worker (uid %d) cannot open %s: add %s to group %s (sudo usermod -aG %s %s) and restart trtd",
			uid, strings.Join(names, ", "), user, strings.Join(gs, " and "), strings.Join(gs, ","), user)
	case !any:
		msg += fmt.Sprintf("; no NVIDIA device nodes in %s: is the GPU driver loaded?", devDir)
	}
	return msg
}

// cudaUnavailable is CUDAUnavailable for this process.
func cudaUnavailable(ci CUDAInfo, err error, devDir string) string {
	uid, gids := nodeaccess.Self()
	return CUDAUnavailable(ci.Error, err, devDir, uid, gids)
}
