package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/statelock"
)

// F-8: a second daemon on the same state directory refuses to start, naming
// the first one's pid; it used to take over the first daemon's build.
func TestSecondDaemonOnTheSameStateRefuses(t *testing.T) {
	tr := newTree(t, "")
	tr.runInProcess(t, "TRTD_FAKE_WORKER=*=ok")
	tr.waitIdle(t, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, tr.cfg, Options{})
	if !errors.Is(err, statelock.ErrHeld) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second daemon: %v, want it refused with the holder's pid", err)
	}
}
