//go:build trtdfault

package faultpoint

import (
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"
)

// Enabled reports whether the hook is compiled in.
const Enabled = true

// Hit kills the process with SIGKILL when step is the one Env names.
func Hit(log *slog.Logger, step string) {
	if v := os.Getenv(Env); v != "" && v == step {
		log.Warn("fault injection: killing the daemon", "step", step)
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			// The fault test then sees the daemon live on past the step.
			log.Error("fault injection: SIGKILL failed", "step", step, "err", err)
			return
		}
		time.Sleep(time.Minute)
	}
}

// DelayEnv names a step and a duration ("claim=3s") at which a trtdfault
// build stalls, to stand for slow work (a copy across filesystems).
const DelayEnv = "TRTD_TEST_DELAY_AT"

// Delay sleeps when $TRTD_TEST_DELAY_AT names step.
func Delay(step string) {
	name, dur, ok := strings.Cut(os.Getenv(DelayEnv), "=")
	if !ok || name != step {
		return
	}
	if d, err := time.ParseDuration(dur); err == nil {
		time.Sleep(d)
	}
}
