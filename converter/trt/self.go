package trt

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/bytesize"
	"github.com/trtd/trtd/internal/nodeaccess"
)

// cudaCalls counts the CUDA probes of this process (each may create a CUDA
// context: cudaSetDevice does from CUDA 12.0, cudaMemGetInfo in every
// release).
var cudaCalls atomic.Int64

// CUDACalls is how many times this process has probed the CUDA runtime. A
// worker that delegates to trtexec must not have: the context would cost a
// Jetson Nano about 230 MiB while trtexec builds beside it.
func CUDACalls() int64 { return cudaCalls.Load() }

// GPUFiles lists the GPU device files (nodeaccess.IsGPUNode) open in a
// process, read from its fd directory (/proc/self/fd). Any means a CUDA
// runtime was initialised: on an H200 with CUDA 13 cudaGetDeviceCount
// alone opened three of them (RSS 16.2 -> 23.1 MiB), and cudaSetDevice
// then created the context (RSS 119 MiB, 518 MiB of device memory).
func GPUFiles(fdDir string) []string {
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && nodeaccess.IsGPUNode(t) && !seen[t] {
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

// WorkerLine renders m for the report's list of calls: "worker at trtexec
// start: RSS 9.2 MiB, no CUDA context".
func WorkerLine(m *protocol.WorkerMemory) string {
	ctx := "no CUDA context"
	if m.CUDAContext {
		ctx = "CUDA initialised (GPU device files open)"
	}
	return fmt.Sprintf("worker at %s: RSS %s, %s", m.At, bytesize.Format(m.RSSBytes), ctx)
}
