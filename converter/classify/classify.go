// Package classify turns the outcome of one worker attempt (exit status,
// signal, captured TensorRT log, the daemon's own observations) into a
// protocol.Class and a short reason a user can act on. It is a pure
// function of its input, used by the daemon (for signal deaths and workers
// that said nothing), by the worker (to classify TensorRT's logger output)
// and by the trtexec backend (to classify trtexec's output).
//
// Rules, in order:
//
//  1. Canceled (daemon shutdown) -> canceled; TimedOut -> timed_out.
//  2. GuardKilled or CgroupOOM -> out_of_memory.
//  3. SIGKILL -> out_of_memory. The daemon records its own kills (guard,
//     timeout, shutdown) in the flags above, so a bare SIGKILL was sent by
//     the kernel OOM killer, which leaves no message in the log.
//  4. Other signals (SIGSEGV, SIGABRT, SIGBUS ...) -> crashed, unless the
//     log shows memory trouble (an uncaught std::bad_alloc ends in
//     abort(), so does trtexec's cudaCheck) -> out_of_memory.
//  5. The worker's own Result, when its class agrees with the exit code.
//  6. A defined exit code (protocol.ExitCodeClass) -> its class.
//  7. Any other exit code -> the class of the failed build's log
//     (ClassifyFailed), else crashed. Exit 0 without a result -> crashed.
package classify

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/trtd/trtd/converter/protocol"
)

// Outcome is everything known about one finished attempt.
type Outcome struct {
	ExitCode    int            // -1 when killed by a signal
	Signal      syscall.Signal // 0 when it exited
	Log         []byte         // last bytes of stderr (and/or TensorRT log lines)
	GuardKilled bool           // the daemon's memory guard SIGKILLed it
	CgroupOOM   bool           // the kernel OOM-killed it in its cgroup (memory.events oom_kill)
	TimedOut    bool           // the per-stage timeout fired
	Canceled    bool           // daemon shutdown
	Result      *protocol.Result
}

// Classify classifies an attempt; see the package comment for the rules.
func Classify(o Outcome) (protocol.Class, string) {
	switch {
	case o.Canceled:
		return protocol.ClassCanceled, "canceled: the daemon is shutting down"
	case o.TimedOut:
		return protocol.ClassTimedOut, "the stage ran past its time limit and was stopped"
	case o.GuardKilled:
		return protocol.ClassOutOfMemory, "out of memory: the memory guard stopped the build before the system ran out of memory"
	case o.CgroupOOM:
		return protocol.ClassOutOfMemory, "out of memory: the kernel OOM killer stopped the build (its cgroup's memory limit was reached)"
	}
	if o.Signal != 0 {
		if c, r, ok := ClassifyFailed(o.Log); ok && c == protocol.ClassOutOfMemory {
			return c, r
		}
		if o.Signal == syscall.SIGKILL {
			return protocol.ClassOutOfMemory, "out of memory: the worker was killed (SIGKILL) without a message, which is how the kernel OOM killer ends a process"
		}
		return protocol.ClassCrashed, fmt.Sprintf("the worker crashed (%s)%s", sigName(o.Signal), lastError(o.Log))
	}
	if r := o.Result; r != nil && r.Class != "" && protocol.ExitCode(r.Class) == o.ExitCode {
		msg := r.Message
		if msg == "" {
			msg = string(r.Class)
		}
		return r.Class, msg
	}
	if o.ExitCode == 0 {
		if o.Result == nil {
			return protocol.ClassCrashed, "the worker exited without a result"
		}
		return protocol.ClassCrashed, fmt.Sprintf("the worker exited 0 with result class %q", o.Result.Class)
	}
	if c, ok := protocol.ExitCodeClass(o.ExitCode); ok {
		if lc, lr, ok := ClassifyLog(o.Log); ok && lc == c {
			return c, lr
		}
		return c, fmt.Sprintf("%s (worker exit code %d)%s", c, o.ExitCode, lastError(o.Log))
	}
	if c, r, ok := ClassifyFailed(o.Log); ok {
		return c, r
	}
	return protocol.ClassCrashed, fmt.Sprintf("the worker exited with status %d%s", o.ExitCode, lastError(o.Log))
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGBUS:
		return "SIGBUS"
	case syscall.SIGILL:
		return "SIGILL"
	case syscall.SIGFPE:
		return "SIGFPE"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return "signal " + strconv.Itoa(int(s))
}

// lastError returns ": <last error-looking line>" from log, or "".
func lastError(log []byte) string {
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-50; i-- {
		l := strings.TrimSpace(string(lines[i]))
		if errorLine.MatchString(l) {
			return ": " + clip(l, 200)
		}
	}
	return ""
}

var errorLine = regexp.MustCompile(`(?i)\b(error|\[E\]|fatal|assertion|terminate|segmentation)\b`)

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Log patterns. Each one was seen in real TensorRT output or is printed by
// NVIDIA's own code; the test table quotes them with their sources.
//
// TensorRT prints memory trouble all through a build that then succeeds:
// failed allocations of tactics it skips, "Tactic Device request"
// warnings, resizePhysical errors while it probes how much it can get. So
// these lines are memory evidence only; the class comes from the fatal
// lines that end a build (ClassifyLog), and memory evidence counts when it
// stands beside one, or beside a build known to have failed
// (ClassifyFailed).
var (
	// The ONNX parser, all versions: "In node 7 (parseGraph): UNSUPPORTED_NODE: ...",
	// "While parsing node number 7 [ScatterBEV -> "x"]:", "No importer registered for op: X".
	reParserNode  = regexp.MustCompile(`In node (-?\d+) \(([A-Za-z_]\w*)\): (UNSUPPORTED_NODE|INVALID_NODE|INVALID_GRAPH|UNSUPPORTED_GRAPH|INVALID_VALUE|MODEL_DESERIALIZE_FAILED|INTERNAL_ERROR|UNSUPPORTED_NODE_ATTR|UNSUPPORTED_NODE_INPUT|UNSUPPORTED_NODE_DATATYPE|UNSUPPORTED_NODE_DYNAMIC|UNSUPPORTED_NODE_SHAPE|REFIT_FAILED)[: ]*(.*)`)
	reParsingNode = regexp.MustCompile(`While parsing node number (\d+) \[([A-Za-z_][\w.]*)(?: -> "([^"]*)")?\]`)
	reNoImporter  = regexp.MustCompile(`No importer registered for op: ([\w.]+)`)
	reNodeName    = regexp.MustCompile(`(?m)^\s*name: "([^"]*)"`)
	reParseFailed = regexp.MustCompile(`(?i)failed to parse (the )?onnx (file|model)|Failed parsing \.onnx file`)
	reNoProfile   = regexp.MustCompile(`Network has dynamic or shape inputs, but no optimization profile has been defined`)

	// Memory evidence: never a class on its own.
	reMemEvidence = []*regexp.Regexp{
		regexp.MustCompile(`Requested amount of (?:GPU )?memory \(\d+ bytes\) could not be allocated`),
		regexp.MustCompile(`(?i)Error Code 2: Out ?Of ?Memory`),
		regexp.MustCompile(`Cuda Error in [\w:]*allocate: 2\b`),
		regexp.MustCompile(`OutOfMemory Error in`),
		regexp.MustCompile(`(?i)out of memory error during getBestTactic|GPU memory allocation error during getBestTactic`),
		regexp.MustCompile(`(?i)Cuda Runtime \(out of memory\)|cudaErrorMemoryAllocation`),
		regexp.MustCompile(`(?i)user allocator error allocating \d+-byte buffer`),
		regexp.MustCompile(`(?i)Skipping tactic .* due to ins?uf+icient memory`),
		regexp.MustCompile(`Tactic Device request: \d+ ?MB Available: \d+ ?MB`),
		regexp.MustCompile(`Some tactics do not have sufficient workspace memory`),
	}

	// Fatal lines: a build that prints one did not produce an engine.
	reNoImpl    = regexp.MustCompile(`(?i)could not find any implementation for node ?([^,\n]*)`)
	reFatalOOM  = regexp.MustCompile(`std::bad_alloc|\bbad allocation\b|FAILED_ALLOCATION|Cuda failure: out of memory|initializeExecutionContext.*OutOfMemory|OutOfMemory.*initializeExecutionContext`)
	reBuildFail = regexp.MustCompile(`Engine could not be created from network|Failed to create engine from model|Engine set up failed|Unable to create engine|buildSerializedNetwork returned null|engine build failed`)

	reNoLib = regexp.MustCompile(`(lib(?:nvinfer|nvonnxparser|nvinfer_plugin|cudart|cuda|cublas|cublasLt|cudnn|myelin)\.so[.\d]*): cannot open shared object file`)
	reNoTRT = regexp.MustCompile(`TensorRT not available on this machine[^\n]*|built without TensorRT[^\n]*|CUDA not available[^\n]*`)
	// A GPU the worker may not open: on L4T /dev/nvmap and /dev/nvhost-*
	// are root:video 0660, so a user outside group video gets
	// "NvRmMemInitNvmap failed with Permission denied" and CUDA reports no
	// device (cudaErrorNoDevice, 100) or an insufficient driver (35).
	reNoDevice  = regexp.MustCompile(`(?i)no CUDA-capable device is detected|CUDA driver version is insufficient for CUDA runtime version|cudaErrorNoDevice|cudaErrorInsufficientDriver`)
	reNvmapPerm = regexp.MustCompile(`NvRmMemInitNvmap[^\n]*Permission denied|(?:/dev/nvmap|/dev/nvhost-[\w-]+)[^\n]*Permission denied`)
	reEngineBad = regexp.MustCompile(`(?i)Serialization assertion .* failed|The engine plan file is not compatible|engine plan file is generated on an incompatible device|Version tag does not match`)
	reCrash     = regexp.MustCompile(`Segmentation fault|core dumped|terminate called|Assertion .*failed\.|\bAborted\b|SIGSEGV|Illegal instruction`)
)

// GPUPermissionFix is the remedy named in the reason of a GPU the worker
// cannot open.
const GPUPermissionFix = "add the worker's user to group video (and render where it exists): sudo usermod -aG video,render trtd, then restart trtd"

// ClassifyLog classifies TensorRT (or trtexec) output by its text alone,
// from the fatal lines that end a build. ok is false when nothing in the
// text tells what went wrong (memory warnings alone do not). The reason
// quotes the evidence (node, op, the allocation that failed).
func ClassifyLog(log []byte) (protocol.Class, string, bool) {
	log = window(log)
	s := string(log)
	if c, r, ok := unavailable(s); ok {
		return c, r, true
	}
	// Parser errors come before the build starts; they are decisive even when
	// a bad_alloc follows them (the parser gave up first).
	if r, ok := parserReason(s); ok {
		return protocol.ClassUnsupportedModel, r, true
	}
	if reNoProfile.MatchString(s) {
		return protocol.ClassBadRequest, "the model has dynamic inputs and no shapes were given for them (min/opt/max)", true
	}
	ev := MemoryEvidence(log)
	if m := reFatalOOM.FindString(s); m != "" {
		return protocol.ClassOutOfMemory, "out of memory: " + clip(lineOf(s, m), 200), true
	}
	if n := reNoImpl.FindStringSubmatch(s); n != nil {
		node := clip(strings.TrimSpace(n[1]), 120)
		if ev != "" {
			return protocol.ClassNoTactic, fmt.Sprintf("no tactic fits the memory it may use: could not find any implementation for node %s after %s", node, clip(ev, 160)), true
		}
		return protocol.ClassNoImplementation, fmt.Sprintf("TensorRT has no implementation for node %s on this GPU and TensorRT version; no allocation failed, so less memory will not help (an unsupported op or type, or a missing plugin)", node), true
	}
	if m := reBuildFail.FindString(s); m != "" && ev != "" {
		return protocol.ClassOutOfMemory, fmt.Sprintf("out of memory: %s, after %s", m, clip(ev, 160)), true
	}
	if m := reEngineBad.FindString(s); m != "" {
		return protocol.ClassInvalidEngine, "the engine cannot be loaded by this TensorRT: " + m, true
	}
	if m := reCrash.FindString(s); m != "" {
		if ev != "" {
			return protocol.ClassOutOfMemory, fmt.Sprintf("out of memory: %s, then %s", clip(ev, 160), clip(lineOf(s, m), 120)), true
		}
		return protocol.ClassCrashed, "crashed: " + clip(lineOf(s, m), 200), true
	}
	return "", "", false
}

// ClassifyFailed classifies the output of a build known to have failed
// (trtexec exited non-zero, the builder returned no engine): there the
// failure itself is the fatal event, so memory evidence alone makes it out
// of memory.
func ClassifyFailed(log []byte) (protocol.Class, string, bool) {
	log = window(log)
	if c, r, ok := ClassifyLog(log); ok {
		return c, r, true
	}
	if ev := MemoryEvidence(log); ev != "" {
		return protocol.ClassOutOfMemory, "out of memory: the build failed after " + clip(ev, 200), true
	}
	return "", "", false
}

func unavailable(s string) (protocol.Class, string, bool) {
	if m := reNoLib.FindStringSubmatch(s); m != nil {
		return protocol.ClassBuilderUnavailable, "TensorRT not available on this machine: " + m[1] + " not found", true
	}
	if m := reNvmapPerm.FindString(s); m != "" {
		return protocol.ClassBuilderUnavailable, "the worker may not open the GPU (" + clip(lineOf(s, m), 120) + "): " + GPUPermissionFix, true
	}
	if m := reNoDevice.FindString(s); m != "" {
		return protocol.ClassBuilderUnavailable, "no usable GPU (" + m + "); on a Jetson this is what CUDA reports when the worker may not open /dev/nvmap and /dev/nvhost-*: " + GPUPermissionFix, true
	}
	if m := reNoTRT.FindString(s); m != "" {
		return protocol.ClassBuilderUnavailable, clip(m, 300), true
	}
	return "", "", false
}

// Window is how much of the end of a log the classifier reads: the lines
// that end a build are there, and a verbose build prints hundreds of MiB.
const Window = 512 << 10

func window(log []byte) []byte {
	if len(log) <= Window {
		return log
	}
	log = log[len(log)-Window:]
	if i := bytes.IndexByte(log, '\n'); i >= 0 {
		log = log[i+1:]
	}
	return log
}

// MemoryEvidence returns the first line of log that shows TensorRT short of
// memory (a failed allocation, a tactic skipped for memory), or "".
func MemoryEvidence(log []byte) string {
	s := string(window(log))
	if m := firstMatch(reMemEvidence, s); m != "" {
		return lineOf(s, m)
	}
	return ""
}

var reAsked = []*regexp.Regexp{
	regexp.MustCompile(`Requested amount of (?:GPU )?memory \((\d+) bytes\)`),
	regexp.MustCompile(`requested size of (\d+) detected`),
	regexp.MustCompile(`Requested size was (\d+) bytes`),
	regexp.MustCompile(`Tactic Device request: (\d+) ?MB`),
}

// WorkspaceAsked is the largest amount of device memory (bytes) the log
// shows TensorRT asking for and not getting, 0 when it names none. Some
// releases print "Skipping tactic ... requested size of N" in MiB rather
// than bytes (yolov5#12248: "requested size of 449" beside "Tactic Device
// request: 448MB"); taking the largest figure lets the MB line win there.
func WorkspaceAsked(log []byte) int64 {
	s := string(log)
	var best int64
	for i, re := range reAsked {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			n, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				continue
			}
			if i == 3 {
				n <<= 20
			}
			if n > best {
				best = n
			}
		}
	}
	return best
}

func parserReason(s string) (string, bool) {
	var parts []string
	if m := reParsingNode.FindStringSubmatch(s); m != nil {
		p := fmt.Sprintf("node %s (op %s", m[1], m[2])
		if n := reNodeName.FindStringSubmatch(s); n != nil {
			p += fmt.Sprintf(", name %q", n[1])
		} else if m[3] != "" {
			p += fmt.Sprintf(", output %q", m[3])
		}
		parts = append(parts, p+")")
	}
	if m := reNoImporter.FindStringSubmatch(s); m != nil {
		parts = append(parts, "no importer registered for op "+m[1]+" (not supported by this TensorRT's ONNX parser; a plugin is needed)")
	}
	if m := reParserNode.FindStringSubmatch(s); m != nil {
		parts = append(parts, fmt.Sprintf("%s in %s at node %s: %s", m[3], m[2], m[1], clip(strings.TrimSpace(m[4]), 160)))
	}
	if len(parts) == 0 {
		if m := reParseFailed.FindString(s); m != "" {
			return "the ONNX parser rejected the model: " + clip(m, 100), true
		}
		return "", false
	}
	return "the ONNX parser rejected the model: " + strings.Join(parts, "; "), true
}

func firstMatch(res []*regexp.Regexp, s string) string {
	best, at := "", -1
	for _, re := range res {
		if loc := re.FindStringIndex(s); loc != nil && (at < 0 || loc[0] < at) {
			best, at = s[loc[0]:loc[1]], loc[0]
		}
	}
	return best
}

// lineOf returns the whole line of s that contains sub, trimmed.
func lineOf(s, sub string) string {
	i := strings.Index(s, sub)
	if i < 0 {
		return sub
	}
	start := strings.LastIndexByte(s[:i], '\n') + 1
	end := strings.IndexByte(s[i:], '\n')
	if end < 0 {
		end = len(s) - i
	}
	return strings.TrimSpace(s[start : i+end])
}

var reMem = regexp.MustCompile(`\[MemUsage(?:Change|Stats)\]\s*(.+?):\s*CPU\s*([+-]?\d+(?:\.\d+)?)\s*(?:MiB)?,\s*GPU\s*([+-]?\d+(?:\.\d+)?)\s*(?:MiB)?(?:,\s*now:\s*CPU\s*(\d+(?:\.\d+)?),\s*GPU\s*(\d+(?:\.\d+)?)\s*\(MiB\))?`)

// ParseMemUsage parses one TensorRT memory-accounting logger line:
//
//	[MemUsageChange] Init CUDA: CPU +197, GPU +0, now: CPU 271, GPU 1891 (MiB)
//	[MemUsageStats] Peak memory usage of TRT CPU/GPU memory allocators: CPU 8 MiB, GPU 624 MiB
//
// The second form (absolute figures, no sign) fills only the "now" fields.
// Every public log of that peak line tags it [MemUsageStats]: TensorRT
// 8.2.5, 10.3.0 and 10.12 trtexec/sample logs in NVIDIA/TensorRT (see
// docs/TENSORRT.md); no release is known to tag it [MemUsageChange].
func ParseMemUsage(line string) (protocol.MemUsage, bool) {
	m := reMem.FindStringSubmatch(line)
	if m == nil {
		return protocol.MemUsage{}, false
	}
	u := protocol.MemUsage{Phase: strings.TrimSpace(m[1]), Line: strings.TrimSpace(line[strings.Index(line, "[MemUsage"):])}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	if m[4] != "" {
		u.CPUMiB, u.GPUMiB = f(m[2]), f(m[3])
		u.CPUNowMiB, u.GPUNowMiB = f(m[4]), f(m[5])
	} else if !strings.ContainsAny(m[2]+m[3], "+-") {
		u.CPUNowMiB, u.GPUNowMiB = f(m[2]), f(m[3])
	} else {
		u.CPUMiB, u.GPUMiB = f(m[2]), f(m[3])
	}
	return u, true
}
