package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trtd/trtd/internal/filehash"
)

// intakeModel, when set, names a file to write the model of -scale intake
// to (-intake-inits, -intake-mb) instead of measuring anything: the
// inspect benchmark (converter/onnx/testdata/bench_inspect.sh) reads it.
var intakeModel = flag.String("intake-model", "", "write the model of -scale intake to this `FILE` and exit")

// writeIntakeModel writes that model.
func writeIntakeModel(path string, n int, size int64) error {
	return os.WriteFile(path, largeModel(n, size), 0o644)
}

// largeModel is a valid model of about size bytes with n initializers:
// Y = X + W1 + W2 + ... + Wn, a chain of n Add nodes, each W of the same
// number of floats, its data embedded (raw_data). The structure (n nodes,
// n initializers, their names) is what the daemon parses; the data it
// skips.
func largeModel(n int, size int64) []byte {
	floats := uint64(size / int64(n) / 4)
	tag := func(num protowire.Number, t protowire.Type) []byte { return protowire.AppendTag(nil, num, t) }
	msg := func(num protowire.Number, parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return protowire.AppendBytes(tag(num, protowire.BytesType), b)
	}
	str := func(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }
	vint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(num, protowire.VarintType), v)
	}
	value := func(field protowire.Number, name string) []byte {
		return msg(field, str(1, name), msg(2, msg(1, vint(1, 1), msg(2, msg(1, vint(1, floats))))))
	}
	data := make([]byte, floats*4)
	graph := make([]byte, 0, size+int64(n)*128)
	prev := "X"
	for i := 0; i < n; i++ {
		w, y := fmt.Sprintf("W%d", i), fmt.Sprintf("Y%d", i)
		if i == n-1 {
			y = "Y"
		}
		graph = append(graph, msg(1, str(1, prev), str(1, w), str(2, y), str(3, "add"+strconv.Itoa(i)), str(4, "Add"))...)
		graph = append(graph, msg(5, vint(1, floats), vint(2, 1), str(8, w), msg(9, data))...)
		prev = y
	}
	graph = append(graph, str(2, "large")...)
	graph = append(graph, value(11, "X")...)
	graph = append(graph, value(12, "Y")...)
	out := vint(1, 8)
	out = append(out, tag(7, protowire.BytesType)...)
	out = protowire.AppendVarint(out, uint64(len(graph)))
	out = append(out, graph...)
	return append(out, msg(8, str(1, ""), vint(2, 17))...)
}

// cpuTicks is the CPU time (user + system) pid has used.
func cpuTicks(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100 // USER_HZ
}

// runIntake measures what the daemon spends on one large upload, from the
// rename into the inbox to its report: CPU time (the inbox's check, the
// claim, the plan; the sha256 of the model before and after the build; the
// build itself is the worker's, another process) and peak RSS, beside one
// parse of the same model by `trtd inspect` in its own process.
func runIntake(n int, size int64) error {
	root, err := os.MkdirTemp("", "trtd-bench-intake-")
	if err != nil {
		return err
	}
	defer removeAll(root)
	model := largeModel(n, size)
	src := filepath.Join(root, "large.onnx")
	if err := os.WriteFile(src, model, 0o644); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*trtdBin)
	// The floor of the daemon's work: it hashes the model twice (before
	// the build, and after it to make sure the bytes built are the bytes
	// reported, F-14), through internal/filehash, as here.
	var hashCPU []float64
	for r := 0; r < *runs; r++ {
		u0 := selfCPU()
		for i := 0; i < 2; i++ {
			if _, err := filehash.SHA256(src); err != nil {
				return err
			}
		}
		hashCPU = append(hashCPU, float64(selfCPU()-u0)/float64(time.Millisecond))
	}
	var inspCPU []float64
	for r := 0; r < *runs; r++ {
		c := exec.Command(abs, "inspect", "--json", src)
		c.Stdout = nil
		if err := c.Run(); err != nil {
			return fmt.Errorf("trtd inspect: %w", err)
		}
		inspCPU = append(inspCPU, (c.ProcessState.UserTime()+c.ProcessState.SystemTime()).Seconds()*1000)
	}
	var cpu, hwm, took []float64
	for r := 0; r < *runs; r++ {
		dir := filepath.Join(root, fmt.Sprintf("run%d", r))
		if err := os.MkdirAll(filepath.Join(dir, "inbox"), 0o755); err != nil {
			return err
		}
		c, _, err := startAt(dir, scaleConfig(dir, ""))
		if err != nil {
			return err
		}
		pid := c.Process.Pid
		tmp := filepath.Join(dir, "inbox", ".large.onnx.tmp")
		// A settings file, as many uploads have: the daemon used to read
		// the model a third time to check it against the model's inputs.
		if err := errors.Join(os.Link(src, tmp),
			os.WriteFile(filepath.Join(dir, "inbox", "large.toml"), []byte("precision = \"fp32\"\n"), 0o644)); err != nil {
			stopCmd(c)
			return err
		}
		c0 := cpuTicks(pid)
		t0 := time.Now()
		if err := os.Rename(tmp, filepath.Join(dir, "inbox", "large.onnx")); err != nil {
			stopCmd(c)
			return err
		}
		rep := filepath.Join(dir, "outbox", "large.report.json")
		outcome := ""
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			var st struct {
				Outcome string `json:"outcome"`
			}
			if b, err := os.ReadFile(rep); err == nil && json.Unmarshal(b, &st) == nil && st.Outcome != "" {
				outcome = st.Outcome
				break
			}
		}
		took = append(took, time.Since(t0).Seconds())
		cpu = append(cpu, float64(cpuTicks(pid)-c0)/float64(time.Millisecond))
		hwm = append(hwm, float64(procStatus(pid, "VmHWM"))/1024)
		stopCmd(c)
		if outcome != "built" {
			return fmt.Errorf("large.onnx: outcome %q, want built (log in %s)", outcome, dir)
		}
	}
	fmt.Printf("One upload of %.0f MB with %d initializers and %d nodes (data embedded) and a settings file, renamed into an idle daemon's inbox; the worker is the test double. %d runs (median, spread min–max); the daemon's CPU from /proc/PID/stat (10 ms ticks).\n\n",
		float64(len(model))/1e6, n, n, *runs)
	fmt.Println("| figure | reference | median | spread | vs reference |")
	fmt.Println("|---|---|---|---|---|")
	ref, hash := summarize(inspCPU), summarize(hashCPU)
	s := summarize(cpu)
	fmt.Printf("| daemon CPU time, rename to report (check, claim, plan, two sha256, report; the model parsed once) | one parse, `trtd inspect --json` in its own process: %.0f ms (%.0f–%.0f); two sha256 of the model: %.0f ms (%.0f–%.0f) | %.0f ms | %.0f–%.0f | %.2f× (one parse + two sha256); was 720 ms (700–730) when the daemon parsed it three times, on the same machine |\n",
		ref.med, ref.min, ref.max, hash.med, hash.min, hash.max, s.med, s.min, s.max, s.med/(ref.med+hash.med))
	s = summarize(hwm)
	fmt.Printf("| daemon peak RSS (VmHWM) over the intake | target ≤ 64 MiB (issue 13, F-4) | %.1f MiB | %.1f–%.1f | %.2f× target |\n",
		s.med, s.min, s.max, s.med/64)
	s = summarize(took)
	fmt.Printf("| rename to report, wall | — | %.2f s | %.2f–%.2f | |\n", s.med, s.min, s.max)
	return nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0 // never for RUSAGE_SELF
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
