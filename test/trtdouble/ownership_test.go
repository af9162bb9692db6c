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
