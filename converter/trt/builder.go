//go:build tensorrt && cgo

package trt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/classify"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt/version"
	"github.com/trtd/trtd/internal/atomicfile"
)

// Defaults of the validation run.
const (
	DefaultValidateRuns = 20
	ValidateWarmup      = 3
)

func parserVersion(n int) version.Version {
	return version.Version{Major: n / 10000, Minor: n / 100 % 100, Patch: n % 100}
}

// open loads CUDA and TensorRT and creates a session. On failure the class
// and message say what is missing; the Builder carries whatever was found.
func open(o Options) (protocol.Builder, *session, protocol.Class, string) {
	compiled := compiledVersion()
	b := protocol.Builder{Backend: "api", CompiledTensorRT: compiled.String()}
	if _, err := fillCUDA(&b, o.Root); err != nil {
		return b, nil, protocol.ClassBuilderUnavailable, "no usable GPU: " + err.Error()
	}
	sonames := make([]string, len(trtLibs))
	for i, base := range trtLibs {
		sonames[i] = fmt.Sprintf("%s.%d", base, compiled.Major)
	}
	l, err := trtLoad(sonames[0], sonames[1], sonames[2])
	if err != nil {
		miss := sonames[0]
		for _, s := range sonames {
			if strings.Contains(err.Error(), s) {
				miss = s
			}
		}
		return b, nil, protocol.ClassBuilderUnavailable, missingMessage(miss, err.Error(), SearchDirs(o.Root), compiled)
	}
	if b.Libraries == nil {
		b.Libraries = map[string]string{}
	}
	b.Libraries[filepath.Base(l.NvInfer)] = l.NvInfer
	b.Libraries[filepath.Base(l.Parser)] = l.Parser
	b.Libraries[filepath.Base(l.Plugin)] = l.Plugin
	found, err := version.FromInt(l.LibVersion)
	if err != nil {
		return b, nil, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: %s reports version %d: %v", ErrNoTensorRT, l.NvInfer, l.LibVersion, err)
	}
	b.TensorRT = found.String()
	if err := version.CheckLibrary(compiled, found); err != nil {
		return b, nil, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: %s: %v", ErrNoTensorRT, l.NvInfer, err)
	}
	if pv := parserVersion(l.ParserVersion); pv.Major != found.Major {
		return b, nil, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: %s is the ONNX parser of TensorRT %s, libnvinfer is %s", ErrNoTensorRT, l.Parser, pv, found)
	}
	s, err := newSession(o.MinSeverity)
	if err != nil {
		if s != nil {
			s.free()
		}
		return b, nil, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: %v", ErrNoTensorRT, err)
	}
	p := s.platform()
	b.PlatformFP16, b.PlatformINT8, b.DLACores = p.FastFP16, p.FastINT8, p.DLACores
	return b, s, protocol.ClassOK, ""
}

// Probe reports the libraries, their versions and the GPU.
func Probe(o Options) (protocol.Builder, protocol.Class, string) {
	o.defaults()
	b, s, c, msg := open(o)
	if s != nil {
		s.free()
	}
	return b, c, msg
}

// drain moves the session's queued events to the parent while a call into
// TensorRT blocks.
type drain struct {
	s    *session
	o    Options
	mu   sync.Mutex
	tail []byte
	mem  []protocol.MemUsage
	stop chan struct{}
	done chan struct{}
}

const tailMax = 256 << 10

func startDrain(s *session, o Options) *drain {
	d := &drain{s: s, o: o, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			d.flush()
			select {
			case <-d.stop:
				d.flush()
				return
			case <-t.C:
			}
		}
	}()
	return d
}

func (d *drain) finish() {
	close(d.stop)
	<-d.done
}

var sevLetter = map[string]string{"internal_error": "F", "error": "E", "warning": "W", "info": "I", "verbose": "V"}

func (d *drain) flush() {
	for {
		ev, ok := d.s.nextEvent()
		if !ok {
			return
		}
		now := time.Now()
		if ev.Dropped > 0 {
			fmt.Fprintf(d.o.Stderr, "[trtd] %d TensorRT log lines dropped (queue full)\n", ev.Dropped)
		}
		switch ev.Kind {
		case "log":
			line := fmt.Sprintf("[TRT] [%s] %s", sevLetter[ev.Severity], ev.Text)
			fmt.Fprintln(d.o.Stderr, line)
			d.mu.Lock()
			d.tail = append(d.tail, line...)
			d.tail = append(d.tail, '\n')
			if len(d.tail) > tailMax {
				d.tail = append([]byte(nil), d.tail[len(d.tail)-tailMax/2:]...)
			}
			d.mu.Unlock()
			if u, ok := classify.ParseMemUsage(ev.Text); ok {
				d.mu.Lock()
				d.mem = append(d.mem, u)
				d.mu.Unlock()
				d.o.Emit(protocol.Event{Event: protocol.EventMemUsage, Time: now, Mem: &u})
			}
			if ev.Severity != "info" && ev.Severity != "verbose" {
				d.o.Emit(protocol.Event{Event: protocol.EventLog, Time: now, Severity: ev.Severity, Message: ev.Text})
			}
		case "phase_start":
			d.o.Emit(protocol.Event{Event: protocol.EventProgress, Time: now, Phase: ev.Text, Steps: ev.Steps})
		case "step":
			d.o.Emit(protocol.Event{Event: protocol.EventProgress, Time: now, Phase: ev.Text, Step: ev.Step + 1})
		case "phase_end":
			d.o.Emit(protocol.Event{Event: protocol.EventProgress, Time: now, Phase: ev.Text + " done"})
		}
	}
}

func (d *drain) log() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.tail...)
}

func (d *drain) memUsage() []protocol.MemUsage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]protocol.MemUsage(nil), d.mem...)
}

// failure classifies a failed step from its error and the TensorRT log.
func failure(fallback protocol.Class, err error, log []byte) (protocol.Class, string) {
	text := append(append([]byte(nil), log...), err.Error()...)
	if c, r, ok := classify.ClassifyLog(text); ok {
		return c, r
	}
	return fallback, err.Error()
}

// Build runs one stage: parse, configure, build, validate, write the
// engine atomically. The request's paths are relative to the working
// directory the worker already changed to.
func Build(ctx context.Context, req protocol.Request, o Options) *protocol.Result {
	o.defaults()
	res := &protocol.Result{}
	b, s, c, msg := open(o)
	res.Builder = b
	if s == nil {
		res.Class, res.Message = c, msg
		return res
	}
	defer s.free()
	d := startDrain(s, o)
	stopped := false
	finish := func() {
		if !stopped {
			stopped = true
			d.finish()
			res.MemUsage = d.memUsage()
		}
	}
	defer finish()
	fail := func(fallback protocol.Class, err error) *protocol.Result {
		finish()
		if errors.Is(err, ErrBadRequest) {
			res.Class, res.Message = protocol.ClassBadRequest, err.Error()
			return res
		}
		res.Class, res.Message = failure(fallback, err, d.log())
		if ctx.Err() != nil && !errors.Is(err, ErrBadRequest) {
			res.Class, res.Message = protocol.ClassCanceled, "canceled: "+err.Error()
		}
		return res
	}

	// The accuracy gate's samples are read before the build: a bad file
	// fails the request before any memory goes to TensorRT.
	var samples, expected []accuracy.Tensor
	if req.Accuracy != nil {
		var err error
		if samples, expected, err = accuracy.Load(*req.Accuracy); err != nil {
			return fail(protocol.ClassBadRequest, fmt.Errorf("%w: accuracy samples: %v", ErrBadRequest, err))
		}
	}

	compiled := compiledVersion()
	plat := Platform{FastFP16: b.PlatformFP16, FastINT8: b.PlatformINT8, DLACores: b.DLACores}
	plan, err := PlanBuild(req.Settings, compiled, plat)
	if err != nil {
		return fail(protocol.ClassBadRequest, fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	res.Skipped = plan.Skipped
	res.Calls = append(res.Calls, plan.Network.String())
	if err := s.networkNew(plan.Network.Arg); err != nil {
		return fail(protocol.ClassCrashed, err)
	}
	res.Calls = append(res.Calls, fmt.Sprintf("parseFromFile(%s)", req.Model))
	if err := s.parse(req.Model); err != nil {
		var pe []string
		for _, e := range s.parserErrors() {
			pe = append(pe, e.String())
		}
		if len(pe) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.Join(pe, "; "))
		}
		finish()
		res.Class, res.Message = failure(protocol.ClassUnsupportedModel, err, d.log())
		if res.Class != protocol.ClassOutOfMemory {
			res.Class, res.Message = protocol.ClassUnsupportedModel, "the ONNX parser rejected the model: "+err.Error()
		}
		return res
	}
	inputs := s.inputs()
	profile, err := PlanProfile(inputs, req.Shapes)
	if err != nil {
		return fail(protocol.ClassBadRequest, fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	if req.Accuracy != nil {
		if samples, err = FitSamples(inputs, samples); err != nil {
			return fail(protocol.ClassBadRequest, fmt.Errorf("%w: accuracy samples: %v", ErrBadRequest, err))
		}
	}
	for _, p := range profile {
		if err := s.profileSet(p); err != nil {
			return fail(protocol.ClassBadRequest, fmt.Errorf("%w: %v", ErrBadRequest, err))
		}
		res.Calls = append(res.Calls, p.String())
	}
	for _, c := range plan.Calls {
		if err := s.configCall(c); err != nil {
			return fail(protocol.ClassBadRequest, fmt.Errorf("%w: %s: %v", ErrBadRequest, c, err))
		}
		res.Calls = append(res.Calls, c.String())
	}
	if canCancel() {
		if err := s.progressAttach(); err == nil {
			res.Calls = append(res.Calls, "setProgressMonitor()")
		}
	}
	if req.Settings.TimingCache && req.TimingCache != "" {
		blob, err := os.ReadFile(req.TimingCache)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			o.Log.Warn("timing cache unreadable; starting a new one", "path", req.TimingCache, "err", err)
			blob = nil
		}
		if err := s.timingCacheSet(blob); err != nil && len(blob) > 0 {
			o.Log.Warn("timing cache refused; starting a new one", "path", req.TimingCache, "err", err)
			blob = nil
			err = s.timingCacheSet(nil)
		}
		if err == nil {
			res.Calls = append(res.Calls, fmt.Sprintf("createTimingCache(%d bytes)", len(blob)), "setTimingCache(ignoreMismatch=false)")
		}
	}

	// Cancel on shutdown (10.x: the progress monitor stops the build).
	cancelDone := make(chan struct{})
	defer close(cancelDone)
	go func() {
		select {
		case <-ctx.Done():
		case <-o.Cancel:
		case <-cancelDone:
			return
		}
		s.cancel()
	}()

	res.Calls = append(res.Calls, "buildSerializedNetwork()")
	t0 := time.Now()
	engine, err := s.build()
	res.BuildMs = time.Since(t0).Milliseconds()
	if err != nil {
		return fail(protocol.ClassCrashed, err)
	}
	if req.Settings.TimingCache && req.TimingCache != "" {
		if blob, err := s.timingCacheGet(); err == nil {
			if err := os.MkdirAll(filepath.Dir(req.TimingCache), 0o755); err == nil {
				err = atomicfile.WriteFile(req.TimingCache, blob, 0o644)
			}
			if err != nil {
				o.Log.Warn("timing cache not saved", "path", req.TimingCache, "err", err)
			}
		}
	}
	s.releaseBuilder()

	if req.ValidateRuns >= 0 || req.Accuracy != nil {
		runs, warmup := req.ValidateRuns, ValidateWarmup
		switch {
		case runs < 0: // validation off, but the accuracy gate needs one run
			runs, warmup = 1, 0
		case runs == 0:
			runs = DefaultValidateRuns
		}
		if req.Accuracy != nil {
			res.Calls = append(res.Calls, fmt.Sprintf("accuracy gate: %d sample inputs, %d expected outputs, atol %g, rtol %g", len(samples), len(expected), req.Accuracy.ATol, req.Accuracy.RTol))
		}
		v, err := s.validate(engine, profile, samples, warmup, runs)
		if err != nil {
			c, m := failure(protocol.ClassInvalidEngine, err, d.log())
			if c != protocol.ClassOutOfMemory {
				c, m = protocol.ClassInvalidEngine, "the engine was built but does not run: "+err.Error()
			}
			finish()
			res.Class, res.Message = c, m
			return res
		}
		res.Validation = summarize(v)
		if req.Accuracy != nil {
			// An engine outside tolerance is never written, so never published.
			c, m := Gate(res.Validation, v.OutputData, expected, *req.Accuracy)
			fmt.Fprintf(o.Stderr, "[trtd] accuracy gate: %s\n", m)
			if c != protocol.ClassOK {
				finish()
				res.Class, res.Message = c, m
				return res
			}
		}
	}

	if err := atomicfile.WriteFile(req.Engine, engine, 0o644); err != nil {
		return fail(protocol.ClassCrashed, fmt.Errorf("writing the engine: %w", err))
	}
	sum := sha256.Sum256(engine)
	res.Engine, res.EngineBytes, res.EngineSHA256 = req.Engine, int64(len(engine)), hex.EncodeToString(sum[:])
	finish()
	res.Class = protocol.ClassOK
	res.Message = fmt.Sprintf("built with TensorRT %s in %d ms", b.TensorRT, res.BuildMs)
	return res
}

// ErrBadRequest marks failures caused by the request itself.
var ErrBadRequest = errors.New("bad request")

func summarize(v validation) *protocol.Validation {
	out := &protocol.Validation{Runs: len(v.Times), DeviceMemUsed: int64(v.DeviceMemUsed)}
	t := append([]float64(nil), v.Times...)
	sort.Float64s(t)
	out.P50Ms, out.P99Ms = Percentile(t, 50), Percentile(t, 99)
	for _, o := range v.Outputs {
		out.Outputs = append(out.Outputs, protocol.TensorInfo{Name: o.Name, DType: o.DType, Shape: o.Dims})
	}
	return out
}
