package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
)

var update = flag.Bool("update", false, "rewrite golden files")

func intp(i int) *int { return &i }

// sampleReport is a report of a build that ran out of memory once, then
// succeeded at the lean stage (used by the golden tests and the HTML test).
func sampleReport() *Report {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var samples []Sample
	for i := 0; i < 40; i++ {
		samples = append(samples, Sample{AtMs: int64(i) * 250, MemAvailable: int64(3000-60*i) << 20, MemTotal: 4 << 30,
			SwapUsed: int64(i*8) << 20, SwapFree: int64(2048-8*i) << 20, WorkerRSS: int64(200+55*i) << 20})
	}
	return &Report{
		Schema: SchemaVersion, Tool: Tool{"trtd", "1.0.0"}, Generated: t0.Add(time.Minute), Job: "20261125T100000-abcd1234",
		Model: Model{Name: "resnet18.onnx", SHA256: strings.Repeat("ab", 32), Size: 46 << 20,
			Summary: &onnx.Summary{Producer: onnx.Producer{Name: "pytorch", Version: "1.13.1"}, Opset: map[string]int64{"": 13}, NodeCount: 69,
				Initializers: onnx.InitStats{Count: 62, Bytes: 46758024},
				Inputs: []onnx.ValueInfo{{Name: "input", Type: &onnx.Type{Kind: onnx.TypeTensor, Elem: onnx.Float, HasShape: true,
					Shape: []onnx.Dim{{Kind: onnx.DimParam, Param: "N"}, {Kind: onnx.DimValue, Value: 3}, {Kind: onnx.DimValue, Value: 224}, {Kind: onnx.DimValue, Value: 224}}}}}},
			Warnings: []string{"input \"input\" has a dynamic dimension N and no shapes in resnet18.toml: using 1 for min/opt/max"}},
		Outcome: OutcomeBuilt,
		Engine:  &Engine{File: "resnet18.engine", Bytes: 24 << 20, SHA256: strings.Repeat("cd", 32), Stage: "lean"},
		Builder: &protocol.Builder{Backend: "api", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3", CUDARuntime: "10.2"},
		Plan: &Plan{Start: "fast", SwapBytes: 2 << 30, Stages: []PlanStage{
			{Name: "fast", PeakBytes: 3 << 30}, {Name: "lean", PeakBytes: 2 << 30}, {Name: "minimal", PeakBytes: 1 << 30}}},
		Attempts: []Attempt{
			{Stage: "fast", Kind: "build", Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024}, Start: t0, DurationMs: 10000,
				Outcome: protocol.ClassOutOfMemory, Reason: "the memory guard stopped the build: MemAvailable+SwapFree fell below 192 MiB",
				ExitCode: -1, Signal: "killed", LogTail: []string{"[MemUsageChange] Init cuDNN: CPU +342, GPU +451, now: CPU 1012, GPU 2345 (MiB)"},
				Memory: &Timeline{IntervalMs: 250, FloorBytes: 192 << 20, Samples: samples, Peak: Sample{MemAvailable: 660 << 20, SwapUsed: 312 << 20, WorkerRSS: 2345 << 20},
					Killed: true, KillReason: "MemAvailable+SwapFree below the floor", KilledAtMs: 9750, SwapUsedDelta: 312 << 20, SwapVerdict: "swap was used: 312 MiB paged out"}},
			{Stage: "lean", Kind: "build", Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 256, TacticSources: []string{"jit_convolutions"}, OptimizationLevel: intp(1), MaxAuxStreams: intp(0)},
				Start: t0.Add(12 * time.Second), DurationMs: 42000, Outcome: protocol.ClassOK,
				MemUsage:   []protocol.MemUsage{{Phase: "Init CUDA", CPUMiB: 220, GPUMiB: 0}, {Phase: "Init builder kernel library", CPUMiB: 158, GPUMiB: 160}},
				Validation: &protocol.Validation{Runs: 20, P50Ms: 12.5, P99Ms: 14.1, DeviceMemUsed: 90 << 20}},
		},
		Recommendations: []string{"Stop the desktop (sudo systemctl isolate multi-user.target) to free about 800 MB."},
		Portability:     "This engine runs only with TensorRT 8.2.1 on a GPU of compute capability 5.3.",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(p, got, 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden (run go test ./converter/report -update to accept):\n%s", name, got)
	}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.report.md", b.Bytes())
}

func TestJSONGoldenAndContract(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "sample.report.json", b.Bytes())
	var m map[string]any
	json.Unmarshal(b.Bytes(), &m)
	// The fields scripts rely on.
	if m["schema"] != float64(SchemaVersion) || m["outcome"] != "built" {
		t.Errorf("schema/outcome: %v %v", m["schema"], m["outcome"])
	}
	if m["model"].(map[string]any)["sha256"] == "" {
		t.Error("model.sha256 missing")
	}
	a := m["attempts"].([]any)[0].(map[string]any)
	for _, k := range []string{"stage", "settings", "start", "duration_ms", "outcome", "log_tail"} {
		if _, ok := a[k]; !ok {
			t.Errorf("attempt lacks %q", k)
		}
	}
}

func TestPublishWritesEveryViewAtomically(t *testing.T) {
	dir := t.TempDir()
	paths, err := Publish(dir, "resnet18", sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(Renderers) {
		t.Fatalf("wrote %v", paths)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}
