package converter

import (
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

func lockThread() { runtime.LockOSThread() }

// waitChildGone keeps the locked thread alive while the child runs. It
// polls the process state set by Wait in another goroutine.
func waitChildGone(cmd *exec.Cmd) {
	for {
		time.Sleep(200 * time.Millisecond)
		if cmd.Process == nil {
			return
		}
		// Signal 0 probes existence; once reaped it fails.
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
	}
}
