// Package trtexec builds engines by running NVIDIA's trtexec (shipped with
// every JetPack at /usr/src/tensorrt/bin/trtexec) with the same stage
// settings as the API backend, mapped to the flags of the trtexec version
// found. Its output is classified by converter/classify. It is pure Go, so
// it works in a worker built without TensorRT headers.
package trtexec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

// ErrUnsupportedSetting: the stage asks for something this trtexec cannot do.
var ErrUnsupportedSetting = errors.New("setting not supported by this TensorRT")

// ErrBadSetting: the value itself is invalid.
var ErrBadSetting = errors.New("invalid setting")

// Validation defaults (the same as the API backend's).
const (
	DefaultValidateRuns = 20
	WarmUpMs            = 200
)

var reVersion = regexp.MustCompile(`TensorRT\.trtexec \[TensorRT v(\d+)\]`)

// ParseVersion reads the banner trtexec prints first:
// "&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # trtexec ...".
func ParseVersion(out []byte) (version.Version, bool) {
	m := reVersion.FindSubmatch(out)
	if m == nil {
		return version.Version{}, false
	}
	n, _ := strconv.Atoi(string(m[1]))
	v, err := version.FromInt(n)
	return v, err == nil
}

var tacticFlag = map[string]string{
	protocol.TacticCUBLAS:   "CUBLAS",
	protocol.TacticCUBLASLt: "CUBLAS_LT",
	protocol.TacticCUDNN:    "CUDNN",
	protocol.TacticEdgeMask: "EDGE_MASK_CONVOLUTIONS",
	protocol.TacticJITConvs: "JIT_CONVOLUTIONS",
}

var tacticOrder = []string{protocol.TacticCUBLAS, protocol.TacticCUBLASLt, protocol.TacticCUDNN, protocol.TacticEdgeMask, protocol.TacticJITConvs}

// shapeName quotes an input name for --minShapes & co. when it contains
// the spec's separators (trtexec accepts 'name':dims).
func shapeName(n string) string {
	if strings.ContainsAny(n, ":,") {
		return "'" + n + "'"
	}
	return n
}

func dims(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, "x")
}

// Args maps a request to trtexec flags for trtexec version v. engine is
// where trtexec writes the engine (a temporary file the caller renames);
// cache is the timing cache file to pass ("" = none).
func Args(req protocol.Request, v version.Version, engine, cache string) (args, skipped []string, err error) {
	s := req.Settings
	skip := func(format string, a ...any) { skipped = append(skipped, fmt.Sprintf(format, a...)) }
	args = append(args, "--onnx="+req.Model, "--saveEngine="+engine)

	switch s.Precision {
	case "", protocol.PrecisionFP32:
	case protocol.PrecisionFP16, protocol.PrecisionINT8:
		if v.Major >= 11 {
			return nil, nil, fmt.Errorf("%w: precision %s: TensorRT %s has no --fp16/--int8 (networks are strongly typed); convert the ONNX model to %s first or use precision fp32 for this stage",
				ErrUnsupportedSetting, s.Precision, v.Short(), s.Precision)
		}
		if s.Precision == protocol.PrecisionINT8 {
			args = append(args, "--int8")
		}
		args = append(args, "--fp16")
	default:
		return nil, nil, fmt.Errorf("%w: precision %q (want fp32, fp16 or int8)", ErrBadSetting, s.Precision)
	}
	if s.TF32 != nil && !*s.TF32 {
		args = append(args, "--noTF32")
	}

	if s.WorkspaceMiB < 0 || s.TacticDRAMMiB < 0 {
		return nil, nil, fmt.Errorf("%w: negative memory limit", ErrBadSetting)
	}
	switch {
	case !v.AtLeast(8, 4):
		ws := s.WorkspaceMiB
		if ws == 0 {
			ws = version.DefaultWorkspaceMiB
			skip("workspace: none given; trtexec %s defaults to 16 MiB, so %d MiB is set", v.Short(), ws)
		}
		args = append(args, fmt.Sprintf("--workspace=%d", ws))
	case s.WorkspaceMiB > 0:
		args = append(args, fmt.Sprintf("--memPoolSize=workspace:%d", s.WorkspaceMiB))
	}
	if s.TacticDRAMMiB > 0 {
		skip("tactic_dram_mib: trtexec has no flag for kTACTIC_DRAM")
	}

	if s.TacticSources != nil {
		want := map[string]bool{}
		for _, n := range s.TacticSources {
			if _, ok := tacticFlag[n]; !ok {
				return nil, nil, fmt.Errorf("%w: tactic source %q", ErrBadSetting, n)
			}
			want[n] = true
		}
		var spec []string
		for _, n := range tacticOrder {
			ok, why, _ := version.TacticSourceAvailable(n, v)
			switch {
			case ok && want[n]:
				spec = append(spec, "+"+tacticFlag[n])
			case ok:
				spec = append(spec, "-"+tacticFlag[n])
			case want[n]:
				skip("tactic source %s: %s", n, why)
			}
		}
		if len(spec) > 0 {
			args = append(args, "--tacticSources="+strings.Join(spec, ","))
		}
	}

	if s.OptimizationLevel != nil {
		if n := *s.OptimizationLevel; n < 0 || n > 5 {
			return nil, nil, fmt.Errorf("%w: optimization_level %d (want 0-5)", ErrBadSetting, n)
		}
		if v.AtLeast(8, 6) {
			args = append(args, fmt.Sprintf("--builderOptimizationLevel=%d", *s.OptimizationLevel))
		} else {
			skip("optimization_level: exists from TensorRT 8.6")
		}
	}
	if s.MaxAuxStreams != nil {
		if v.AtLeast(8, 6) {
			args = append(args, fmt.Sprintf("--maxAuxStreams=%d", *s.MaxAuxStreams))
		} else {
			skip("max_aux_streams: exists from TensorRT 8.6")
		}
	}
	if s.DLACore != nil {
		if s.Precision != protocol.PrecisionFP16 && s.Precision != protocol.PrecisionINT8 {
			skip("dla_core %d: the DLA runs only FP16 or INT8 layers; building for the GPU", *s.DLACore)
		} else {
			args = append(args, fmt.Sprintf("--useDLACore=%d", *s.DLACore))
			if s.GPUFallback {
				args = append(args, "--allowGPUFallback")
			}
		}
	}

	if len(req.Shapes) > 0 {
		var mn, op, mx []string
		for _, sh := range req.Shapes {
			n := shapeName(sh.Input)
			mn = append(mn, n+":"+dims(sh.Min))
			op = append(op, n+":"+dims(sh.Opt))
			mx = append(mx, n+":"+dims(sh.Max))
		}
		args = append(args, "--minShapes="+strings.Join(mn, ","), "--optShapes="+strings.Join(op, ","), "--maxShapes="+strings.Join(mx, ","))
	}
	if cache != "" {
		args = append(args, "--timingCacheFile="+cache)
	}

	switch runs := req.ValidateRuns; {
	case runs < 0 && v.AtLeast(8, 6):
		args = append(args, "--skipInference")
	case runs < 0:
		args = append(args, "--buildOnly")
	default:
		if runs == 0 {
			runs = DefaultValidateRuns
		}
		args = append(args, fmt.Sprintf("--iterations=%d", runs), fmt.Sprintf("--warmUp=%d", WarmUpMs), "--duration=0")
	}
	return args, skipped, nil
}

var (
	reLatency = regexp.MustCompile(`\bLatency: min = [\d.]+ ms, max = [\d.]+ ms, mean = [\d.]+ ms, median = ([\d.]+) ms(.*)`)
	reP99     = regexp.MustCompile(`percentile\(99%\) = ([\d.]+) ms`)
	reOutput  = regexp.MustCompile(`Created output binding for (\S+) with dimensions (\S+)`)
	reDevice  = regexp.MustCompile(`(?m)Selected Device: (.+)$`)
	reCC      = regexp.MustCompile(`(?m)Compute Capability: (\d+\.\d+)`)
	reGlobal  = regexp.MustCompile(`(?m)Device Global Memory: (\d+) MiB`)
)

// Perf is what trtexec's performance summary says.
type Perf struct {
	P50Ms, P99Ms float64
	Outputs      []protocol.TensorInfo
}

// ParsePerf reads the "Latency:" line of trtexec's performance summary
// (format of samples/common/sampleReporting.cpp: 8.x prints one
// percentile, 8.6+ several) and the output bindings it created.
func ParsePerf(out []byte) (Perf, bool) {
	var p Perf
	m := reLatency.FindSubmatch(out)
	if m == nil {
		return p, false
	}
	p.P50Ms, _ = strconv.ParseFloat(string(m[1]), 64)
	if q := reP99.FindSubmatch(m[2]); q != nil {
		p.P99Ms, _ = strconv.ParseFloat(string(q[1]), 64)
	}
	for _, o := range reOutput.FindAllSubmatch(out, -1) {
		ti := protocol.TensorInfo{Name: string(o[1])}
		for _, d := range strings.Split(string(o[2]), "x") {
			n, _ := strconv.ParseInt(d, 10, 64)
			ti.Shape = append(ti.Shape, n)
		}
		p.Outputs = append(p.Outputs, ti)
	}
	return p, true
}

// parseDevice fills the GPU fields trtexec prints in "=== Device Information ===".
func parseDevice(out []byte, b *protocol.Builder) {
	if m := reDevice.FindSubmatch(out); m != nil {
		b.GPU = strings.TrimSpace(string(m[1]))
	}
	if m := reCC.FindSubmatch(out); m != nil {
		b.ComputeCapability = string(m[1])
	}
	if m := reGlobal.FindSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		b.GPUMemTotal = n << 20
	}
}
