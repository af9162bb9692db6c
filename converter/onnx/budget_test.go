package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hostileModels are small files that describe millions of empty things.
func hostileModels() map[string][]byte {
	head := pb{}.varint(1, 8).msg(8, opsetPB("", 13))
	attrs := make([]byte, 0, 8<<20)
	for i := 0; i < 4<<20-8; i++ {
		attrs = append(attrs, 0x2a, 0x00) // NodeProto.attribute = {}
	}
	nodes := make([]byte, 0, 8<<20)
	for i := 0; i < 4<<20-8; i++ {
		nodes = append(nodes, 0x0a, 0x00) // GraphProto.node = {}
	}
	outs := make([]byte, 0, 8<<20)
	for i := 0; i < 4<<20-8; i++ {
		outs = append(outs, 0x12, 0x00) // NodeProto.output = ""
	}
	fields := make([]byte, 0, 8<<20)
	for i := 0; i < 4<<20-8; i++ {
		fields = append(fields, 0x08, 0x00) // ModelProto.ir_version = 0, repeated
	}
	return map[string][]byte{
		"4M empty attributes": head.msg(7, pb{}.msg(1, attrs)),
		"4M empty nodes":      head.msg(7, nodes),
		"4M empty outputs":    head.msg(7, pb{}.msg(1, outs)),
		"4M top-level fields": append(fields, head.msg(7, pb{}.str(2, "g"))...),
	}
}

// TestReaderMemoryBudget inspects each hostile model in a child process and
// measures that process's peak RSS: the reader must stay under 64 MiB
// whatever the model holds, refusing the model with ErrTooLarge when its
// structure alone would not fit.
func TestReaderMemoryBudget(t *testing.T) {
	if p := os.Getenv("TRTD_ONNX_BUDGET_CHILD"); p != "" {
		_, err := Open(p)
		// VmHWM, not getrusage: ru_maxrss survives exec and would
		// include the parent's memory.
		status, _ := os.ReadFile("/proc/self/status")
		var hwm int64
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				hwm, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		fmt.Printf("maxrss=%d err=%v\n", hwm<<10, err)
		return
	}
	dir := t.TempDir()
	for name, file := range hostileModels() {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".onnx")
			if err := os.WriteFile(p, file, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestReaderMemoryBudget$")
			cmd.Env = append(os.Environ(), "TRTD_ONNX_BUDGET_CHILD="+p, "GOGC=100")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			s := string(out)
			i := strings.Index(s, "maxrss=")
			if i < 0 {
				t.Fatalf("child output: %s", s)
			}
			f := strings.Fields(s[i+len("maxrss="):])
			rss, _ := strconv.ParseInt(f[0], 10, 64)
			t.Logf("%d-byte model: peak RSS %.1f MiB; %s", len(file), float64(rss)/(1<<20), strings.SplitN(s[i:], "\n", 2)[0])
			if rss > 64<<20 {
				t.Errorf("peak RSS %.1f MiB inspecting a %d-byte model (budget 64 MiB)", float64(rss)/(1<<20), len(file))
			}
		})
	}
}

// The budget refuses with ErrTooLarge, naming it, and a model within the
// budget still reads.
func TestReaderBudgetRefusesWithReason(t *testing.T) {
	file := hostileModels()["4M empty nodes"]
	_, err := ReadWith(bytes.NewReader(file), int64(len(file)), Options{Budget: 1 << 20})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("err = %v, want ErrTooLarge naming the budget", err)
	}
	good := buildTestModel().file
	if _, err := ReadWith(bytes.NewReader(good), int64(len(good)), Options{Budget: 1 << 20}); err != nil {
		t.Fatalf("small model refused: %v", err)
	}
}
