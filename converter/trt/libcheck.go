package trt

import (
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter/trt/version"
)

// Oldest is the oldest TensorRT release trtd builds with: 8.0.1 shipped
// with JetPack 4.6 (L4T R32.6.1).
var Oldest = version.Version{Major: 8, Minor: 0, Patch: 0}

// OnnxParserVersion is what getNvOnnxParserVersion() returns in every
// onnx-tensorrt release from 8.0-GA to main: NV_ONNX_PARSER_VERSION, the
// parser's own version 0.1.0 (NvOnnxParser.h, NvOnnxParser.cpp). It says
// nothing about the TensorRT release the parser belongs to.
const OnnxParserVersion = 100

// SonameMajor returns the number after ".so." in a soname or file name:
// 8 for "libnvonnxparser.so.8" and for "libnvonnxparser.so.8.2.1".
func SonameMajor(name string) (int, error) {
	base := filepath.Base(name)
	i := strings.Index(base, ".so.")
	if i < 0 {
		return 0, fmt.Errorf("%s: no version after .so", name)
	}
	rest := base[i+len(".so."):]
	if j := strings.IndexByte(rest, '.'); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("%s: no version after .so", name)
	}
	return n, nil
}

// LibrarySoname reads DT_SONAME from the ELF file at path (the library the
// dynamic linker actually loaded); a file without one is named by its
// resolved file name.
func LibrarySoname(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading the soname: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only ELF file
	names, err := f.DynString(elf.DT_SONAME)
	if err == nil && len(names) > 0 && names[0] != "" {
		return names[0], nil
	}
	real, rerr := filepath.EvalSymlinks(path)
	if rerr != nil {
		return "", fmt.Errorf("reading the soname: %w", rerr)
	}
	return filepath.Base(real), nil
}

// ErrTooOld is returned for TensorRT releases older than Oldest.
var ErrTooOld = errors.New("TensorRT release too old")

// CheckLoaded checks what the worker loaded against the headers it was
// compiled with: libVersion is getInferLibVersion() (8201, 8601, 100001,
// 110100), parserVersion getNvOnnxParserVersion() (100 in every release)
// and parserSoname the soname of the libnvonnxparser file that was loaded.
// The parser belongs to the TensorRT release whose major its soname
// carries (onnx-tensorrt CMakeLists.txt: SOVERSION ${ONNX2TRT_MAJOR}).
func CheckLoaded(compiled version.Version, libVersion, parserVersion int, parserSoname string) (version.Version, error) {
	found, err := version.FromInt(libVersion)
	if err != nil {
		return found, fmt.Errorf("libnvinfer reports version %d: %w", libVersion, err)
	}
	if found.Compare(Oldest) < 0 {
		return found, fmt.Errorf("%w: TensorRT %s is older than %s, the oldest release trtd supports (JetPack 4.6)", ErrTooOld, found, Oldest.Short())
	}
	if err := version.CheckLibrary(compiled, found); err != nil {
		return found, err
	}
	major, err := SonameMajor(parserSoname)
	if err != nil {
		return found, fmt.Errorf("%w: ONNX parser: %v", version.ErrIncompatible, err)
	}
	if major != found.Major {
		return found, fmt.Errorf("%w: the ONNX parser %s belongs to TensorRT %d, libnvinfer is %s", version.ErrIncompatible, parserSoname, major, found)
	}
	if parserVersion <= 0 {
		return found, fmt.Errorf("%w: the ONNX parser %s reports version %d", version.ErrIncompatible, parserSoname, parserVersion)
	}
	return found, nil
}
