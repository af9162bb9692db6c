package notify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(b[:n])
}

func TestMessagesOverRealSocket(t *testing.T) {
	sock, c := listen(t)
	n := New(sock, 0, nil)
	if err := n.Ready("watching /inbox"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1\nSTATUS=watching /inbox" {
		t.Fatalf("got %q", got)
	}
	n.Status("building a.onnx: stage lean (2/4)")
	if got := recv(t, c); got != "STATUS=building a.onnx: stage lean (2/4)" {
		t.Fatalf("got %q", got)
	}
	// The same status again is not resent: the next datagram is STOPPING.
	n.Status("building a.onnx: stage lean (2/4)")
	n.Stopping("stopping")
	if got := recv(t, c); !strings.HasPrefix(got, "STOPPING=1") {
		t.Fatalf("got %q", got)
	}
	n.ExtendTimeout(90 * time.Second)
	if got := recv(t, c); got != "EXTEND_TIMEOUT_USEC=90000000" {
		t.Fatalf("got %q", got)
	}
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Fatal("NOTIFY_SOCKET leaked into the environment")
	}
}

func TestWatchdogPingsAtHalfInterval(t *testing.T) {
	sock, c := listen(t)
	now := time.Unix(1000, 0)
	n := New(sock, 20*time.Second, func() time.Time { return now })
	if n.WatchdogInterval() != 10*time.Second {
		t.Fatalf("interval %v", n.WatchdogInterval())
	}
	steps := []struct {
		advance time.Duration
		want    bool
	}{{0, true}, {5 * time.Second, false}, {4 * time.Second, false}, {time.Second, true}, {9 * time.Second, false}, {2 * time.Second, true}}
	for i, s := range steps {
		now = now.Add(s.advance)
		sent, err := n.Ping()
		if err != nil || sent != s.want {
			t.Fatalf("step %d: sent=%v err=%v, want %v", i, sent, err, s.want)
		}
		if sent {
			if got := recv(t, c); got != "WATCHDOG=1" {
				t.Fatalf("got %q", got)
			}
		}
	}
}

func TestFromEnvStripsVariables(t *testing.T) {
	sock, _ := listen(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := FromEnv()
	if !n.Enabled() || n.WatchdogInterval() != 2*time.Second {
		t.Fatalf("enabled=%v interval=%v", n.Enabled(), n.WatchdogInterval())
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if _, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still set: a worker would inherit it", k)
		}
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	n := New("", time.Second, nil)
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
	if sent, err := n.Ping(); sent || err != nil {
		t.Fatal("ping without socket")
	}
}

// A child started while a message is being sent must not inherit the
// socket: sending never puts NOTIFY_SOCKET into the environment.
func TestSendingNeverSetsTheEnvironment(t *testing.T) {
	sock, c := listen(t)
	n := New(sock, 0, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			n.Status("line " + strconv.Itoa(i))
		}
	}()
	for seen := 0; seen < 200; seen++ {
		if os.Getenv("NOTIFY_SOCKET") != "" {
			t.Fatal("NOTIFY_SOCKET was set while sending")
		}
		recv(t, c)
	}
	<-done
}

// systemd may hand an abstract socket ("@name").
func TestAbstractSocket(t *testing.T) {
	name := "@trtd-notify-test-" + strconv.Itoa(os.Getpid())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Skip("no abstract sockets here: ", err)
	}
	defer c.Close()
	if err := New(name, 0, nil).Ready("up"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1\nSTATUS=up" {
		t.Fatalf("got %q", got)
	}
}
