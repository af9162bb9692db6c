//go:build !cgo

package trt

import "github.com/trtd/trtd/converter/trt/version"

// Without cgo nothing of CUDA or TensorRT can be called.

func cgoEnabled() bool                  { return false }
func cudaLoad([]string) (string, error) { return "", ErrNoCUDA }
func cudaInfo(int) (CUDAInfo, error)    { return CUDAInfo{}, ErrNoCUDA }
func cudaMallocTest(b uint64) MallocResult {
	return MallocResult{Bytes: b, Code: -1, Name: "no_cgo", Message: "built without cgo"}
}
func hasTensorRT() bool                { return false }
func compiledVersion() version.Version { return version.Version{} }

func guardSelfTest(int) (int, string) { return -1, "built without cgo" }
