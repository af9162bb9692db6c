package trtdouble

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The double turns each broken ownership rule into an abort naming the
// rule (a creator destroyed with live children) or a sanitizer report
// (weights read after the parser died, host memory never freed) (lib/misuse.cc breaks one per mode), so a worker
// that breaks one fails make test-trt rather than passing by luck.
func TestOwnershipViolations(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		bin := filepath.Join(os.Getenv("TRTDOUBLE_DIR"), v, "trtdouble-misuse")
		for _, c := range []struct{ mode, want string }{
			{"ok", ""},
			{"parser-after-network", "INetworkDefinition destroyed before the ONNX parser created on it"},
			{"weights-after-parser", "heap-use-after-free"},
			{"engine-after-runtime", "IRuntime destroyed before an engine it deserialized"},
			{"leak-host-memory", "detected memory leaks"},
			{"builder-before-network", "IBuilder destroyed before a network or config it created"},
		} {
			t.Run(c.mode, func(t *testing.T) {
				cmd := exec.Command(bin, c.mode)
				cmd.Env = append(os.Environ(), "ASAN_OPTIONS=detect_leaks=1", "TRTD_DOUBLE=")
				out, err := cmd.CombinedOutput()
				if c.want == "" {
					if err != nil || !strings.Contains(string(out), "ok") {
						t.Fatalf("a correct sequence failed: %v\n%s", err, out)
					}
					return
				}
				if err == nil || !strings.Contains(string(out), c.want) {
					t.Fatalf("exit %v; want a failure with %q:\n%s", err, c.want, out)
				}
			})
		}
	})
}

// A heap-use-after-free inside the worker's process (the double's
// bug=use-after-free) reaches the harness as an AddressSanitizer report, so
// "no sanitizer report" in every other case is not vacuous.
func TestSanitizerReportsReachTheHarness(t *testing.T) {
	forEach(t, func(t *testing.T, v string) {
		model, _ := testdata(t, "test_relu")
		e := newEnv(t, v, opts{script: "bug=use-after-free"})
		e.drop("test_relu", model, nil)
		r := e.report("test_relu", buildWait)
		if r.Outcome == "built" {
			t.Fatalf("a worker that hit a use-after-free built: %s", r.stages())
		}
		ents, _ := os.ReadDir(e.san)
		found := false
		for _, en := range ents {
			b, _ := os.ReadFile(filepath.Join(e.san, en.Name()))
			found = found || strings.Contains(string(b), "heap-use-after-free")
			os.Remove(filepath.Join(e.san, en.Name())) // expected: not a failure of this case
		}
		if !found {
			t.Fatalf("no AddressSanitizer report in %s (files: %v)", e.san, ents)
		}
	})
}
