// Command daemonbench measures the daemon itself, run as a real process with
// the worker's test double: pickup latency after an upload ends (written in
// place like scp, and renamed in like rsync), the same for a burst of 200
// files (p50/p99), idle RSS and wake-ups per minute. Each figure is the
// median of several runs, with the spread (min–max). It prints Markdown.
//
// Usage: go run ./test/bench/daemonbench -trtd bin/trtd -worker bin/trtd-fake-worker
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/internal/testmodels"
)

var (
	trtdBin   = flag.String("trtd", "bin/trtd", "trtd binary")
	workerBin = flag.String("worker", "bin/trtd-fake-worker", "worker (test double)")
	runs      = flag.Int("runs", 5, "runs per figure")
	settle    = flag.Duration("settle", time.Second, "inbox.settle of the measured daemon")
	burstN    = flag.Int("burst", 200, "files in the burst")
	idleFor   = flag.Duration("idle", 65*time.Second, "idle window for RSS and wake-ups (over two inbox rescans, every 30 s)")
	scale     = flag.String("scale", "", "history: 10,000 finished jobs and outbox files; flood: 1,000 uploads at once; intake: one large upload's CPU and RSS")
	history   = flag.Int("history", 10000, "finished jobs (and outbox files) of -scale history")
	floodN    = flag.Int("flood", 1000, "uploads of -scale flood")
	intakeN   = flag.Int("intake-inits", 30000, "initializers (and nodes) of the model of -scale intake")
	intakeMB  = flag.Int64("intake-mb", 220, "size in MB of the model of -scale intake")
)

type daemon struct {
	root, inbox string
	cmd         *exec.Cmd
}

func start() (*daemon, error) {
	root, err := os.MkdirTemp("", "trtd-bench-")
	if err != nil {
		return nil, err
	}
	d := &daemon{root: root, inbox: filepath.Join(root, "inbox")}
	cfg := scaleConfig(root, "")
	trtd, _ := filepath.Abs(*trtdBin)
	d.cmd = exec.Command(trtd, "run", "--config", cfg)
	logf, _ := os.Create(filepath.Join(root, "log"))
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	status := filepath.Join(root, "state", "status.json")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var st struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		}
		if b, err := os.ReadFile(status); err == nil && json.Unmarshal(b, &st) == nil && st.PID == d.cmd.Process.Pid && st.State == "idle" {
			return d, nil
		}
	}
	d.stop()
	return nil, fmt.Errorf("daemon not ready")
}

func (d *daemon) stop() { stopCmd(d.cmd); removeAll(d.root) }

// must stops the benchmark on an error that would make its numbers wrong
// (an upload not written times nothing).
func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench:", err)
		os.Exit(1)
	}
}

// removeAll removes a benchmark's temporary tree; one left behind is said.
func removeAll(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench: not removed:", err)
	}
}

// pickup writes name and returns how long after the upload ended the
// daemon claimed it (moved it out of the inbox).
func (d *daemon) pickup(name string, data []byte, rename bool) time.Duration {
	p := filepath.Join(d.inbox, name)
	var t0 time.Time
	if rename {
		tmp := filepath.Join(d.inbox, "."+name+".tmp")
		must(os.WriteFile(tmp, data, 0o644))
		t0 = time.Now()
		must(os.Rename(tmp, p))
	} else {
		must(os.WriteFile(p, data, 0o644))
		t0 = time.Now()
	}
	for {
		if _, err := os.Lstat(p); err != nil {
			return time.Since(t0)
		}
		time.Sleep(time.Millisecond)
	}
}

func (d *daemon) burst(n int) []time.Duration {
	ends := make([]time.Time, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			must(os.WriteFile(filepath.Join(d.inbox, fmt.Sprintf("b%04d.onnx", i)), testmodels.TinyCNN, 0o644))
			ends[i] = time.Now()
		}(i)
	}
	wg.Wait()
	lat := make([]time.Duration, n)
	left := n
	for deadline := time.Now().Add(5 * time.Minute); left > 0 && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		for i := 0; i < n; i++ {
			if lat[i] == 0 {
				if _, err := os.Lstat(filepath.Join(d.inbox, fmt.Sprintf("b%04d.onnx", i))); err != nil {
					lat[i] = time.Since(ends[i])
					left--
				}
			}
		}
	}
	return lat
}

func procStatus(pid int, key string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func switches(pid int) int {
	n := 0
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		for _, l := range strings.Split(string(b), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(l, k); ok {
					x, _ := strconv.Atoi(strings.TrimSpace(v))
					n += x
				}
			}
		}
	}
	return n
}

// wakeups watches pid for window, reading its threads' context switches
// every 10 ms: a wake-up is a 10 ms sample in which any thread ran (the
// inbox rescan wakes three threads for a few switches: one wake-up), and
// switches counts them all.
func wakeups(pid int, window time.Duration) (wakes, sw int) {
	prev := switches(pid)
	start := prev
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for end := time.Now().Add(window); time.Now().Before(end); {
		<-t.C
		if n := switches(pid); n != prev {
			wakes++
			prev = n
		}
	}
	return wakes, prev - start
}

type stat struct{ med, min, max float64 }

func summarize(xs []float64) stat {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return stat{med: s[len(s)/2], min: s[0], max: s[len(s)-1]}
}

func pct(ds []time.Duration, p float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	i := int(p * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

func main() {
	flag.Parse()
	if *intakeModel != "" {
		if err := writeIntakeModel(*intakeModel, *intakeN, *intakeMB*1e6); err != nil {
			fmt.Fprintln(os.Stderr, "daemonbench:", err)
			os.Exit(1)
		}
		return
	}
	if *scale != "" {
		var err error
		switch *scale {
		case "history":
			err = runHistory(*history, *history)
		case "flood":
			err = runFlood(*floodN)
		case "intake":
			err = runIntake(*intakeN, *intakeMB*1e6)
		default:
			err = fmt.Errorf("-scale %q: want history, flood or intake", *scale)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "daemonbench:", err)
			os.Exit(1)
		}
		return
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var inPlace, renamed, p50, p99, rss0, rss, wake, sw []float64
	for r := 0; r < *runs; r++ {
		d, err := start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "daemonbench:", err)
			os.Exit(1)
		}
		time.Sleep(2 * time.Second)
		rss0 = append(rss0, float64(procStatus(d.cmd.Process.Pid, "VmRSS"))/1024)
		inPlace = append(inPlace, ms(d.pickup(fmt.Sprintf("single-%d.onnx", r), testmodels.TinyCNN, false)))
		time.Sleep(200 * time.Millisecond)
		renamed = append(renamed, ms(d.pickup(fmt.Sprintf("renamed-%d.onnx", r), testmodels.TinyCNN, true)))
		lat := d.burst(*burstN)
		p50 = append(p50, pct(lat, 0.50))
		p99 = append(p99, pct(lat, 0.99))
		// wait for the queue to drain, then idle
		time.Sleep(*settle + 2*time.Second)
		var st struct {
			State string            `json:"state"`
			Queue []json.RawMessage `json:"queue"`
		}
		for i := 0; i < 600; i++ {
			b, _ := os.ReadFile(filepath.Join(d.root, "state", "status.json"))
			if json.Unmarshal(b, &st) == nil && st.State == "idle" && len(st.Queue) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st.State != "idle" || len(st.Queue) != 0 {
			stopCmd(d.cmd) // its root, and log, stay for a look
			must(fmt.Errorf("the burst did not end idle: state %q, %d queued (log: %s)", st.State, len(st.Queue), filepath.Join(d.root, "log")))
		}
		pid := d.cmd.Process.Pid
		time.Sleep(2 * time.Second)
		w, n := wakeups(pid, *idleFor)
		perMin := func(n int) float64 { return float64(n) * float64(time.Minute) / float64(*idleFor) }
		wake, sw = append(wake, perMin(w)), append(sw, perMin(n))
		rss = append(rss, float64(procStatus(pid, "VmRSS"))/1024)
		d.stop()
	}
	row := func(name, ref string, s stat, unit, vs string) {
		fmt.Printf("| %s | %s | %.1f %s | %.1f–%.1f | %s |\n", name, ref, s.med, unit, s.min, s.max, vs)
	}
	settleMs := ms(*settle)
	target := settleMs + 100
	fmt.Printf("Daemon as a real process with the worker's test double, inbox.settle = %s, %d runs (median, spread min–max).\n\n", settle.String(), *runs)
	fmt.Println("| figure | reference | median | spread | vs reference |")
	fmt.Println("|---|---|---|---|---|")
	s := summarize(inPlace)
	row("pickup after an in-place upload ends (scp, sftp)", fmt.Sprintf("target ≤ settle + 100 ms = %.0f ms", target), s, "ms", fmt.Sprintf("%.2f× target; settle + %.0f ms", s.med/target, s.med-settleMs))
	s = summarize(renamed)
	row("pickup after a rename into the inbox (rsync, mv)", "target ≤ 100 ms (no settle)", s, "ms", fmt.Sprintf("%.2f× target", s.med/100))
	s = summarize(p50)
	row(fmt.Sprintf("burst of %d in-place uploads: p50", *burstN), fmt.Sprintf("target ≤ %.0f ms", target), s, "ms", fmt.Sprintf("%.2f× target", s.med/target))
	s = summarize(p99)
	row(fmt.Sprintf("burst of %d in-place uploads: p99", *burstN), fmt.Sprintf("target ≤ %.0f ms", target), s, "ms", fmt.Sprintf("%.2f× target", s.med/target))
	s = summarize(rss0)
	row("daemon idle RSS (fresh start, nothing uploaded yet)", "target ≤ 15 MiB", s, "MiB", fmt.Sprintf("%.2f× target", s.med/15))
	s = summarize(rss)
	row("daemon idle RSS (after the burst)", "target ≤ 15 MiB", s, "MiB", fmt.Sprintf("%.2f× target", s.med/15))
	s = summarize(wake)
	row(fmt.Sprintf("daemon wake-ups per minute, idle (10 ms samples with a context switch, over %s)", idleFor.String()), "target ≤ 10 /min besides the watchdog (none here)", s, "/min", fmt.Sprintf("%.2f× target", s.med/10))
	s = summarize(sw)
	row("daemon context switches per minute, idle (all threads, same window)", "—", s, "/min", "")
}
