// Package notify speaks systemd's sd_notify protocol for the daemon: READY,
// STATUS, WATCHDOG, STOPPING and EXTEND_TIMEOUT_USEC. Every call is a no-op
// outside systemd (no NOTIFY_SOCKET).
package notify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends state changes to systemd.
type Notifier struct {
	mu       sync.Mutex
	socket   string
	watchdog time.Duration
	last     string
	now      func() time.Time
	lastPing time.Time
}

// FromEnv reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID, then removes
// them from the environment so no child (the worker) inherits them.
func FromEnv() *Notifier {
	n := &Notifier{socket: os.Getenv("NOTIFY_SOCKET"), now: time.Now}
	if wd, err := daemon.SdWatchdogEnabled(false); err == nil {
		n.watchdog = wd
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		_ = os.Unsetenv(k) // fails only for a malformed name; these are constants
	}
	return n
}

// New returns a notifier for an explicit socket and watchdog timeout (tests).
func New(socket string, watchdog time.Duration, now func() time.Time) *Notifier {
	if now == nil {
		now = time.Now
	}
	return &Notifier{socket: socket, watchdog: watchdog, now: now}
}

// Enabled reports whether systemd listens.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// send writes one datagram to the socket FromEnv read. go-systemd's
// SdNotify only reads the socket from the process environment, which
// FromEnv cleared so children never inherit it; setting it back around
// each call would race with a worker started meanwhile. So the datagram is
// written here, exactly as SdNotify writes it (unixgram, one write; an
// "@" name is an abstract socket, which net handles).
func (n *Notifier) send(state string) error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	defer func() { _ = conn.Close() }() // a datagram socket: the Write below sent it or failed
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// Ready tells systemd start-up is complete, with a status line.
func (n *Notifier) Ready(status string) error {
	if n == nil {
		return nil
	}
	n.last = status
	return n.send(daemon.SdNotifyReady + "\nSTATUS=" + status)
}

// Status sets the one-line status `systemctl status trtd` shows; repeated
// identical lines are not resent.
func (n *Notifier) Status(status string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	same := status == n.last
	n.last = status
	n.mu.Unlock()
	if same {
		return nil
	}
	return n.send("STATUS=" + status)
}

// Stopping tells systemd the daemon is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.send(daemon.SdNotifyStopping + "\nSTATUS=" + status)
}

// ExtendTimeout asks systemd for d more time to start or stop.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	return n.send("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// WatchdogInterval is how often the main loop must call Ping (half the
// watchdog timeout), or 0 without a watchdog.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 2
}

// Ping sends WATCHDOG=1 if half the timeout has passed since the last one.
// The daemon calls it from its main loop, never from a free-running
// goroutine, so a wedged loop stops the pings and systemd restarts it.
func (n *Notifier) Ping() (sent bool, err error) {
	if !n.Enabled() || n.watchdog == 0 {
		return false, nil
	}
	now := n.now()
	if !n.lastPing.IsZero() && now.Sub(n.lastPing) < n.WatchdogInterval() {
		return false, nil
	}
	n.lastPing = now
	return true, n.send(daemon.SdNotifyWatchdog)
}
