// Command swapbench times providing a swapfile with trtd's swap manager
// against the dd-based recipe common in Jetson guides, in the same run, and
// prints Markdown table rows (median of several runs). It needs root; every
// swapfile it makes is swapped off and removed before it exits.
//
//	go run ./daemon/swap/swapbench -dir /var/tmp -size 4G -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/swap"
)

func main() {
	dir := flag.String("dir", "/var/tmp", "directory on the filesystem to test")
	sizeS := flag.String("size", "4G", "swapfile size")
	runs := flag.Int("runs", 3, "runs of each method")
	flag.Parse()
	size, err := config.ParseSize(*sizeS)
	if err != nil {
		fail(err)
	}
	if os.Geteuid() != 0 {
		fail(fmt.Errorf("needs root (swapon)"))
	}
	work, err := os.MkdirTemp(*dir, "trtd-swapbench-")
	if err != nil {
		fail(err)
	}
	ddFile := filepath.Join(work, "dd-swapfile")
	cleanup := func() {
		// Fails when timeDD turned it off already, the usual case.
		_ = exec.Command("swapoff", ddFile).Run()
		m := manager(work, size, false)
		if err := m.Release(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "swapbench: swap left on:", err)
		}
		if err := os.RemoveAll(work); err != nil {
			fmt.Fprintln(os.Stderr, "swapbench: not removed:", err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(130) }()
	defer cleanup()

	var ours, zero, dd []time.Duration
	for i := 0; i < *runs; i++ {
		ours = append(ours, timeManager(work, size, false))
		zero = append(zero, timeManager(work, size, true))
		dd = append(dd, timeDD(ddFile, size))
	}
	fs := fsType(work)
	mo, mz, md := median(ours), median(zero), median(dd)
	fmt.Printf("| providing a %s swapfile on %s (median of %d) | time | vs dd recipe |\n|---|---|---|\n", *sizeS, fs, *runs)
	fmt.Printf("| trtd swap ensure (fallocate + mkswap + swapon + /proc/swaps check) | %s | %s |\n", round(mo), ratio(md, mo))
	fmt.Printf("| trtd with zero-fill + fsync (where fallocate is not accepted) | %s | %s |\n", round(mz), ratio(md, mz))
	fmt.Printf("| `dd if=/dev/zero of=F bs=1M count=%d && chmod 600 F && mkswap F && swapon F` | %s | 1× |\n", size>>20, round(md))
	fmt.Fprintf(os.Stderr, "runs: trtd %v, zero-fill %v, dd %v\n", ours, zero, dd)
}

func manager(work string, size config.Size, zero bool) *swap.Manager {
	cfg := config.Swap{Enabled: true, Dir: filepath.Join(work, "trtd"), MaxSize: size, Reserve: 0, Priority: -1}
	var opts []swap.Option
	if zero {
		opts = append(opts, swap.WithZeroFill())
	}
	return swap.New(cfg, filepath.Join(work, "state"), slog.New(slog.DiscardHandler), opts...)
}

func timeManager(work string, size config.Size, zero bool) time.Duration {
	m := manager(work, size, zero)
	if err := exec.Command("sync").Run(); err != nil {
		fail(fmt.Errorf("sync: %w", err))
	}
	t0 := time.Now()
	if _, err := m.Ensure(context.Background(), int64(size)); err != nil {
		fail(err)
	}
	d := time.Since(t0)
	if err := m.Release(context.Background()); err != nil {
		fail(err)
	}
	return d
}

func timeDD(f string, size config.Size) time.Duration {
	if err := exec.Command("sync").Run(); err != nil {
		fail(fmt.Errorf("sync: %w", err))
	}
	script := fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d status=none && chmod 600 %s && mkswap %s >/dev/null && swapon %s", f, size>>20, f, f, f)
	t0 := time.Now()
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		fail(fmt.Errorf("dd recipe: %v: %s", err, out))
	}
	d := time.Since(t0)
	if out, err := exec.Command("swapoff", f).CombinedOutput(); err != nil {
		fail(fmt.Errorf("swapoff: %v: %s", err, out))
	}
	if err := os.Remove(f); err != nil {
		fail(err) // the next run must write a new file, as the recipe does
	}
	return d
}

func fsType(dir string) string {
	out, err := exec.Command("stat", "-f", "-c", "%T", dir).Output()
	if err != nil {
		return "?"
	}
	t := strings.TrimSpace(string(out))
	if t == "ext2/ext3" { // stat names the shared magic; it is ext4 here
		t = "ext4"
	}
	return t
}

func ratio(base, d time.Duration) string {
	if d <= base {
		return fmt.Sprintf("%.0f× faster", float64(base)/float64(d))
	}
	return fmt.Sprintf("%.1f× slower", float64(d)/float64(base))
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%.3f s", d.Seconds())
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "swapbench:", err)
	os.Exit(1)
}
