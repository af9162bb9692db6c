//go:build trtdfault

package fault

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Enabled reports whether the hook is compiled in.
const Enabled = true

// At kills the process when $TRTD_TEST_CRASH_AT names step.
func At(log *slog.Logger, step string) {
	if v := os.Getenv(Env); v != "" && v == step {
		log.Warn("fault injection: killing the daemon", "step", step)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
}
