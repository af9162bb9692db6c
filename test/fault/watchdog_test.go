package fault

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/internal/testmodels"
)

// TestSlowClaimKeepsWatchdog (F-6): a claim that takes seconds (a large
// model copied from an inbox on another filesystem; here a fault-injected
// 4 s stall in the claim) ran on the loop that pings the systemd watchdog:
// pings stopped, systemd killed the daemon at every start, and the inbox's
// rescans delivered the name again as ghost jobs. The pings go on (at most
// one watchdog period apart, 1 s here) and the model has exactly one job.
func TestSlowClaimKeepsWatchdog(t *testing.T) {
	suite(t)
	needRoot(t)
	t.Parallel()
	e := newEnv(t)
	sock := filepath.Join(e.root, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var pings []time.Time
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
				mu.Lock()
				pings = append(pings, time.Now())
				mu.Unlock()
			}
		}
	}()
	e.start("TRTD_FAKE_WORKER=*=ok", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000", "TRTD_TEST_DELAY_AT="+jobs.StepClaimCopy+"=4s")
	data := testmodels.TinyCNN
	dropped := time.Now()
	e.drop("slow.onnx", data)
	checkSettled(t, e, "slow.onnx", data, true)
	mu.Lock()
	defer mu.Unlock()
	var during []time.Time
	for _, p := range pings {
		if p.After(dropped) {
			during = append(during, p)
		}
	}
	if len(during) < 6 {
		t.Fatalf("%d watchdog pings in the %s after the drop, want one every half second", len(during), time.Since(dropped).Round(time.Second))
	}
	for i := 1; i < len(during); i++ {
		if gap := during[i].Sub(during[i-1]); gap > time.Second {
			t.Errorf("no watchdog ping for %s (the watchdog period is 1s)", gap.Round(10*time.Millisecond))
		}
	}
	if strings.Contains(e.log(), `"msg":"cannot claim upload"`) {
		t.Error("the name was delivered again while its claim was under way")
	}
}
