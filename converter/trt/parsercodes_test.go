package trt

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The parser's error codes the shim names are NvOnnxParser.h's ErrorCode
// of each release, no made-up ones: every enumerator of every header set in
// $TRT_HEADERS has its case in parsercode (make check-trt compiles the
// switch per release with -Wswitch -Werror, so a missing one also fails
// there), and every case the shim has exists in some release.
func TestParserErrorCodesPerRelease(t *testing.T) {
	dir := os.Getenv("TRT_HEADERS")
	if dir == "" {
		t.Skip("TRT_HEADERS not set (a directory of <version>/include header sets, see scripts/trt-headers.sh)")
	}
	src, err := os.ReadFile("shim.cc")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{}
	for _, m := range regexp.MustCompile(`case nvonnxparser::ErrorCode::(k\w+):`).FindAllStringSubmatch(string(src), -1) {
		cases[m[1]] = true
	}
	enum := regexp.MustCompile(`(?s)enum class ErrorCode : int\s*\{(.*?)\};`)
	name := regexp.MustCompile(`\b(k[A-Z0-9_]+)\b`)
	seen := map[string]bool{}
	sets, _ := filepath.Glob(filepath.Join(dir, "*", "include", "NvOnnxParser.h"))
	if len(sets) == 0 {
		t.Fatalf("no */include/NvOnnxParser.h under %s", dir)
	}
	for _, h := range sets {
		b, err := os.ReadFile(h)
		if err != nil {
			t.Fatal(err)
		}
		m := enum.FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no ErrorCode enum", h)
		}
		var names []string
		for _, n := range name.FindAllStringSubmatch(string(m[1]), -1) {
			names = append(names, n[1])
			seen[n[1]] = true
			if !cases[n[1]] {
				t.Errorf("%s: ErrorCode::%s has no case in shim.cc", h, n[1])
			}
		}
		t.Logf("%s: %s", strings.TrimPrefix(h, dir+"/"), strings.Join(names, " "))
	}
	for c := range cases {
		if !seen[c] {
			t.Errorf("shim.cc names ErrorCode::%s, which no release has", c)
		}
	}
}
