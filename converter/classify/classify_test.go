package classify

import (
	"strings"
	"syscall"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
)

// Real TensorRT / trtexec output quoted in public issues. Every excerpt was
// checked against its source: its text is in the issue, trt is the
// TensorRT version the issue states ("" when it states none) and failed
// says whether that build failed. want is ClassifyLog's class ("" = it
// says nothing: no fatal line), failedWant ClassifyFailed's (the class
// when the build is known to have failed); has is a substring the reason
// must carry.
var logCases = []struct {
	name, src, trt string
	failed         bool
	log            string
	want           protocol.Class
	failedWant     protocol.Class
	has            string
}{
	{
		name: "host weights OOM, then no implementation (Nano)", src: "https://github.com/NVIDIA-AI-IOT/torch2trt/issues/661", trt: "", failed: true,
		log: `[TensorRT] ERROR: Requested amount of memory (150994944 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.
[TensorRT] ERROR: ../rtSafe/WeightsPtr.cpp (92) - OutOfMemory Error in allocate: 0
[TensorRT] ERROR: Out of memory error during getBestTactic: [FULLY_CONNECTED #1] torch.nn.functional.linear(tensor(shape=[1, 9216], dtype=torch.float32), tensor(shape=[4096, 9216], dtype=torch.float32), tensor(shape=[4096], dtype=torch.float32)) + [RELU #6] torch.nn.ReLU.forward(ReLU(inplace=True), tensor(shape=[1, 4096], dtype=torch.float32))
[TensorRT] ERROR: ../builder/tacticOptimizer.cpp (1715) - TRTInternal Error in computeCosts: 0 (Could not find any implementation for node [FULLY_CONNECTED #1] torch.nn.funct`,
		want: protocol.ClassNoTactic, failedWant: protocol.ClassNoTactic, has: "150994944",
	},
	{
		name: "safeRuntime allocate: 2 warnings only (the excerpt ends before the failure)", src: "https://github.com/NVIDIA/TensorRT/issues/840", trt: "", failed: true,
		log: `Building the TensorRT Engine...
ERROR: ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
WARNING: Get cuda error during getBestTactic: (Unnamed Layer* 1) [ElementWise]
ERROR: ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
WARNING: Get cuda error during timeReformat.`,
		want: "", failedWant: protocol.ClassOutOfMemory, has: "allocate: 2",
	},
	{
		name: "allocate: 2, then the application's assertion on a null engine", src: "https://github.com/linghu8812/tensorrt_inference/issues/117", trt: "", failed: true,
		log: `[08/03/2022-23:18:04] [W] [TRT] Half2 support requested on hardware without native FP16 support, performance will be negatively affected.
[08/03/2022-23:18:05] [E] [TRT] ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
[08/03/2022-23:18:05] [E] [TRT] ../rtSafe/safeRuntime.cpp (25) - Cuda Error in allocate: 2 (out of memory)
build engine done
mmpose_trt: /home/pcb/Algorithm/tensorrt_inference/code/src/model.cpp:46: void Model::OnnxToTRTModel(): Assertion ` + "`engine'" + ` failed.`,
		want: protocol.ClassOutOfMemory, failedWant: protocol.ClassOutOfMemory, has: "allocate: 2",
	},
	{
		name: "8.2 trtexec host bad allocation (fp16 on a 3070)", src: "https://github.com/NVIDIA/TensorRT/issues/1603", trt: "8.2.0", failed: true,
		log: `[11/09/2021-17:05:46] [I] [TRT] [MemUsageSnapshot] Builder begin: CPU 4097 MiB, GPU 2099 MiB
[11/09/2021-17:05:47] [I] [TRT] [MemUsageChange] Init cuBLAS/cuBLASLt: CPU +882, GPU +336, now: CPU 4994, GPU 2477 (MiB)
[11/09/2021-17:05:47] [E] Error[1]: Unexpected exception bad allocation`,
		want: protocol.ClassOutOfMemory, failedWant: protocol.ClassOutOfMemory, has: "bad allocation",
	},
	{
		name: "8.4 Cuda Runtime (out of memory) alone", src: "https://github.com/NVIDIA/TensorRT/issues/2198", trt: "8.4.2", failed: true,
		log:  ` defaultAllocator.cpp::nvinfer1::internal::DefaultAllocator::allocate::63] Error Code 1: Cuda Runtime (out of memory).`,
		want: "", failedWant: protocol.ClassOutOfMemory, has: "Cuda Runtime (out of memory)",
	},
	{
		name: "tactic warnings on a build that produced an engine", src: "https://github.com/ultralytics/yolov5/issues/12248", trt: "", failed: false,
		log: `[10/18/2023-20:27:00] [TRT] [W] Skipping tactic 3 due to insuficient memory on requested size of 449 detected for tactic 4.
Try decreasing the workspace size with IBuilderConfig::setMaxWorkspaceSize().
[10/18/2023-20:27:01] [TRT] [W] Tactic Device request: 448MB Available: 425MB. Device memory is insufficient to use tactic.`,
		want: "", failedWant: protocol.ClassOutOfMemory,
	},
	{
		name: "Skipping tactic warning the maintainers call harmless", src: "https://github.com/NVIDIA/TensorRT-LLM/issues/493", trt: "", failed: false,
		log:  `[11/28/2023-15:47:38] [TRT] [W] UNSUPPORTED_STATESkipping tactic 4 due to insufficient memory on requested size of 66048 detected for tactic 0x000000000000001f.`,
		want: "", failedWant: protocol.ClassOutOfMemory,
	},
	{
		name: "Tactic Device request errors, engine built (its outputs were all 0)", src: "https://github.com/NVIDIA-AI-IOT/torch2trt/issues/706", trt: "", failed: false,
		log: `[TensorRT] ERROR: Tactic Device request: 1800MB Available: 1536MB. Device memory is insufficient to use tactic.
[TensorRT] ERROR: Tactic Device request: 2304MB Available: 1536MB. Device memory is insufficient to use tactic.`,
		want: "", failedWant: protocol.ClassOutOfMemory,
	},
	{
		name: "no implementation, nothing about memory (issue title, Nano)", src: "https://github.com/dusty-nv/jetson-inference/issues/1499", trt: "", failed: true,
		log:  `error code 10 internal error (could not find any implementation for node)`,
		want: protocol.ClassNoImplementation, failedWant: protocol.ClassNoImplementation, has: "less memory will not help",
	},
	{
		name: "ArgMax has no implementation on a Nano", src: "https://github.com/NVIDIA/TensorRT/issues/3677", trt: "", failed: true,
		log:  `Error Code 10: Internal Error (Could not find any implementation for node StatefulPartitionedCall/ArgMax.)`,
		want: protocol.ClassNoImplementation, failedWant: protocol.ClassNoImplementation, has: "StatefulPartitionedCall/ArgMax",
	},
	{
		name: "Maxwell GPU the TensorRT no longer supports", src: "https://github.com/dusty-nv/jetson-inference/issues/1591", trt: "", failed: true,
		log: `[TRT]    10: Could not find any implementation for node conv1/7x7_s2 + conv1/relu_7x7.
[TRT]    10: [optimizer.cpp::computeCosts::3873] Error Code 10: Internal Error (Could not find any implementation for node conv1/7x7_s2 + conv1/relu_7x7.)
[TRT]    device GPU, failed to build CUDA engine`,
		want: protocol.ClassNoImplementation, failedWant: protocol.ClassNoImplementation, has: "conv1/7x7_s2",
	},
	{
		name: "ArgMax on a Nano, onnx2trt aborts", src: "https://github.com/onnx/onnx-tensorrt/issues/564", trt: "", failed: true,
		log: `[2020-11-10 13:45:42   ERROR] ../builder/tacticOptimizer.cpp (1715) - TRTInternal Error in computeCosts: 0 (Could not find any implementation for node ArgMax_532.)
terminate called after throwing an instance of 'std::runtime_error'
  what():  Failed to create object
Aborted (core dumped)`,
		want: protocol.ClassNoImplementation, failedWant: protocol.ClassNoImplementation, has: "ArgMax_532",
	},
	{
		name: "parser: ScatterBEV plugin op missing", src: "https://github.com/NVIDIA-AI-IOT/CUDA-PointPillars/issues/2", trt: "", failed: true,
		log:  `While parsing node number 7 [ScatterBEV]: ERROR: ModelImporter.cpp:134 In function parseGraph: [8] No importer registered for op: ScatterBEV : failed to parse onnx model file, please check the onnx ve`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: "ScatterBEV",
	},
	{
		name: "parser: DCNv2 plugin op missing", src: "https://github.com/CaoWGG/TensorRT-CenterNet/issues/81", trt: "7.0.0", failed: true,
		log: `While parsing node number 135 [DCNv2 -> "538"]:
ERROR: ModelImporter.cpp:134 In function parseGraph:
[8] No importer registered for op: DCNv2`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: "node 135 (op DCNv2",
	},
	{
		name: "parser: TopK with dynamic K (importTopK)", src: "https://github.com/open-mmlab/mmdeploy/issues/835", trt: "", failed: true,
		log:  `RuntimeError: Failed to parse onnx, In node 423 (importTopK): UNSUPPORTED_NODE: Assertion failed: (inputs.at(1).is_weights()) && "This version of TensorRT only supports input K as an initializer."`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: "importTopK at node 423",
	},
	{
		name: "parser: INVALID_NODE followed by bad_alloc stays unsupported", src: "https://github.com/qbxlvnf11/convert-pytorch-onnx-tensorrt/issues/1", trt: "", failed: true,
		log: `Failed parsing .onnx file!
In node 614 (parseGraph): INVALID_NODE: Invalid Node - /ArgMax
std::bad_alloc`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: "/ArgMax",
	},
	{
		name: "parser: scaleHelper rank assertion (Jetson AGX)", src: "https://github.com/GeekAlexis/FastMOT/issues/232", trt: "7.2.0", failed: true,
		log: `[TensorRT] ERROR: (Unnamed Layer* 486) [Shuffle]: at most one dimension may be inferred
2021-12-23 10:38:38 [CRITICAL] Failed to parse the ONNX file
2021-12-23 10:38:38 [   ERROR] In node -1 (scaleHelper): UNSUPPORTED_NODE: Assertion failed: dims.nbDims == 4 || dims.nbDims == 5`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: "scaleHelper",
	},
	{
		name: "parser: node dump with name (Orin Nano, trtexec)", src: "https://github.com/NVIDIA-ISAAC-ROS/isaac_ros_dnn_stereo_depth/issues/42", trt: "", failed: true,
		log: `[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:961: While parsing node number 267 [Conv -> "/model/prediction/layers/layers.0/Conv_output_0"]:
[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:964: --- Begin node ---
input: "/model/prediction/Reshape_output_0"
name: "/model/prediction/layers/layers.0/Conv"
op_type: "Conv"
[06/13/2025-19:41:36] [E] [TRT] parsers/onnx/ModelImporter.cpp:965: --- End node ---`,
		want: protocol.ClassUnsupportedModel, failedWant: protocol.ClassUnsupportedModel, has: `name "/model/prediction/layers/layers.0/Conv"`,
	},
	{
		name: "dynamic input without profile (Nano, onnx2trt)", src: "https://github.com/onnx/onnx-tensorrt/issues/518", trt: "7.1", failed: true,
		log: `[2020-08-20 11:03:50   ERROR] Network has dynamic or shape inputs, but no optimization profile has been defined.
[2020-08-20 11:03:50   ERROR] Network validation failed.
terminate called after throwing an instance of 'std::runtime_error'
  what():  Failed to create object
Aborted (core dumped)`,
		want: protocol.ClassBadRequest, failedWant: protocol.ClassBadRequest, has: "dynamic inputs",
	},
	{
		name: "dynamic input without profile (TX2, trtexec)", src: "https://github.com/NVIDIA/TensorRT/issues/1478", trt: "", failed: true,
		log: `[09/07/2021-15:54:19] [E] [TRT] Network has dynamic or shape inputs, but no optimization profile has been defined.
[09/07/2021-15:54:19] [E] [TRT] Network validation failed.
[09/07/2021-15:54:19] [E] Engine creation failed
[09/07/2021-15:54:19] [E] Engine set up failed`,
		want: protocol.ClassBadRequest, failedWant: protocol.ClassBadRequest, has: "dynamic inputs",
	},
	{
		name: "libnvinfer.so.8 missing", src: "https://github.com/jkjung-avt/tensorrt_demos/issues/517", trt: "8.2.1", failed: true,
		log:  `ImportError: libnvinfer.so.8: cannot open shared object file: No such file or directory`,
		want: protocol.ClassBuilderUnavailable, failedWant: protocol.ClassBuilderUnavailable, has: "libnvinfer.so.8 not found",
	},
	{
		// 10.x prints the failed device allocation as "Cuda Runtime (out of
		// memory)" too, not "(In allocate at …)" as once assumed.
		name: "10.3 trtexec: Cuda Runtime (out of memory), then no implementation", src: "https://github.com/NVIDIA/TensorRT/issues/4258", trt: "10.3.0", failed: true,
		log: `[11/22/2024-13:40:08] [I] [TRT] Local timing cache in use. Profiling results in this builder pass will not be stored.
[11/22/2024-13:40:47] [E] Error[1]: [defaultAllocator.cpp::allocate::31] Error Code 1: Cuda Runtime (out of memory)
[11/22/2024-13:40:47] [W] [TRT] Requested amount of GPU memory (15485030400 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.
[11/22/2024-13:40:47] [E] Error[9]: Error Code: 9: Skipping tactic 0x0000000000000000 due to exception [tunable_graph.cpp:create:117] autotuning: User allocator error allocating 15485030400-byte buffer
[11/22/2024-13:40:47] [E] Error[10]: IBuilder::buildSerializedNetwork: Error Code 10: Internal Error (Could not find any implementation for node {ForeignNode[/1/Constant_36_output_0.../1/Slice_4]}.)
[11/22/2024-13:40:47] [E] Engine could not be created from network`,
		want: protocol.ClassNoTactic, failedWant: protocol.ClassNoTactic, has: "Cuda Runtime (out of memory)",
	},
}

// Lines NVIDIA's own code prints, with the source line per release.
var sourceCases = []struct {
	name, src string
	log       string
	want      protocol.Class
	has       string
}{
	{
		// cudaCheck prints "Cuda failure: " << cudaGetErrorString(ret) and
		// calls abort(): samples/common/sampleDevice.h 8.2 :29-36 (used by
		// DeviceAllocator :279), 10.0 :290. cudaGetErrorString(2) is "out of
		// memory".
		name: "trtexec cudaCheck out of memory, then abort", src: "samples/common/sampleDevice.h",
		log: `[I] Engine built in 62.1 sec.
Cuda failure: out of memory
Aborted (core dumped)`,
		want: protocol.ClassOutOfMemory, has: "Cuda failure: out of memory",
	},
	{
		name: "trtexec: Engine set up failed after a failed allocation", src: "samples/trtexec/trtexec.cpp 8.2 :187",
		log: `[E] [TRT] 2: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)
[E] Engine set up failed`,
		want: protocol.ClassOutOfMemory, has: "Engine set up failed",
	},
	{
		name: "a Jetson GPU the worker may not open", src: "L4T: /dev/nvmap root:video 0660",
		log:  `NvRmMemInitNvmap failed with Permission denied`,
		want: protocol.ClassBuilderUnavailable, has: "group video",
	},
	{
		name: "CUDA says no device (a Jetson without group video)", src: "cudaErrorNoDevice",
		log:  `[E] Cuda failure: no CUDA-capable device is detected`,
		want: protocol.ClassBuilderUnavailable, has: "usermod -aG video",
	},
}

func TestClassifyLogRealExcerpts(t *testing.T) {
	for _, c := range logCases {
		t.Run(c.name, func(t *testing.T) {
			got, reason, ok := ClassifyLog([]byte(c.log))
			if got != c.want || ok != (c.want != "") {
				t.Fatalf("ClassifyLog = %q, %q, %v; want %q (source %s, TensorRT %q, build failed %v)", got, reason, ok, c.want, c.src, c.trt, c.failed)
			}
			fgot, freason, _ := ClassifyFailed([]byte(c.log))
			if fgot != c.failedWant {
				t.Errorf("ClassifyFailed = %q, %q; want %q (source %s)", fgot, freason, c.failedWant, c.src)
			}
			if r := reason + freason; c.has != "" && !strings.Contains(r, c.has) {
				t.Errorf("reasons %q lack %q (source %s)", r, c.has, c.src)
			}
			// A build that produced an engine must never be classified
			// from its warnings.
			if !c.failed && ok {
				t.Errorf("successful build classified as %s", got)
			}
		})
	}
	for _, c := range sourceCases {
		got, reason, ok := ClassifyLog([]byte(c.log))
		if !ok || got != c.want || !strings.Contains(reason, c.has) {
			t.Errorf("%s (%s): ClassifyLog = %q, %q; want %q with %q", c.name, c.src, got, reason, c.want, c.has)
		}
	}
}

func TestWorkspaceAsked(t *testing.T) {
	for _, c := range []struct {
		log  string
		want int64
	}{
		{logCases[0].log, 150994944},
		{logCases[5].log, 448 << 20},
		{logCases[7].log, 2304 << 20},
		{"[E] [virtualMemoryBuffer.cpp::resizePhysical::140] Error code 2: out of Memory (Requested size was 22942842880 bytes.)", 22942842880},
		{"nothing", 0},
	} {
		if got := WorkspaceAsked([]byte(c.log)); got != c.want {
			t.Errorf("WorkspaceAsked(%.60q) = %d, want %d", c.log, got, c.want)
		}
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
		{"SIGABRT beside memory warnings is OOM", Outcome{ExitCode: -1, Signal: syscall.SIGABRT, Log: []byte("[W] [TRT] Tactic Device request: 538MB Available: 166MB. Device memory is insufficient to use tactic.")}, protocol.ClassOutOfMemory},
		{"exit 1 with memory warnings only is OOM (the build failed)", Outcome{ExitCode: 1, Log: []byte("Cuda Error in allocate: 2 (out of memory)")}, protocol.ClassOutOfMemory},
		{"no implementation exit code", Outcome{ExitCode: protocol.ExitNoImplementation}, protocol.ClassNoImplementation},
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
		// The peak line, tagged [MemUsageStats] in every public log of it
		// (NVIDIA/TensorRT): a TensorRT 8.2.5 trtexec log,
		// quickstart/quantization_tutorial/qat-ptq-workflow.ipynb:594
		// (release/8.5 … 10.3); 10.3.0 trtexec,
		// quickstart/IntroNotebooks/1. Introduction.ipynb:321 (release/10.4 …
		// 10.13); 10.12 sample, samples/sampleSafePluginV3/README.md:118
		// (release/10.15, 10.16, 11.0, 11.1, main).
		{"TensorRT 8.2.5 qat-ptq-workflow.ipynb:594", "[07/25/2022-16:43:21] [I] [TRT] [MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 8 MiB, GPU 624 MiB", "Peak memory usage of TRT CPU/GPU memory allocators", 0, 0, 8, 624},
		{"TensorRT 10.3.0 1. Introduction.ipynb:321", "[08/09/2024-23:12:00] [I] [TRT] [MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 16 MiB, GPU 128 MiB", "Peak memory usage of TRT CPU/GPU memory allocators", 0, 0, 16, 128},
		{"TensorRT 10.12 sampleSafePluginV3/README.md:118", "[04/23/2025-08:07:57] [I] [TRT] [MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 0 MiB, GPU 1 MiB", "Peak memory usage of TRT CPU/GPU memory allocators", 0, 0, 0, 1},
	} {
		u, ok := ParseMemUsage(c.line)
		if !ok || u.Phase != c.phase || u.CPUMiB != c.cpu || u.GPUMiB != c.gpu || u.CPUNowMiB != c.cpuNow || u.GPUNowMiB != c.gpuNow {
			t.Errorf("%s: ParseMemUsage(%q) = %+v, %v", c.src, c.line, u, ok)
		}
		if !strings.HasPrefix(u.Line, "[MemUsage") {
			t.Errorf("Line = %q", u.Line)
		}
	}
	if _, ok := ParseMemUsage("[MemUsageSnapshot] Builder begin: CPU 4097 MiB, GPU 2099 MiB"); ok {
		t.Error("snapshot line parsed as a change")
	}
}
