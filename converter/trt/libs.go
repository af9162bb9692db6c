package trt

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

// TensorRT library base names, loaded with the major version as suffix.
var trtLibs = []string{"libnvinfer.so", "libnvonnxparser.so", "libnvinfer_plugin.so"}

// defaultLibDirs are where JetPack, the TensorRT .debs and tarballs put
// the libraries (relative to the root).
var defaultLibDirs = []string{
	"usr/lib/aarch64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/lib", "usr/local/lib",
	"usr/local/tensorrt/lib", "opt/tensorrt/lib", "usr/local/cuda/lib64",
}

// SearchDirs lists the directories scanned to report which TensorRT
// libraries exist: $LD_LIBRARY_PATH, then the default directories under
// root.
func SearchDirs(root string) []string {
	var d []string
	for _, p := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if p != "" {
			d = append(d, p)
		}
	}
	for _, p := range defaultLibDirs {
		d = append(d, filepath.Join(root, p))
	}
	return d
}

// FindInstalled returns the files named base* (e.g. libnvinfer.so.8.2.1)
// in dirs, sorted.
func FindInstalled(dirs []string, base string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		m, _ := filepath.Glob(filepath.Join(d, base+"*"))
		for _, f := range m {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// missingMessage explains that soname could not be loaded: what was
// searched and which other versions exist.
func missingMessage(soname, dlerr string, dirs []string, compiled version.Version) string {
	base := soname[:strings.Index(soname, ".so")+3]
	found := FindInstalled(dirs, base)
	msg := fmt.Sprintf("%s: %s not found (searched the dynamic linker path and %s)", ErrNoTensorRT, soname, strings.Join(dirs, ", "))
	if len(found) > 0 {
		msg += fmt.Sprintf("; present: %s, but this worker was compiled against TensorRT %s headers and needs %s", strings.Join(found, ", "), compiled, soname)
	} else {
		msg += "; no " + base + "* at all"
	}
	if dlerr != "" && !strings.Contains(dlerr, "No such file") {
		msg += " (dlopen: " + dlerr + ")"
	}
	return msg
}

// fillCUDA probes CUDA into b; it returns the error message (or "").
func fillCUDA(b *protocol.Builder, root string) (CUDAInfo, error) {
	ci, err := ProbeCUDA(CUDACandidates(root))
	if ci.Library != "" {
		if b.Libraries == nil {
			b.Libraries = map[string]string{}
		}
		b.Libraries[filepath.Base(ci.Library)] = ci.Library
	}
	b.CUDARuntime = CUDAVersionString(ci.RuntimeVersion)
	b.CUDADriver = CUDAVersionString(ci.DriverVersion)
	if err != nil {
		return ci, err
	}
	b.GPU = ci.Name
	b.ComputeCapability = ci.ComputeCapability()
	b.GPUMemTotal = int64(ci.Total)
	b.GPUMemFree = int64(ci.Free)
	return ci, nil
}

// Compiled returns the TensorRT version of the headers this worker was
// compiled against, and false when it was built without them.
func Compiled() (version.Version, bool) {
	if !hasTensorRT() {
		return version.Version{}, false
	}
	return compiledVersion(), true
}
