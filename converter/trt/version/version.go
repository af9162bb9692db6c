// Package version decodes and compares TensorRT versions. It is pure Go so
// that the trtexec backend, the classifier and the cgo layer can share it.
//
// TensorRT encodes its version as one integer, and changed the encoding in
// 10.0: 8.x uses major*1000 + minor*100 + patch (8.2.1 -> 8201), 10.x and
// later use major*10000 + minor*100 + patch (10.3.0 -> 100300). Both
// getInferLibVersion() and trtexec's banner ("[TensorRT v8201]") use it.
package version

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Version is a TensorRT release.
type Version struct {
	Major, Minor, Patch int
}

// ErrBadVersion is returned for integers and strings that are not TensorRT
// versions.
var ErrBadVersion = errors.New("not a TensorRT version")

// FromInt decodes TensorRT's integer encoding (both the 8.x and the 10.x
// scheme).
func FromInt(n int) (Version, error) {
	switch {
	case n >= 100000: // 10.x+: MMmmpp
		return Version{n / 10000, n / 100 % 100, n % 100}, nil
	case n >= 1000: // up to 9.x: Mmpp
		return Version{n / 1000, n / 100 % 10, n % 100}, nil
	}
	return Version{}, fmt.Errorf("%w: %d", ErrBadVersion, n)
}

var dotted = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// Parse reads "8.2", "8.2.1", "10.3.0.26" or an encoded integer ("8201").
func Parse(s string) (Version, error) {
	if m := dotted.FindStringSubmatch(s); m != nil {
		v := Version{}
		v.Major, _ = strconv.Atoi(m[1])
		v.Minor, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			v.Patch, _ = strconv.Atoi(m[3])
		}
		return v, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return FromInt(n)
	}
	return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
}

// String is "8.2.1".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Short is "8.2".
func (v Version) Short() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// IsZero reports whether v is unset.
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or 1.
func (v Version) Compare(w Version) int {
	for _, d := range [...]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

// ErrIncompatible is returned by CheckLibrary when the library found at run
// time cannot serve code compiled against other headers.
var ErrIncompatible = errors.New("incompatible TensorRT library")

// CheckLibrary checks a library version found at run time against the
// headers the worker was compiled with: the major version must be the same
// (the C++ ABI and the soname change with it) and the library must not be
// older than the headers (an older library lacks virtual methods the
// headers declare).
func CheckLibrary(compiled, found Version) error {
	if found.Major != compiled.Major {
		return fmt.Errorf("%w: found TensorRT %s, this worker was compiled against TensorRT %s headers and needs libnvinfer.so.%d of %s or newer",
			ErrIncompatible, found, compiled, compiled.Major, compiled.Short())
	}
	if found.Compare(Version{compiled.Major, compiled.Minor, 0}) < 0 {
		return fmt.Errorf("%w: found TensorRT %s, older than the %s headers this worker was compiled with; rebuild the worker against the installed headers",
			ErrIncompatible, found, compiled)
	}
	return nil
}

// Tactic source names (protocol.Tactic*), repeated here so that this
// package stays free of dependencies.
const (
	tacticCUBLAS   = "cublas"
	tacticCUBLASLt = "cublaslt"
	tacticCUDNN    = "cudnn"
	tacticEdgeMask = "edge_mask_convolutions"
	tacticJIT      = "jit_convolutions"
)

// TacticSourceAvailable says whether a tactic source (by its protocol
// name) can be enabled on v, and why not. known is false for names that are
// no tactic source at all.
func TacticSourceAvailable(name string, v Version) (ok bool, why string, known bool) {
	switch name {
	case tacticCUBLAS, tacticCUBLASLt, tacticCUDNN:
		if v.Major >= 11 {
			return false, "removed in TensorRT 11", true
		}
		if v.Major >= 10 {
			return false, "deprecated and off by default since TensorRT 10.0; not enabled", true
		}
		return true, "", true
	case tacticEdgeMask:
		if !v.AtLeast(8, 4) {
			return false, "exists from TensorRT 8.4", true
		}
		return true, "", true
	case tacticJIT:
		if !v.AtLeast(8, 5) {
			return false, "exists from TensorRT 8.5", true
		}
		return true, "", true
	}
	return false, "", false
}

// DefaultWorkspaceMiB is the workspace set on TensorRT 8.2/8.3 when a stage
// names none: setMaxWorkspaceSize defaults to 0 there (trtexec's --workspace
// to 16 MiB), which leaves many layers without an implementation.
const DefaultWorkspaceMiB = 256

// Builder settings (their config keys) that exist only from some release.
const (
	SettingOptimizationLevel = "optimization_level"
	SettingMaxAuxStreams     = "max_aux_streams"
	SettingTacticDRAM        = "tactic_dram_mib"
)

// SettingAvailable says whether a version-dependent builder setting (by
// its config key) exists on v, and why not. known is false for keys every
// supported release has. IBuilderConfig::setBuilderOptimizationLevel,
// setMaxAuxStreams and MemoryPoolType::kTACTIC_DRAM first appear in the
// 8.6 NvInfer.h (8.6.1 include/NvInfer.h:9790, :9896, :8985; absent from
// 8.2.3), see docs/TENSORRT.md.
func SettingAvailable(key string, v Version) (ok bool, why string, known bool) {
	switch key {
	case SettingOptimizationLevel, SettingMaxAuxStreams, SettingTacticDRAM:
		if !v.AtLeast(8, 6) {
			return false, "exists from TensorRT 8.6", true
		}
		return true, "", true
	}
	return false, "", false
}
