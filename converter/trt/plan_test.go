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

var versions = []string{"8.2.1", "8.5.2", "8.6.1", "10.0.1", "11.1.0"}

// TestPlanTable renders stage x version -> calls into testdata/plan.golden
// (run with -update to rewrite it after a deliberate change).
func TestPlanTable(t *testing.T) {
	var b strings.Builder
	plat := Platform{FastFP16: true, FastINT8: true, DLACores: 2}
	for _, st := range stages {
		for _, vs := range versions {
			v, _ := version.Parse(vs)
			fmt.Fprintf(&b, "## %s @ TensorRT %s\n", st.name, v.Short())
			pl, err := PlanBuild(st.s, v, plat)
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
	pl, _ := PlanBuild(protocol.Settings{}, v("8.2.1"), plat)
	if !has(pl, "setMaxWorkspaceSize(268435456)") || !has(pl, "createNetworkV2(kEXPLICIT_BATCH)") {
		t.Errorf("8.2 default plan = %v", pl.Strings())
	}
	// 8.5+: memory pools, and nothing when no workspace is asked for.
	pl, _ = PlanBuild(protocol.Settings{WorkspaceMiB: 64}, v("8.5.2"), plat)
	if !has(pl, "setMemoryPoolLimit(kWORKSPACE, 67108864)") {
		t.Errorf("8.5 plan = %v", pl.Strings())
	}
	// kTACTIC_DRAM only from 8.6.
	pl, _ = PlanBuild(protocol.Settings{TacticDRAMMiB: 100}, v("8.5.2"), plat)
	if len(pl.Skipped) != 1 {
		t.Errorf("8.5 tactic dram: %v", pl.Skipped)
	}
	// 10.0: no explicit batch flag.
	pl, _ = PlanBuild(protocol.Settings{}, v("10.0.1"), plat)
	if !has(pl, "createNetworkV2(0)") {
		t.Errorf("10.0 network = %v", pl.Network)
	}
	// No fast FP16: the flag is not set and the reason is reported.
	pl, _ = PlanBuild(protocol.Settings{Precision: "fp16"}, v("8.2.1"), Platform{})
	if has(pl, "setFlag(kFP16)") || len(pl.Skipped) != 2 {
		t.Errorf("no fast fp16: %v %v", pl.Strings(), pl.Skipped)
	}
	// 11.x refuses FP16/INT8 with the reason.
	if _, err := PlanBuild(protocol.Settings{Precision: "fp16"}, v("11.1.0"), plat); !errors.Is(err, ErrUnsupportedSetting) || !strings.Contains(err.Error(), "strongly typed") {
		t.Errorf("11.1 fp16 err = %v", err)
	}
	for _, bad := range []protocol.Settings{
		{Precision: "bf17"}, {WorkspaceMiB: -1}, {TacticSources: []string{"magic"}}, {OptimizationLevel: ip(9)},
	} {
		if _, err := PlanBuild(bad, v("8.6.1"), plat); !errors.Is(err, ErrBadSetting) {
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
