package trt

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// A C++ exception thrown inside the shim comes back to Go as an error
// return with its message; it never unwinds across extern "C" (which would
// crash the worker with no report).
func TestShimExceptionGuard(t *testing.T) {
	if !cgoEnabled() {
		t.Skip("built without cgo")
	}
	for kind, want := range map[int]string{
		0: "",
		1: "out of host memory (std::bad_alloc)",
		2: "C++ exception: thrown on purpose",
		3: "unknown C++ exception",
	} {
		rc, msg := guardSelfTest(kind)
		if want == "" && rc != 0 || want != "" && (rc != -1 || msg != want) {
			t.Errorf("kind %d: rc %d msg %q; want %q", kind, rc, msg, want)
		}
	}
}

// Every shim entry point is declared noexcept to C++ (an exception that
// escaped would terminate rather than unwind into Go; the compiler rejects a
// definition that differs from its declaration), and every one that can
// throw and has an error buffer catches inside (TRTD_TRY/TRTD_CATCH).
func TestShimEntryPointsGuarded(t *testing.T) {
	h, err := os.ReadFile("shim.h")
	if err != nil {
		t.Fatal(err)
	}
	proto := regexp.MustCompile(`(?ms)^(?:int|void|const void \*|size_t|trtd_session \*) ?\*?(trtd_\w+)\(([^;]*?)\)( TRTD_NOEXCEPT)?;`)
	ms := proto.FindAllSubmatch(h, -1)
	if len(ms) < 30 {
		t.Fatalf("found %d prototypes in shim.h", len(ms))
	}
	for _, m := range ms {
		if len(m[3]) == 0 {
			t.Errorf("%s is not declared TRTD_NOEXCEPT", m[1])
		}
	}
	src, err := os.ReadFile("shim.cc")
	if err != nil {
		t.Fatal(err)
	}
	code := string(src)
	def := regexp.MustCompile(`(?m)^(?:int|trtd_session \*) ?(trtd_\w+)\(([^;{]*?)\) TRTD_NOEXCEPT \{\n`)
	guarded := 0
	for _, loc := range def.FindAllStringSubmatchIndex(code, -1) {
		name, params := code[loc[2]:loc[3]], code[loc[4]:loc[5]]
		body := code[loc[1]:]
		body = body[:strings.Index(body, "\n}\n")]
		if !strings.Contains(params, "char *err") || strings.Count(body, "\n") < 3 {
			continue // no error buffer, or a one-line stub
		}
		if !strings.HasPrefix(strings.TrimSpace(body), "TRTD_TRY") || !strings.Contains(body, "TRTD_CATCH(") {
			t.Errorf("%s: body is not wrapped in TRTD_TRY ... TRTD_CATCH", name)
		}
		guarded++
	}
	if guarded < 15 {
		t.Errorf("only %d guarded entry points found", guarded)
	}
}
