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

// shapeSpec checks that an input name survives trtexec's shape parser.
// Every release splits --minShapes/--optShapes/--maxShapes on ',' before
// anything else (getShapesBuild: splitToStringVec(list, ',')), so a name
// with a ',' cannot be passed at all. A name with ':' needs nothing: the
// name is everything before the last ':' (splitNameAndValue). From 8.4 the
// parser also splits on '\” (quoted names), so a name holding one cannot
// be passed there; 8.0 and 8.2 take the quote literally.
func shapeSpec(n string, v version.Version) error {
	if strings.Contains(n, ",") {
		return fmt.Errorf("%w: input name %q contains ',', which trtexec splits shape lists on (samples/common/sampleOptions.cpp getShapesBuild, every release); use backend = \"api\" for this model or rename the input",
			ErrUnsupportedSetting, n)
	}
	if strings.Contains(n, "'") && v.AtLeast(8, 4) {
		return fmt.Errorf("%w: input name %q contains a quote, which trtexec %s reads as quoting (samples/common/sampleOptions.cpp splitNameAndValue); use backend = \"api\" for this model or rename the input",
			ErrUnsupportedSetting, n, v.Short())
	}
	return nil
}

func dims(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, "x")
}

// Model is what Args needs to know about the model itself.
type Model struct {
	// QDQ: the model has QuantizeLinear/DequantizeLinear nodes (explicit
	// quantization), so TensorRT takes int8 scales from them.
	QDQ bool
}

// Args maps a request to trtexec flags for trtexec version v. engine is
// where trtexec writes the engine (a temporary file the caller renames);
// cache is the timing cache file to pass ("" = none). Every flag it returns
// is one v's option parser accepts (flags.go), in the spelling it accepts.
func Args(req protocol.Request, v version.Version, engine, cache string, m Model) (Command, error) {
	if _, ok := parserRelease(v); !ok {
		return Command{}, fmt.Errorf("%w: trtexec of TensorRT %s; trtd drives trtexec 8.0 to 8.6, 10.x and 11.x", ErrUnsupportedSetting, v)
	}
	var args, skipped []string
	s := req.Settings
	skip := func(format string, a ...any) { skipped = append(skipped, fmt.Sprintf(format, a...)) }
	args = append(args, "--onnx="+req.Model, "--saveEngine="+engine)

	p, perr := precisionArgs(req, v, m)
	if perr != nil {
		return Command{}, perr
	}
	args = append(args, p.args...)
	skipped = append(skipped, p.skipped...)
	if s.TF32 != nil && !*s.TF32 {
		args = append(args, "--noTF32")
	}

	if s.WorkspaceMiB < 0 || s.TacticDRAMMiB < 0 {
		return Command{}, fmt.Errorf("%w: negative memory limit", ErrBadSetting)
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

	t, terr := tacticArgs(s.TacticSources, v)
	if terr != nil {
		return Command{}, terr
	}
	args = append(args, t.args...)
	skipped = append(skipped, t.skipped...)

	b, berr := builderArgs(s, v)
	if berr != nil {
		return Command{}, berr
	}
	args = append(args, b.args...)
	skipped = append(skipped, b.skipped...)
	sh, serr := shapeArgs(req.Shapes, v)
	if serr != nil {
		return Command{}, serr
	}
	args = append(args, sh...)
	if cache != "" {
		args = append(args, "--timingCacheFile="+cache)
	}
	args = append(args, validationArgs(req.ValidateRuns, v)...)
	if err := checkArgs(v, args); err != nil {
		return Command{}, err
	}
	return Command{Args: args, Skipped: skipped, Int8: p.int8}, nil
}

type argsOut struct {
	args, skipped []string
	int8          protocol.Int8Source
}

// Command is a build's trtexec command line.
type Command struct {
	Args    []string
	Skipped []string            // settings v cannot express, with the reason
	Int8    protocol.Int8Source // where int8 scales come from; "" without int8
}

// builderArgs maps the optimization level, aux streams and DLA settings.
func builderArgs(s protocol.Settings, v version.Version) (argsOut, error) {
	var o argsOut
	skip := func(format string, a ...any) { o.skipped = append(o.skipped, fmt.Sprintf(format, a...)) }
	if s.OptimizationLevel != nil {
		if n := *s.OptimizationLevel; n < 0 || n > 5 {
			return o, fmt.Errorf("%w: optimization_level %d (want 0-5)", ErrBadSetting, n)
		}
		if v.AtLeast(8, 6) {
			o.args = append(o.args, fmt.Sprintf("--builderOptimizationLevel=%d", *s.OptimizationLevel))
		} else {
			skip("optimization_level: exists from TensorRT 8.6")
		}
	}
	if s.MaxAuxStreams != nil {
		if v.AtLeast(8, 6) {
			o.args = append(o.args, fmt.Sprintf("--maxAuxStreams=%d", *s.MaxAuxStreams))
		} else {
			skip("max_aux_streams: exists from TensorRT 8.6")
		}
	}
	if s.DLACore != nil {
		if s.Precision != protocol.PrecisionFP16 && s.Precision != protocol.PrecisionINT8 {
			skip("dla_core %d: the DLA runs only FP16 or INT8 layers; building for the GPU", *s.DLACore)
		} else {
			o.args = append(o.args, fmt.Sprintf("--useDLACore=%d", *s.DLACore))
			if s.GPUFallback {
				o.args = append(o.args, "--allowGPUFallback")
			}
		}
	}
	return o, nil
}

// shapeArgs maps the optimization profile.
func shapeArgs(shapes []protocol.Shape, v version.Version) ([]string, error) {
	if len(shapes) == 0 {
		return nil, nil
	}
	var mn, op, mx []string
	for _, sh := range shapes {
		if err := shapeSpec(sh.Input, v); err != nil {
			return nil, err
		}
		mn = append(mn, sh.Input+":"+dims(sh.Min))
		op = append(op, sh.Input+":"+dims(sh.Opt))
		mx = append(mx, sh.Input+":"+dims(sh.Max))
	}
	return []string{"--minShapes=" + strings.Join(mn, ","), "--optShapes=" + strings.Join(op, ","), "--maxShapes=" + strings.Join(mx, ",")}, nil
}

// validationArgs: timed runs, or none (--buildOnly before 8.6,
// --skipInference from 8.6).
func validationArgs(runs int, v version.Version) []string {
	switch {
	case runs < 0 && v.AtLeast(8, 6):
		return []string{"--skipInference"}
	case runs < 0:
		return []string{"--buildOnly"}
	case runs == 0:
		runs = DefaultValidateRuns
	}
	return []string{fmt.Sprintf("--iterations=%d", runs), fmt.Sprintf("--warmUp=%d", WarmUpMs), "--duration=0"}
}

// ErrInt8Refused is the reason in the report when a stage asked for int8
// and trtd built without it.
var ErrInt8Refused = errors.New("int8 refused")

// precisionArgs maps the stage's precision. int8 is passed only where
// TensorRT gets real scales: from the model's Q/DQ nodes, or from a
// calibration cache (--calib). Without either, trtexec --int8 sets dummy
// dynamic ranges of ±2 (inputs) and ±4 (outputs) on every tensor
// (samples/common/sampleEngines.cpp setTensorDynamicRange, called when
// !hasQDQLayers(network) && build.int8 && build.calibration.empty():
// 8.0 :312,:679; 8.2 :316,:707; 8.6 :459,:1009; 10.0 :386,:1017; 10.8
// :362,:995) and the engine computes garbage; trtd builds fp16 instead.
func precisionArgs(req protocol.Request, v version.Version, m Model) (argsOut, error) {
	var o argsOut
	s := req.Settings
	switch s.Precision {
	case "", protocol.PrecisionFP32:
		return o, nil
	case protocol.PrecisionFP16, protocol.PrecisionINT8:
	default:
		return o, fmt.Errorf("%w: precision %q (want fp32, fp16 or int8)", ErrBadSetting, s.Precision)
	}
	if v.Major >= 11 {
		// Strongly typed networks: 11.x's parser has no --fp16/--int8
		// (flags.go); the model's own types decide, and Q/DQ nodes set
		// the int8 layers.
		o.skipped = append(o.skipped, fmt.Sprintf("precision %s: TensorRT %s networks are strongly typed (trtexec has no --fp16/--int8); built with the model's own types", s.Precision, v.Short()))
		if s.Precision == protocol.PrecisionINT8 && m.QDQ {
			o.int8 = protocol.Int8QDQ
		}
		return o, nil
	}
	if s.Precision == protocol.PrecisionINT8 {
		switch {
		case req.Accuracy != nil:
			// Samples exist, and trtexec cannot run the accuracy gate on
			// them: an int8 engine is never published ungated.
			o.skipped = append(o.skipped, fmt.Sprintf("precision int8: %v: accuracy samples were uploaded and the trtexec backend cannot check an int8 engine against them (the accuracy gate needs the API backend); built fp16 instead", ErrInt8Refused))
			o.int8 = protocol.Int8Refused
		case m.QDQ:
			o.args = append(o.args, "--int8")
			o.int8 = protocol.Int8QDQ
		case req.Calibration != "":
			o.args = append(o.args, "--int8", "--calib="+req.Calibration)
			o.int8 = protocol.Int8FromCache
		default:
			o.skipped = append(o.skipped, fmt.Sprintf("precision int8: %v: the model has no QuantizeLinear/DequantizeLinear nodes and no calibration data was uploaded (name.calib/input_*.pb), and trtexec --int8 without --calib would use dummy ±2/±4 ranges; built fp16 instead", ErrInt8Refused))
			o.int8 = protocol.Int8Refused
		}
	}
	o.args = append(o.args, "--fp16")
	return o, nil
}

// tacticArgs maps the stage's tactic sources. nil keeps TensorRT's
// default set (no flag). A non-nil set is the exact set enabled: every
// source the release's --tacticSources knows is named, '+' or '-', so an
// empty set turns every one off, explicitly. That matters most where the
// default is on: cuBLAS, cuBLASLt and cuDNN on 8.x (NvInfer.h
// setTacticSources, 8.0 :7698, 8.2 :8348; NvInferRuntime.h 8.6 :1478-1486)
// and cuBLASLt on 10.0 ("Enabled by default", NvInferRuntime.h 10.0 :2266;
// 10.1 turned it off).
func tacticArgs(want []string, v version.Version) (argsOut, error) {
	var o argsOut
	if want == nil {
		return o, nil
	}
	set := map[string]bool{}
	for _, n := range want {
		if _, _, known := version.TacticSourceAvailable(n, v); !known {
			return o, fmt.Errorf("%w: tactic source %q", ErrBadSetting, n)
		}
		set[n] = true
	}
	var spec []string
	for _, t := range tacticTokens {
		token, accepted := acceptsTactic(v, t.source)
		switch {
		case !accepted && set[t.source]:
			o.skipped = append(o.skipped, fmt.Sprintf("tactic source %s: trtexec %s has no such tactic source", t.source, v.Short()))
		case !accepted:
		case set[t.source] && deprecatedSource(t.source, v):
			spec = append(spec, "-"+token)
			o.skipped = append(o.skipped, fmt.Sprintf("tactic source %s: deprecated since TensorRT 10.0; turned off", t.source))
		case set[t.source]:
			spec = append(spec, "+"+token)
		default:
			spec = append(spec, "-"+token)
		}
	}
	if len(spec) > 0 {
		o.args = append(o.args, "--tacticSources="+strings.Join(spec, ","))
	}
	return o, nil
}

// deprecatedSource: cuBLAS, cuBLASLt and cuDNN are deprecated from 10.0
// (NvInferRuntime.h 10.0 :2261-2273); trtd does not turn them on there.
func deprecatedSource(source string, v version.Version) bool {
	return v.Major >= 10 && (source == protocol.TacticCUBLAS || source == protocol.TacticCUBLASLt || source == protocol.TacticCUDNN)
}

var (
	reLatency = regexp.MustCompile(`\bLatency: min = [\d.]+ ms, max = [\d.]+ ms, mean = [\d.]+ ms, median = ([\d.]+) ms(.*)`)
	reP99     = regexp.MustCompile(`percentile\(99%\) = ([\d.]+) ms`)
	// 8.0-8.5: "Created output binding for NAME with dimensions D"
	// (sampleInference.cpp 8.0 :158, 8.2 :109, 8.5 :108); 8.6+: "Output
	// binding for NAME with dimensions D is created." (8.6 :121, 10.0
	// :124, 10.8 :127, 11.1 :288).
	reOutput = regexp.MustCompile(`(?:Created output|Output) binding for (\S+) with dimensions (\S+)`)
	reDevice = regexp.MustCompile(`(?m)Selected Device: (.+)$`)
	reCC     = regexp.MustCompile(`(?m)Compute Capability: (\d+\.\d+)`)
	reGlobal = regexp.MustCompile(`(?m)Device Global Memory: (\d+) MiB`)
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
