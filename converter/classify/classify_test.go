package classify

import (
	"strings"
	"syscall"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// Real TensorRT / trtexec output quoted in public issues. Each case names
// its source. want is the class; has is a substring the reason must carry.
var logCases = []struct {
	name, src string
	log       string
	want      protocol.Class
	has       string
}{
	{
		name: "8.0 host weights OOM then no implementation (Nano)",
		src:  "https://github.com/NVIDIA-AI-IOT/torch2trt/issues/661",
		log: `[TensorRT] ERROR: Requested amount of memory (150994944 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.
[TensorRT] ERROR: ../rtSafe/WeightsPtr.cpp (92) - OutOfMemory Error in allocate: 0
[TensorRT] ERROR: Out of memory error during getBestTactic: [FULLY_CONNECTED #1] torch.nn.functional.linear(tensor(shape=[1, 9216], dtype=torch.float32))
[TensorRT] ERROR: ../builder/tacticOptimizer.cpp (1715) - TRTInternal Error in computeCosts: 0 (Could not find any implementation for node [FULLY_CONNECTED #1] torch.nn.funct`,
		want: protocol.ClassOutOfMemory, has: "no implementation fitted node",
	},
	{
		name: "8.4+ virtualMemoryBuffer OutOfMemory",
		src:  "https://github.com/marcoslucianops/DeepStream-Yolo/issues/366",
		log: `ERROR: [TRT]: 2: [virtualMemoryBuffer.cpp::resizePhysical::160] Error Code 2: OutOfMemory (no further information)
ERROR: [TRT]: 2: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)
WARNING: [TRT]: Requested amount of GPU memory (4294967296 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.`,
		want: protocol.ClassOutOfMemory, has: "Error Code 2",
	},
	{
		name: "10.x defaultAllocator cuda runtime OOM",
		src:  "https://github.com/NVIDIA/TensorRT/issues/4254",
		log:  `[E] [defaultAllocator.cpp::allocate::19] Error code 1: cuda Runtime (out of memory)TE] Error code: 9: skipping tactic 0x0000000000000000 due to exception [tunablegraph.cpp:create:116] autotuning: user allocator error allocating 86114305024-byte buffer`,
		want: protocol.ClassOutOfMemory, has: "out of memory",
	},
	{
		name: "10.x resizePhysical with requested size",
		src:  "https://github.com/NVIDIA/TensorRT/issues/4254",
		log:  `[E] [virtualMemoryBuffer.cpp::resizePhysical::140] Error code 2: out of Memory (Requested size was 22942842880 bytes.)`,
		want: protocol.ClassOutOfMemory, has: "Requested size",
	},
	{
		name: "7.x/8.0 safeRuntime allocate: 2",
		src:  "https://github.com/NVIDIA/TensorRT/issues/840",
		log: `Building the TensorRT Engine...
ERROR: ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
WARNING: Get cuda error during getBestTactic: (Unnamed Layer* 1) [ElementWise]
ERROR: ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
WARNING: Get cuda error during timeReformat.`,
		want: protocol.ClassOutOfMemory, has: "allocate: 2",
	},
	{
		name: "DefaultAllocator::allocate: 2 then could not find any implementation",
		src:  "https://github.com/NVIDIA/TensorRT/issues/477",
		log: `[03/07/2020-16:57:34] [E] [TRT] C:\source\rtSafe\safeRuntime.cpp (25) - Cuda Error in nvinfer1::internal::DefaultAllocator::allocate: 2 (out of memory)
[03/07/2020-16:57:34] [W] [TRT] GPU memory allocation error during getBestTactic: conv0_fwd
[03/07/2020-16:57:34] [E] [TRT] Internal error: could not find any implementation for node 
conv0_fwd, try increasing the workspace size with IBuilder::setMaxWorkspaceSize()
[03/07/2020-16:57:34] [E] [TRT] C:\source\builder\tacticOptimizer.cpp (1523) - OutOfMemory Error in nvinfer1::builder::` + "`anonymous-namespace'" + `::LeafCNode::computeCosts: 0`,
		want: protocol.ClassOutOfMemory, has: "no implementation fitted",
	},
	{
		name: "safeRuntime on a GPU without native FP16",
		src:  "https://github.com/linghu8812/tensorrt_inference/issues/117",
		log: `[08/03/2022-23:18:04] [W] [TRT] Half2 support requested on hardware without native FP16 support, performance will be negatively affected.
[08/03/2022-23:18:05] [E] [TRT] ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
[08/03/2022-23:18:05] [E] [TRT] ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
build engine done`,
		want: protocol.ClassOutOfMemory,
	},
	{
		name: "onnxruntime TensorRT EP log line",
		src:  "https://github.com/microsoft/onnxruntime/issues/10770",
		log:  `E:onnxruntime:Default, tensorrt_execution_provider.h:50 log] [2022-03-04 13:39:28 ERROR] ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)`,
		want: protocol.ClassOutOfMemory,
	},
	{
		name: "8.2 trtexec host bad allocation (fp16 on 3070)",
		src:  "https://github.com/NVIDIA/TensorRT/issues/1603",
		log: `[11/09/2021-17:05:46] [I] [TRT] [MemUsageSnapshot] Builder begin: CPU 4097 MiB, GPU 2099 MiB
[11/09/2021-17:05:47] [I] [TRT] [MemUsageChange] Init cuBLAS/cuBLASLt: CPU +882, GPU +336, now: CPU 4994, GPU 2477 (MiB)
[11/09/2021-17:05:47] [E] Error[1]: Unexpected exception bad allocation`,
		want: protocol.ClassOutOfMemory, has: "bad allocation",
	},
	{
		name: "skipped tactics on a 4 GB card (warning only, build failed later)",
		src:  "https://github.com/enazoe/yolo-tensorrt/issues/169",
		log: `WARNING: Requested amount of GPU memory (4294967296 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.
WARNING: Skipping tactic 1 due to insuficient memory on requested size of 4294967296 detected for tactic 0.
Try decreasing the workspace size with IBuilderConfig::setMaxWorkspaceSize()`,
		want: protocol.ClassOutOfMemory, has: "4294967296",
	},
	{
		name: "no implementation without a failed allocation (issue title, Nano)",
		src:  "https://github.com/dusty-nv/jetson-inference/issues/1499",
		log:  `error code 10 internal error (could not find any implementation for node)`,
		want: protocol.ClassNoTactic, has: "no tactic fits",
	},
	{
		name: "tactic device requests larger than available memory",
		src:  "https://github.com/NVIDIA-AI-IOT/torch2trt/issues/706",
		log: `[TensorRT] ERROR: Tactic Device request: 1800MB Available: 1536MB. Device memory is insufficient to use tactic.
[TensorRT] ERROR: Tactic Device request: 2304MB Available: 1536MB. Device memory is insufficient to use tactic.
[TensorRT] ERROR: Tactic Device request: 2304MB Available: 1536MB. Device memory is insufficient to use tactic.`,
		want: protocol.ClassNoTactic, has: "Tactic Device request",
	},
	{
		name: "parser: no importer for custom op (8.x parseGraph)",
		src:  "https://github.com/onnx/onnx-tensorrt/issues/465",
		log: `Parsing model
While parsing node number 2 [Mish -> "001_convolutional_mish"]:
ERROR: /home/ashing/onnx-tensorrt/ModelImporter.cpp:134 In function parseGraph:
[8] No importer registered for op: Mish`,
		want: protocol.ClassUnsupportedModel, has: "op Mish",
	},
	{
		name: "parser: ScatterBEV plugin op missing",
		src:  "https://github.com/NVIDIA-AI-IOT/CUDA-PointPillars/issues/2",
		log:  `While parsing node number 7 [ScatterBEV]: ERROR: ModelImporter.cpp:134 In function parseGraph: [8] No importer registered for op: ScatterBEV : failed to parse onnx model file, please check the onnx ve`,
		want: protocol.ClassUnsupportedModel, has: "ScatterBEV",
	},
	{
		name: "parser: DCNv2",
		src:  "https://github.com/Qjizhi/TensorRT-CenterNet-3D/issues/3",
		log: `While parsing node number 135 [DCNv2 -> "550"]:
ERROR: /home/erisuser/p4sw/sw/gpgpu/MachineLearning/DIT/release/5.0/parsers/onnxOpenSource/ModelImporter.cpp:142 In function importNode:
[8] No importer registered for op: DCNv2
ERROR: failed to parse onnx file`,
		want: protocol.ClassUnsupportedModel, has: "node 135 (op DCNv2",
	},
	{
		name: "parser: TopK with dynamic K (importTopK)",
		src:  "https://github.com/open-mmlab/mmdeploy/issues/835",
		log:  `RuntimeError: Failed to parse onnx, In node 423 (importTopK): UNSUPPORTED_NODE: Assertion failed: (inputs.at(1).is_weights()) && "This version of TensorRT only supports input K as an initializer."`,
		want: protocol.ClassUnsupportedModel, has: "importTopK at node 423",
	},
	{
		name: "parser: INVALID_GRAPH missing input",
		src:  "https://github.com/NVIDIA/TensorRT/issues/425",
		log: `ERROR: Failed to parse the ONNX file.
In node 1511 (parseGraph): INVALID_GRAPH: Assertion failed: ctx->tensors().count(inputName)`,
		want: protocol.ClassUnsupportedModel, has: "INVALID_GRAPH",
	},
	{
		name: "parser: INVALID_NODE followed by bad_alloc stays unsupported",
		src:  "https://github.com/qbxlvnf11/convert-pytorch-onnx-tensorrt/issues/1",
		log: `Failed parsing .onnx file!
In node 614 (parseGraph): INVALID_NODE: Invalid Node - /ArgMax
std::bad_alloc`,
		want: protocol.ClassUnsupportedModel, has: "/ArgMax",
	},
	{
		name: "parser: scaleHelper rank assertion",
		src:  "https://github.com/GeekAlexis/FastMOT/issues/232",
		log: `[TensorRT] ERROR: (Unnamed Layer* 486) [Shuffle]: at most one dimension may be inferred
2021-12-23 10:38:38 [CRITICAL] Failed to parse the ONNX file
2021-12-23 10:38:38 [   ERROR] In node -1 (scaleHelper): UNSUPPORTED_NODE: Assertion failed: dims.nbDims == 4 || dims.nbDims == 5`,
		want: protocol.ClassUnsupportedModel, has: "scaleHelper",
	},
	{
		name: "parser 10.x: node dump with name (Orin Nano, trtexec)",
		src:  "https://github.com/NVIDIA-ISAAC-ROS/isaac_ros_dnn_stereo_depth/issues/42",
		log: `[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:961: While parsing node number 267 [Conv -> "/model/prediction/layers/layers.0/Conv_output_0"]:
[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:964: --- Begin node ---
input: "/model/prediction/Reshape_output_0"
name: "/model/prediction/layers/layers.0/Conv"
op_type: "Conv"
[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:965: --- End node ---`,
		want: protocol.ClassUnsupportedModel, has: `name "/model/prediction/layers/layers.0/Conv"`,
	},
	{
		name: "parser: weights conversion",
		src:  "https://github.com/seanavery/yolov5-tensorrt/issues/8",
		log:  `In node -1 (importInputs): UNSUPPORTED_NODE: Assertion failed: convert_onnx_weights(initializer, &weights)`,
		want: protocol.ClassUnsupportedModel, has: "importInputs",
	},
	{
		name: "dynamic input without profile (Nano)",
		src:  "https://github.com/onnx/onnx-tensorrt/issues/518",
		log:  `[TensorRT] ERROR: Network has dynamic or shape inputs, but no optimization profile has been defined.`,
		want: protocol.ClassBadRequest, has: "dynamic inputs",
	},
	{
		name: "libnvinfer.so.8 missing",
		src:  "https://github.com/jkjung-avt/tensorrt_demos/issues/517",
		log:  `ImportError: libnvinfer.so.8: cannot open shared object file: No such file or directory`,
		want: protocol.ClassBuilderUnavailable, has: "libnvinfer.so.8 not found",
	},
	{
		name: "libnvinfer.so.6 missing in a Nano container",
		src:  "https://github.com/galliot-us/smart-social-distancing/issues/116",
		log:  `ERROR:root:libnvinfer.so.6: cannot open shared object file: No such file or directory`,
		want: protocol.ClassBuilderUnavailable, has: "libnvinfer.so.6",
	},
	{
		name: "assertion abort after a null engine (no OOM text)",
		src:  "https://github.com/linghu8812/tensorrt_inference/issues/117",
		log:  `mmpose_trt: /home/pcb/Algorithm/tensorrt_inference/code/src/model.cpp:46: void Model::OnnxToTRTModel(): Assertion ` + "`engine'" + ` failed.`,
		want: protocol.ClassCrashed,
	},
}

func TestClassifyLogRealExcerpts(t *testing.T) {
	if len(logCases) < 20 {
		t.Fatalf("only %d excerpts; the table must keep at least 20", len(logCases))
	}
	for _, c := range logCases {
		t.Run(c.name, func(t *testing.T) {
			got, reason, ok := ClassifyLog([]byte(c.log))
			if !ok || got != c.want {
				t.Fatalf("ClassifyLog = %q, %q, %v; want %q (source %s)", got, reason, ok, c.want, c.src)
			}
			if c.has != "" && !strings.Contains(reason, c.has) {
				t.Errorf("reason %q lacks %q (source %s)", reason, c.has, c.src)
			}
		})
	}
}

func TestClassifyLogNothing(t *testing.T) {
	// A clean 8.2 build log (tkDNN / tensorrtx style INFO lines) says nothing.
	log := `[TensorRT] INFO: [MemUsageChange] Init CUDA: CPU +197, GPU +0, now: CPU 271, GPU 1891 (MiB)
[TensorRT] INFO: Loaded engine size: 181 MB`
	if c, r, ok := ClassifyLog([]byte(log)); ok {
		t.Errorf("ClassifyLog(clean) = %q, %q", c, r)
	}
}

func TestClassify(t *testing.T) {
	oomLog := []byte("[E] [TRT] 2: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)")
	okRes := &protocol.Result{Class: protocol.ClassOK}
	for _, c := range []struct {
		name string
		o    Outcome
		want protocol.Class
	}{
		{"canceled wins", Outcome{ExitCode: -1, Signal: syscall.SIGKILL, Canceled: true}, protocol.ClassCanceled},
		{"timeout", Outcome{ExitCode: -1, Signal: syscall.SIGKILL, TimedOut: true}, protocol.ClassTimedOut},
		{"guard kill", Outcome{ExitCode: -1, Signal: syscall.SIGKILL, GuardKilled: true}, protocol.ClassOutOfMemory},
		{"cgroup oom", Outcome{ExitCode: -1, Signal: syscall.SIGKILL, CgroupOOM: true}, protocol.ClassOutOfMemory},
		{"bare SIGKILL is the kernel OOM killer", Outcome{ExitCode: -1, Signal: syscall.SIGKILL}, protocol.ClassOutOfMemory},
		{"SIGSEGV crashed", Outcome{ExitCode: -1, Signal: syscall.SIGSEGV, Log: []byte("Segmentation fault (core dumped)")}, protocol.ClassCrashed},
		{"SIGABRT after bad_alloc is OOM", Outcome{ExitCode: -1, Signal: syscall.SIGABRT, Log: []byte("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc")}, protocol.ClassOutOfMemory},
		{"SIGABRT plain", Outcome{ExitCode: -1, Signal: syscall.SIGABRT}, protocol.ClassCrashed},
		{"ok result", Outcome{ExitCode: 0, Result: okRes}, protocol.ClassOK},
		{"exit 0 no result", Outcome{ExitCode: 0}, protocol.ClassCrashed},
		{"exit 0 bad result", Outcome{ExitCode: 0, Result: &protocol.Result{Class: protocol.ClassOutOfMemory}}, protocol.ClassCrashed},
		{"defined code", Outcome{ExitCode: protocol.ExitNoTactic}, protocol.ClassNoTactic},
		{"defined code with result", Outcome{ExitCode: protocol.ExitUnsupportedModel, Result: &protocol.Result{Class: protocol.ClassUnsupportedModel, Message: "op X"}}, protocol.ClassUnsupportedModel},
		{"exit 1 refined by log", Outcome{ExitCode: 1, Log: oomLog}, protocol.ClassOutOfMemory},
		{"exit 1 nothing", Outcome{ExitCode: 1, Log: []byte("hello")}, protocol.ClassCrashed},
		{"result disagrees with code: code wins", Outcome{ExitCode: protocol.ExitOutOfMemory, Result: okRes}, protocol.ClassOutOfMemory},
	} {
		got, reason := Classify(c.o)
		if got != c.want || reason == "" {
			t.Errorf("%s: Classify = %q, %q; want %q", c.name, got, reason, c.want)
		}
	}
}

func TestParseMemUsage(t *testing.T) {
	for _, c := range []struct {
		src, line                string
		phase                    string
		cpu, gpu, cpuNow, gpuNow float64
	}{
		// https://github.com/wang-xinyu/tensorrtx/issues/1145 (Nano, 8.x)
		{"tensorrtx#1145", "[TensorRT] INFO: [MemUsageChange] Init CUDA: CPU +197, GPU +0, now: CPU 271, GPU 1891 (MiB)", "Init CUDA", 197, 0, 271, 1891},
		{"tensorrtx#1145", "[TensorRT] INFO: [MemUsageChange] Init cuDNN: CPU +240, GPU +412, now: CPU 852, GPU 3128 (MiB)", "Init cuDNN", 240, 412, 852, 3128},
		// https://github.com/NVIDIA/TensorRT/issues/1603 (8.2 trtexec)
		{"TensorRT#1603", "[11/09/2021-17:05:47] [I] [TRT] [MemUsageChange] Init cuBLAS/cuBLASLt: CPU +882, GPU +336, now: CPU 4994, GPU 2477 (MiB)", "Init cuBLAS/cuBLASLt", 882, 336, 4994, 2477},
		// 10.x forms (trtexec 10.x logs)
		{"10.x", "[I] [TRT] [MemUsageChange] Init builder kernel library: CPU +1614, GPU +286, now: CPU 1829, GPU 1319 (MiB)", "Init builder kernel library", 1614, 286, 1829, 1319},
		{"10.x", "[I] [TRT] [MemUsageChange] TensorRT-managed allocation in building engine: CPU -3, GPU +4, now: CPU 0, GPU 4 (MiB)", "TensorRT-managed allocation in building engine", -3, 4, 0, 4},
		{"10.x", "[I] [TRT] [MemUsageChange] Peak memory usage of TRT CPU/GPU memory allocators: CPU 0 MiB, GPU 1049 MiB", "Peak memory usage of TRT CPU/GPU memory allocators", 0, 0, 0, 1049},
	} {
		u, ok := ParseMemUsage(c.line)
		if !ok || u.Phase != c.phase || u.CPUMiB != c.cpu || u.GPUMiB != c.gpu || u.CPUNowMiB != c.cpuNow || u.GPUNowMiB != c.gpuNow {
			t.Errorf("%s: ParseMemUsage(%q) = %+v, %v", c.src, c.line, u, ok)
		}
		if !strings.HasPrefix(u.Line, "[MemUsageChange]") {
			t.Errorf("Line = %q", u.Line)
		}
	}
	if _, ok := ParseMemUsage("[MemUsageSnapshot] Builder begin: CPU 4097 MiB, GPU 2099 MiB"); ok {
		t.Error("snapshot line parsed as a change")
	}
}
