// Package faultpoint kills the process at a named step when
// TRTD_TEST_CRASH_AT names it. It exists for the crash-safety tests, which
// must stop the daemon at exact points of a job; it is inert otherwise.
package faultpoint

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Env names the step to die at.
const Env = "TRTD_TEST_CRASH_AT"

// Hit kills the process with SIGKILL when step is the one Env names.
func Hit(log *slog.Logger, step string) {
	if v := os.Getenv(Env); v != "" && v == step {
		log.Warn("fault injection: killing the daemon", "step", step)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
}
