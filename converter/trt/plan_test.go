package trt

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

var update = flag.Bool("update", false, "rewrite golden files")

func ip(n int) *int   { return &n }
func bp(b bool) *bool { return &b }

// The default ladder's stages (docs/ARCHITECTURE.md), as resolved settings.
var stages = []struct {
	name string
	s    protocol.Settings
}{
	{"fast", protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024, TimingCache: true}},
	{"lean", protocol.Settings{Precision: "fp16", WorkspaceMiB: 128, TacticSources: []string{"jit_convolutions"}, OptimizationLevel: ip(1), MaxAuxStreams: ip(0), TacticDRAMMiB: 1536}},
	{"minimal", protocol.Settings{Precision: "fp32", WorkspaceMiB: 16, TacticSources: []string{}, OptimizationLevel: ip(0), MaxAuxStreams: ip(0), TF32: bp(false)}},
	{"default-workspace", protocol.Settings{Precision: "fp32"}},
	{"all-tactics", protocol.Settings{Precision: "fp32", TacticSources: []string{"cublas", "cublaslt", "cudnn", "edge_mask_convolutions", "jit_convolutions"}}},
	{"dla", protocol.Settings{Precision: "fp16", WorkspaceMiB: 64, DLACore: ip(0), GPUFallback: true}},
}

var versions = []string{"8.0.1", "8.2.1", "8.5.2", "8.6.1", "10.0.1", "11.1.0"}

// TestPlanTable renders stage x version -> calls into testdata/plan.golden
// (run with -update to rewrite it after a deliberate change).
func TestPlanTable(t *testing.T) {
	var b strings.Builder
	plat := Platform{FastFP16: true, FastINT8: true, DLACores: 2}
	for _, st := range stages {
		for _, vs := range versions {
			v, _ := version.Parse(vs)
			fmt.Fprintf(&b, "## %s @ TensorRT %s\n", st.name, v.Short())
			pl, err := PlanBuild(st.s, v, plat, Quant{})
			if err != nil {
				fmt.Fprintf(&b, "refused: %v\n\n", err)
				continue
			}
			for _, c := range pl.Strings() {
				fmt.Fprintf(&b, "  %s\n", c)
			}
			for _, s := range pl.Skipped {
				fmt.Fprintf(&b, "  skipped: %s\n", s)
			}
			b.WriteString("\n")
		}
	}
	golden := filepath.Join("testdata", "plan.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("plan table differs from %s; run go test ./converter/trt -update and review the diff\n%s", golden, got)
	}
}

// Facts the golden file must keep, asserted by themselves so that an
// -update cannot silently drop them.
func TestPlanVersionFacts(t *testing.T) {
	v := func(s string) version.Version { x, _ := version.Parse(s); return x }
	plat := Platform{FastFP16: true}
	has := func(pl Plan, want string) bool {
		for _, c := range pl.Strings() {
			if c == want {
				return true
			}
		}
		return false
	}
	// 8.2: workspace is always set, with setMaxWorkspaceSize.
	pl, _ := PlanBuild(protocol.Settings{}, v("8.2.1"), plat, Quant{})
	if !has(pl, "setMaxWorkspaceSize(268435456)") || !has(pl, "createNetworkV2(kEXPLICIT_BATCH)") {
		t.Errorf("8.2 default plan = %v", pl.Strings())
	}
	// 8.5+: memory pools, and nothing when no workspace is asked for.
	pl, _ = PlanBuild(protocol.Settings{WorkspaceMiB: 64}, v("8.5.2"), plat, Quant{})
	if !has(pl, "setMemoryPoolLimit(kWORKSPACE, 67108864)") {
		t.Errorf("8.5 plan = %v", pl.Strings())
	}
	// kTACTIC_DRAM only from 8.6.
	pl, _ = PlanBuild(protocol.Settings{TacticDRAMMiB: 100}, v("8.5.2"), plat, Quant{})
	if len(pl.Skipped) != 1 {
		t.Errorf("8.5 tactic dram: %v", pl.Skipped)
	}
	// 10.0: no explicit batch flag.
	pl, _ = PlanBuild(protocol.Settings{}, v("10.0.1"), plat, Quant{})
	if !has(pl, "createNetworkV2(0)") {
		t.Errorf("10.0 network = %v", pl.Network)
	}
	// No fast FP16: the flag is not set and the reason is reported.
	pl, _ = PlanBuild(protocol.Settings{Precision: "fp16"}, v("8.2.1"), Platform{}, Quant{})
	if has(pl, "setFlag(kFP16)") || len(pl.Skipped) != 2 {
		t.Errorf("no fast fp16: %v %v", pl.Strings(), pl.Skipped)
	}
	// DLA: the runtime's core for validation comes from the plan.
	pl, _ = PlanBuild(protocol.Settings{Precision: "fp16", DLACore: ip(1)}, v("8.2.1"), Platform{FastFP16: true, DLACores: 2}, Quant{})
	if pl.DLACore() != 1 {
		t.Errorf("DLA plan core %d: %v", pl.DLACore(), pl.Strings())
	}
	if pl, _ = PlanBuild(protocol.Settings{Precision: "fp16"}, v("8.2.1"), plat, Quant{}); pl.DLACore() != -1 {
		t.Errorf("GPU plan core %d", pl.DLACore())
	}
	for _, bad := range []protocol.Settings{
		{Precision: "bf17"}, {WorkspaceMiB: -1}, {TacticSources: []string{"magic"}}, {OptimizationLevel: ip(9)},
	} {
		if _, err := PlanBuild(bad, v("8.6.1"), plat, Quant{}); !errors.Is(err, ErrBadSetting) {
			t.Errorf("PlanBuild(%+v) err = %v", bad, err)
		}
	}
}

func TestPlanProfile(t *testing.T) {
	inputs := []Input{{Name: "images", Dims: []int64{-1, 3, -1, -1}}, {Name: "scale", Dims: []int64{1}}}
	good := []protocol.Shape{{Input: "images", Min: []int64{1, 3, 224, 224}, Opt: []int64{1, 3, 640, 640}, Max: []int64{4, 3, 640, 640}}}
	calls, err := PlanProfile(inputs, good)
	if err != nil || len(calls) != 1 || calls[0].String() != "setDimensions(images, kMIN=1x3x224x224, kOPT=1x3x640x640, kMAX=4x3x640x640)" {
		t.Fatalf("PlanProfile = %v, %v", calls, err)
	}
	for name, shapes := range map[string][]protocol.Shape{
		"missing":    nil,
		"unknown":    append(good, protocol.Shape{Input: "nope", Min: []int64{1}, Opt: []int64{1}, Max: []int64{1}}),
		"rank":       {{Input: "images", Min: []int64{1, 3}, Opt: []int64{1, 3}, Max: []int64{1, 3}}},
		"order":      {{Input: "images", Min: []int64{2, 3, 224, 224}, Opt: []int64{1, 3, 224, 224}, Max: []int64{4, 3, 224, 224}}},
		"fixed dim":  {{Input: "images", Min: []int64{1, 1, 224, 224}, Opt: []int64{1, 1, 224, 224}, Max: []int64{1, 1, 224, 224}}},
		"duplicated": append(good, good[0]),
	} {
		if _, err := PlanProfile(inputs, shapes); !errors.Is(err, ErrBadShapes) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// A stage's precision per release and per source of int8 scales. On 11.x
// no precision fails the stage: the network is built as typed and the plan
// says so (it was an error before, which failed every default stage).
func TestPlanPrecision(t *testing.T) {
	v := func(s string) version.Version { x, _ := version.Parse(s); return x }
	plat := Platform{FastFP16: true, FastINT8: true}
	for _, c := range []struct {
		name      string
		prec      string
		ver       string
		q         Quant
		flags     string // setFlag calls, joined
		calibrate bool
		skipped   string // substring of Skipped, "" = none
		int8      protocol.Int8Source
	}{
		{"fp16 8.0", "fp16", "8.0.1", Quant{}, "setFlag(kFP16)", false, "", ""},
		{"int8 without scales 8.2", "int8", "8.2.1", Quant{}, "setFlag(kFP16)", false, Int8Refused, protocol.Int8Refused},
		{"int8 without scales 10.0", "int8", "10.0.1", Quant{}, "setFlag(kFP16)", false, Int8Refused, protocol.Int8Refused},
		{"int8 calibrated 8.2", "int8", "8.2.1", Quant{Calibration: true}, "setFlag(kINT8) setFlag(kFP16)", true, "", ""},
		{"int8 calibrated 10.0", "int8", "10.0.1", Quant{Calibration: true}, "setFlag(kINT8) setFlag(kFP16)", true, "", ""},
		{"int8 Q/DQ 8.6", "int8", "8.6.1", Quant{QDQ: true}, "setFlag(kINT8) setFlag(kFP16)", false, "", protocol.Int8QDQ},
		{"int8 Q/DQ with data 8.6", "int8", "8.6.1", Quant{QDQ: true, Calibration: true}, "setFlag(kINT8) setFlag(kFP16)", false, "", protocol.Int8QDQ},
		{"fp16 11.1 typed", "fp16", "11.1.0", Quant{}, "", false, "built with the model's own types; convert the ONNX model to float16", ""},
		{"int8 11.1 typed", "int8", "11.1.0", Quant{Calibration: true}, "", false, "11.x has no calibrator", ""},
		{"int8 11.1 typed Q/DQ", "int8", "11.1.0", Quant{QDQ: true}, "", false, "strongly typed", protocol.Int8QDQ},
		{"fp32 11.1", "fp32", "11.1.0", Quant{}, "", false, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl, err := PlanBuild(protocol.Settings{Precision: c.prec, WorkspaceMiB: 64}, v(c.ver), plat, c.q)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var flags []string
			for _, call := range pl.Calls {
				if call.Fn == "setFlag" {
					flags = append(flags, call.String())
				}
			}
			if got := strings.Join(flags, " "); got != c.flags || pl.Calibrate != c.calibrate {
				t.Errorf("flags %q calibrate %v; want %q %v", got, pl.Calibrate, c.flags, c.calibrate)
			}
			if pl.Int8 != c.int8 {
				t.Errorf("int8 source %q; want %q (a calibrator's is set when it is attached)", pl.Int8, c.int8)
			}
			sk := strings.Join(pl.Skipped, "\n")
			if c.skipped == "" && sk != "" || !strings.Contains(sk, c.skipped) {
				t.Errorf("skipped %q; want %q", sk, c.skipped)
			}
		})
	}
	// A platform without fast INT8 (a Nano's sm_53): kINT8 is not set,
	// whatever the scales, and the report says int8 was refused.
	for _, q := range []Quant{{QDQ: true}, {Calibration: true}} {
		pl, err := PlanBuild(protocol.Settings{Precision: "int8", WorkspaceMiB: 64}, v("8.2.1"), Platform{FastFP16: true}, q)
		if err != nil || pl.Int8 != protocol.Int8Refused || pl.Calibrate || !strings.Contains(strings.Join(pl.Skipped, "\n"), "no fast INT8") {
			t.Errorf("%+v: int8 %q calibrate %v skipped %q (%v)", q, pl.Int8, pl.Calibrate, pl.Skipped, err)
		}
	}
}

// A shape-tensor input is profiled by its values (setShapeValues; V2 on
// 11.x), always, with as many values as it has elements.
func TestPlanProfileShapeTensor(t *testing.T) {
	inputs := []Input{{Name: "x", Dims: []int64{-1, 8}}, {Name: "shape", DType: "int32", Dims: []int64{2}, IsShape: true}}
	shapes := []protocol.Shape{
		{Input: "x", Min: []int64{1, 8}, Opt: []int64{2, 8}, Max: []int64{4, 8}},
		{Input: "shape", Min: []int64{1, 8}, Opt: []int64{2, 8}, Max: []int64{4, 8}},
	}
	calls, err := PlanProfile(inputs, shapes)
	if err != nil || len(calls) != 2 || !calls[1].Values || calls[1].String() != "setShapeValues(shape, kMIN=[1 8], kOPT=[2 8], kMAX=[4 8])" {
		t.Fatalf("PlanProfile = %v, %v", calls, err)
	}
	for name, sh := range map[string][]protocol.Shape{
		"no values":    shapes[:1],
		"three values": {shapes[0], {Input: "shape", Min: []int64{1, 8, 1}, Opt: []int64{2, 8, 1}, Max: []int64{4, 8, 1}}},
		"order":        {shapes[0], {Input: "shape", Min: []int64{3, 8}, Opt: []int64{2, 8}, Max: []int64{4, 8}}},
	} {
		if _, err := PlanProfile(inputs, sh); !errors.Is(err, ErrBadShapes) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
