package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/trtd/trtd/converter/onnx"
)

// inspectModel writes a model with one NonZero node (which TensorRT 8.2's
// parser does not support) and an input of shape [N, 4].
func inspectModel(t *testing.T) string {
	t.Helper()
	msg := func(b []byte, num protowire.Number, v []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	str := func(b []byte, num protowire.Number, s string) []byte { return msg(b, num, []byte(s)) }
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	node := str(str(str(nil, 1, "x"), 2, "y"), 4, "NonZero")
	dimN := str(nil, 2, "N")
	dim4 := varint(nil, 1, 4)
	shape := msg(msg(nil, 1, dimN), 1, dim4)
	tensorType := msg(varint(nil, 1, 1), 2, shape)
	input := msg(str(nil, 1, "x"), 2, msg(nil, 1, tensorType))
	output := str(nil, 1, "y")
	graph := msg(msg(msg(str(nil, 2, "g"), 1, node), 11, input), 12, output)
	model := varint(nil, 1, 8)
	model = str(model, 2, "test")
	model = msg(model, 7, graph)
	model = msg(model, 8, varint(nil, 2, 13))
	p := filepath.Join(t.TempDir(), "nonzero.onnx")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &Env{Stdout: &out, Stderr: &errb}
	code = runInspect(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestInspectJSON(t *testing.T) {
	p := inspectModel(t)
	code, out, errs := runCmd(t, p, "--json", "--trt", "8.2.1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got struct {
		IRVersion int64            `json:"ir_version"`
		Opset     map[string]int64 `json:"opset"`
		Producer  onnx.Producer    `json:"producer"`
		Inputs    []struct {
			Name  string `json:"name"`
			DType string `json:"dtype"`
			Shape []any  `json:"shape"`
		} `json:"inputs"`
		NodeCount     int            `json:"node_count"`
		OpCounts      map[string]int `json:"op_counts"`
		DynamicInputs []string       `json:"dynamic_inputs"`
		TensorRT      trtCheck       `json:"tensorrt"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.IRVersion != 8 || got.Opset[""] != 13 || got.Producer.Name != "test" || got.NodeCount != 1 || got.OpCounts["NonZero"] != 1 {
		t.Errorf("summary = %+v", got)
	}
	if len(got.Inputs) != 1 || got.Inputs[0].DType != "FLOAT" || len(got.Inputs[0].Shape) != 2 || got.Inputs[0].Shape[0] != "N" || got.Inputs[0].Shape[1] != float64(4) {
		t.Errorf("inputs = %+v", got.Inputs)
	}
	if len(got.DynamicInputs) != 1 {
		t.Errorf("dynamic inputs = %v", got.DynamicInputs)
	}
	tr := got.TensorRT
	if tr.Table != "8.2" || !tr.Exact || tr.Detected || len(tr.Unsupported) != 1 || tr.Unsupported[0].OpType != "NonZero" {
		t.Errorf("tensorrt = %+v", tr)
	}
}

func TestInspectText(t *testing.T) {
	p := inspectModel(t)
	code, out, errs := runCmd(t, "--trt", "8.2", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"producer:     test", "[N*, 4]  (dynamic)", "1  NonZero", "not supported by the TensorRT 8.2 ONNX parser"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runCmd(t, "--trt", "8.6", p); code != 0 || !strings.Contains(out, "every op of the model is supported") {
		t.Errorf("--trt 8.6: exit %d\n%s", code, out)
	}
	// TensorRT 8.0.1 (JetPack 4.6) has a table of its own.
	if code, out, errs := runCmd(t, "--trt", "8.0", p); code != 0 || !strings.Contains(out, "TensorRT 8.0 ONNX parser") {
		t.Errorf("--trt 8.0: exit %d\n%s%s", code, out, errs)
	}
}

func TestInspectErrors(t *testing.T) {
	p := inspectModel(t)
	b, _ := os.ReadFile(p)
	trunc := filepath.Join(t.TempDir(), "upload.onnx")
	if err := os.WriteFile(trunc, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"truncated", []string{trunc}, 1, trunc},
		{"missing", []string{"/nonexistent/m.onnx"}, 1, "/nonexistent/m.onnx"},
		{"no model", nil, 2, "exactly one MODEL"},
		{"two models", []string{p, p}, 2, "exactly one MODEL"},
		{"bad flag", []string{"--nope", p}, 2, "nope"},
		{"unknown trt", []string{"--trt", "7.1", p}, 2, "7.1"},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, code, errs, tt.code, tt.msg)
		}
	}
}

func TestCheckOpsDetection(t *testing.T) {
	s := onnx.Summary{Opset: map[string]int64{"": 13}, Ops: []onnx.OpCount{{OpType: "NonZero", Count: 1}}}
	root := t.TempDir()
	if c := checkOps(s, "", root); c.Error == "" || !strings.Contains(c.Error, "--trt") {
		t.Errorf("no TensorRT: %+v", c)
	}
	dir := filepath.Join(root, "usr/lib/aarch64-linux-gnu")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "libnvinfer.so.8.2.1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := checkOps(s, "", root)
	if !c.Detected || c.Version != "8.2.1" || c.Table != "8.2" || len(c.Unsupported) != 1 {
		t.Errorf("detected: %+v", c)
	}
}

func TestPlatformOf(t *testing.T) {
	write := func(root, rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nano, orin, dgpu, none := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(nano, "proc/device-tree/compatible", "nvidia,p3450-0000\x00nvidia,jetson-nano\x00nvidia,tegra210\x00")
	write(orin, "proc/device-tree/compatible", "nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00")
	write(dgpu, "proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n")
	for root, want := range map[string]string{nano: "nano", orin: "orin", dgpu: "dgpu", none: "nano"} {
		if got := platformOf(root); got != want {
			t.Errorf("platformOf(%s) = %s, want %s", root, got, want)
		}
	}
}

func TestEstimateMemory(t *testing.T) {
	m, err := onnx.Open(inspectModel(t))
	if err != nil {
		t.Fatal(err)
	}
	s := m.Summary()
	nano := estimateMemory(s, &trtCheck{Version: "8.2.1"}, "nano", "", t.TempDir())
	orin := estimateMemory(s, &trtCheck{Version: "8.2.1"}, "orin", "", t.TempDir())
	if nano.Error != "" || len(nano.Stages) == 0 || len(nano.Stages) != len(orin.Stages) {
		t.Fatalf("estimate: %+v", nano)
	}
	for i, st := range nano.Stages {
		if st.PeakBytes <= 0 || st.PeakBytes != st.DeviceBytes+st.HostBytes {
			t.Errorf("stage %s: %+v", st.Name, st)
		}
		// Orin's cuDNN/cuBLAS cost more than the Nano's.
		if st.Kind == "build" && i == 0 && orin.Stages[i].PeakBytes <= st.PeakBytes {
			t.Errorf("stage %s: orin %d <= nano %d", st.Name, orin.Stages[i].PeakBytes, st.PeakBytes)
		}
	}
	if len(nano.Notes) == 0 || !strings.Contains(nano.Notes[0], "dynamic") {
		t.Errorf("notes = %v", nano.Notes)
	}
}

// The stable fields of `trtd inspect --json` are exactly those of
// onnx.Summary, which the conformance tests compare with python-onnx:
// nothing the command adds may shadow them.
func TestInspectJSONCarriesSummary(t *testing.T) {
	p := inspectModel(t)
	m, err := onnx.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(m.Summary())
	var wantMap map[string]any
	json.Unmarshal(want, &wantMap)
	code, out, errs := runCmd(t, p, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ir_version", "opset", "producer", "inputs", "outputs", "node_count", "op_counts", "initializers"} {
		g, _ := json.Marshal(got[k])
		w, _ := json.Marshal(wantMap[k])
		if _, ok := got[k]; !ok || string(g) != string(w) {
			t.Errorf("%s: inspect says %s, Summary %s", k, g, w)
		}
	}
}
