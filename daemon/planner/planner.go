// Package planner predicts the peak memory of each stage of the build
// ladder for one model on one device, skips the stages that can never fit
// (with the reason), picks the stage to start at, sizes the swapfile, and
// remembers per (model, device) the first stage that worked so the next
// build of that model starts there.
//
// The estimate is deliberately simple and documented in docs/MEMORY.md:
//
//	device part = workspace + activations + (1 + engine factor) × weights + ½ × fixed costs
//	host part   = weights (the parsed ONNX) + ½ × fixed costs
//
// where the fixed costs are the CUDA context and builder plus cuDNN and
// cuBLAS when the stage lets TensorRT use them, and the engine factor is 1
// (FP32), ½ (FP16) or ¼ (INT8). On Jetson both parts live in the same RAM,
// and only the host part can be paged out to swap. On a dGPU the device
// part must fit the GPU's memory and the host part RAM plus swap.
package planner

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/sysinfo"
	"github.com/trtd/trtd/internal/bytesize"
)

// ModelFacts is what the planner needs to know of a model.
type ModelFacts struct {
	WeightBytes int64
	Params      int64
	InputBytes  int64
	Dynamic     bool
	NodeCount   int
	SHA256      string
}

// Plan is the planner's decision for one job.
type Plan struct {
	Stages []StagePlan
	// Start indexes Stages: the first stage to run.
	Start int
	// SwapBytes is the total swap the "ensure" stages should make sure of
	// (0 = none needed beyond what exists).
	SwapBytes   int64
	Notes       []string
	Platform    string
	Fingerprint string
}

// StagePlan is one stage's prediction.
type StagePlan struct {
	Stage       config.Stage
	PeakBytes   int64
	DeviceBytes int64 // must be in RAM (Jetson) or GPU memory (dGPU)
	HostBytes   int64 // may be paged out to swap
	// FitsNow is true when the stage is predicted to fit the memory free
	// now plus the swap it may provide.
	FitsNow bool
	Skip    bool
	Reason  string
}

const (
	minActivations = 32 << 20
	// defaultWorkspace stands for a stage with no workspace limit
	// (TensorRT 8.4+ may then use all device memory for tactics).
	defaultWorkspace = 1 << 30
	// osReserve is RAM the system keeps for itself on a Jetson.
	osReserve = 512 << 20
	swapStep  = 256 << 20
)

// Estimate returns the device and host parts of a stage's peak on
// TensorRT trt ("8.2.1", "10.0.1"; "" when unknown: the 8.x defaults).
func Estimate(m ModelFacts, st config.Stage, over config.Overheads, trt string) (device, host int64) {
	parts := int64(1)
	if converter.Kind(st.Kind) == converter.KindSegmented && st.Parts > 1 {
		parts = int64(st.Parts)
	}
	w := m.WeightBytes / parts
	ws := int64(st.Workspace)
	if ws <= 0 {
		ws = defaultWorkspace
	}
	act := max(m.InputBytes*16, minActivations)
	fixed := int64(over.CUDAContext + over.Builder)
	if usesSource(st, protocol.TacticCUDNN, trt) {
		fixed += int64(over.CUDNN)
	}
	if usesSource(st, protocol.TacticCUBLAS, trt) || usesSource(st, protocol.TacticCUBLASLt, trt) {
		fixed += int64(over.CUBLAS)
	}
	ef := map[string]float64{protocol.PrecisionFP32: 1, protocol.PrecisionFP16: 0.5, protocol.PrecisionINT8: 0.25}[st.Precision]
	if ef == 0 {
		ef = 1
	}
	device = ws + act + int64((1+ef)*float64(w)) + fixed/2
	host = w + fixed - fixed/2
	return device, host
}

// usesSource: nil tactic sources mean TensorRT's defaults. Before 10.0
// cuBLAS and cuDNN are on (NvInfer.h 8.0 :7698, 8.2 :8348;
// NvInferRuntime.h 8.6 :1478-1486; cuBLASLt too on x86 and CUDA >= 11).
// 10.0 turns cuBLAS and cuDNN off but leaves cuBLASLt on
// (NvInferRuntime.h 10.0 :2261-2273); 10.1 turns it off too (:2290).
func usesSource(st config.Stage, src string, trt string) bool {
	if st.TacticSources == nil {
		major, minor := trtVersion(trt)
		if major < 10 {
			return true
		}
		return src == protocol.TacticCUBLASLt && major == 10 && minor == 0
	}
	for _, s := range st.TacticSources {
		if s == src {
			return true
		}
	}
	return false
}

// trtVersion reads "10.0.1" as 10, 0; "" as 0, 0.
func trtVersion(v string) (major, minor int) {
	f := strings.SplitN(v, ".", 3)
	major, _ = strconv.Atoi(f[0])
	if len(f) > 1 {
		minor, _ = strconv.Atoi(f[1])
	}
	return major, minor
}

// New plans m on d with cfg's ladder. h may be nil.
func New(m ModelFacts, d *sysinfo.Device, cfg *config.Config, h *History) *Plan {
	p := &Plan{Platform: d.Platform(), Fingerprint: d.Fingerprint()}
	for _, st := range cfg.Stages {
		p.Stages = append(p.Stages, StagePlan{Stage: st})
	}
	if len(p.Stages) == 0 {
		return p
	}
	if !cfg.Planner.Enabled {
		p.Notes = append(p.Notes, "the planner is disabled (planner.enabled = false): every stage runs in order")
		return p
	}
	over := sysinfo.EffectiveOverheads(cfg.Overheads, p.Platform)
	major, _ := trtVersion(d.TensorRT)
	if m.Dynamic {
		p.Notes = append(p.Notes, "the model has dynamic dimensions: the estimate uses the input sizes resolved for this build")
	}
	if major == 0 {
		p.Notes = append(p.Notes, "the TensorRT version is unknown: cuDNN/cuBLAS are assumed on by default")
	}
	b := newBudget(d, cfg, p)
	for i := range p.Stages {
		sp := &p.Stages[i]
		if isOffload(sp.Stage) {
			continue
		}
		sp.DeviceBytes, sp.HostBytes = Estimate(m, sp.Stage, over, d.TensorRT)
		sp.PeakBytes = sp.DeviceBytes + sp.HostBytes
		if hopeless := b.hopeless(sp); hopeless != "" {
			sp.Reason = hopeless
			sp.Skip = cfg.Planner.SkipHopeless
			continue
		}
		b.fits(sp)
	}
	p.markOffload(cfg)
	p.keepLastLocal()
	p.pickStart(h, m, cfg.Planner.SkipHopeless)
	p.planSwap(b, cfg)
	p.skipBeforeStart()
	return p
}

func isOffload(st config.Stage) bool { return converter.Kind(st.Kind) == converter.KindOffload }

// budget is what the device can give a build: now, and at most.
type budget struct {
	unified         bool
	ramNow, ramEver int64
	gpuNow, gpuEver int64
	swapTotal       int64
	maxSwap         int64
	swapFree        int64 // swap that can take pages now
}

func newBudget(d *sysinfo.Device, cfg *config.Config, p *Plan) budget {
	floor := int64(cfg.Guard.Floor)
	b := budget{unified: d.GPU == nil || d.GPU.Unified, ramNow: d.MemAvailable - floor,
		ramEver: d.MemTotal - osReserve - floor, swapTotal: d.SwapTotal}
	if !b.unified {
		b.gpuEver = d.GPU.MemTotal
		b.gpuNow = d.GPU.MemTotal - d.GPU.MemUsed
		if b.gpuEver <= 0 {
			// GPU memory unknown: judge by RAM only and say so.
			b.unified = true
			p.Notes = append(p.Notes, "GPU memory is unknown (no nvidia-smi): stages are judged by RAM only")
		}
	}
	if cfg.Swap.Enabled {
		b.maxSwap = int64(cfg.Swap.MaxSize)
	}
	// zram counts half, since what it holds stays in RAM, compressed.
	for _, sw := range d.Swaps {
		free := sw.Size - sw.Used
		if sw.Medium == "zram" {
			free /= 2
		}
		b.swapFree += free
	}
	if len(d.Swaps) == 0 {
		b.swapFree = d.SwapFree
	}
	return b
}

// swapFor is the swap a stage may count on: what is free, plus what trtd
// may add when the stage provides swap.
func (b budget) swapFor(st config.Stage) int64 {
	if converter.SwapPolicy(st.Swap).Wants() {
		return b.swapFree + b.maxSwap
	}
	return b.swapFree
}

// hopeless says why a stage can never fit this device, or "".
func (b budget) hopeless(sp *StagePlan) string {
	if b.unified {
		switch {
		case sp.DeviceBytes > b.ramEver:
			return fmt.Sprintf("predicted to need %s that cannot be paged out, more than this board's RAM can ever give (%s; swap cannot hold GPU allocations)",
				bytesize.MiB(sp.DeviceBytes), bytesize.MiB(b.ramEver))
		case sp.PeakBytes > b.ramEver+b.swapTotal+b.maxSwap:
			return fmt.Sprintf("predicted peak %s exceeds RAM (%s) plus all swap that could exist (%s)",
				bytesize.MiB(sp.PeakBytes), bytesize.MiB(b.ramEver), bytesize.MiB(b.swapTotal+b.maxSwap))
		}
		return ""
	}
	switch {
	case sp.DeviceBytes > b.gpuEver:
		return fmt.Sprintf("predicted to need %s of GPU memory; the GPU has %s", bytesize.MiB(sp.DeviceBytes), bytesize.MiB(b.gpuEver))
	case sp.HostBytes > b.ramEver+b.swapTotal+b.maxSwap:
		return fmt.Sprintf("predicted to need %s of host memory, more than RAM plus all swap that could exist", bytesize.MiB(sp.HostBytes))
	}
	return ""
}

// fits sets FitsNow, and the reason when the stage does not fit now.
func (b budget) fits(sp *StagePlan) {
	sw := b.swapFor(sp.Stage)
	if b.unified {
		sp.FitsNow = sp.DeviceBytes <= b.ramNow && sp.PeakBytes <= b.ramNow+sw
		if !sp.FitsNow {
			sp.Reason = fmt.Sprintf("predicted peak %s (%s of it not pageable) does not fit the %s available now plus %s of swap",
				bytesize.MiB(sp.PeakBytes), bytesize.MiB(sp.DeviceBytes), bytesize.MiB(max(b.ramNow, 0)), bytesize.MiB(sw))
		}
		return
	}
	sp.FitsNow = sp.DeviceBytes <= b.gpuNow && sp.HostBytes <= b.ramNow+sw
	if !sp.FitsNow {
		sp.Reason = fmt.Sprintf("predicted to need %s of GPU memory (%s free now) and %s of host memory (%s available plus %s of swap)",
			bytesize.MiB(sp.DeviceBytes), bytesize.MiB(b.gpuNow), bytesize.MiB(sp.HostBytes), bytesize.MiB(max(b.ramNow, 0)), bytesize.MiB(sw))
	}
}

// markOffload skips offload stages when no peer is configured.
func (p *Plan) markOffload(cfg *config.Config) {
	for i := range p.Stages {
		sp := &p.Stages[i]
		if isOffload(sp.Stage) && (!cfg.Offload.Enabled || len(cfg.Offload.Peers) == 0) {
			sp.Skip, sp.Reason = true, "offload is not configured (offload.enabled with at least one [[offload.peer]])"
		}
	}
}

// keepLastLocal never skips every local stage: the estimate may be wrong,
// and the cheapest local stage is still the best chance.
func (p *Plan) keepLastLocal() {
	lastLocal, anyLocal := -1, false
	for i, sp := range p.Stages {
		if !isOffload(sp.Stage) {
			lastLocal = i
			anyLocal = anyLocal || !sp.Skip
		}
	}
	if !anyLocal && lastLocal >= 0 {
		p.Stages[lastLocal].Skip = false
		p.Notes = append(p.Notes, fmt.Sprintf("every local stage is predicted not to fit; %s runs anyway as the last local attempt",
			p.Stages[lastLocal].Stage.Name))
	}
}

// pickStart: the stage that worked last time, else the first that fits
// now, else the first not skipped. With planner.skip_hopeless off no
// prediction skips a stage: the ladder starts at its first stage (or the
// one that worked last time) and the predictions are only reported.
func (p *Plan) pickStart(h *History, m ModelFacts, skipHopeless bool) {
	p.Start = -1
	if h != nil && m.SHA256 != "" {
		if name, ok := h.Lookup(m.SHA256, p.Fingerprint); ok {
			for i, sp := range p.Stages {
				if sp.Stage.Name == name && !sp.Skip {
					p.Start = i
					p.Notes = append(p.Notes, fmt.Sprintf("starting at %s: it was the first stage that worked for this model on this device", name))
				}
			}
		}
	}
	if p.Start < 0 && skipHopeless {
		for i, sp := range p.Stages {
			if !sp.Skip && sp.FitsNow {
				p.Start = i
				break
			}
		}
	}
	if p.Start < 0 {
		for i, sp := range p.Stages {
			if !sp.Skip {
				p.Start = i
				if skipHopeless {
					p.Notes = append(p.Notes, "no stage is predicted to fit the memory free now: starting at the first one not skipped")
				} else {
					p.Notes = append(p.Notes, "planner.skip_hopeless is off: every stage is tried in order; the predictions are only reported")
				}
				break
			}
		}
	}
	if p.Start < 0 {
		p.Start = 0
	}
}

// planSwap: swap for the "ensure" stages that will run: what their
// predicted pageable part lacks, a quarter more, in 256 MiB steps, within
// max_size.
func (p *Plan) planSwap(b budget, cfg *config.Config) {
	var need int64
	for i := p.Start; i < len(p.Stages) && cfg.Swap.Enabled; i++ {
		sp := p.Stages[i]
		if sp.Skip || converter.SwapPolicy(sp.Stage.Swap) != converter.SwapEnsure || sp.PeakBytes == 0 {
			continue
		}
		short := sp.PeakBytes - max(b.ramNow, 0) - b.swapFree
		if !b.unified {
			short = sp.HostBytes - max(b.ramNow, 0) - b.swapFree
		}
		need = max(need, short)
	}
	if need > 0 {
		s := (need + need/4 + swapStep - 1) / swapStep * swapStep
		p.SwapBytes = min(s, b.maxSwap)
		if s > b.maxSwap {
			p.Notes = append(p.Notes, fmt.Sprintf("the plan would want %s of swap; swap.max_size allows %s", bytesize.MiB(s), bytesize.MiB(b.maxSwap)))
		}
	}
}

// skipBeforeStart marks the stages before the start as skipped.
func (p *Plan) skipBeforeStart() {
	for i := 0; i < p.Start; i++ {
		sp := &p.Stages[i]
		if !sp.Skip {
			sp.Skip = true
			if sp.Reason == "" {
				sp.Reason = "skipped: the plan starts at " + p.Stages[p.Start].Stage.Name
			}
		}
	}
}

// StartName is the name of the first stage to run.
func (p *Plan) StartName() string {
	if p.Start < len(p.Stages) {
		return p.Stages[p.Start].Stage.Name
	}
	return ""
}
