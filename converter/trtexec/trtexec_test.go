package trtexec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
	"github.com/trtd/trtd/internal/testmodels"
)

func ip(n int) *int   { return &n }
func bp(b bool) *bool { return &b }

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]string{
		// https://github.com/laugh12321/TensorRT-YOLO/issues/266
		`&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec --onnx=yolo11n-seg.onnx --saveEngine=yolo11n-seg.engine`: "8.6.1",
		// https://github.com/NVIDIA/TensorRT/issues/4587
		`&&&& RUNNING TensorRT.trtexec [TensorRT v101303] [b9] # ./trtexec --onnx=ISTD_NS.onnx --saveEngine=ISTD_N.trt`: "10.13.3",
		`&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # /usr/src/tensorrt/bin/trtexec`:                                "8.2.1",
	} {
		v, ok := ParseVersion([]byte(out))
		if !ok || v.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", out, v, ok, want)
		}
	}
	if _, ok := ParseVersion([]byte("trtexec: command not found")); ok {
		t.Error("parsed a version from nothing")
	}
}

// TestArgs is the table stage x trtexec version -> flags.
func TestArgs(t *testing.T) {
	lean := protocol.Settings{Precision: "fp16", WorkspaceMiB: 128, TacticSources: []string{"jit_convolutions"}, OptimizationLevel: ip(1), MaxAuxStreams: ip(0), TacticDRAMMiB: 1024}
	minimal := protocol.Settings{Precision: "fp32", WorkspaceMiB: 16, TacticSources: []string{}, OptimizationLevel: ip(0), MaxAuxStreams: ip(0), TF32: bp(false)}
	shapes := []protocol.Shape{{Input: "images", Min: []int64{1, 3, 224, 224}, Opt: []int64{1, 3, 640, 640}, Max: []int64{4, 3, 640, 640}}}
	base := "--onnx=model.onnx --saveEngine=e.tmp "
	for _, c := range []struct {
		stage string
		s     protocol.Settings
		calib string
		m     Model
		v     string
		want  string
		nskip int
	}{
		{"fast", protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024}, "", Model{}, "8.2.1", "--fp16 --workspace=1024", 0},
		{"fast", protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024}, "", Model{}, "8.5.2", "--fp16 --memPoolSize=workspace:1024", 0},
		{"fast", protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024}, "", Model{}, "10.3.0", "--fp16 --memPoolSize=workspace:1024", 0},
		{"default", protocol.Settings{}, "", Model{}, "8.2.1", "--workspace=256", 1},
		{"default", protocol.Settings{}, "", Model{}, "8.6.1", "", 0},
		{"lean", lean, "", Model{}, "8.2.1", "--fp16 --workspace=128 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN", 4},
		{"lean", lean, "", Model{}, "8.5.2", "--fp16 --memPoolSize=workspace:128 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,+JIT_CONVOLUTIONS", 3},
		{"lean", lean, "", Model{}, "8.6.1", "--fp16 --memPoolSize=workspace:128 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,+JIT_CONVOLUTIONS --builderOptimizationLevel=1 --maxAuxStreams=0", 1},
		// 10.0 enables cuBLASLt by default: the set names it, off.
		{"lean", lean, "", Model{}, "10.0.1", "--fp16 --memPoolSize=workspace:128 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,+JIT_CONVOLUTIONS --builderOptimizationLevel=1 --maxAuxStreams=0", 1},
		// The empty set: every source this release knows, off.
		{"minimal", minimal, "", Model{}, "8.0.1", "--noTF32 --workspace=16 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN", 2},
		{"minimal", minimal, "", Model{}, "8.2.1", "--noTF32 --workspace=16 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN", 2},
		{"minimal", minimal, "", Model{}, "10.0.1", "--noTF32 --memPoolSize=workspace:16 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,-JIT_CONVOLUTIONS --builderOptimizationLevel=0 --maxAuxStreams=0", 0},
		{"minimal", minimal, "", Model{}, "10.3.0", "--noTF32 --memPoolSize=workspace:16 --tacticSources=-CUBLAS,-CUBLAS_LT,-CUDNN,-EDGE_MASK_CONVOLUTIONS,-JIT_CONVOLUTIONS --builderOptimizationLevel=0 --maxAuxStreams=0", 0},
		{"minimal", minimal, "", Model{}, "11.1.0", "--noTF32 --memPoolSize=workspace:16 --tacticSources=-EDGE_MASK_CONVOLUTIONS,-JIT_CONVOLUTIONS --builderOptimizationLevel=0 --maxAuxStreams=0", 0},
		// int8 only with real scales; otherwise fp16 and the reason.
		{"int8+dla", protocol.Settings{Precision: "int8", WorkspaceMiB: 64, DLACore: ip(1), GPUFallback: true}, "", Model{}, "8.5.2", "--fp16 --memPoolSize=workspace:64 --useDLACore=1 --allowGPUFallback", 1},
		{"int8 calib", protocol.Settings{Precision: "int8", WorkspaceMiB: 64}, "m.calib.cache", Model{}, "8.2.1", "--int8 --calib=m.calib.cache --fp16 --workspace=64", 0},
		{"int8 qdq", protocol.Settings{Precision: "int8", WorkspaceMiB: 64}, "", Model{QDQ: true}, "10.3.0", "--int8 --fp16 --memPoolSize=workspace:64", 0},
		// 11.x is strongly typed: the model's own types, said in skipped.
		{"fast", protocol.Settings{Precision: "fp16", WorkspaceMiB: 1024}, "", Model{}, "11.1.0", "--memPoolSize=workspace:1024", 1},
	} {
		v, _ := version.Parse(c.v)
		req := protocol.Request{Model: "model.onnx", Settings: c.s, Calibration: c.calib}
		line, err := Args(req, v, "e.tmp", "", c.m)
		args, skipped := line.Args, line.Skipped
		if err != nil {
			t.Errorf("%s @ %s: %v", c.stage, c.v, err)
			continue
		}
		want := strings.Join(strings.Fields(base+c.want+" --iterations=20 --warmUp=200 --duration=0"), " ")
		if got := strings.Join(args, " "); got != want {
			t.Errorf("%s @ %s:\n got  %s\n want %s", c.stage, c.v, got, want)
		}
		if len(skipped) != c.nskip {
			t.Errorf("%s @ %s: skipped = %q, want %d entries", c.stage, c.v, skipped, c.nskip)
		}
	}
	// The int8 refusal says why.
	v, _ := version.Parse("8.2.1")
	line, _ := Args(protocol.Request{Settings: protocol.Settings{Precision: "int8"}}, v, "e", "", Model{})
	skipped := line.Skipped
	if len(skipped) == 0 || !strings.Contains(skipped[0], "int8 refused") || !strings.Contains(skipped[0], "±2/±4") {
		t.Errorf("int8 refusal: %q", skipped)
	}

	// Samples uploaded: trtexec cannot gate an int8 engine, so none.
	line, _ = Args(protocol.Request{Settings: protocol.Settings{Precision: "int8"}, Calibration: "c.cache", Accuracy: &protocol.Accuracy{Inputs: []string{"input_0.pb"}}}, v, "e", "", Model{QDQ: true})
	args, skipped := line.Args, line.Skipped
	if strings.Contains(strings.Join(args, " "), "--int8") || len(skipped) == 0 || !strings.Contains(skipped[0], "accuracy gate") {
		t.Errorf("int8 with samples: %q, %q", args, skipped)
	}

	// Shapes, timing cache and build-only per version.
	req := protocol.Request{Model: "m.onnx", Settings: protocol.Settings{Precision: "fp32", WorkspaceMiB: 64}, Shapes: shapes, ValidateRuns: -1}
	for v, tail := range map[string]string{"8.2.1": "--buildOnly", "8.6.1": "--skipInference"} {
		vv, _ := version.Parse(v)
		line, err := Args(req, vv, "e.tmp", "t.cache", Model{})
		got := strings.Join(line.Args, " ")
		if err != nil || !strings.Contains(got, "--minShapes=images:1x3x224x224 --optShapes=images:1x3x640x640 --maxShapes=images:4x3x640x640 --timingCacheFile=t.cache "+tail) {
			t.Errorf("%s: %s %v", v, got, err)
		}
	}
	if _, err := Args(protocol.Request{Settings: protocol.Settings{TacticSources: []string{"x"}}}, version.Version{Major: 8, Minor: 6}, "e", "", Model{}); !errors.Is(err, ErrBadSetting) {
		t.Errorf("bad tactic: %v", err)
	}
	if _, err := Args(protocol.Request{}, version.Version{Major: 7, Minor: 1, Patch: 3}, "e", "", Model{}); !errors.Is(err, ErrUnsupportedSetting) {
		t.Errorf("7.1: %v", err)
	}
}

// TestShapeNames: names with ',' cannot be passed to any trtexec, names
// with a quote not to 8.4+; ':' is fine everywhere, unquoted.
func TestShapeNames(t *testing.T) {
	for _, c := range []struct {
		name, v string
		ok      bool
		spec    string
	}{
		{"input:0", "8.0.1", true, "--minShapes=input:0:1x3"},
		{"input:0", "10.3.0", true, "--minShapes=input:0:1x3"},
		{"a,b", "8.2.1", false, ""},
		{"a,b", "10.3.0", false, ""},
		{"it's", "8.2.1", true, "--minShapes=it's:1x3"},
		{"it's", "8.6.1", false, ""},
	} {
		v, _ := version.Parse(c.v)
		req := protocol.Request{Model: "m.onnx", Shapes: []protocol.Shape{{Input: c.name, Min: []int64{1, 3}, Opt: []int64{1, 3}, Max: []int64{1, 3}}}}
		line, err := Args(req, v, "e", "", Model{})
		args := line.Args
		if c.ok != (err == nil) {
			t.Errorf("%q @ %s: err = %v", c.name, c.v, err)
			continue
		}
		if err != nil && (!errors.Is(err, ErrUnsupportedSetting) || !strings.Contains(err.Error(), "api")) {
			t.Errorf("%q @ %s: error %v does not say what to do", c.name, c.v, err)
		}
		if c.ok && !strings.Contains(strings.Join(args, " "), c.spec+" ") {
			t.Errorf("%q @ %s: %q", c.name, c.v, args)
		}
	}
}

func TestParsePerf(t *testing.T) {
	// Line formats of samples/common/sampleReporting.cpp (NVIDIA/TensorRT):
	// 8.2 prints one percentile, 8.6+ a list.
	out82 := `[11/25/2026-10:00:00] [I] Created output binding for output with dimensions 1x1000
[11/25/2026-10:00:01] [I] Latency: min = 3.01 ms, max = 4.5 ms, mean = 3.2 ms, median = 3.1 ms, percentile(99%) = 4.2 ms`
	p, ok := ParsePerf([]byte(out82))
	if !ok || p.P50Ms != 3.1 || p.P99Ms != 4.2 || len(p.Outputs) != 1 || p.Outputs[0].Shape[1] != 1000 {
		t.Errorf("8.2: %+v %v", p, ok)
	}
	out10 := `[I] Latency: min = 0.5 ms, max = 0.9 ms, mean = 0.6 ms, median = 0.55 ms, percentile(90%) = 0.7 ms, percentile(95%) = 0.8 ms, percentile(99%) = 0.85 ms`
	p, ok = ParsePerf([]byte(out10))
	if !ok || p.P50Ms != 0.55 || p.P99Ms != 0.85 {
		t.Errorf("10.x: %+v %v", p, ok)
	}
	// 8.6+ prints "Output binding for X with dimensions D is created."
	// (samples/common/sampleInference.cpp 8.6 :121, 10.0 :124).
	out86 := `[I] Output binding for logits with dimensions 1x1000 is created.
[I] Output binding for boxes is dynamic and will be created during execution using OutputAllocator.
` + out10
	p, ok = ParsePerf([]byte(out86))
	if !ok || len(p.Outputs) != 1 || p.Outputs[0].Name != "logits" || len(p.Outputs[0].Shape) != 2 || p.Outputs[0].Shape[1] != 1000 {
		t.Errorf("8.6 bindings: %+v %v", p, ok)
	}
	if _, ok := ParsePerf([]byte("[I] Engine built in 3 s")); ok {
		t.Error("perf from nothing")
	}
}

// fakeTrtexec writes a shell script that behaves like trtexec for one
// scenario. It is a test double for the real binary, which needs a GPU.
func fakeTrtexec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trtexec")
	script := `#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v8503] # trtexec $*"
[ "$1" = "--help" ] && exit 0
for a in "$@"; do case "$a" in --saveEngine=*) ENGINE="${a#--saveEngine=}";; esac; done
` + body
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildFake(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("model.onnx", []byte("x"), 0o644)
	for _, c := range []struct {
		name, body string
		want       protocol.Class
	}{
		{"ok", `echo "[I] === Device Information ===
[I] Selected Device: Orin
[I] Compute Capability: 8.7
[I] [TRT] [MemUsageChange] Init CUDA: CPU +2, GPU +0, now: CPU 22, GPU 1033 (MiB)
[I] Latency: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
printf engine > "$ENGINE"`, protocol.ClassOK},
		{"oom", `echo "[E] [TRT] 2: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)" >&2; exit 1`, protocol.ClassOutOfMemory},
		{"killed", `kill -9 $$`, protocol.ClassOutOfMemory},
		{"parser", `echo "[E] In node 7 (parseGraph): UNSUPPORTED_NODE: No importer registered for op: Foo"; exit 1`, protocol.ClassUnsupportedModel},
		{"no run", `printf engine > "$ENGINE"`, protocol.ClassInvalidEngine},
		{"segv", `kill -11 $$`, protocol.ClassCrashed},
		// trtexec's cudaCheck: "Cuda failure: " + cudaGetErrorString, then
		// abort() (samples/common/sampleDevice.h 8.0/8.2 :29-36, called by
		// DeviceAllocator 8.2 :279).
		{"cudaCheck oom while building", `echo "Cuda failure: out of memory"; kill -6 $$`, protocol.ClassOutOfMemory},
		// 10.x's cudaCheck exits 1 instead (sampleDevice.cpp 10.0 :25-31).
		{"10.x cudaCheck oom exits 1", `echo "Cuda failure: out of memory"; exit 1`, protocol.ClassOutOfMemory},
		// The engine was saved ("Engine built in", trtexec.cpp 8.2 :191),
		// then allocating the inference buffers failed: the engine is kept.
		{"validation oom keeps the engine", `printf engine > "$ENGINE"; echo "[I] Engine built in 1.5 sec."; echo "Cuda failure: out of memory"; kill -6 $$`, protocol.ClassOK},
		// A 10.x engine whose printed size does not match the file was cut
		// short: not kept.
		{"partial 10.x engine is not kept", `printf engine > "$ENGINE"; echo "[I] Created engine with size: 12.5 MiB"; echo "Cuda failure: out of memory"; kill -6 $$`, protocol.ClassOutOfMemory},
		// A verbose build prints more than 8 MiB; the fatal line at the
		// end must still be seen.
		{"tail of a long log", `yes "[V] [TRT] a verbose line ...................................................................................................." | head -n 90000; echo "[E] Error[1]: Unexpected exception bad allocation"; exit 1`, protocol.ClassOutOfMemory},
	} {
		t.Run(c.name, func(t *testing.T) {
			var events []protocol.Event
			req := protocol.Request{Model: "model.onnx", Engine: filepath.Join(dir, c.name+".engine"), Trtexec: fakeTrtexec(t, c.body), Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 64}}
			res := Build(context.Background(), req, Options{Emit: func(e protocol.Event) { events = append(events, e) }})
			if res.Class != c.want {
				t.Fatalf("class = %s (%s), want %s", res.Class, res.Message, c.want)
			}
			_, statErr := os.Stat(req.Engine)
			if (c.want == protocol.ClassOK) != (statErr == nil) {
				t.Errorf("engine present = %v for class %s", statErr == nil, c.want)
			}
			if c.name == "validation oom keeps the engine" {
				if res.Validation != nil || len(res.Skipped) == 0 || !strings.Contains(res.Skipped[len(res.Skipped)-1], "unvalidated") {
					t.Errorf("kept engine: validation %+v, skipped %q", res.Validation, res.Skipped)
				}
				return
			}
			if c.want == protocol.ClassOK {
				if res.Builder.TensorRT != "8.5.3" || res.Builder.GPU != "Orin" || res.Builder.ComputeCapability != "8.7" || res.Validation == nil || res.Validation.P99Ms != 1.9 || len(res.MemUsage) != 1 || len(events) == 0 {
					t.Errorf("result = %+v, validation %+v, events %d", res, res.Validation, len(events))
				}
				if !strings.Contains(strings.Join(res.Calls, " "), "--memPoolSize=workspace:64") {
					t.Errorf("calls = %v", res.Calls)
				}
			}
		})
	}
}

func TestProbeRefusesOldTensorRT(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trtexec")
	// JetPack 4.4/4.5 shipped TensorRT 7.1.3: its banner is [TensorRT v7103].
	os.WriteFile(p, []byte("#!/bin/sh\necho '&&&& RUNNING TensorRT.trtexec [TensorRT v7103] # trtexec'\n"), 0o755)
	_, c, msg := Probe(context.Background(), p, Options{})
	if c != protocol.ClassBuilderUnavailable || !strings.Contains(msg, "TensorRT 7.1.3") || !strings.Contains(msg, "8.0") {
		t.Errorf("%s: %s", c, msg)
	}
}

func TestBuildNoTrtexec(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	res := Build(context.Background(), protocol.Request{Model: "m.onnx", Engine: filepath.Join(t.TempDir(), "e")}, Options{Root: t.TempDir()})
	if res.Class != protocol.ClassBuilderUnavailable || !strings.Contains(res.Message, "TensorRT not available on this machine: trtexec not found") {
		t.Errorf("%s: %s", res.Class, res.Message)
	}
}

// TestInspectQDQ reads the model the way Build does: int8 is passed only
// for a model with QuantizeLinear/DequantizeLinear nodes.
func TestInspectQDQ(t *testing.T) {
	dir := t.TempDir()
	plain := testmodels.Write(t, dir, "plain.onnx", testmodels.TinyCNN)
	req := protocol.Request{Model: plain, Settings: protocol.Settings{Precision: "int8"}}
	if m := inspect(req); m.QDQ {
		t.Error("TinyCNN has Q/DQ nodes?")
	}
	// Debian's libonnx-testdata: a real model made of one QuantizeLinear.
	q := "/usr/share/libonnx-testdata/data/node/test_quantizelinear/model.onnx"
	if _, err := os.Stat(q); err != nil {
		t.Skip("libonnx-testdata not installed")
	}
	req.Model = q
	if m := inspect(req); !m.QDQ {
		t.Error("test_quantizelinear: no Q/DQ found")
	}
	req.Settings.Precision = "fp16"
	if m := inspect(req); m.QDQ {
		t.Error("the model is read for a non-int8 stage")
	}
}

// TestArgsInt8Source: the command line says where its int8 scales come
// from, as the flags do (--int8 alone: Q/DQ; with --calib=: the cache).
func TestArgsInt8Source(t *testing.T) {
	v82, _ := version.Parse("8.2.1")
	v111, _ := version.Parse("11.1.0")
	samples := &protocol.Accuracy{Inputs: []string{"input_0.pb"}}
	for _, c := range []struct {
		name  string
		req   protocol.Request
		m     Model
		v     version.Version
		want  protocol.Int8Source
		flags string
	}{
		{"qdq", protocol.Request{Settings: protocol.Settings{Precision: "int8"}}, Model{QDQ: true}, v82, protocol.Int8QDQ, "--int8 --fp16"},
		{"cache", protocol.Request{Settings: protocol.Settings{Precision: "int8"}, Calibration: "m.calib.cache"}, Model{}, v82, protocol.Int8FromCache, "--int8 --calib=m.calib.cache --fp16"},
		{"no scales", protocol.Request{Settings: protocol.Settings{Precision: "int8"}}, Model{}, v82, protocol.Int8Refused, "--fp16"},
		{"samples", protocol.Request{Settings: protocol.Settings{Precision: "int8"}, Accuracy: samples}, Model{QDQ: true}, v82, protocol.Int8Refused, "--fp16"},
		{"fp16", protocol.Request{Settings: protocol.Settings{Precision: "fp16"}}, Model{QDQ: true}, v82, "", "--fp16"},
		// 11.x is strongly typed: the Q/DQ nodes set the int8 layers,
		// samples or not; without them there is no int8.
		{"typed 11.x qdq", protocol.Request{Settings: protocol.Settings{Precision: "int8"}, Accuracy: samples}, Model{QDQ: true}, v111, protocol.Int8QDQ, ""},
		{"typed 11.x", protocol.Request{Settings: protocol.Settings{Precision: "int8"}}, Model{}, v111, "", ""},
	} {
		c.req.Model = "m.onnx"
		line, err := Args(c.req, c.v, "e", "", c.m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if line.Int8 != c.want {
			t.Errorf("%s: int8 source %q, want %q", c.name, line.Int8, c.want)
		}
		var prec []string
		for _, a := range line.Args {
			if a == "--int8" || a == "--fp16" || strings.HasPrefix(a, "--calib=") {
				prec = append(prec, a)
			}
		}
		if got := strings.Join(prec, " "); got != c.flags {
			t.Errorf("%s: precision flags %q, want %q", c.name, got, c.flags)
		}
	}
}
