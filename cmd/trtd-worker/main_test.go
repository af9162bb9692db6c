package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/internal/testmodels"
)

// runServe runs the worker's request mode in-process and returns its
// events and exit code.
func runServe(t *testing.T, req string) ([]protocol.Event, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(nil, strings.NewReader(req), &out, &errb)
	var evs []protocol.Event
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev protocol.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line is not an event: %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 || evs[len(evs)-1].Event != protocol.EventResult {
		t.Fatalf("no final result event; stdout %q stderr %q", out.String(), errb.String())
	}
	return evs, code
}

func result(evs []protocol.Event) *protocol.Result { return evs[len(evs)-1].Result }

// noTensorRT makes sure this machine looks like one without trtexec.
func noTensorRT(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := os.Stat("/usr/src/tensorrt/bin/trtexec"); err == nil {
		t.Skip("this machine has trtexec")
	}
}

func TestBadRequests(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	for name, req := range map[string]string{
		"not json":       `{"version":`,
		"unknown field":  `{"version":1,"op":"build","bogus":1}`,
		"old version":    `{"version":0,"op":"build"}`,
		"unknown op":     `{"version":1,"op":"dance"}`,
		"bad backend":    `{"version":1,"op":"build","backend":"gpu"}`,
		"relative dir":   `{"version":1,"op":"build","work_dir":"job","model":"m.onnx","engine":"e"}`,
		"escaping model": `{"version":1,"op":"build","work_dir":"` + dir + `","model":"../m.onnx","engine":"e"}`,
		"missing model":  `{"version":1,"op":"build","work_dir":"` + dir + `","model":"m.onnx","engine":"e"}`,
	} {
		t.Run(name, func(t *testing.T) {
			evs, code := runServe(t, req)
			if r := result(evs); r.Class != protocol.ClassBadRequest || code != protocol.ExitBadRequest || r.Message == "" {
				t.Errorf("result %+v, exit %d", r, code)
			}
		})
	}
}

func TestSymlinkModelRefused(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	outside := testmodels.Write(t, t.TempDir(), "tiny.onnx", testmodels.TinyCNN)
	os.Symlink(outside, filepath.Join(dir, "m.onnx"))
	evs, code := runServe(t, `{"version":1,"op":"build","work_dir":"`+dir+`","model":"m.onnx","engine":"`+dir+`/e"}`)
	if r := result(evs); r.Class != protocol.ClassBadRequest || !strings.Contains(r.Message, "not a regular file") || code != protocol.ExitBadRequest {
		t.Errorf("%+v %d", r, code)
	}
}

// Without TensorRT libraries (this machine) and without trtexec every build
// ends builder_unavailable, saying what is missing.
func TestBuildWithoutTensorRT(t *testing.T) {
	noTensorRT(t)
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	testmodels.Write(t, dir, "model.onnx", testmodels.TinyCNN)
	for _, backend := range []string{"auto", "api", "trtexec"} {
		evs, code := runServe(t, `{"version":1,"op":"build","backend":"`+backend+`","work_dir":"`+dir+`","model":"model.onnx","engine":"`+dir+`/model.engine","settings":{"precision":"fp16","workspace_mib":64,"timing_cache":false}}`)
		r := result(evs)
		if r.Class != protocol.ClassBuilderUnavailable || code != protocol.ExitBuilderUnavailable {
			t.Errorf("%s: %+v exit %d", backend, r, code)
		}
		if !strings.HasPrefix(r.Message, "TensorRT not available on this machine: ") {
			t.Errorf("%s: message %q", backend, r.Message)
		}
		if _, err := os.Stat(filepath.Join(dir, "model.engine")); err == nil {
			t.Errorf("%s: an engine was written", backend)
		}
	}
}

func TestProbeRequest(t *testing.T) {
	noTensorRT(t)
	evs, code := runServe(t, `{"version":1,"op":"probe"}`)
	if r := result(evs); r.Class != protocol.ClassBuilderUnavailable || code != protocol.ExitBuilderUnavailable || !strings.Contains(r.Message, "trtexec not found") {
		t.Errorf("%+v %d", r, code)
	}
}

func TestHumanCommands(t *testing.T) {
	noTensorRT(t)
	var out bytes.Buffer
	if code := run([]string{"probe", "--json"}, nil, &out, &out); code != protocol.ExitBuilderUnavailable {
		t.Errorf("probe --json exit %d", code)
	}
	var r protocol.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Class != protocol.ClassBuilderUnavailable {
		t.Errorf("probe --json: %v %q", err, out.String())
	}
	out.Reset()
	code := run([]string{"cuda-selftest"}, nil, &out, &out)
	if _, err := os.Stat("/dev/nvidiactl"); err != nil && code != protocol.ExitBuilderUnavailable {
		t.Errorf("cuda-selftest without a GPU: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"frobnicate"}, nil, &out, &out); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}

}

// An op "split" cuts the model in the worker's directory and returns the
// manifest typed in the result; a request escaping the directory is refused.
func TestSplitOpWritesPartsAndReturnsManifest(t *testing.T) {
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	dir := t.TempDir()
	testmodels.Write(t, dir, "m.onnx", testmodels.SmallCNN)
	evs, code := runServe(t, `{"version":1,"op":"split","work_dir":"`+dir+`","model":"m.onnx","parts":2}`)
	r := result(evs)
	if code != protocol.ExitOK || r.Class != protocol.ClassOK || r.Split == nil || len(r.Split.Parts) != 2 {
		t.Fatalf("exit %d result %+v", code, r)
	}
	for _, p := range r.Split.Parts {
		if p.Engine != "" {
			t.Errorf("part %d names an engine before the daemon placed one: %q", p.Index, p.Engine)
		}
		if _, err := os.Stat(filepath.Join(dir, protocol.SegmentsDir, p.File)); err != nil {
			t.Errorf("part %d: %v", p.Index, err)
		}
	}
	_, code = runServe(t, `{"version":1,"op":"split","work_dir":"`+dir+`","model":"../m.onnx","parts":2}`)
	if code != protocol.ExitBadRequest {
		t.Fatalf("escaping model: exit %d", code)
	}
}
