package cgroup

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// F-21: the worker cgroups of a SIGKILLed daemon (pid not running) are
// removed; those of a live daemon, this one's, and other names are kept.
func TestRemoveStale(t *testing.T) {
	parent := t.TempDir()
	dead := "trtd-worker-999999999-3" // no such pid
	live := "trtd-worker-1-1"         // init is always running
	own := "trtd-worker-" + strconv.Itoa(os.Getpid()) + "-1"
	other := "user-1000.slice"
	for _, d := range []string{dead, live, own, other} {
		os.Mkdir(filepath.Join(parent, d), 0o755)
	}
	rm := RemoveStale(parent, slog.New(slog.DiscardHandler))
	if len(rm) != 1 || filepath.Base(rm[0]) != dead {
		t.Fatalf("removed %v, want only %s", rm, dead)
	}
	for _, d := range []string{live, own, other} {
		if _, err := os.Stat(filepath.Join(parent, d)); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
