// Command trtd-fake-worker is a TEST DOUBLE of trtd-worker: it speaks the
// worker protocol exactly, but builds nothing. TensorRT cannot exist on
// trtd's development and CI machines, so the daemon's supervision, ladder,
// crash recovery and packaging are tested against this program. Its engines
// are marked as fake in their content and in the builder identity; it is
// never shipped in the package.
//
// Behaviour per stage comes from TRTD_FAKE_WORKER, a comma-separated list
// of stage=behaviour ("*" matches any stage; default ok):
//
//	ok            write a fake engine and succeed
//	oom           TensorRT's out-of-memory message, exit code 10
//	oom-log       the same message but exit code 1 (the log must classify it)
//	no_tactic     exit 11 with TensorRT's "could not find any implementation" text
//	              beside a "Tactic Device request: 200MB" warning
//	no_impl       exit 16: "could not find any implementation", no memory trouble
//	unsupported   exit 12 with a parser error naming a node
//	unavailable   exit 13: TensorRT not available
//	crash         abort (dies by SIGABRT)
//	killself      SIGKILL itself (looks like the kernel OOM killer)
//	hang          sleep until killed
//	slow=DUR      sleep DUR, then ok
//	spew=MiB      write MiB of log to stderr, then ok
//	eat=MiB       allocate and touch MiB of memory, then sleep until killed
//	int8=SOURCE   ok, saying its int8 scales came from SOURCE (Result.Int8:
//	              calibrated, cache, qdq, refused)
//
// When the request carries accuracy samples (Request.Accuracy), the fake
// engine "produces" the expected outputs, each value moved by
// TRTD_FAKE_WORKER_ERROR (a float, default 0), and the same comparison as
// the real worker's (converter/accuracy) decides: outside tolerance gives
// invalid_engine and no engine file.
//
// TRTD_FAKE_WORKER_PROBE=unavailable makes probes report no builder;
// TRTD_FAKE_WORKER_UNAVAILABLE_IF=FILE does so while FILE exists.
// TRTD_FAKE_WORKER_CC=X.Y reports compute capability X.Y (another GPU);
// TRTD_FAKE_WORKER_ENGINE_PAD=BYTES pads engines to at least BYTES.
// TRTD_FAKE_WORKER_RECORD=FILE appends what the worker saw (request,
// uid, cwd, environment, oom_score_adj) as JSON lines, for tests.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/atomicfile"
	"github.com/trtd/trtd/internal/cliout"
	"github.com/trtd/trtd/internal/filehash"
)

var builder = protocol.Builder{
	Backend: "fake", TensorRT: "8.2.1-fake", CompiledTensorRT: "8.2.1-fake", CUDARuntime: "10.2-fake",
	GPU: "fake GPU (test double)", ComputeCapability: "5.3", GPUMemTotal: 4 << 30, PlatformFP16: true,
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

func run(stdin io.Reader, stdout, stderr io.Writer) int {
	s := &session{out: bufio.NewWriter(stdout), stderr: stderr} // emit flushes each event
	if cc := os.Getenv("TRTD_FAKE_WORKER_CC"); cc != "" {
		builder.ComputeCapability = cc
	}
	var req protocol.Request
	if err := json.NewDecoder(stdin).Decode(&req); err != nil {
		cliout.Fprintf(stderr, "trtd-fake-worker: bad request: %v\n", err)
		return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: "bad request: " + err.Error()})
	}
	if err := record(req); err != nil {
		// The test that asked for the record finds it missing and says so.
		cliout.Fprintf(stderr, "trtd-fake-worker: recording the request: %v\n", err)
	}
	if req.Version != protocol.Version {
		return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: fmt.Sprintf("protocol version %d, want %d", req.Version, protocol.Version)})
	}
	if req.WorkDir != "" {
		if err := os.Chdir(req.WorkDir); err != nil {
			return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: err.Error()})
		}
	}
	switch req.Op {
	case protocol.OpProbe:
		return s.probe()
	case protocol.OpSplit:
		return s.split(req)
	}
	beh := behaviour(req.Stage)
	s.emit(protocol.Event{Event: protocol.EventProgress, Phase: "Building engine (fake)", Step: 1, Steps: 2})
	cliout.Fprintf(stderr, "[I] [TRT] fake worker: stage %s behaviour %s\n", req.Stage, beh)
	if code, done := s.misbehave(beh); done {
		return code
	}
	return s.build(req)
}

// session is one request's conversation with the daemon: events on stdout
// (one JSON object a line, flushed at once), the log on stderr.
type session struct {
	out    *bufio.Writer
	stderr io.Writer
	int8   protocol.Int8Source // the int8=SOURCE behaviour's
}

func (s *session) emit(ev protocol.Event) {
	ev.Time = time.Now().UTC()
	b, _ := json.Marshal(ev)
	// bufio.Writer keeps a failed Write's error for Flush. A daemon that
	// stopped reading sees this worker's exit status; the line on stderr
	// says why its events stopped.
	_, _ = s.out.Write(append(b, '\n'))
	if err := s.out.Flush(); err != nil {
		cliout.Fprintf(s.stderr, "trtd-fake-worker: writing event %s: %v\n", ev.Event, err)
	}
}

// result sends the final event and returns the exit code that goes with it.
func (s *session) result(r protocol.Result) int {
	r.Builder = builder
	s.emit(protocol.Event{Event: protocol.EventResult, Result: &r})
	return protocol.ExitCode(r.Class)
}

func (s *session) probe() int {
	if os.Getenv("TRTD_FAKE_WORKER_PROBE") == "unavailable" || fileExists(os.Getenv("TRTD_FAKE_WORKER_UNAVAILABLE_IF")) {
		cliout.Fprintln(s.stderr, "TensorRT not available on this machine: libnvinfer.so.8 not found (fake worker)")
		return s.result(protocol.Result{Class: protocol.ClassBuilderUnavailable, Message: "TensorRT not available on this machine: libnvinfer.so.8 not found (fake worker)"})
	}
	return s.result(protocol.Result{Class: protocol.ClassOK})
}

// split runs the real splitter: it needs no TensorRT.
func (s *session) split(req protocol.Request) int {
	m, err := onnx.SplitInto(req.Model, req.Parts, protocol.SegmentsDir)
	if err != nil {
		return s.result(protocol.Result{Class: protocol.ClassUnsupportedModel, Message: err.Error()})
	}
	return s.result(protocol.Result{Class: protocol.ClassOK, Split: m})
}

// misbehave acts out a stage's behaviour before the fake build. done is
// true when the worker ends there with exit code code; "ok", "slow" and
// "spew" go on to build.
func (s *session) misbehave(beh string) (code int, done bool) {
	stderr := s.stderr
	name, arg, _ := strings.Cut(beh, "=")
	switch name {
	case "ok":
	case "oom", "oom-log":
		cliout.Fprintln(stderr, "[E] [TRT] 2: Requested amount of GPU memory (1073741824 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.")
		cliout.Fprintln(stderr, "[E] [TRT] 2: [builder.cpp::buildSerializedNetwork::609] Error Code 2: OutOfMemory (no further information)")
		if name == "oom-log" {
			return 1, true
		}
		return s.result(protocol.Result{Class: protocol.ClassOutOfMemory, Message: "Requested amount of GPU memory (1073741824 bytes) could not be allocated"}), true
	case "no_tactic":
		cliout.Fprintln(stderr, "[W] [TRT] Tactic Device request: 200MB Available: 150MB. Device memory is insufficient to use tactic.")
		cliout.Fprintln(stderr, "[E] [TRT] 10: [optimizer.cpp::computeCosts::3728] Error Code 10: Internal Error (Could not find any implementation for node Conv_0 due to insufficient workspace. See verbose log for requested sizes.)")
		return s.result(protocol.Result{Class: protocol.ClassNoTactic, Message: "could not find any implementation for node Conv_0 due to insufficient workspace"}), true
	case "no_impl":
		cliout.Fprintln(stderr, "[E] [TRT] 10: [optimizer.cpp::computeCosts::3873] Error Code 10: Internal Error (Could not find any implementation for node ArgMax_0.)")
		return s.result(protocol.Result{Class: protocol.ClassNoImplementation, Message: "TensorRT has no implementation for node ArgMax_0"}), true
	case "unsupported":
		cliout.Fprintln(stderr, "[E] [TRT] ModelImporter.cpp:773: While parsing node number 3 [NonMaxSuppression -> \"nms\"]:")
		cliout.Fprintln(stderr, "[E] [TRT] ModelImporter.cpp:776: ERROR: builtin_op_importers.cpp:4870 In function importFallbackPluginImporter: [8] Assertion failed: creator && \"Plugin not found, are the plugin name, version, and namespace correct?\"")
		return s.result(protocol.Result{Class: protocol.ClassUnsupportedModel, Message: "node 3 (NonMaxSuppression \"nms\") is not supported by this TensorRT"}), true
	case "unavailable":
		cliout.Fprintln(stderr, "TensorRT not available on this machine: libnvinfer.so.8 not found (fake worker)")
		return s.result(protocol.Result{Class: protocol.ClassBuilderUnavailable, Message: "TensorRT not available on this machine: libnvinfer.so.8 not found (fake worker)"}), true
	case "crash":
		cliout.Fprintln(stderr, "fake worker: crashing on purpose")
		debug.SetTraceback("crash")
		panic("fake worker crash")
	case "killself":
		if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
			// Living on would hang the test rather than show it a kill.
			panic("fake worker: SIGKILL to self: " + err.Error())
		}
		sleepForever()
	case "hang":
		sleepForever()
	case "slow":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "spew":
		spew(stderr, arg)
	case "eat":
		eat(stderr, arg)
	case "int8":
		s.int8 = protocol.Int8Source(arg)
	default:
		return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: "fake worker: unknown behaviour " + beh}), true
	}
	return 0, false
}

// spew writes arg MiB of verbose log to stderr.
func spew(stderr io.Writer, arg string) {
	n, _ := strconv.Atoi(arg)
	line := strings.Repeat("[V] [TRT] fake verbose tactic timing line padding padding padding padding ", 1) + "\n"
	for written := 0; written < n<<20; written += len(line) {
		if _, err := io.WriteString(stderr, line); err != nil {
			return // the reader is gone: nothing left to flood
		}
	}
}

// eat allocates and touches arg MiB, then sleeps until killed.
func eat(stderr io.Writer, arg string) {
	n, _ := strconv.Atoi(arg)
	hold := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		hold = append(hold, b)
		time.Sleep(2 * time.Millisecond)
	}
	cliout.Fprintf(stderr, "fake worker: holding %d MiB\n", len(hold))
	sleepForever()
}

// build writes the fake engine, after the accuracy gate when the request
// carries samples.
func (s *session) build(req protocol.Request) int {
	s.emit(protocol.Event{Event: protocol.EventMemUsage, Mem: &protocol.MemUsage{Phase: "Init builder kernel library", CPUMiB: 158, GPUMiB: 160, Line: "[MemUsageChange] Init builder kernel library: CPU +158, GPU +160, now: CPU 410, GPU 3567 (MiB)"}})
	model, err := os.ReadFile(req.Model)
	if err != nil {
		return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: "cannot read model: " + err.Error()})
	}
	val := &protocol.Validation{Runs: 20, P50Ms: 1.0, P99Ms: 1.5, DeviceMemUsed: 1 << 20}
	if req.Accuracy != nil {
		s.emit(protocol.Event{Event: protocol.EventProgress, Phase: "Checking accuracy (fake)", Step: 2, Steps: 2})
		if r, ok := checkAccuracy(req, val); !ok {
			cliout.Fprintf(s.stderr, "[E] [TRT] fake worker: %s\n", r.Message)
			return s.result(r)
		}
	}
	engine := []byte(fmt.Sprintf("TRTD-FAKE-ENGINE test double\nmodel-sha256: %s\nstage: %s\nprecision: %s\nworkspace-mib: %d\n",
		filehash.Bytes(model), req.Stage, req.Settings.Precision, req.Settings.WorkspaceMiB))
	if pad, _ := strconv.Atoi(os.Getenv("TRTD_FAKE_WORKER_ENGINE_PAD")); pad > len(engine) {
		engine = append(engine, make([]byte, pad-len(engine))...)
	}
	if err := writeAtomic(req.Engine, engine); err != nil {
		return s.result(protocol.Result{Class: protocol.ClassBadRequest, Message: "write engine: " + err.Error()})
	}
	s.emit(protocol.Event{Event: protocol.EventProgress, Phase: "Validating engine (fake)", Step: 2, Steps: 2})
	return s.result(protocol.Result{Class: protocol.ClassOK, Engine: req.Engine, EngineBytes: int64(len(engine)), EngineSHA256: filehash.Bytes(engine),
		BuildMs: 5, Calls: []string{"fake: no TensorRT calls"},
		MemUsage:   []protocol.MemUsage{{Phase: "Init builder kernel library", CPUMiB: 158, GPUMiB: 160}},
		Validation: val, Int8: s.int8})
}

// checkAccuracy runs the accuracy gate against outputs made from the
// expected ones. ok is false with the result to return when the samples do
// not fit the model or the outputs are outside tolerance.
func checkAccuracy(req protocol.Request, val *protocol.Validation) (r protocol.Result, ok bool) {
	fail := func(c protocol.Class, msg string) (protocol.Result, bool) {
		return protocol.Result{Class: c, Message: msg, BuildMs: 5, Validation: val}, false
	}
	delta := 0.0
	if s := os.Getenv("TRTD_FAKE_WORKER_ERROR"); s != "" {
		var err error
		if delta, err = strconv.ParseFloat(s, 64); err != nil {
			return fail(protocol.ClassBadRequest, "fake worker: TRTD_FAKE_WORKER_ERROR: "+err.Error())
		}
	}
	inputs, expected, err := accuracy.Load(*req.Accuracy)
	if err != nil {
		return fail(protocol.ClassBadRequest, "accuracy samples: "+err.Error())
	}
	m, err := onnx.Open(req.Model)
	if err != nil {
		return fail(protocol.ClassBadRequest, "cannot read model: "+err.Error())
	}
	var inNames, outNames []string
	for _, v := range m.Inputs() {
		inNames = append(inNames, v.Name)
	}
	for _, v := range m.Graph.Outputs {
		outNames = append(outNames, v.Name)
	}
	if _, err := accuracy.Match(inputs, inNames, "input"); err != nil {
		return fail(protocol.ClassBadRequest, "accuracy samples: "+err.Error())
	}
	// The fake engine's outputs: the expected values moved by delta.
	exp, err := accuracy.Match(expected, outNames, "output")
	if err != nil {
		return fail(protocol.ClassBadRequest, "accuracy samples: "+err.Error())
	}
	var got []accuracy.Tensor
	for i, e := range exp {
		if e.Name == "" {
			e = accuracy.FromFloat64s(outNames[i], "float32", []int64{1}, []float64{0})
		}
		got = append(got, accuracy.Perturb(e, delta))
	}
	o, err := accuracy.Check(got, expected, req.Accuracy.ATol, req.Accuracy.RTol)
	if err != nil {
		return fail(protocol.ClassBadRequest, "accuracy samples: "+err.Error())
	}
	val.Accuracy, val.AccuracyOK = o.Stats, &o.OK
	if !o.OK {
		return fail(protocol.ClassInvalidEngine, o.Message)
	}
	return protocol.Result{}, true
}

func behaviour(stage string) string {
	def := "ok"
	for _, item := range strings.Split(os.Getenv("TRTD_FAKE_WORKER"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			continue
		}
		if k == stage {
			return v
		}
		if k == "*" {
			def = v
		}
	}
	return def
}

func writeAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data, 0o644) }

// record appends the request, as the worker saw it, to the file
// TRTD_FAKE_WORKER_RECORD names (for tests to read).
func record(req protocol.Request) error {
	p := os.Getenv("TRTD_FAKE_WORKER_RECORD")
	if p == "" {
		return nil
	}
	wd, _ := os.Getwd()
	adj, _ := os.ReadFile("/proc/self/oom_score_adj")
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "NOTIFY_SOCKET=") || strings.HasPrefix(e, "WATCHDOG_") || strings.HasPrefix(e, "TRTD_") {
			env = append(env, e)
		}
	}
	ents, _ := os.ReadDir(req.WorkDir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	b, _ := json.Marshal(map[string]any{"request": req, "uid": os.Getuid(), "gid": os.Getgid(), "cwd": wd,
		"oom_score_adj": strings.TrimSpace(string(adj)), "env": env, "workdir_entries": names})
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close() // the write's error is the one to report
		return err
	}
	return f.Close()
}

// sleepForever blocks until the process is killed (a bare select{} would
// make the Go runtime exit with "all goroutines are asleep").
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}
