package trt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/trt/version"
)

func touch(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMissingMessage(t *testing.T) {
	root := t.TempDir()
	t.Setenv("LD_LIBRARY_PATH", "")
	dirs := SearchDirs(root)
	// Nothing installed.
	msg := missingMessage("libnvinfer.so.8", "libnvinfer.so.8: cannot open shared object file: No such file or directory", dirs, version.Version{Major: 8, Minor: 2, Patch: 1})
	if !strings.HasPrefix(msg, "TensorRT not available on this machine: libnvinfer.so.8 not found") || !strings.Contains(msg, "no libnvinfer.so* at all") {
		t.Errorf("msg = %q", msg)
	}
	// Another major is installed (JetPack 6 on a worker built for JetPack 4).
	touch(t, filepath.Join(root, "usr/lib/aarch64-linux-gnu/libnvinfer.so.10.3.0"))
	msg = missingMessage("libnvinfer.so.8", "", dirs, version.Version{Major: 8, Minor: 2, Patch: 1})
	if !strings.Contains(msg, "libnvinfer.so.10.3.0") || !strings.Contains(msg, "compiled against TensorRT 8.2.1 headers and needs libnvinfer.so.8") {
		t.Errorf("msg = %q", msg)
	}
}

func TestCUDACandidates(t *testing.T) {
	root := t.TempDir()
	t.Setenv("TRTD_CUDART", "/opt/x/libcudart.so.12")
	touch(t, filepath.Join(root, "usr/local/cuda-12.6/lib64/libcudart.so.12"))
	c := CUDACandidates(root)
	if c[0] != "/opt/x/libcudart.so.12" || c[1] != "libcudart.so.13" {
		t.Errorf("order: %v", c)
	}
	if last := c[len(c)-1]; last != filepath.Join(root, "usr/local/cuda-12.6/lib64/libcudart.so.12") {
		t.Errorf("toolkit dir not searched: %v", c)
	}
	if CUDAVersionString(13000) != "13.0" || CUDAVersionString(10020) != "10.2" || CUDAVersionString(0) != "" {
		t.Error("CUDAVersionString")
	}
}

func TestProbeWithoutCUDA(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	_, err := ProbeCUDA([]string{filepath.Join(t.TempDir(), "libcudart.so.13")})
	if err == nil || !strings.Contains(err.Error(), "CUDA not available") {
		t.Errorf("ProbeCUDA = %v", err)
	}
}
