package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/planner"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/device"
)

// pbMsg, pbStr and pbVarint append protobuf fields.
func pbMsg(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbStr(b []byte, num protowire.Number, s string) []byte { return pbMsg(b, num, []byte(s)) }

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// floatValue is a ValueInfoProto of a float tensor of the given dims (a
// string is a symbolic dim).
func floatValue(field protowire.Number, name string, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		switch d := d.(type) {
		case string:
			shape = pbMsg(shape, 1, pbStr(nil, 2, d))
		case int:
			shape = pbMsg(shape, 1, pbVarint(nil, 1, uint64(d)))
		}
	}
	return pbMsg(nil, field, pbMsg(pbStr(nil, 1, name), 2, pbMsg(nil, 1, pbMsg(pbVarint(nil, 1, 1), 2, shape))))
}

func modelOf(graph []byte) []byte {
	m := pbVarint(nil, 1, 8)
	m = pbStr(m, 2, "test")
	m = pbMsg(m, 7, graph)
	return pbMsg(m, 8, pbVarint(nil, 2, 13))
}

// chainModel is the model of the daemon's intake benchmark
// (test/bench/daemonbench -scale intake), smaller: Y = X + W0 + ... + Wn-1,
// a chain of n Add nodes, each W an initializer of floats floats, its data
// embedded.
func chainModel(n, floats int) []byte {
	data := make([]byte, floats*4)
	g := pbStr(nil, 2, "chain")
	prev := "X"
	for i := 0; i < n; i++ {
		w, y := fmt.Sprintf("W%d", i), fmt.Sprintf("Y%d", i)
		if i == n-1 {
			y = "Y"
		}
		node := pbStr(pbStr(pbStr(pbStr(pbStr(nil, 1, prev), 1, w), 2, y), 3, fmt.Sprintf("add%d", i)), 4, "Add")
		g = pbMsg(g, 1, node)
		g = pbMsg(g, 5, pbMsg(pbStr(pbVarint(pbVarint(nil, 1, uint64(floats)), 2, 1), 8, w), 9, data))
		prev = y
	}
	g = append(g, floatValue(11, "X", floats)...)
	g = append(g, floatValue(12, "Y", floats)...)
	return modelOf(g)
}

// opTypesModel has n nodes, each of an op type of its own, none of which
// TensorRT's parser knows: the op histogram and the unsupported list are
// as long as the graph.
func opTypesModel(n int) []byte {
	g := pbStr(nil, 2, "ops")
	for i := 0; i < n; i++ {
		g = pbMsg(g, 1, pbStr(pbStr(pbStr(nil, 1, "X"), 2, "Y"), 4, fmt.Sprintf("Custom%d", i)))
	}
	g = append(g, floatValue(11, "X", "N", 4)...)
	return modelOf(append(g, floatValue(12, "Y", "N", 4)...))
}

// inputsModel has n dynamic inputs: the inputs listed are as many.
func inputsModel(n int) []byte {
	g := pbStr(nil, 2, "inputs")
	for i := 0; i < n; i++ {
		g = append(g, floatValue(11, fmt.Sprintf("input%d", i), "N", 3, 224, 224)...)
	}
	return modelOf(append(g, floatValue(12, "input0", "N", 3, 224, 224)...))
}

func writeModel(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// allocated runs fn and returns the bytes it allocated on the heap.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// `trtd inspect` costs what its reader costs, plus about what it prints:
// the op check, the plan, the text or JSON writers add no per-node or
// per-line garbage. The text writer used to build a strings.Replacer per
// line (~7 KiB each: 280 MB for 40,000 op types) and the JSON one to hold
// the whole document twice. Bytes allocated are counted, not RSS: they do
// not depend on the machine's load, and they bound what the GC must keep
// up with. A model twice as large costs about twice as much (linear).
func TestInspectCostsWhatTheReaderCosts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds models of tens of thousands of nodes")
	}
	models := []struct {
		name string
		make func(scale int) []byte
	}{
		{"15,000 Add nodes and initializers (the intake bench's model)", func(k int) []byte { return chainModel(15000*k, 16) }},
		{"10,000 op types", func(k int) []byte { return opTypesModel(10000 * k) }},
		{"10,000 dynamic inputs", func(k int) []byte { return inputsModel(10000 * k) }},
	}
	for _, m := range models {
		var cost [3]uint64
		for _, k := range []int{1, 2} {
			p := writeModel(t, "m.onnx", m.make(k))
			reader := allocated(func() {
				mod, err := onnx.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				_ = mod.Summary()
			})
			for i, args := range [][]string{{p}, {"--trt", "8.2", p}, {"--json", "--trt", "8.2", p}} {
				var out countWriter
				var errb bytes.Buffer
				code := 0
				inspect := allocated(func() {
					code = runInspect(context.Background(), &Env{Stdout: &out, Stderr: &errb}, args)
				})
				if code != 0 {
					t.Fatalf("%s %v: exit %d: %s", m.name, args, code, errb.String())
				}
				// The reader and its summary, the op check's list and the
				// output (both about as large as the summary), and a fixed
				// part (flags, config, tables).
				limit := 2*reader + 3*uint64(out.n) + 2<<20
				t.Logf("%s ×%d %v: inspect allocated %.1f MiB, reader + summary %.1f MiB, output %.1f MiB (limit %.1f MiB)",
					m.name, k, args[:len(args)-1], mib(inspect), mib(reader), mib(uint64(out.n)), mib(limit))
				if inspect > limit {
					t.Errorf("%s %v: inspect allocated %.1f MiB, over %.1f MiB (reader %.1f MiB, output %.1f MiB)",
						m.name, args[:len(args)-1], mib(inspect), mib(limit), mib(reader), mib(uint64(out.n)))
				}
				if k == 1 {
					cost[i] = inspect
				} else if inspect > cost[i]*5/2 {
					t.Errorf("%s %v: twice the model costs %.1f× as much (%.1f → %.1f MiB): not linear",
						m.name, args[:len(args)-1], float64(inspect)/float64(cost[i]), mib(cost[i]), mib(inspect))
				}
			}
		}
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// The JSON writer streams what json.Encoder with SetIndent("", "  ") wrote
// before, byte for byte: scripts parse it, people read it.
func TestInspectJSONIsTheEncodersOutput(t *testing.T) {
	odd := pbStr(nil, 2, "odd")
	for _, name := range []string{`q"uote\back`, "<b>&amp;</b>", "line\u2028sep", "bad\xffbyte", "tab\there", "ünï"} {
		odd = pbMsg(odd, 1, pbStr(pbStr(pbStr(pbStr(nil, 1, name), 2, "Y"), 3, name), 4, name))
		odd = append(odd, floatValue(11, name, "N", 0, 2)...)
	}
	odd = append(odd, floatValue(12, "Y")...)
	models := map[string]string{
		"nonzero":  inspectModel(t),
		"odd":      writeModel(t, "odd.onnx", modelOf(odd)),
		"op types": writeModel(t, "ops.onnx", opTypesModel(300)),
		"inputs":   writeModel(t, "inputs.onnx", inputsModel(300)),
		"chain":    writeModel(t, "chain.onnx", chainModel(300, 4)),
		"empty":    writeModel(t, "empty.onnx", modelOf(pbStr(nil, 2, "g"))),
	}
	for name, p := range models {
		for _, trt := range []string{"8.2", "10.3", "0.1"} {
			m, err := onnx.Open(p)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			s := m.Summary()
			check := checkOps(s, trt, "/")
			mem := estimateMemory(s, check, "nano", "", "/")
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(inspectJSON{Summary: s, TensorRT: check, BuildMemory: mem}); err != nil {
				t.Fatal(err)
			}
			code, got, errs := runCmd(t, "--json", "--trt", trt, "--platform", "nano", p)
			if trt == "0.1" {
				// Not a release: the command refuses it; the writer
				// still matches for a check that carries an error.
				if code != 2 {
					t.Fatalf("%s --trt 0.1: exit %d", name, code)
				}
				var b bytes.Buffer
				if err := writeJSONIndented(&b, inspectJSON{Summary: s, TensorRT: check, BuildMemory: mem}); err != nil {
					t.Fatal(err)
				}
				got = b.String()
			} else if code != 0 {
				t.Fatalf("%s: exit %d: %s", name, code, errs)
			}
			if got != want.String() {
				t.Errorf("%s --trt %s: streamed JSON differs from json.Encoder's:\n%s\nwant:\n%s", name, trt, got, want.String())
			}
		}
	}
	var b bytes.Buffer
	if err := writeJSONIndented(&b, struct {
		A int `json:"a"`
	}{1}); err != nil || b.String() != "{\n  \"a\": 1\n}\n" {
		t.Errorf("one field: %q %v", b.String(), err)
	}
}

// A write error reaches the exit status.
func TestInspectWriteError(t *testing.T) {
	p := inspectModel(t)
	for _, args := range [][]string{{p}, {"--json", p}} {
		var errb bytes.Buffer
		if code := runInspect(context.Background(), &Env{Stdout: failWriter{}, Stderr: &errb}, args); code != 1 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 1 and the reason", args, code, errb.String())
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// `trtd inspect` and the daemon plan a model through one path
// (planner.Facts, planner.Estimate): for the same model, stages, platform
// and TensorRT version, every stage's estimate printed by inspect is the
// one planner.New gives the daemon's job (no sidecar: dynamic dims as 1).
func TestInspectEstimateIsTheDaemonsPlan(t *testing.T) {
	for name, p := range map[string]string{
		"nonzero": inspectModel(t),
		"chain":   writeModel(t, "chain.onnx", chainModel(3000, 64)),
		"inputs":  writeModel(t, "inputs.onnx", inputsModel(50)),
	} {
		m, err := onnx.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		s := m.Summary()
		for _, trt := range []string{"8.2.1", "10.0.1"} {
			got := estimateMemory(s, &trtCheck{Version: trt}, "nano", "", "/")
			dev := &sysinfo.Device{Jetson: &device.Jetson{SoC: "tegra210"}, TensorRT: trt, MemTotal: 4 << 30, MemAvailable: 3 << 30}
			plan := planner.New(planner.Facts(s, nil, ""), dev, config.Default(), nil)
			var want []stageMemory
			for _, sp := range plan.Stages {
				if converter.Kind(sp.Stage.Kind) == converter.KindOffload {
					continue
				}
				want = append(want, stageMemory{Name: sp.Stage.Name, Kind: sp.Stage.Kind, DeviceBytes: sp.DeviceBytes, HostBytes: sp.HostBytes, PeakBytes: sp.PeakBytes})
			}
			if got.Error != "" || len(want) == 0 || !reflect.DeepEqual(got.Stages, want) {
				t.Errorf("%s on TensorRT %s: inspect estimates\n%+v\nthe daemon plans\n%+v (%s)", name, trt, got.Stages, want, got.Error)
			}
		}
	}
}
