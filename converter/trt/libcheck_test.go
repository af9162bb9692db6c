package trt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/trt/version"
)

// The values NVIDIA's libraries report: getInferLibVersion() is
// NV_TENSORRT_VERSION of the release (NvInferVersion.h), and
// getNvOnnxParserVersion() is NV_ONNX_PARSER_VERSION = 100 in every
// onnx-tensorrt release (NvOnnxParser.h:18-22 on 8.0-GA and 8.2-GA,
// :19-24 on 10.0-GA and main).
func TestCheckLoadedRealValues(t *testing.T) {
	v := func(s string) version.Version {
		x, err := version.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, c := range []struct {
		name     string
		compiled string
		lib      int
		parser   int
		soname   string
		want     string // "" = accepted; else a substring of the error
		sentinel error
	}{
		{"JetPack 4.6 8.0.1", "8.0.1", 8001, 100, "libnvonnxparser.so.8", "", nil},
		{"JetPack 4.6.1 8.2.1, 8.2.3 headers", "8.2.3", 8201, 100, "libnvonnxparser.so.8", "", nil},
		{"8.2 headers on JetPack 4.6 8.0.1", "8.2.3", 8001, 100, "libnvonnxparser.so.8", "older than the 8.2.3 headers", version.ErrIncompatible},
		{"8.2 headers, 8.2.1 library", "8.2.1", 8201, 100, "libnvonnxparser.so.8", "", nil},
		{"8.0 headers on 8.6.1", "8.0.1", 8601, 100, "libnvonnxparser.so.8", "", nil},
		{"8.6 headers, 8.6.1", "8.6.1", 8601, 100, "libnvonnxparser.so.8", "", nil},
		{"10.0 headers, 10.0.1", "10.0.1", 100001, 100, "libnvonnxparser.so.10", "", nil},
		{"10.0 headers, 10.3.0 (JetPack 6.1)", "10.0.1", 100300, 100, "libnvonnxparser.so.10", "", nil},
		{"11.1 headers, 11.1.0", "11.1.0", 110100, 100, "libnvonnxparser.so.11", "", nil},
		{"parser of another major", "8.2.1", 8201, 100, "libnvonnxparser.so.10", "belongs to TensorRT 10", version.ErrIncompatible},
		{"libnvinfer of another major", "8.2.1", 100300, 100, "libnvonnxparser.so.10", "compiled against TensorRT 8.2.1", version.ErrIncompatible},
		{"TensorRT 7.1.3 (JetPack 4.5)", "8.0.1", 7103, 100, "libnvonnxparser.so.7", "TensorRT 7.1.3 is older than 8.0", ErrTooOld},
		{"no parser version", "8.2.1", 8201, 0, "libnvonnxparser.so.8", "reports version 0", version.ErrIncompatible},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckLoaded(v(c.compiled), c.lib, c.parser, c.soname)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.sentinel) {
				t.Fatalf("err = %v; want %q (%v)", err, c.want, c.sentinel)
			}
		})
	}
	if parserVersionString(OnnxParserVersion) != "0.1.0" {
		t.Error(parserVersionString(OnnxParserVersion))
	}
}

func TestSonameMajor(t *testing.T) {
	for in, want := range map[string]int{
		"libnvonnxparser.so.8": 8, "/usr/lib/aarch64-linux-gnu/libnvonnxparser.so.8.2.1": 8,
		"libnvonnxparser.so.10": 10, "libnvonnxparser.so.11.1.0": 11,
	} {
		if got, err := SonameMajor(in); err != nil || got != want {
			t.Errorf("SonameMajor(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"libnvonnxparser.so", "libnvonnxparser.so.x", "libfoo"} {
		if _, err := SonameMajor(bad); err == nil {
			t.Errorf("SonameMajor(%q) accepted", bad)
		}
	}
}

// LibrarySoname reads DT_SONAME from a real shared object, built by the
// system compiler the way onnx-tensorrt's CMakeLists.txt names the parser
// (file libnvonnxparser.so.8.2.1, SOVERSION 8), reached through a symlink
// named otherwise.
func TestLibrarySoname(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the C compiler")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc")
	}
	d := t.TempDir()
	src := filepath.Join(d, "p.c")
	os.WriteFile(src, []byte("int getNvOnnxParserVersion(void) { return 100; }\n"), 0o644)
	lib := filepath.Join(d, "libnvonnxparser.so.8.2.1")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-Wl,-soname,libnvonnxparser.so.8", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	link := filepath.Join(d, "libparser-any-name.so")
	os.Symlink(lib, link)
	so, err := LibrarySoname(link)
	if err != nil || so != "libnvonnxparser.so.8" {
		t.Fatalf("LibrarySoname = %q, %v", so, err)
	}
	// Without DT_SONAME the resolved file name decides.
	bare := filepath.Join(d, "libnvonnxparser.so.10.0.1")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", bare, src).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	os.Symlink(bare, filepath.Join(d, "libnvonnxparser.so.10"))
	if so, err := LibrarySoname(filepath.Join(d, "libnvonnxparser.so.10")); err != nil || so != "libnvonnxparser.so.10.0.1" {
		t.Fatalf("LibrarySoname(no DT_SONAME) = %q, %v", so, err)
	}
	if _, err := LibrarySoname(src); err == nil {
		t.Error("a C source file read as a library")
	}
}

// parserVersionString renders getNvOnnxParserVersion()'s value (major*10000
// + minor*100 + patch, NvOnnxParser.h): 100 is "0.1.0".
func parserVersionString(n int) string {
	return fmt.Sprintf("%d.%d.%d", n/10000, n/100%100, n%100)
}
