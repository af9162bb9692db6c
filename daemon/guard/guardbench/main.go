// Command guardbench measures the memory guard's reaction time: a child
// allocates memory steadily until the guard kills it; a 1 ms observer polls
// /proc/meminfo for the moment MemAvailable + SwapFree crossed the floor.
// Reaction = kill sent - floor crossed. It prints Markdown rows (median of
// several runs) for the default 250 ms interval and a faster one.
//
//	go run ./daemon/guard/guardbench -runs 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trtd/trtd/daemon/guard"
	"github.com/trtd/trtd/internal/meminfo"
)

func main() {
	if os.Getenv("GUARDBENCH_HOG") == "1" {
		hog()
		return
	}
	runs := flag.Int("runs", 5, "runs per interval")
	margin := flag.Int64("margin", 1024, "floor = headroom now - margin MiB")
	step := flag.Int64("step", 32, "MiB allocated per step")
	pause := flag.Duration("pause", 25*time.Millisecond, "pause between steps")
	flag.Parse()
	rate := float64(*step) / pause.Seconds()
	fmt.Printf("| guard interval | reaction: floor crossed → SIGKILL sent (median of %d) | worst | kill → worker reaped | overshoot past the floor |\n|---|---|---|---|---|\n", *runs)
	for _, iv := range []time.Duration{250 * time.Millisecond, 50 * time.Millisecond} {
		var react, reap []time.Duration
		var over []int64
		for i := 0; i < *runs; i++ {
			r, p, o := once(iv, *margin<<20, *step, *pause)
			react, reap, over = append(react, r), append(reap, p), append(over, o)
		}
		sort.Slice(over, func(i, j int) bool { return over[i] < over[j] })
		fmt.Printf("| %v | %v | %v | %v | %d MiB (child allocating %.0f MiB/s) |\n", iv, med(react).Round(time.Millisecond),
			maxd(react).Round(time.Millisecond), med(reap).Round(time.Millisecond), over[len(over)/2]>>20, rate)
	}
}

func once(interval time.Duration, margin, step int64, pause time.Duration) (react, reap time.Duration, overshoot int64) {
	head := headroom()
	floor := head - margin
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "GUARDBENCH_HOG=1", fmt.Sprintf("STEP=%d", step<<20), fmt.Sprintf("PAUSE=%d", pause))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	var crossed atomic.Int64 // unix nanos
	var lowest atomic.Int64
	lowest.Store(head)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			h := headroom()
			if h < lowest.Load() {
				lowest.Store(h)
			}
			if h < floor && crossed.Load() == 0 {
				crossed.Store(time.Now().UnixNano())
			}
			time.Sleep(time.Millisecond)
		}
	}()
	g := guard.Start(context.Background(), cmd.Process.Pid, guard.Options{Interval: interval, Floor: floor})
	// The guard kills the child, so Wait's "signal: killed" is the
	// expected end; tl.Killed below checks that it was the guard.
	_ = cmd.Wait()
	reaped := time.Now()
	tl := g.Stop()
	close(stop)
	if !tl.Killed {
		fail(fmt.Errorf("the guard did not kill the child"))
	}
	killed := tl.Started.Add(tl.KilledAt)
	c := time.Unix(0, crossed.Load())
	if crossed.Load() == 0 || c.After(killed) {
		c = killed // the guard saw it before the 1 ms observer did
	}
	time.Sleep(300 * time.Millisecond) // let the kernel take the memory back
	return killed.Sub(c), reaped.Sub(killed), floor - lowest.Load()
}

func headroom() int64 {
	mi, err := meminfo.Read("/proc")
	if err != nil {
		fail(err)
	}
	return mi.MemAvailable + mi.SwapFree
}

func hog() {
	step, _ := strconv.ParseInt(os.Getenv("STEP"), 10, 64)
	pause, _ := strconv.ParseInt(os.Getenv("PAUSE"), 10, 64)
	var keep [][]byte
	for i := 0; i < 100000; i++ {
		b := make([]byte, step)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		keep = append(keep, b)
		time.Sleep(time.Duration(pause))
	}
	_ = keep
}

func med(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxd(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = max(m, x)
	}
	return m
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "guardbench:", err)
	os.Exit(1)
}
