// Package protocol defines what the daemon and the trtd-worker process say to
// each other: a JSON Request on the worker's stdin, newline-delimited JSON
// Events on its stdout (progress, TensorRT memory accounting, and one final
// Result), free-form TensorRT log text on its stderr, and an exit code that
// classifies the outcome.
//
// Enumerations cross this boundary (and, inside the worker, the cgo
// boundary) by name, never as raw integers: TensorRT renumbered its enums
// between major versions.
package protocol

import (
	"time"

	"github.com/trtd/trtd/converter/onnx"
)

// Version is the protocol version. The worker refuses requests of another
// version with ExitBadRequest.
const Version = 1

// Ops a request can ask for.
const (
	OpBuild = "build" // build an engine from Request.Model (and validate it)
	OpProbe = "probe" // report the builder identity (libraries, GPU) and exit
	// OpSplit cuts Request.Model into Request.Parts sub-models under
	// WorkDir/SegmentsDir and returns their manifest in Result.Split: the
	// graph walk of an untrusted model runs in the unprivileged worker.
	OpSplit = "split"
)

// SegmentsDir is where an op "split" writes the parts, inside WorkDir.
const SegmentsDir = "segments"

// Class is the classification of an attempt's outcome.
type Class string

// The outcome classes. The ladder moves to a cheaper stage only for the
// memory classes (see Class.MemoryBound).
const (
	ClassOK          Class = "ok"
	ClassOutOfMemory Class = "out_of_memory"
	ClassNoTactic    Class = "no_tactic_fits"
	// ClassNoImplementation: "could not find any implementation" with no
	// sign of memory trouble (an op or type this GPU/TensorRT cannot run,
	// a missing plugin). Less memory will not help, so the ladder does not
	// step down to rungs with less workspace.
	ClassNoImplementation   Class = "no_implementation"
	ClassUnsupportedModel   Class = "unsupported_model"
	ClassBuilderUnavailable Class = "builder_unavailable"
	ClassBadRequest         Class = "bad_request"
	ClassInvalidEngine      Class = "invalid_engine"
	ClassCrashed            Class = "crashed"
	ClassTimedOut           Class = "timed_out"
	ClassCanceled           Class = "canceled"
)

// MemoryBound reports whether a cheaper stage may succeed where this one
// failed.
func (c Class) MemoryBound() bool {
	return c == ClassOutOfMemory || c == ClassNoTactic
}

// Exit codes of the worker. Anything else (or a signal) is classified by the
// daemon from the captured log.
const (
	ExitOK                 = 0
	ExitOutOfMemory        = 10
	ExitNoTactic           = 11
	ExitUnsupportedModel   = 12
	ExitBuilderUnavailable = 13
	ExitBadRequest         = 14
	ExitInvalidEngine      = 15
	ExitNoImplementation   = 16
)

// ExitCodeClass maps a worker exit code to its class; ok is false for codes
// the protocol does not define.
func ExitCodeClass(code int) (c Class, ok bool) {
	switch code {
	case ExitOK:
		return ClassOK, true
	case ExitOutOfMemory:
		return ClassOutOfMemory, true
	case ExitNoTactic:
		return ClassNoTactic, true
	case ExitUnsupportedModel:
		return ClassUnsupportedModel, true
	case ExitBuilderUnavailable:
		return ClassBuilderUnavailable, true
	case ExitBadRequest:
		return ClassBadRequest, true
	case ExitInvalidEngine:
		return ClassInvalidEngine, true
	case ExitNoImplementation:
		return ClassNoImplementation, true
	}
	return "", false
}

// ExitCode is the inverse of ExitCodeClass for the classes a worker reports
// itself.
func ExitCode(c Class) int {
	switch c {
	case ClassOK:
		return ExitOK
	case ClassOutOfMemory:
		return ExitOutOfMemory
	case ClassNoTactic:
		return ExitNoTactic
	case ClassUnsupportedModel:
		return ExitUnsupportedModel
	case ClassBuilderUnavailable:
		return ExitBuilderUnavailable
	case ClassBadRequest:
		return ExitBadRequest
	case ClassInvalidEngine:
		return ExitInvalidEngine
	case ClassNoImplementation:
		return ExitNoImplementation
	}
	return 1
}

// Precision names.
const (
	PrecisionFP32 = "fp32"
	PrecisionFP16 = "fp16"
	PrecisionINT8 = "int8"
)

// Tactic source names (TensorRT's TacticSource enum, by name).
const (
	TacticCUBLAS   = "cublas"
	TacticCUBLASLt = "cublaslt"
	TacticCUDNN    = "cudnn"
	TacticEdgeMask = "edge_mask_convolutions"
	TacticJITConvs = "jit_convolutions"
)

// Settings are the builder settings of one stage, resolved (config stage +
// sidecar overrides). Zero values mean "TensorRT's default" except where
// noted.
type Settings struct {
	Precision string `json:"precision"` // fp32 | fp16 | int8 (only where the platform has it fast)
	// TF32 allows TF32 math on Ampere+; nil leaves TensorRT's default.
	TF32 *bool `json:"tf32,omitempty"`
	// WorkspaceMiB caps the builder workspace. Always set on 8.2/8.3, whose
	// default is 0.
	WorkspaceMiB int64 `json:"workspace_mib"`
	// TacticSources, when non-nil, is the exact set of enabled tactic
	// sources; nil keeps TensorRT's default set. An empty set (every
	// source off) is not the same as nil, so the field has no omitempty:
	// nil travels as null, the empty set as [].
	TacticSources []string `json:"tactic_sources"`
	// OptimizationLevel is the builder optimization level (8.6+); nil = default.
	OptimizationLevel *int `json:"optimization_level,omitempty"`
	// MaxAuxStreams (8.6+); nil = default.
	MaxAuxStreams *int `json:"max_aux_streams,omitempty"`
	// TacticDRAMMiB caps the kTACTIC_DRAM pool (8.6+); 0 = default.
	TacticDRAMMiB int64 `json:"tactic_dram_mib,omitempty"`
	// DLACore selects a DLA core; nil = GPU only.
	DLACore *int `json:"dla_core,omitempty"`
	// GPUFallback lets layers the DLA cannot run fall back to the GPU.
	GPUFallback bool `json:"gpu_fallback,omitempty"`
	// TimingCache enables loading and saving the timing cache.
	TimingCache bool `json:"timing_cache"`
}

// Shape is an optimization profile entry for one dynamic input.
type Shape struct {
	Input string  `json:"input"`
	Min   []int64 `json:"min"`
	Opt   []int64 `json:"opt"`
	Max   []int64 `json:"max"`
}

// Request is what the daemon writes to the worker's stdin.
type Request struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	// Backend is "api" (the TensorRT C++ API), "trtexec", or "auto"/"" (API
	// if compiled in and the libraries load, else trtexec if found).
	Backend string `json:"backend,omitempty"`
	// Trtexec is the trtexec binary to use; "" searches the usual places.
	Trtexec string `json:"trtexec,omitempty"`
	// WorkDir is the job's empty working directory; the worker chdirs there.
	WorkDir string `json:"work_dir,omitempty"`
	// Model is the ONNX file, relative to WorkDir (external data is only
	// read from WorkDir).
	Model string `json:"model,omitempty"`
	// Engine is the path the engine is written to (atomically: temp file in
	// the same directory, fsync, rename).
	Engine string `json:"engine,omitempty"`
	Stage  string `json:"stage,omitempty"`
	// Settings of this stage.
	Settings Settings `json:"settings"`
	// Shapes for dynamic inputs.
	Shapes []Shape `json:"shapes,omitempty"`
	// TimingCache is the timing cache file for this (TensorRT version, GPU).
	TimingCache string `json:"timing_cache,omitempty"`
	// ValidateRuns is how many timed inference runs validate the engine
	// (after warm-up); 0 = the worker's default, -1 = skip validation.
	ValidateRuns int `json:"validate_runs,omitempty"`
	// Accuracy holds sample inputs and expected outputs for the accuracy gate.
	Accuracy *Accuracy `json:"accuracy,omitempty"`
	// Calibration is an int8 calibration cache (relative to WorkDir) in the
	// format IInt8Calibrator::writeCalibrationCache writes and trtexec's
	// --calib= reads; "" = none. Without it, and without Q/DQ nodes in the
	// model, a stage's int8 is refused and built fp16.
	Calibration string `json:"calibration,omitempty"`
	// CalibrationData names ONNX TensorProto (.pb) files of int8
	// calibration batches uploaded as name.calib/input_*.pb (the layout of
	// name.test/), relative to WorkDir. The API worker feeds them to an
	// IInt8EntropyCalibrator2 and writes the cache TensorRT produces to
	// Calibration (when set), for trtexec --calib= and later builds.
	CalibrationData []string `json:"calibration_data,omitempty"`
	// Parts is the number of sub-models an op "split" cuts the model into.
	Parts int `json:"parts,omitempty"`
}

// Accuracy names ONNX TensorProto (.pb) files of sample inputs and expected
// outputs, relative to WorkDir, and the tolerances.
type Accuracy struct {
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
	ATol    float64  `json:"atol"`
	RTol    float64  `json:"rtol"`
}

// Event kinds on the worker's stdout.
const (
	EventProgress = "progress"
	EventMemUsage = "mem_usage"
	EventLog      = "log"
	EventResult   = "result"
)

// Event is one line of the worker's stdout.
type Event struct {
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	// Progress: phase name and step/steps (TensorRT 10's IProgressMonitor).
	Phase string `json:"phase,omitempty"`
	Step  int    `json:"step,omitempty"`
	Steps int    `json:"steps,omitempty"`
	// MemUsage: a parsed [MemUsageChange] line.
	Mem *MemUsage `json:"mem,omitempty"`
	// Log: a TensorRT logger line with its severity.
	Severity string `json:"severity,omitempty"`
	Message  string `json:"message,omitempty"`
	// Result: the final outcome.
	Result *Result `json:"result,omitempty"`
}

// MemUsage is TensorRT's own memory accounting of one phase, from a
// "[MemUsageChange]" log line.
type MemUsage struct {
	Phase     string  `json:"phase"`
	CPUMiB    float64 `json:"cpu_mib"`
	GPUMiB    float64 `json:"gpu_mib"`
	CPUNowMiB float64 `json:"cpu_now_mib,omitempty"`
	GPUNowMiB float64 `json:"gpu_now_mib,omitempty"`
	Line      string  `json:"line"`
}

// Builder identifies what builds engines: libraries found and the GPU. It is
// part of the cache key: an engine is tied to the exact TensorRT version and
// GPU.
type Builder struct {
	Backend           string            `json:"backend"` // api | trtexec | fake
	TensorRT          string            `json:"tensorrt,omitempty"`
	CompiledTensorRT  string            `json:"compiled_tensorrt,omitempty"`
	CUDARuntime       string            `json:"cuda_runtime,omitempty"`
	CUDADriver        string            `json:"cuda_driver,omitempty"`
	GPU               string            `json:"gpu,omitempty"`
	ComputeCapability string            `json:"compute_capability,omitempty"`
	GPUMemTotal       int64             `json:"gpu_mem_total,omitempty"`
	GPUMemFree        int64             `json:"gpu_mem_free,omitempty"`
	Libraries         map[string]string `json:"libraries,omitempty"` // soname -> resolved path
	PlatformFP16      bool              `json:"platform_fp16,omitempty"`
	PlatformINT8      bool              `json:"platform_int8,omitempty"`
	DLACores          int               `json:"dla_cores,omitempty"`
	Trtexec           string            `json:"trtexec,omitempty"`
	// Worker is the worker binary that ran and WorkerReason why the daemon
	// chose it (set by the supervisor, not the worker).
	Worker       string `json:"worker,omitempty"`
	WorkerReason string `json:"worker_reason,omitempty"`
}

// Fingerprint is the part of Builder that an engine is tied to.
func (b Builder) Fingerprint() string {
	return b.TensorRT + "/" + b.ComputeCapability + "/" + b.GPU
}

// Validation is what running the engine once built showed.
type Validation struct {
	Runs  int     `json:"runs"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// LatencyIncludesTransfers: the figures include the host-to-device and
	// device-to-host copies of every inference. trtexec's "Latency" is
	// "the summation of H2D Latency, GPU Compute Time, and D2H Latency"
	// (samples/common/sampleReporting.cpp 8.0 :143, 8.6 :168, 10.0 :198);
	// the API backend times the engine alone.
	LatencyIncludesTransfers bool           `json:"latency_includes_transfers,omitempty"`
	DeviceMemUsed            int64          `json:"device_mem_used"`
	Outputs                  []TensorInfo   `json:"outputs,omitempty"`
	Accuracy                 []AccuracyStat `json:"accuracy,omitempty"`
	AccuracyOK               *bool          `json:"accuracy_ok,omitempty"`
}

// TensorInfo names a tensor with its shape and type.
type TensorInfo struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// AccuracyStat is the error of one output against its expected values.
type AccuracyStat struct {
	Output    string  `json:"output"`
	MaxAbsErr float64 `json:"max_abs_err"`
	MaxRelErr float64 `json:"max_rel_err"`
	OK        bool    `json:"ok"`
}

// Result is the worker's final word.
type Result struct {
	Class   Class   `json:"class"`
	Message string  `json:"message,omitempty"`
	Builder Builder `json:"builder"`
	// Engine is the path written, with its size and sha256.
	Engine       string      `json:"engine,omitempty"`
	EngineBytes  int64       `json:"engine_bytes,omitempty"`
	EngineSHA256 string      `json:"engine_sha256,omitempty"`
	BuildMs      int64       `json:"build_ms,omitempty"`
	MemUsage     []MemUsage  `json:"mem_usage,omitempty"`
	Validation   *Validation `json:"validation,omitempty"`
	// Calls lists the builder API calls the settings turned into, by name,
	// for the report ("setMemoryPoolLimit(kWORKSPACE, 268435456)").
	Calls []string `json:"calls,omitempty"`
	// Skipped lists settings that do not exist on this TensorRT version.
	Skipped []string `json:"skipped,omitempty"`
	// Worker is what the worker process itself held when TensorRT started
	// (the build call, or trtexec's start).
	Worker *WorkerMemory `json:"worker,omitempty"`
	// Split is the manifest of an op "split" (part files relative to
	// WorkDir/SegmentsDir).
	Split *onnx.Manifest `json:"split,omitempty"`
	// Int8 says where an int8 stage's scales came from, as the backend
	// decided it; "" when the build set no int8.
	Int8 Int8Source `json:"int8,omitempty"`
}

// Int8Source is where an int8 build's scales come from.
type Int8Source string

// The backends' int8 decisions (Result.Int8).
const (
	Int8Calibrated Int8Source = "calibrated" // a calibrator fed the uploaded calibration data
	Int8FromCache  Int8Source = "cache"      // a calibration cache of an earlier build
	Int8QDQ        Int8Source = "qdq"        // the model's QuantizeLinear/DequantizeLinear nodes
	Int8Refused    Int8Source = "refused"    // no valid scales: built fp16, the reason in Skipped
)

// WorkerMemory is the worker's own footprint at the moment TensorRT started.
type WorkerMemory struct {
	At          string `json:"at"`           // "buildSerializedNetwork" or "trtexec start"
	RSSBytes    int64  `json:"rss_bytes"`    // the worker's resident set
	CUDAContext bool   `json:"cuda_context"` // GPU device files open: the CUDA runtime was initialised
}
