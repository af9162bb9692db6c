package trt

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
)

// DefaultWorkspaceMiB is the workspace set on TensorRT 8.2/8.3 when the
// stage names none (see version.DefaultWorkspaceMiB).
const DefaultWorkspaceMiB = version.DefaultWorkspaceMiB

// Errors of the settings mapping; the worker reports them as bad_request.
var (
	// ErrUnsupportedSetting: the stage asks for something this TensorRT
	// cannot do (FP16 as a builder flag on 11.x).
	ErrUnsupportedSetting = errors.New("setting not supported by this TensorRT")
	// ErrBadSetting: the value itself is invalid.
	ErrBadSetting = errors.New("invalid setting")
	// ErrBadShapes: shapes missing, unknown or inconsistent for the model's inputs.
	ErrBadShapes = errors.New("bad input shapes")
)

// Call is one TensorRT API call, with enumerations by name.
type Call struct {
	Fn    string // IBuilderConfig (or IBuilder) method
	Arg   string // enumeration name(s), "|"-joined for bit sets; "" if none
	Value int64  // numeric argument, when the method takes one
	// HasValue tells whether Value is an argument.
	HasValue bool
}

func (c Call) String() string {
	var args []string
	if c.Arg != "" || c.Fn == "setTacticSources" || c.Fn == "createNetworkV2" {
		a := c.Arg
		if a == "" {
			a = "0"
		}
		args = append(args, a)
	}
	if c.HasValue {
		args = append(args, strconv.FormatInt(c.Value, 10))
	}
	return c.Fn + "(" + strings.Join(args, ", ") + ")"
}

// Platform is what the builder says about the device
// (platformHasFastFp16 / platformHasFastInt8 / getNbDLACores).
type Platform struct {
	FastFP16 bool
	FastINT8 bool
	DLACores int
}

// Plan is the list of calls one stage turns into on one TensorRT version.
type Plan struct {
	Network Call   // createNetworkV2(...)
	Calls   []Call // IBuilderConfig calls, in order
	Skipped []string
	// Calibrate: int8 scales come from an IInt8EntropyCalibrator2 fed the
	// uploaded calibration data (setInt8Calibrator).
	Calibrate bool
	// Int8 is where the scales come from when kINT8 is set or refused:
	// the model's Q/DQ nodes, or refused; a calibrator's source (data or
	// cache) is known only when it is attached (calibrator).
	Int8 protocol.Int8Source
}

// DLACore is the DLA core the plan builds for, -1 for the GPU.
func (p Plan) DLACore() int {
	for _, c := range p.Calls {
		if c.Fn == "setDLACore" {
			return int(c.Value)
		}
	}
	return -1
}

// Strings renders the network and config calls for reports.
func (p Plan) Strings() []string {
	out := []string{p.Network.String()}
	for _, c := range p.Calls {
		out = append(out, c.String())
	}
	return out
}

const mib = 1 << 20

// tacticEnums maps protocol tactic names to TensorRT enumerator names.
var tacticEnums = map[string]string{
	protocol.TacticCUBLAS:   "kCUBLAS",
	protocol.TacticCUBLASLt: "kCUBLAS_LT",
	protocol.TacticCUDNN:    "kCUDNN",
	protocol.TacticEdgeMask: "kEDGE_MASK_CONVOLUTIONS",
	protocol.TacticJITConvs: "kJIT_CONVOLUTIONS",
}

// planPrecision adds the builder flags of fp16 or int8. On 11.x networks
// are strongly typed: the model's own types, said in Skipped, never an
// error, so that no stage of the ladder fails on its precision alone. int8
// needs scales: from Q/DQ nodes, or from a calibrator fed uploaded data;
// without either it is refused and the stage builds fp16.
func planPrecision(pl *Plan, precision string, v version.Version, p Platform, q Quant) {
	call, skip := pl.call, pl.skip
	if v.Major >= 11 {
		skip("%s", typedNote(precision, v.Short()))
		if precision == protocol.PrecisionINT8 && q.QDQ {
			pl.Int8 = protocol.Int8QDQ // the nodes set the int8 layers
		}
		return
	}
	if precision == protocol.PrecisionINT8 && !q.QDQ && !q.Calibration {
		skip("%s", Int8Refused)
		pl.Int8 = protocol.Int8Refused
		precision = protocol.PrecisionFP16
	}
	if precision == protocol.PrecisionINT8 {
		if p.FastINT8 {
			call("setFlag", "kINT8")
			pl.Calibrate = q.Calibration && !q.QDQ
			if !pl.Calibrate {
				pl.Int8 = protocol.Int8QDQ
			}
		} else {
			skip("precision int8: the platform has no fast INT8 (platformHasFastInt8() is false)")
			pl.Int8 = protocol.Int8Refused
		}
	}
	if p.FastFP16 {
		call("setFlag", "kFP16")
	} else {
		skip("precision fp16: the platform has no fast FP16 (platformHasFastFp16() is false); FP32 kernels are used")
	}
}

func (pl *Plan) call(fn, arg string) { pl.Calls = append(pl.Calls, Call{Fn: fn, Arg: arg}) }

func (pl *Plan) callV(fn, arg string, n int64) {
	pl.Calls = append(pl.Calls, Call{Fn: fn, Arg: arg, Value: n, HasValue: true})
}

func (pl *Plan) skip(format string, args ...any) {
	pl.Skipped = append(pl.Skipped, fmt.Sprintf(format, args...))
}

// PlanBuild maps one stage's settings to TensorRT builder calls for
// TensorRT v (the version of the headers the calls are compiled against)
// on platform p.
func PlanBuild(s protocol.Settings, v version.Version, p Platform, q Quant) (Plan, error) {
	var pl Plan
	if v.Major >= 10 {
		pl.Network = Call{Fn: "createNetworkV2"} // explicit batch is implied; the flag is deprecated
	} else {
		pl.Network = Call{Fn: "createNetworkV2", Arg: "kEXPLICIT_BATCH"}
	}

	switch s.Precision {
	case "", protocol.PrecisionFP32:
	case protocol.PrecisionFP16, protocol.PrecisionINT8:
		planPrecision(&pl, s.Precision, v, p, q)
	default:
		return Plan{}, fmt.Errorf("%w: precision %q (want fp32, fp16 or int8)", ErrBadSetting, s.Precision)
	}

	if s.TF32 != nil {
		if *s.TF32 {
			pl.call("setFlag", "kTF32")
		} else {
			pl.call("clearFlag", "kTF32")
		}
	}
	// Each step's error is checked in this order, and a failed step leaves
	// no plan.
	for _, step := range []func(*Plan, protocol.Settings, version.Version, Platform) error{
		planMemory, planTactics, planScheduling, planDLA,
	} {
		if err := step(&pl, s, v, p); err != nil {
			return Plan{}, err
		}
	}
	return pl, nil
}

// planMemory adds the workspace and tactic DRAM limits. Before TensorRT 8.4
// (setMaxWorkspaceSize) the workspace is always set: its default there is 0.
func planMemory(pl *Plan, s protocol.Settings, v version.Version, _ Platform) error {
	if s.WorkspaceMiB < 0 || s.TacticDRAMMiB < 0 {
		return fmt.Errorf("%w: negative memory limit (workspace %d MiB, tactic DRAM %d MiB)", ErrBadSetting, s.WorkspaceMiB, s.TacticDRAMMiB)
	}
	switch {
	case !v.AtLeast(8, 4):
		ws := s.WorkspaceMiB
		if ws == 0 {
			ws = DefaultWorkspaceMiB
			pl.skip("workspace: none given; TensorRT %s defaults to 0, so %d MiB is set", v.Short(), ws)
		}
		pl.callV("setMaxWorkspaceSize", "", ws*mib)
	case s.WorkspaceMiB > 0:
		pl.callV("setMemoryPoolLimit", "kWORKSPACE", s.WorkspaceMiB*mib)
	}
	if s.TacticDRAMMiB > 0 {
		if v.AtLeast(8, 6) {
			pl.callV("setMemoryPoolLimit", "kTACTIC_DRAM", s.TacticDRAMMiB*mib)
		} else {
			pl.skip("tactic_dram_mib: kTACTIC_DRAM exists from TensorRT 8.6")
		}
	}
	return nil
}

// planTactics adds setTacticSources when the stage names its sources:
// each known one once, those this TensorRT lacks said in Skipped.
func planTactics(pl *Plan, s protocol.Settings, v version.Version, _ Platform) error {
	if s.TacticSources == nil {
		return nil
	}
	var enums []string
	seen := map[string]bool{}
	for _, name := range s.TacticSources {
		e, known := tacticEnums[name]
		if !known {
			return fmt.Errorf("%w: tactic source %q (want %s)", ErrBadSetting, name, strings.Join(tacticNames(), ", "))
		}
		if seen[e] {
			continue
		}
		seen[e] = true
		if ok, why, _ := version.TacticSourceAvailable(name, v); ok {
			enums = append(enums, e)
		} else {
			pl.skip("tactic source %s: %s", name, why)
		}
	}
	pl.call("setTacticSources", strings.Join(enums, "|"))
	return nil
}

// planScheduling adds the builder optimization level and the auxiliary
// stream limit, both from TensorRT 8.6.
func planScheduling(pl *Plan, s protocol.Settings, v version.Version, _ Platform) error {
	if s.OptimizationLevel != nil {
		if n := *s.OptimizationLevel; n < 0 || n > 5 {
			return fmt.Errorf("%w: optimization_level %d (want 0-5)", ErrBadSetting, n)
		}
		if v.AtLeast(8, 6) {
			pl.callV("setBuilderOptimizationLevel", "", int64(*s.OptimizationLevel))
		} else {
			pl.skip("optimization_level: exists from TensorRT 8.6")
		}
	}
	if s.MaxAuxStreams != nil {
		if *s.MaxAuxStreams < 0 {
			return fmt.Errorf("%w: max_aux_streams %d", ErrBadSetting, *s.MaxAuxStreams)
		}
		if v.AtLeast(8, 6) {
			pl.callV("setMaxAuxStreams", "", int64(*s.MaxAuxStreams))
		} else {
			pl.skip("max_aux_streams: exists from TensorRT 8.6")
		}
	}
	return nil
}

// planDLA puts the build on a DLA core when the stage asks for one, the
// device has it and the precision is one the DLA runs.
func planDLA(pl *Plan, s protocol.Settings, _ version.Version, p Platform) error {
	if s.DLACore == nil {
		return nil
	}
	core := *s.DLACore
	switch {
	case p.DLACores == 0:
		pl.skip("dla_core %d: this device has no DLA; building for the GPU", core)
	case core < 0 || core >= p.DLACores:
		return fmt.Errorf("%w: dla_core %d (this device has %d DLA cores)", ErrBadSetting, core, p.DLACores)
	case s.Precision != protocol.PrecisionFP16 && s.Precision != protocol.PrecisionINT8:
		pl.skip("dla_core %d: the DLA runs only FP16 or INT8 layers; building for the GPU", core)
	default:
		pl.call("setDefaultDeviceType", "kDLA")
		pl.callV("setDLACore", "", int64(core))
		if s.GPUFallback {
			pl.call("setFlag", "kGPU_FALLBACK")
		}
	}
	return nil
}

func tacticNames() []string {
	var n []string
	for k := range tacticEnums {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Input is a network input as the parser built it; -1 marks a dynamic dim.
type Input struct {
	Name  string
	DType string
	Dims  []int64
	// IsShape marks a shape tensor (ITensor::isShapeTensor): its profile
	// entry gives its values, not its dims.
	IsShape bool
}

// Dynamic reports whether any dimension is -1.
func (in Input) Dynamic() bool {
	for _, d := range in.Dims {
		if d < 0 {
			return true
		}
	}
	return false
}

// ProfileCall is one IOptimizationProfile::setDimensions call.
type ProfileCall struct {
	Input         string
	Min, Opt, Max []int64
	// Values: a shape tensor's values (setShapeValues), not dims.
	Values bool
}

func (p ProfileCall) String() string {
	if p.Values {
		return fmt.Sprintf("setShapeValues(%s, kMIN=%v, kOPT=%v, kMAX=%v)", p.Input, p.Min, p.Opt, p.Max)
	}
	return fmt.Sprintf("setDimensions(%s, kMIN=%s, kOPT=%s, kMAX=%s)", p.Input, DimsString(p.Min), DimsString(p.Opt), DimsString(p.Max))
}

// DimsString renders dims as "1x3x224x224" (trtexec's notation).
func DimsString(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, "x")
}

// PlanProfile checks the request's shapes against the network inputs and
// returns one optimization profile: every dynamic input needs min/opt/max
// of its rank, with static dims equal to the network's and
// min <= opt <= max. Static inputs need no entry.
func PlanProfile(inputs []Input, shapes []protocol.Shape) ([]ProfileCall, error) {
	byName := map[string]protocol.Shape{}
	for _, s := range shapes {
		if _, dup := byName[s.Input]; dup {
			return nil, fmt.Errorf("%w: input %q given twice", ErrBadShapes, s.Input)
		}
		byName[s.Input] = s
	}
	known := map[string]bool{}
	var calls []ProfileCall
	var problems []string
	for _, in := range inputs {
		known[in.Name] = true
		s, given := byName[in.Name]
		if in.IsShape {
			// A shape tensor's profile is its values
			// (IOptimizationProfile::setShapeValues); it needs one even
			// when its dims are fixed.
			if !given {
				problems = append(problems, fmt.Sprintf("input %q is a shape tensor: give min/opt/max values", in.Name))
			} else if err := checkShapeValues(in, s); err != nil {
				problems = append(problems, err.Error())
			} else {
				calls = append(calls, ProfileCall{Input: in.Name, Min: s.Min, Opt: s.Opt, Max: s.Max, Values: true})
			}
			continue
		}
		if !given {
			if in.Dynamic() {
				problems = append(problems, fmt.Sprintf("input %q has dynamic dims %s: give min/opt/max shapes", in.Name, DimsString(in.Dims)))
			}
			continue
		}
		if err := checkShape(in, s); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if in.Dynamic() {
			calls = append(calls, ProfileCall{Input: in.Name, Min: s.Min, Opt: s.Opt, Max: s.Max})
		}
	}
	for _, s := range shapes {
		if !known[s.Input] {
			problems = append(problems, fmt.Sprintf("shape given for %q, which is not an input of the model", s.Input))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrBadShapes, strings.Join(problems, "; "))
	}
	return calls, nil
}

func checkShapeValues(in Input, s protocol.Shape) error {
	n := int64(1)
	for _, d := range in.Dims {
		n *= d
	}
	if n < 0 || int64(len(s.Min)) != n || int64(len(s.Opt)) != n || int64(len(s.Max)) != n {
		return fmt.Errorf("input %q is a shape tensor of shape %s: give %d values for min/opt/max, got %d/%d/%d", in.Name, DimsString(in.Dims), n, len(s.Min), len(s.Opt), len(s.Max))
	}
	for i := range s.Min {
		if s.Min[i] < 0 || s.Min[i] > s.Opt[i] || s.Opt[i] > s.Max[i] {
			return fmt.Errorf("input %q value %d: need 0 <= min <= opt <= max, got %d/%d/%d", in.Name, i, s.Min[i], s.Opt[i], s.Max[i])
		}
	}
	return nil
}

func checkShape(in Input, s protocol.Shape) error {
	r := len(in.Dims)
	if len(s.Min) != r || len(s.Opt) != r || len(s.Max) != r {
		return fmt.Errorf("input %q has rank %d; min/opt/max have ranks %d/%d/%d", in.Name, r, len(s.Min), len(s.Opt), len(s.Max))
	}
	for i, d := range in.Dims {
		if s.Min[i] < 1 || s.Min[i] > s.Opt[i] || s.Opt[i] > s.Max[i] {
			return fmt.Errorf("input %q dim %d: need 1 <= min <= opt <= max, got %d/%d/%d", in.Name, i, s.Min[i], s.Opt[i], s.Max[i])
		}
		if d >= 0 && (s.Min[i] != d || s.Max[i] != d) {
			return fmt.Errorf("input %q dim %d is fixed at %d in the model; got %d..%d", in.Name, i, d, s.Min[i], s.Max[i])
		}
	}
	return nil
}
