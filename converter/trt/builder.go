//go:build tensorrt && cgo

package trt

import (
	"context"
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
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/filehash"
)

// Defaults of the validation run.
const (
	DefaultValidateRuns = 20
	ValidateWarmup      = 3
)

// loaded is what Load found, kept for open.
var loaded struct {
	b  protocol.Builder
	ok bool
}

// Load loads the TensorRT libraries and checks them against the headers
// this worker was compiled with. It calls nothing of CUDA, so that a worker
// that goes on to delegate to trtexec holds no CUDA context: the backend
// is decided before the GPU is touched.
func Load(o Options) (protocol.Builder, protocol.Class, string) {
	o.defaults()
	if loaded.ok {
		return loaded.b, protocol.ClassOK, ""
	}
	compiled := compiledVersion()
	b := protocol.Builder{Backend: "api", CompiledTensorRT: compiled.String()}
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
		return b, protocol.ClassBuilderUnavailable, missingMessage(miss, err.Error(), SearchDirs(o.Root), compiled)
	}
	b.Libraries = map[string]string{
		filepath.Base(l.NvInfer): l.NvInfer, filepath.Base(l.Parser): l.Parser, filepath.Base(l.Plugin): l.Plugin,
	}
	// getNvOnnxParserVersion() is 100 in every release: the parser's
	// TensorRT major is the soname major of the file that was loaded.
	psoname, err := LibrarySoname(l.Parser)
	if err != nil {
		psoname = filepath.Base(l.Parser)
	}
	found, err := CheckLoaded(compiled, l.LibVersion, l.ParserVersion, psoname)
	if !found.IsZero() {
		b.TensorRT = found.String()
	}
	if err != nil {
		return b, protocol.ClassBuilderUnavailable, fmt.Sprintf("%s: %s: %v", ErrNoTensorRT, l.NvInfer, err)
	}
	loaded.b, loaded.ok = b, true
	return b, protocol.ClassOK, ""
}

// open loads TensorRT (Load), then CUDA, and creates a session. On failure
// the class and message say what is missing; the Builder carries whatever
// was found.
func open(o Options) (protocol.Builder, *session, protocol.Class, string) {
	b, c, msg := Load(o)
	if c != protocol.ClassOK {
		return b, nil, c, msg
	}
	if ci, err := fillCUDA(&b, o.Root); err != nil {
		return b, nil, protocol.ClassBuilderUnavailable, cudaUnavailable(ci, err, o.DevDir)
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
		// Stderr is the log copy the daemon captures; the lines also go to
		// the result's tail below, so a failed write to it loses nothing
		// the daemon reports, and the build must not stop for it.
		if ev.Dropped > 0 {
			_, _ = fmt.Fprintf(d.o.Stderr, "[trtd] %d TensorRT log lines dropped (queue full)\n", ev.Dropped)
		}
		switch ev.Kind {
		case "log":
			line := fmt.Sprintf("[TRT] [%s] %s", sevLetter[ev.Severity], ev.Text)
			_, _ = fmt.Fprintln(d.o.Stderr, line)
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
// Every caller's step is known to have failed (no engine, no network, no
// execution context), so memory evidence in the log alone makes it out of
// memory (classify.ClassifyFailed), as for a trtexec that exited non-zero.
func failure(fallback protocol.Class, err error, log []byte) (protocol.Class, string) {
	text := append(append([]byte(nil), log...), err.Error()...)
	if c, r, ok := classify.ClassifyFailed(text); ok {
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
	plan, err := PlanBuild(req.Settings, compiled, plat, quantOf(req))
	if err != nil {
		return fail(protocol.ClassBadRequest, fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	res.Skipped, res.Int8 = plan.Skipped, plan.Int8
	// The report shows the calls: settings this release cannot express
	// (int8 refused, typed builds on 11.x) are said there too.
	for _, sk := range plan.Skipped {
		res.Calls = append(res.Calls, "skipped: "+sk)
	}
	res.Calls = append(res.Calls, plan.Network.String())
	if err := s.networkNew(plan.Network.Arg); err != nil {
		return fail(protocol.ClassCrashed, err)
	}
	res.Calls = append(res.Calls, fmt.Sprintf("parseFromFile(%s)", req.Model))
	if err := s.parse(req.Model); err != nil {
		finish()
		res.Class, res.Message = parseFailure(s, err, d.log())
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
	if err := configure(s, req, plan, inputs, profile, res, o); err != nil {
		return fail(protocol.ClassBadRequest, err)
	}

	// Cancel on shutdown (10.x: the progress monitor stops the build). The
	// watcher has exited before the session is freed (defers run in
	// reverse).
	defer watchCancel(ctx, o.Cancel, s.cancel)()

	res.Calls = append(res.Calls, "buildSerializedNetwork()")
	res.Worker = SelfMemory("buildSerializedNetwork")
	res.Calls = append(res.Calls, WorkerLine(res.Worker))
	t0 := time.Now()
	engine, err := s.build()
	res.BuildMs = time.Since(t0).Milliseconds()
	if err != nil {
		return fail(protocol.ClassCrashed, err)
	}
	// The engine stays in TensorRT's IHostMemory: validation, the hash and
	// the file are all made from that one host copy.
	defer engine.free()
	saveCaches(s, req, plan, o)
	s.releaseBuilder()

	if req.ValidateRuns >= 0 || req.Accuracy != nil {
		if c, m := validateEngine(s, engine, req, plan, profile, samples, expected, res, o, d.log); c != protocol.ClassOK {
			finish()
			res.Class, res.Message = c, m
			return res
		}
	}

	blob := engine.Bytes()
	if err := atomicfile.WriteFile(req.Engine, blob, 0o644); err != nil {
		return fail(protocol.ClassCrashed, fmt.Errorf("writing the engine: %w", err))
	}
	res.Engine, res.EngineBytes, res.EngineSHA256 = req.Engine, int64(len(blob)), filehash.Bytes(blob)
	finish()
	res.Class = protocol.ClassOK
	res.Message = fmt.Sprintf("built with TensorRT %s in %d ms", b.TensorRT, res.BuildMs)
	return res
}

// quantOf says what an int8 stage can take its scales from: the model's
// Q/DQ nodes, or uploaded calibration data.
func quantOf(req protocol.Request) Quant {
	if req.Settings.Precision != protocol.PrecisionINT8 {
		return Quant{}
	}
	q := Quant{Calibration: len(req.CalibrationData) > 0}
	if req.Calibration != "" {
		if _, err := os.Stat(req.Calibration); err == nil {
			q.Calibration = true
		}
	}
	q.QDQ, _ = HasQDQ(req.Model)
	return q
}

// parseFailure classifies a parser failure, with the parser's errors.
func parseFailure(s *session, err error, log []byte) (protocol.Class, string) {
	var pe []string
	for _, e := range s.parserErrors() {
		pe = append(pe, e.String())
	}
	if len(pe) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.Join(pe, "; "))
	}
	c, m := failure(protocol.ClassUnsupportedModel, err, log)
	if c != protocol.ClassOutOfMemory {
		msg := "the ONNX parser rejected the model: " + err.Error()
		// The parser's own log names the op ("While parsing node number 0
		// [Sigmoid -> "y"]:", onnx-tensorrt 8.2-GA ModelImporter.cpp:792);
		// 8.x's IParserError has only the node's index.
		if c == protocol.ClassUnsupportedModel && m != err.Error() {
			msg = m + "; " + err.Error()
		}
		c, m = protocol.ClassUnsupportedModel, msg
	}
	return c, m
}

// configure applies the profile, the plan's config calls, the calibrator,
// the progress monitor and the timing cache. Its errors are bad requests.
func configure(s *session, req protocol.Request, plan Plan, inputs []Input, profile []ProfileCall, res *protocol.Result, o Options) error {
	for _, p := range profile {
		if err := s.profileSet(p); err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		res.Calls = append(res.Calls, p.String())
	}
	for _, c := range plan.Calls {
		if err := s.configCall(c); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadRequest, c, err)
		}
		res.Calls = append(res.Calls, c.String())
	}
	if plan.Calibrate {
		if err := calibrator(s, req, inputs, profile, res); err != nil {
			return err
		}
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
		// err is the set's own outcome from here (not ReadFile's, which is
		// ErrNotExist on the first build): the calls list the cache whenever
		// one was set.
		err = s.timingCacheSet(blob)
		if err != nil && len(blob) > 0 {
			o.Log.Warn("timing cache refused; starting a new one", "path", req.TimingCache, "err", err)
			blob = nil
			err = s.timingCacheSet(nil)
		}
		if err == nil {
			res.Calls = append(res.Calls, fmt.Sprintf("createTimingCache(%d bytes)", len(blob)), "setTimingCache(ignoreMismatch=false)")
		}
	}
	return nil
}

// calibrator attaches the entropy calibrator: fed the uploaded data when
// there is some (TensorRT then writes a new cache), else reading the
// calibration cache of an earlier build, as trtexec --calib= does.
func calibrator(s *session, req protocol.Request, inputs []Input, profile []ProfileCall, res *protocol.Result) error {
	if len(req.CalibrationData) > 0 {
		batches, err := LoadCalibration(req.CalibrationData, inputs, profile)
		if err != nil {
			return fmt.Errorf("%w: calibration data: %v", ErrBadRequest, err)
		}
		if err := s.calibratorSet(batches, nil); err != nil {
			return fmt.Errorf("%w: calibration: %v", ErrBadRequest, err)
		}
		res.Calls = append(res.Calls, fmt.Sprintf("setInt8Calibrator(IInt8EntropyCalibrator2, %d batches of %d inputs)", len(batches), len(inputs)))
		res.Int8 = protocol.Int8Calibrated
		return nil
	}
	cache, err := os.ReadFile(req.Calibration)
	if err == nil && len(cache) == 0 {
		err = errors.New("empty file")
	}
	if err != nil {
		return fmt.Errorf("%w: calibration cache %s: %v", ErrBadRequest, req.Calibration, err)
	}
	if err := s.calibratorSet(nil, cache); err != nil {
		return fmt.Errorf("%w: calibration: %v", ErrBadRequest, err)
	}
	res.Calls = append(res.Calls, fmt.Sprintf("setInt8Calibrator(IInt8EntropyCalibrator2, cache %s of %d bytes)", req.Calibration, len(cache)))
	res.Int8 = protocol.Int8FromCache
	return nil
}

// saveCaches writes the timing cache and the calibration cache (the bytes
// TensorRT wrote, which trtexec --calib= reads back unchanged).
func saveCaches(s *session, req protocol.Request, plan Plan, o Options) {
	save := func(path string, blob []byte, what string) {
		err := os.MkdirAll(filepath.Dir(path), 0o755)
		if err == nil {
			err = atomicfile.WriteFile(path, blob, 0o644)
		}
		if err != nil {
			o.Log.Warn(what+" not saved", "path", path, "err", err)
		}
	}
	if req.Settings.TimingCache && req.TimingCache != "" {
		if blob, err := s.timingCacheGet(); err == nil {
			save(req.TimingCache, blob, "timing cache")
		}
	}
	if plan.Calibrate && len(req.CalibrationData) > 0 && req.Calibration != "" {
		blob, err := s.calibrationCache()
		if err != nil {
			o.Log.Warn("no calibration cache", "err", err)
			return
		}
		save(req.Calibration, blob, "calibration cache")
	}
}

// validateEngine runs the engine and, with samples, the accuracy gate: an
// engine outside tolerance (int8 ones included) is never written, so never
// published.
func validateEngine(s *session, engine *hostBlob, req protocol.Request, plan Plan, profile []ProfileCall, samples, expected []accuracy.Tensor,
	res *protocol.Result, o Options, log func() []byte) (protocol.Class, string) {
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
	dla := plan.DLACore()
	if dla >= 0 {
		res.Calls = append(res.Calls, fmt.Sprintf("IRuntime::setDLACore(%d)", dla))
	}
	v, err := s.validate(engine, dla, profile, samples, warmup, runs)
	if err != nil {
		c, m := failure(protocol.ClassInvalidEngine, err, log())
		if c != protocol.ClassOutOfMemory {
			c, m = protocol.ClassInvalidEngine, "the engine was built but does not run: "+err.Error()
		}
		return c, m
	}
	res.Validation = summarize(v)
	if req.Accuracy == nil {
		return protocol.ClassOK, ""
	}
	c, m := Gate(res.Validation, v.OutputData, expected, *req.Accuracy)
	_, _ = fmt.Fprintf(o.Stderr, "[trtd] accuracy gate: %s\n", m) // a log copy: m is returned in the result
	return c, m
}

// ErrBadRequest marks failures caused by the request itself.
var ErrBadRequest = errors.New("bad request")

func summarize(v validation) *protocol.Validation {
	// The API backend times enqueue + stream synchronize on device buffers:
	// no host-device transfers (LatencyIncludesTransfers false).
	out := &protocol.Validation{Runs: len(v.Times), DeviceMemUsed: int64(v.DeviceMemUsed)}
	t := append([]float64(nil), v.Times...)
	sort.Float64s(t)
	out.P50Ms, out.P99Ms = Percentile(t, 50), Percentile(t, 99)
	for _, o := range v.Outputs {
		out.Outputs = append(out.Outputs, protocol.TensorInfo{Name: o.Name, DType: o.DType, Shape: o.Dims})
	}
	return out
}
