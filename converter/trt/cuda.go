package trt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotCompiled: this worker was built without TensorRT headers (or
	// without cgo); only the trtexec backend can build.
	ErrNotCompiled = errors.New("built without TensorRT headers (build tag tensorrt)")
	// ErrNoCUDA: no usable CUDA runtime or device.
	ErrNoCUDA = errors.New("CUDA not available")
	// ErrNoTensorRT: the TensorRT libraries are missing or unusable.
	ErrNoTensorRT = errors.New("TensorRT not available on this machine")
)

// CUDAInfo describes the CUDA runtime found and device 0.
type CUDAInfo struct {
	Library        string   // resolved path of the libcudart that was loaded
	Tried          []string // "candidate: why not" for each candidate that failed
	RuntimeVersion int      // e.g. 13000
	DriverVersion  int
	Devices        int
	Name           string
	CCMajor        int
	CCMinor        int
	Integrated     bool // shares memory with the CPU (Jetson)
	Total, Free    uint64
	// Error is the cudaError_t of the runtime call that failed (0: none).
	Error int
}

// ComputeCapability is "9.0".
func (c CUDAInfo) ComputeCapability() string { return fmt.Sprintf("%d.%d", c.CCMajor, c.CCMinor) }

// CUDAVersionString renders cudaRuntimeGetVersion's 12040 as "12.4".
func CUDAVersionString(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// MallocResult is the outcome of one cudaMalloc.
type MallocResult struct {
	Bytes   uint64
	Code    int    // cudaError_t; 0 = success, 2 = cudaErrorMemoryAllocation
	Name    string // cudaGetErrorName
	Message string // cudaGetErrorString
}

// LogLine renders the result like a CUDA error report, for the classifier.
func (m MallocResult) LogLine() string {
	return fmt.Sprintf("cudaMalloc(%d bytes): %s (%d): %s", m.Bytes, m.Name, m.Code, m.Message)
}

// CUDACandidates lists the libcudart sonames and paths tried, in order:
// $TRTD_CUDART, the sonames of CUDA 13 down to 10.2 (found through the
// dynamic linker's path), then the same names in the usual toolkit
// directories under root ("/" in production).
func CUDACandidates(root string) []string {
	var c []string
	if p := os.Getenv("TRTD_CUDART"); p != "" {
		c = append(c, p)
	}
	sonames := []string{"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so.10.2", "libcudart.so"}
	c = append(c, sonames...)
	dirs := []string{"usr/local/cuda/lib64", "usr/local/cuda/targets/x86_64-linux/lib", "usr/local/cuda/targets/aarch64-linux/lib", "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu"}
	if m, _ := filepath.Glob(filepath.Join(root, "usr/local/cuda-*/lib64")); len(m) > 0 {
		for _, d := range m {
			rel, _ := filepath.Rel(root, d)
			dirs = append(dirs, rel)
		}
	}
	for _, d := range dirs {
		for _, s := range sonames {
			p := filepath.Join(root, d, s)
			if _, err := os.Stat(p); err == nil {
				c = append(c, p)
			}
		}
	}
	return c
}

var cudaOnce struct {
	sync.Mutex
	loaded bool
	tried  string
}

// ProbeCUDA loads libcudart (once) and describes device 0. It creates a
// CUDA context: call it only in the worker, never in the daemon.
func ProbeCUDA(candidates []string) (CUDAInfo, error) {
	if !cgoEnabled() {
		return CUDAInfo{}, fmt.Errorf("%w: this worker was built without cgo", ErrNoCUDA)
	}
	cudaCalls.Add(1)
	cudaOnce.Lock()
	if !cudaOnce.loaded {
		tried, err := cudaLoad(candidates)
		cudaOnce.tried = tried
		if err != nil {
			cudaOnce.Unlock()
			return CUDAInfo{Tried: splitLines(tried)}, fmt.Errorf("%w: libcudart not found (tried %s)", ErrNoCUDA, strings.Join(candidates, ", "))
		}
		cudaOnce.loaded = true
	}
	tried := cudaOnce.tried
	cudaOnce.Unlock()
	info, err := cudaInfo(0)
	info.Tried = splitLines(tried)
	if err != nil {
		return info, fmt.Errorf("%w: %v", ErrNoCUDA, err)
	}
	return info, nil
}

// CUDAMalloc tries one cudaMalloc of bytes (and frees it). ProbeCUDA must
// have succeeded.
func CUDAMalloc(bytes uint64) MallocResult { return cudaMallocTest(bytes) }

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
