//go:build trtdfault

package faultpoint

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Enabled reports whether the hook is compiled in.
const Enabled = true

// Hit kills the process with SIGKILL when step is the one Env names.
func Hit(log *slog.Logger, step string) {
	if v := os.Getenv(Env); v != "" && v == step {
		log.Warn("fault injection: killing the daemon", "step", step)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
}
