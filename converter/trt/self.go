package trt

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/trtd/trtd/converter/protocol"
)

// cudaCalls counts the CUDA probes of this process (each may create a CUDA
// context: cudaSetDevice does from CUDA 12.0, cudaMemGetInfo in every
// release).
var cudaCalls atomic.Int64

// CUDACalls is how many times this process has probed the CUDA runtime. A
// worker that delegates to trtexec must not have: the context would cost a
// Jetson Nano about 230 MiB while trtexec builds beside it.
func CUDACalls() int64 { return cudaCalls.Load() }

// gpuNode reports whether a device file belongs to the GPU driver:
// /dev/nvidia<N> and /dev/nvidia-uvm on discrete GPUs (a context opens
// them; cuInit alone opens only /dev/nvidiactl), /dev/nvmap, /dev/nvhost-*
// and /dev/nvgpu/* on Jetson.
func gpuNode(target string) bool {
	switch {
	case target == "/dev/nvidiactl":
		return false
	case strings.HasPrefix(target, "/dev/nvidia"), target == "/dev/nvmap",
		strings.HasPrefix(target, "/dev/nvhost-"), strings.HasPrefix(target, "/dev/nvgpu/"):
		return true
	}
	return false
}

// GPUFiles lists the GPU device files open in a process, read from its fd
// directory (/proc/self/fd).
func GPUFiles(fdDir string) []string {
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && gpuNode(t) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// SelfMemory is this process's footprint now: its resident set (gopsutil)
// and whether it has GPU device files open, i.e. holds a CUDA context.
func SelfMemory(at string) *protocol.WorkerMemory {
	m := &protocol.WorkerMemory{At: at, CUDAContext: len(GPUFiles("/proc/self/fd")) > 0}
	if p, err := process.NewProcess(int32(os.Getpid())); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			m.RSSBytes = int64(mi.RSS)
		}
	}
	return m
}
