package main

// The cost of a large history (issue 13, "Cost as work grows"): 10,000
// finished jobs in the store and 10,000 files in the outbox (start to
// READY, RSS, `trtd status --json`), and 1,000 uploads arriving at once
// (each claimed exactly once, the daemon's peak RSS).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/daemon/jobs"
	"github.com/trtd/trtd/daemon/provenance"
)

// seedHistory writes n finished jobs (job.json and a kept model each) and
// outN outbox files (an engine, its provenance and two reports per model).
func seedHistory(root string, n, outN int) error {
	store, outbox := filepath.Join(root, "state", "jobs"), filepath.Join(root, "outbox")
	t0 := time.Now().Add(-time.Duration(n) * time.Minute).UTC()
	model := make([]byte, 4096)
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		j := &jobs.Job{ID: fmt.Sprintf("%s-h%05d", at.Format("20060102T150405Z"), i), Name: fmt.Sprintf("h%05d.onnx", i),
			State: jobs.Done, Step: jobs.StepReportPublished, Created: at, Updated: at.Add(30 * time.Second),
			ModelSize: int64(len(model)), ModelSHA256: fmt.Sprintf("%064x", i), CacheKey: fmt.Sprintf("%064x", i+1),
			Stage: "fast", Outcome: "built", EngineSHA: fmt.Sprintf("%064x", i+2), Outputs: []string{fmt.Sprintf("h%05d.engine", i)}}
		for _, s := range []string{jobs.StepClaimed, jobs.StepPlanned, jobs.StepWorkerStarted, jobs.StepWorkerFinished,
			jobs.StepEngineRenamed, jobs.StepCommitted, jobs.StepReportPublished} {
			j.History = append(j.History, jobs.Transition{At: at, State: jobs.Building, Step: s})
		}
		dir := filepath.Join(store, j.ID)
		if err := os.MkdirAll(filepath.Join(dir, "model"), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(j, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "job.json"), b, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "model", j.Name), model, 0o644); err != nil {
			return err
		}
		if i < outN/4 {
			base := filepath.Join(outbox, strings.TrimSuffix(j.Name, ".onnx"))
			p := &provenance.Provenance{Schema: provenance.SchemaVersion, Engine: filepath.Base(base) + ".engine", EngineSHA: j.EngineSHA,
				ModelSHA: j.ModelSHA256, Model: j.Name, Stage: "fast", Job: j.ID, Built: at, Tool: "trtd"}
			pb, _ := json.MarshalIndent(p, "", "  ")
			for suffix, data := range map[string][]byte{".engine": model, provenance.Suffix: pb, ".report.json": []byte("{}"), ".report.md": []byte("#\n")} {
				if err := os.WriteFile(base+suffix, data, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func scaleConfig(root, extra string) string {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	cfg := fmt.Sprintf(`log_level = "warn"
log_format = "json"
[paths]
inbox = %q
outbox = %q
state = %q
failed = %q
worker = %q
[inbox]
settle = %q
[worker]
user = ""
private_network = false
[swap]
enabled = false
%s`, filepath.Join(root, "inbox"), filepath.Join(root, "outbox"), filepath.Join(root, "state"), filepath.Join(root, "failed"),
		abs(*workerBin), settle.String(), extra)
	p := filepath.Join(root, "config.toml")
	must(os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

// startAt starts trtd on cfg and returns it once its status says idle,
// with the time that took.
func startAt(root, cfg string) (*exec.Cmd, time.Duration, error) {
	abs, _ := filepath.Abs(*trtdBin)
	c := exec.Command(abs, "run", "--config", cfg)
	logf, _ := os.OpenFile(filepath.Join(root, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	c.Stdout, c.Stderr = logf, logf
	t0 := time.Now()
	if err := c.Start(); err != nil {
		return nil, 0, err
	}
	status := filepath.Join(root, "state", "status.json")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var st struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		}
		if b, err := os.ReadFile(status); err == nil && json.Unmarshal(b, &st) == nil && st.PID == c.Process.Pid && st.State == "idle" {
			return c, time.Since(t0), nil
		}
	}
	// Stopped for failing to start: the error returned says so, and the
	// kill's and the wait's errors ("signal: killed") add nothing.
	_ = c.Process.Kill()
	_ = c.Wait()
	return nil, 0, fmt.Errorf("daemon not ready within 60 s")
}

// stopCmd stops a daemon the way systemd does; one that does not exit
// cleanly is said (its numbers may be suspect).
func stopCmd(c *exec.Cmd) {
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench: stopping the daemon:", err)
	}
	if err := c.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "daemonbench: the daemon did not exit cleanly:", err)
	}
}

func runHistory(n, outN int) error {
	root, err := os.MkdirTemp("", "trtd-bench-history-")
	if err != nil {
		return err
	}
	defer removeAll(root)
	if err := seedHistory(root, n, outN); err != nil {
		return err
	}
	// Retention off: every run starts with the whole history.
	cfg := scaleConfig(root, "[retention]\nkeep_jobs = 0\nkeep_days = 0\n")
	var ready, rss, hwm, stt []float64
	for r := 0; r < *runs; r++ {
		c, took, err := startAt(root, cfg)
		if err != nil {
			return err
		}
		ready = append(ready, float64(took)/float64(time.Millisecond))
		time.Sleep(3 * time.Second) // the start's prune and disk measure have run
		rss = append(rss, float64(procStatus(c.Process.Pid, "VmRSS"))/1024)
		hwm = append(hwm, float64(procStatus(c.Process.Pid, "VmHWM"))/1024)
		abs, _ := filepath.Abs(*trtdBin)
		for k := 0; k < 3; k++ {
			t0 := time.Now()
			out, err := exec.Command(abs, "status", "--json", "--config", cfg).Output()
			d := time.Since(t0)
			if err != nil || !json.Valid(out) {
				stopCmd(c)
				return fmt.Errorf("trtd status --json: %v", err)
			}
			stt = append(stt, float64(d)/float64(time.Millisecond))
		}
		stopCmd(c)
	}
	fmt.Printf("%d finished jobs in the store (a 4 KiB kept model each), %d files in the outbox ([retention] off, so every start reads them all); %d runs (median, spread min–max).\n\n", n, outN, *runs)
	fmt.Println("| figure | reference | median | spread | vs reference |")
	fmt.Println("|---|---|---|---|---|")
	row := func(name, ref string, s stat, unit string, target float64) {
		fmt.Printf("| %s | %s | %.1f %s | %.1f–%.1f | %.2f× target |\n", name, ref, s.med, unit, s.min, s.max, s.med/target)
	}
	row("start to READY (status idle)", "target ≤ 1000 ms", summarize(ready), "ms", 1000)
	row("daemon RSS 3 s after READY", "target ≤ 20 MiB", summarize(rss), "MiB", 20)
	row("daemon peak RSS (VmHWM) over the start, transient", "target ≤ 20 MiB", summarize(hwm), "MiB", 20)
	row("`trtd status --json`, whole command", "target ≤ 100 ms", summarize(stt), "ms", 100)
	return nil
}

func runFlood(n int) error {
	root, err := os.MkdirTemp("", "trtd-bench-flood-")
	if err != nil {
		return err
	}
	defer removeAll(root)
	if err := os.MkdirAll(filepath.Join(root, "inbox"), 0o755); err != nil {
		return err
	}
	cfg := scaleConfig(root, "")
	c, _, err := startAt(root, cfg)
	if err != nil {
		return err
	}
	d := &daemon{root: root, inbox: filepath.Join(root, "inbox"), cmd: c}
	t0 := time.Now()
	lat := d.burst(n)
	all := time.Since(t0)
	hwm := float64(procStatus(c.Process.Pid, "VmHWM")) / 1024
	stopCmd(c)
	missed := 0
	for _, l := range lat {
		if l == 0 {
			missed++
		}
	}
	// Exactly once: one job per upload, no upload left, none twice.
	seen := map[string]int{}
	ents, _ := os.ReadDir(filepath.Join(root, "state", "jobs"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(root, "state", "jobs", e.Name(), "job.json"))
		var j jobs.Job
		if err == nil && json.Unmarshal(b, &j) == nil {
			seen[j.Name]++
		}
	}
	twice := 0
	for _, k := range seen {
		if k > 1 {
			twice++
		}
	}
	fmt.Printf("%d in-place uploads written at once into an idle daemon's inbox (inbox.settle = %s); the worker is the test double.\n\n", n, settle.String())
	fmt.Println("| figure | reference | measured | vs reference |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| uploads claimed | %d, each exactly once | %d claimed, %d jobs, %d claimed twice, %d never | %s |\n", n, n-missed, len(seen), twice, missed,
		map[bool]string{true: "ok", false: "FAILED"}[missed == 0 && twice == 0 && len(seen) == n])
	fmt.Printf("| all claimed after the last write | — | %.1f s (p50 %.0f ms, p99 %.0f ms) | |\n", all.Seconds(), pct(lat, 0.5), pct(lat, 0.99))
	fmt.Printf("| daemon peak RSS (VmHWM) | target ≤ 32 MiB | %.1f MiB | %.2f× target |\n", hwm, hwm/32)
	if missed != 0 || twice != 0 || len(seen) != n {
		return fmt.Errorf("uploads not claimed exactly once")
	}
	return nil
}
