package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/converter/trt"
	"github.com/trtd/trtd/internal/testmodels"
)

// fakeTrtexec writes a trtexec test double (a shell script printing
// trtexec's lines) that records its arguments in args.
func fakeTrtexec(t *testing.T) (bin, args string) {
	t.Helper()
	d := t.TempDir()
	bin, args = filepath.Join(d, "trtexec"), filepath.Join(d, "args")
	os.WriteFile(bin, []byte(`#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v8201] # trtexec $*"
[ "$1" = "--help" ] && exit 0
echo "$*" > `+args+`
for a in "$@"; do case "$a" in --saveEngine=*) ENGINE="${a#--saveEngine=}";; esac; done
echo "[I] Latency: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
printf engine > "$ENGINE"
`), 0o755)
	return bin, args
}

// A worker that delegates to trtexec decides so before touching CUDA: no
// CUDA probe (which creates a context) happens, and the result states what
// the worker held when trtexec started.
func TestDelegatingWorkerTouchesNoCUDA(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	testmodels.Write(t, dir, "model.onnx", testmodels.TinyCNN)
	bin, _ := fakeTrtexec(t)
	before := trt.CUDACalls()
	req, _ := json.Marshal(protocol.Request{Version: 1, Op: protocol.OpBuild, Backend: "auto", Trtexec: bin, WorkDir: dir, Model: "model.onnx",
		Engine: filepath.Join(dir, "model.engine"), Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 64}})
	evs, code := runServe(t, string(req))
	r := result(evs)
	if r.Class != protocol.ClassOK || code != protocol.ExitOK {
		t.Fatalf("%s (%s), exit %d", r.Class, r.Message, code)
	}
	if n := trt.CUDACalls() - before; n != 0 {
		t.Errorf("the delegating worker probed CUDA %d times", n)
	}
	if r.Worker == nil || r.Worker.At != "trtexec start" || r.Worker.RSSBytes <= 0 || r.Worker.CUDAContext {
		t.Errorf("worker memory %+v", r.Worker)
	}
	if !strings.Contains(strings.Join(r.Calls, "\n"), "worker at trtexec start: RSS ") {
		t.Errorf("calls %v", r.Calls)
	}
}

// An int8 stage with accuracy samples is not built as int8 by trtexec,
// which cannot run the gate: it builds fp16 and says why.
func TestTrtexecInt8WithSamplesBuildsFP16(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	testmodels.Write(t, dir, "model.onnx", testmodels.TinyCNN)
	os.MkdirAll(filepath.Join(dir, "model.test"), 0o755)
	for _, f := range []string{"input_0.pb", "output_0.pb"} {
		os.WriteFile(filepath.Join(dir, "model.test", f), nil, 0o644)
	}
	bin, args := fakeTrtexec(t)
	req, _ := json.Marshal(protocol.Request{Version: 1, Op: protocol.OpBuild, Backend: "trtexec", Trtexec: bin, WorkDir: dir, Model: "model.onnx",
		Engine: filepath.Join(dir, "model.engine"), Settings: protocol.Settings{Precision: "int8", WorkspaceMiB: 64},
		Accuracy: &protocol.Accuracy{Inputs: []string{"model.test/input_0.pb"}, Outputs: []string{"model.test/output_0.pb"}, ATol: 1e-3, RTol: 1e-2}})
	evs, _ := runServe(t, string(req))
	r := result(evs)
	a, _ := os.ReadFile(args)
	if strings.Contains(string(a), "--int8") || !strings.Contains(string(a), "--fp16") {
		t.Errorf("trtexec ran with %q", a)
	}
	if sk := strings.Join(r.Skipped, "\n"); !strings.Contains(sk, "int8 refused") || !strings.Contains(sk, "accuracy samples were uploaded") {
		t.Errorf("skipped %v", r.Skipped)
	}
	if r.Int8 != protocol.Int8Refused {
		t.Errorf("int8 source %q, want %q", r.Int8, protocol.Int8Refused)
	}
}
