package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/testmodels"
)

// A trtexec build cannot be fed the samples: the engine is built as before,
// AccuracyOK stays nil and the result says the gate needs the API backend.
// The trtexec here is a test double (a shell script printing trtexec's
// lines); the real one needs a GPU.
func TestTrtexecBuildSaysAccuracyGateNeedsAPI(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	testmodels.Write(t, dir, "model.onnx", testmodels.TinyCNN)
	os.MkdirAll(filepath.Join(dir, "model.test"), 0o755)
	for _, f := range []string{"input_0.pb", "output_0.pb"} {
		os.WriteFile(filepath.Join(dir, "model.test", f), nil, 0o644)
	}
	fake := filepath.Join(t.TempDir(), "trtexec")
	os.WriteFile(fake, []byte(`#!/bin/sh
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v8503] # trtexec $*"
[ "$1" = "--help" ] && exit 0
for a in "$@"; do case "$a" in --saveEngine=*) ENGINE="${a#--saveEngine=}";; esac; done
echo "[I] Selected Device: Orin"
echo "[I] Compute Capability: 8.7"
echo "[I] Latency: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
printf engine > "$ENGINE"
`), 0o755)
	req, _ := json.Marshal(protocol.Request{Version: 1, Op: protocol.OpBuild, Backend: "trtexec", Trtexec: fake, WorkDir: dir, Model: "model.onnx",
		Engine: filepath.Join(dir, "model.engine"), Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 64},
		Accuracy: &protocol.Accuracy{Inputs: []string{"model.test/input_0.pb"}, Outputs: []string{"model.test/output_0.pb"}, ATol: 1e-3, RTol: 1e-2}})
	evs, code := runServe(t, string(req))
	r := result(evs)
	if r.Class != protocol.ClassOK || code != protocol.ExitOK {
		t.Fatalf("%s (%s), exit %d", r.Class, r.Message, code)
	}
	if r.Validation == nil || r.Validation.AccuracyOK != nil || len(r.Validation.Accuracy) != 0 {
		t.Errorf("validation %+v", r.Validation)
	}
	if !strings.Contains(r.Message, NoAccuracyGate) || !strings.Contains(strings.Join(r.Calls, "\n"), NoAccuracyGate) {
		t.Errorf("message %q, calls %v", r.Message, r.Calls)
	}
	warned := false
	for _, ev := range evs {
		warned = warned || ev.Event == protocol.EventLog && ev.Severity == "warning" && ev.Message == NoAccuracyGate
	}
	if !warned {
		t.Error("no warning event")
	}
	// Without samples the result is as before.
	req, _ = json.Marshal(protocol.Request{Version: 1, Op: protocol.OpBuild, Backend: "trtexec", Trtexec: fake, WorkDir: dir, Model: "model.onnx",
		Engine: filepath.Join(dir, "model.engine"), Settings: protocol.Settings{Precision: "fp16", WorkspaceMiB: 64}})
	evs, _ = runServe(t, string(req))
	if r := result(evs); r.Class != protocol.ClassOK || strings.Contains(r.Message, "accuracy") {
		t.Errorf("without samples: %s %q", r.Class, r.Message)
	}
}
