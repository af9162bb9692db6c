package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt"
	"github.com/trtd/trtd/converter/trtexec"
	"github.com/trtd/trtd/internal/cliout"
)

// emitter writes events as NDJSON, one Write per event (os.Stdout is
// unbuffered, so each line reaches the parent at once).
type emitter struct {
	mu     sync.Mutex
	w      io.Writer
	log    *slog.Logger
	broken bool // a write failed: said once, the rest is silence
}

func (e *emitter) emit(ev protocol.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// The daemon stopped reading (it died or gave up on this build): the
	// build goes on to its end, since what it does is the same without an
	// audience, and the exit status still carries the class; the journal
	// says why the events stopped.
	if _, err := e.w.Write(append(b, '\n')); err != nil && !e.broken {
		e.broken = true
		e.log.Error("events to the daemon not delivered", "event", ev.Event, "err", err)
	}
}

func (e *emitter) result(r *protocol.Result) int {
	e.emit(protocol.Event{Event: protocol.EventResult, Result: r})
	return protocol.ExitCode(r.Class)
}

func serve(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) int {
	em := &emitter{w: stdout, log: log}
	var req protocol.Request
	dec := json.NewDecoder(io.LimitReader(stdin, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: "request on stdin: " + err.Error()})
	}
	if req.Version != protocol.Version {
		return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: fmt.Sprintf("request version %d; this worker speaks %d", req.Version, protocol.Version)})
	}
	switch req.Backend {
	case "", "auto", "api", "trtexec":
	default:
		return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: fmt.Sprintf("backend %q (want api, trtexec or auto)", req.Backend)})
	}
	topts := trt.Options{Log: log, Emit: em.emit, Stderr: stderr, Cancel: ctx.Done(), DevDir: os.Getenv(trt.DevDirEnv)}
	xopts := trtexec.Options{Log: log, Emit: em.emit, Stderr: stderr}
	switch req.Op {
	case protocol.OpProbe:
		b, c, msg := probe(ctx, req, topts, xopts)
		return em.result(&protocol.Result{Class: c, Message: msg, Builder: b})
	case protocol.OpSplit:
		if err := enterWorkDir(&req); err != nil {
			return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: err.Error()})
		}
		return em.result(split(req))
	case protocol.OpBuild:
	default:
		return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: fmt.Sprintf("op %q (want build, probe or split)", req.Op)})
	}
	if err := enterWorkDir(&req); err != nil {
		return em.result(&protocol.Result{Class: protocol.ClassBadRequest, Message: err.Error()})
	}
	return em.result(build(ctx, req, topts, xopts))
}

// build runs the request on the backend it names. The backend is decided
// before anything touches CUDA: trt.Load only loads and checks the TensorRT
// libraries, so a worker that delegates to trtexec holds no CUDA context
// (about 230 MiB on a Jetson Nano) while trtexec builds beside it. For auto
// the API is used when its libraries load, else trtexec.
func build(ctx context.Context, req protocol.Request, topts trt.Options, xopts trtexec.Options) *protocol.Result {
	var reasons []string
	var apiRes *protocol.Result
	if req.Backend != "trtexec" {
		b, c, msg := trt.Load(topts)
		if c == protocol.ClassOK {
			return trt.Build(ctx, req, topts)
		}
		apiRes = &protocol.Result{Class: c, Message: msg, Builder: b}
		if req.Backend == "api" {
			return apiRes
		}
		reasons = append(reasons, strings.TrimPrefix(msg, trt.ErrNoTensorRT.Error()+": "))
	}
	// An int8 stage with samples builds fp16 on trtexec, which cannot run
	// the accuracy gate: its precision flags decide that, per release
	// (trtexec.Args; 11.x builds the model's own types).
	mem := trt.SelfMemory("trtexec start")
	res := trtexec.Build(ctx, req, xopts)
	if res.Class != protocol.ClassBuilderUnavailable || apiRes == nil {
		res.Worker = mem
		res.Calls = append(res.Calls, trt.WorkerLine(mem))
		noAccuracyGate(req, res, xopts)
		return res
	}
	reasons = append(reasons, strings.TrimPrefix(res.Message, "TensorRT not available on this machine: "))
	apiRes.Message = "TensorRT not available on this machine: " + strings.Join(reasons, "; ")
	return apiRes
}

// NoAccuracyGate is what a trtexec build says when samples were uploaded.
const NoAccuracyGate = "accuracy gate not run: comparing the engine's outputs with the uploaded samples needs the API backend (a trtd-worker built with TensorRT headers); trtexec built this engine"

// noAccuracyGate marks a trtexec result of a request with accuracy
// samples: this worker cannot feed them to trtexec, so the engine is
// published unchecked (Validation.AccuracyOK stays nil), and the result's
// message, its calls (shown in the report) and the log say so.
func noAccuracyGate(req protocol.Request, res *protocol.Result, o trtexec.Options) {
	if req.Accuracy == nil || res.Class == protocol.ClassBuilderUnavailable {
		return
	}
	if res.Message != "" {
		res.Message += "; "
	}
	res.Message += NoAccuracyGate
	res.Calls = append(res.Calls, NoAccuracyGate)
	if o.Emit != nil {
		o.Emit(protocol.Event{Event: protocol.EventLog, Severity: "warning", Message: NoAccuracyGate})
	}
	if o.Stderr != nil {
		cliout.Fprintf(o.Stderr, "[trtd] %s\n", NoAccuracyGate)
	}
}

// probe reports the backend the request would use, or why none works.
func probe(ctx context.Context, req protocol.Request, topts trt.Options, xopts trtexec.Options) (protocol.Builder, protocol.Class, string) {
	backend, b, msg := choose(ctx, req, topts, xopts)
	if backend == "" {
		return b, protocol.ClassBuilderUnavailable, msg
	}
	return b, protocol.ClassOK, ""
}

// choose picks the backend: "api" or "trtexec" as asked, or for auto the
// API when compiled in and its libraries load, else trtexec when found.
// It returns "" with the reasons when none can build.
func choose(ctx context.Context, req protocol.Request, topts trt.Options, xopts trtexec.Options) (string, protocol.Builder, string) {
	var reasons []string
	var apiB, xB protocol.Builder
	if req.Backend != "trtexec" {
		b, c, msg := trt.Probe(topts)
		if c == protocol.ClassOK {
			return "api", b, ""
		}
		apiB = b
		reasons = append(reasons, strings.TrimPrefix(msg, trt.ErrNoTensorRT.Error()+": "))
	}
	if req.Backend != "api" {
		b, c, msg := trtexec.Probe(ctx, req.Trtexec, xopts)
		if c == protocol.ClassOK {
			return "trtexec", b, ""
		}
		xB = b
		reasons = append(reasons, strings.TrimPrefix(msg, "TensorRT not available on this machine: "))
	}
	// Report what the API side found (CUDA, GPU), which trtexec cannot tell
	// without running.
	last := apiB
	if req.Backend == "trtexec" {
		last = xB
	}
	return "", last, "TensorRT not available on this machine: " + strings.Join(reasons, "; ")
}

// enterWorkDir changes to the request's working directory and checks that
// the model is a regular file inside it whose external data stays there.
func enterWorkDir(req *protocol.Request) error {
	if req.WorkDir == "" || !filepath.IsAbs(req.WorkDir) {
		return fmt.Errorf("work_dir %q: must be an absolute directory", req.WorkDir)
	}
	if err := os.Chdir(req.WorkDir); err != nil {
		return fmt.Errorf("work_dir: %w", err)
	}
	m := req.Model
	if m == "" || filepath.IsAbs(m) || m != filepath.Clean(m) || m == ".." || strings.HasPrefix(m, "../") {
		return fmt.Errorf("model %q: must be a plain path inside work_dir", m)
	}
	st, err := os.Lstat(m)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("model %s: not a regular file", m)
	}
	if _, err := onnx.Open(m); err != nil {
		if errors.Is(err, onnx.ErrExternalData) {
			return fmt.Errorf("model %s: %w", m, err)
		}
		return fmt.Errorf("model %s is not a readable ONNX model: %w", m, err)
	}
	if req.Engine == "" && req.Op != protocol.OpSplit {
		return errors.New("engine: no output path")
	}
	return nil
}

// split serves an op "split": the parts go to SegmentsDir in the work
// directory, the manifest back in the result.
func split(req protocol.Request) *protocol.Result {
	m, err := onnx.SplitInto(req.Model, req.Parts, protocol.SegmentsDir)
	if err != nil {
		return &protocol.Result{Class: protocol.ClassUnsupportedModel, Message: err.Error()}
	}
	return &protocol.Result{Class: protocol.ClassOK, Split: m}
}
