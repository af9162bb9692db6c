package faultpoint

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Without the tag the hook is inert: the variable is ignored.
func TestHookInertWithoutTag(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags trtdfault")
	}
	t.Setenv(Env, "claimed")
	Hit(slog.Default(), "claimed") // would SIGKILL this test binary if compiled in
}

// The shipped binary (built as the package builds it: no tags) does not
// contain the hook at all; the same build with the tag does, which shows
// the check can fail.
func TestShippedBinaryHasNoFaultHook(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds cmd/trtd twice")
	}
	dir := t.TempDir()
	build := func(out string, tags ...string) []byte {
		args := append([]string{"build", "-trimpath"}, tags...)
		cmd := exec.Command("go", append(args, "-o", out, "./cmd/trtd")...)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", tags, err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if bytes.Contains(build(filepath.Join(dir, "trtd")), []byte(Env)) {
		t.Errorf("the shipped trtd binary contains the fault-injection hook %s", Env)
	}
	if !bytes.Contains(build(filepath.Join(dir, "trtd-fault"), "-tags", Tag), []byte(Env)) {
		t.Errorf("the -tags %s build lacks %s: the check above proves nothing", Tag, Env)
	}
}
