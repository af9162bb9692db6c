package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/device"
)

// oomAttempt is an attempt the memory guard stopped.
func oomAttempt(stage string, part int) Attempt {
	return Attempt{Stage: stage, Kind: "build", Outcome: protocol.ClassOutOfMemory, DurationMs: 9000, Part: part,
		Memory: &Timeline{Killed: true, KilledAtMs: 9000, KillReason: "MemAvailable+SwapFree below the floor",
			Samples: []Sample{{AtMs: 9000, MemTotal: 4 << 30, MemAvailable: 200 << 20, SwapUsed: 1 << 30, WorkerRSS: 2900 << 20}},
			Peak:    Sample{WorkerRSS: 2900 << 20}}}
}

const nanoDevice = `{"mem_total":4294967296,"swap_total":2147483648,"desktop":["gnome-shell","Xorg"],
"swaps":[{"path":"/swapfile","size":2147483648,"medium":"sd"}],"has_nvme":false}`

func devJSON(s string) *device.Device {
	var d device.Device
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		panic(err)
	}
	return &d
}

// input is a float32 tensor input; a negative dim is symbolic ("N").
func input(name string, dims ...int64) onnx.ValueInfo {
	t := &onnx.Type{Kind: onnx.TypeTensor, Elem: onnx.Float, HasShape: true}
	for _, d := range dims {
		if d < 0 {
			t.Shape = append(t.Shape, onnx.Dim{Kind: onnx.DimParam, Param: "N"})
		} else {
			t.Shape = append(t.Shape, onnx.Dim{Kind: onnx.DimValue, Value: d})
		}
	}
	return onnx.ValueInfo{Name: name, Type: t}
}

func dynamicSummary() *onnx.Summary {
	return &onnx.Summary{Initializers: onnx.InitStats{Count: 3, Bytes: 104857600}, Inputs: []onnx.ValueInfo{input("images", -1, 3, 640, 640)}}
}

var nanoBuilder = &protocol.Builder{Backend: "trtexec", TensorRT: "8.2.1", GPU: "NVIDIA Tegra X1", ComputeCapability: "5.3"}

// Each recommendation is checked against the outcome that triggers it, and
// against one that must not.
func TestRecommend(t *testing.T) {
	seg := []Attempt{oomAttempt("fast", 0), oomAttempt("split", 1)}
	seg[1].Kind = "segmented"
	for _, tc := range []struct {
		name    string
		r       Report
		want    []string // substrings, each in some recommendation
		notWant []string
	}{
		{name: "every stage out of memory on a Nano with a desktop and SD swap",
			r: Report{Outcome: OutcomeFailed, Builder: nanoBuilder, Device: devJSON(nanoDevice),
				Model:    Model{Name: "yolo.onnx", Summary: dynamicSummary()},
				Attempts: []Attempt{oomAttempt("fast", 0), oomAttempt("lean", 0)}},
			want: []string{"Every stage ran out of memory. The worker reached 2.8 GiB of RAM",
				"gnome-shell, Xorg", "sudo systemctl isolate multi-user.target",
				"a USB 3 disk or NVMe drive instead of the SD card (/swapfile)",
				`kind = "segmented" and parts = 2`, "the weights are 100.0 MiB",
				`Lower the max shapes of "images" in yolo.toml's [[shape]]`,
				"Offload the build to a peer", "TensorRT 8.2.1, compute capability 5.3"},
			notWant: []string{"Next time"}},
		{name: "out of memory without swap or desktop, segmented already",
			r: Report{Outcome: OutcomeFailed, Device: devJSON(`{"mem_total":4294967296,"swap_total":0}`),
				Attempts: seg},
			want:    []string{"Every stage ran out of memory", "Give the build swap", "used 1; set parts = 2"},
			notWant: []string{"systemctl isolate", "SD card", "[[shape]]"}},
		{name: "offload already tried",
			r:       Report{Outcome: OutcomeFailed, Attempts: []Attempt{oomAttempt("fast", 0), {Stage: "offload", Kind: "offload", Outcome: protocol.ClassOutOfMemory, DurationMs: 1}}},
			want:    []string{"Every stage ran out of memory"},
			notWant: []string{"Offload the build"}},
		{name: "built after a guard kill",
			r: Report{Outcome: OutcomeBuilt, Builder: nanoBuilder,
				Attempts: []Attempt{oomAttempt("fast", 0), {Stage: "lean", Outcome: protocol.ClassOK, DurationMs: 1000}}},
			want:    []string{"Stage fast was stopped by the memory guard after 9.0 s", "starts at stage lean, the stage that fit"},
			notWant: []string{"Every stage"}},
		{name: "built at once",
			r:       Report{Outcome: OutcomeBuilt, Attempts: []Attempt{{Stage: "fast", Outcome: protocol.ClassOK, DurationMs: 1000}}},
			notWant: []string{"Next time", "Every stage"}},
		{name: "unsupported op listed by newer parsers",
			r: Report{Outcome: OutcomeFailed, Builder: nanoBuilder, Attempts: []Attempt{{Stage: "fast", Outcome: protocol.ClassUnsupportedModel, DurationMs: 500,
				Reason: "the ONNX parser rejected the model: node 42 (op GridSample, name \"grid\")"}}},
			want:    []string{"Operator GridSample at node 42", "TensorRT 8.5, 8.6, 10.0, 10.1 list it as supported", "8.2, 8.4 do not", "This device has TensorRT 8.2.1"},
			notWant: []string{"Every stage"}},
		{name: "op no parser knows",
			r: Report{Outcome: OutcomeFailed, Attempts: []Attempt{{Stage: "fast", Outcome: protocol.ClassUnsupportedModel, DurationMs: 500,
				Reason: "the ONNX parser rejected the model: no importer registered for op ScatterBEV (not supported by this TensorRT's ONNX parser; a plugin is needed)"}}},
			want: []string{"Operator ScatterBEV is in no TensorRT ONNX parser's operator list", "TensorRT plugin"}},
		{name: "waiting for the worker binary",
			r:       Report{Outcome: OutcomeBuilderUnavailable, Reason: "worker binary not found at /usr/lib/trtd/trtd-worker (set [paths] worker)"},
			want:    []string{"puts the worker at /usr/lib/trtd/trtd-worker"},
			notWant: []string{"trtexec"}},
		{name: "waiting for trtexec",
			r:    Report{Outcome: OutcomeBuilderUnavailable, Reason: "trtexec not found: looked for /usr/src/tensorrt/bin/trtexec and trtexec on PATH"},
			want: []string{"sudo apt install nvidia-tensorrt; trtexec is /usr/src/tensorrt/bin/trtexec", "worker.trtexec"}},
		{name: "waiting for TensorRT",
			r:    Report{Outcome: OutcomeBuilderUnavailable, Reason: "TensorRT not available on this machine: libnvinfer.so.8 not found"},
			want: []string{"Install TensorRT (on a Jetson: sudo apt install nvidia-tensorrt"}},
		{name: "permission denied",
			r:    Report{Outcome: OutcomeRejected, Reason: "open /var/lib/trtd/inbox/m.onnx: permission denied"},
			want: []string{"sudo adduser $USER trtd"}},
		{name: "GPU device nodes not accessible",
			r: Report{Outcome: OutcomeFailed, Attempts: []Attempt{{Stage: "fast", Outcome: protocol.ClassBuilderUnavailable, DurationMs: 5,
				Reason: "CUDA not available: open /dev/nvhost-ctrl-gpu: permission denied"}}},
			want:    []string{"sudo adduser trtd video"},
			notWant: []string{"group trtd"}},
		{name: "permission denied in the worker",
			r: Report{Outcome: OutcomeFailed, Attempts: []Attempt{{Stage: "fast", Outcome: protocol.ClassCrashed, DurationMs: 5,
				Reason: "crashed: open model.onnx: Permission denied"}}},
			want:    []string{"group trtd"},
			notWant: []string{"Every stage"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(Recommend(&tc.r), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no recommendation contains %q; got:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("a recommendation contains %q; got:\n%s", w, got)
				}
			}
		})
	}
}

// A report of a build that found TensorRT never repeats the device
// probe's "TensorRT was not found"; Complete is idempotent.
func TestCompleteDropsNoTensorRTWhenABuilderRan(t *testing.T) {
	noTRT := NoTensorRTAdvice + ": install NVIDIA's libnvinfer packages."
	r := Report{Outcome: OutcomeBuilt, Builder: nanoBuilder, Recommendations: []string{noTRT, "keep me"},
		Attempts: []Attempt{oomAttempt("fast", 0), {Stage: "lean", Outcome: protocol.ClassOK, DurationMs: 1000}}}
	r.Complete()
	r.Complete()
	got := strings.Join(r.Recommendations, "\n")
	if strings.Contains(got, NoTensorRTAdvice) || !strings.Contains(got, "keep me") || strings.Count(got, "Next time") != 1 {
		t.Errorf("recommendations:\n%s", got)
	}
	w := Report{Outcome: OutcomeBuilderUnavailable, Recommendations: []string{noTRT}}
	w.Complete()
	if !contains(w.Recommendations, noTRT) {
		t.Errorf("without a builder the advice stays: %q", w.Recommendations)
	}
}

// The settings of an attempt split into applied and skipped by the
// installed TensorRT release.
func TestSettingsOn(t *testing.T) {
	one, zero := 3, 2
	all := protocol.Settings{Precision: "fp16", WorkspaceMiB: 512, TacticSources: []string{"cudnn", "jit_convolutions"},
		OptimizationLevel: &one, MaxAuxStreams: &zero, TacticDRAMMiB: 64}
	for _, tc := range []struct {
		name         string
		s            protocol.Settings
		trt          string
		worker       []string
		applied      []string
		skipped      []string
		appliedEmpty bool
	}{
		{name: "8.2 skips the 8.5 and 8.6 settings", s: all, trt: "8.2.1",
			applied: []string{"precision fp16", "workspace 512 MiB", "tactic sources [cudnn]"},
			skipped: []string{"tactic source jit_convolutions: exists from TensorRT 8.5; this is TensorRT 8.2.1",
				"optimization level 3: exists from TensorRT 8.6; this is TensorRT 8.2.1", "aux streams 2: exists from TensorRT 8.6; this is TensorRT 8.2.1",
				"tactic DRAM 64 MiB: exists from TensorRT 8.6; this is TensorRT 8.2.1"}},
		{name: "8.6 applies them", s: all, trt: "8.6.1",
			applied: []string{"precision fp16", "workspace 512 MiB", "tactic sources [cudnn, jit_convolutions]", "optimization level 3", "aux streams 2", "tactic DRAM 64 MiB"}},
		{name: "10.3 drops cuDNN", s: all, trt: "10.3.0",
			applied: []string{"tactic sources [jit_convolutions]"},
			skipped: []string{"tactic source cudnn: deprecated and off by default since TensorRT 10.0; not enabled"}},
		{name: "8.2 default workspace and no fast fp16", s: protocol.Settings{Precision: "fp16"}, trt: "8.2.1",
			worker:  []string{"precision fp16: the platform has no fast FP16 (platformHasFastFp16() is false); FP32 kernels are used", "optimization_level: exists from TensorRT 8.6"},
			applied: []string{"precision fp32 (the platform has no fast FP16)", "workspace 256 MiB (trtd's default: TensorRT 8.2 has none)"},
			skipped: []string{"precision fp16: the platform has no fast FP16"}},
		{name: "unknown release says nothing", s: all, trt: "", appliedEmpty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, sk := SettingsOn(tc.s, tc.trt, tc.worker)
			if tc.appliedEmpty {
				if ap != nil || sk != nil {
					t.Fatalf("got %q, %q; want nothing", ap, sk)
				}
				return
			}
			a, s := strings.Join(ap, "\n"), strings.Join(sk, "\n")
			for _, w := range tc.applied {
				if !strings.Contains(a, w) {
					t.Errorf("applied lacks %q:\n%s", w, a)
				}
			}
			for _, w := range tc.skipped {
				if !strings.Contains(s, w) {
					t.Errorf("skipped lacks %q:\n%s", w, s)
				}
			}
			if strings.Contains(s, "optimization_level: exists") {
				t.Errorf("the worker's version note is repeated:\n%s", s)
			}
			if tc.skipped == nil && len(sk) > 0 {
				t.Errorf("skipped %q, want none", sk)
			}
		})
	}
}

// The device's general advice on a subject the outcome's advice covers
// with this build's figures is not repeated.
func TestCompleteDropsSupersededDeviceAdvice(t *testing.T) {
	r := Report{Outcome: OutcomeFailed, Device: devJSON(nanoDevice), Attempts: []Attempt{oomAttempt("fast", 0)},
		Recommendations: []string{"A desktop session is running (gnome-shell): stopping it frees about 800 MB for builds. Now: sudo systemctl isolate multi-user.target.",
			"Swap is on the SD card (/swapfile): it is slow.", "No memory cgroup is usable."}}
	r.Complete()
	got := strings.Join(r.Recommendations, "\n")
	if strings.Count(got, "systemctl isolate multi-user.target") != 1 || strings.Count(got, "SD card") != 1 || !strings.Contains(got, "No memory cgroup") {
		t.Errorf("recommendations:\n%s", got)
	}
}
