package trt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/accuracy"
)

const onnxTestdata = "/usr/share/libonnx-testdata/data/node"

func needTestdata(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(onnxTestdata); err != nil {
		t.Skipf("libonnx-testdata not installed (%v): apt-get install libonnx-testdata", err)
	}
}

// Q/DQ detection on real models: libonnx-testdata's QuantizeLinear and
// DequantizeLinear node tests have them, Add and Relu do not.
func TestHasQDQ(t *testing.T) {
	needTestdata(t)
	for name, want := range map[string]bool{
		"test_quantizelinear": true, "test_dequantizelinear_axis": true, "test_add": false, "test_relu": false,
	} {
		got, err := HasQDQ(filepath.Join(onnxTestdata, name, "model.onnx"))
		if err != nil || got != want {
			t.Errorf("%s: HasQDQ = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := HasQDQ(filepath.Join(t.TempDir(), "missing.onnx")); err == nil {
		t.Error("a missing model has no error")
	}
}

// Calibration data laid out like name.test/ (input_N.pb TensorProtos),
// here libonnx-testdata's test_add inputs x and y (float32 3x4x5), grouped
// into batches per model input.
func TestLoadCalibration(t *testing.T) {
	needTestdata(t)
	set := filepath.Join(onnxTestdata, "test_add", "test_data_set_0")
	x, y := filepath.Join(set, "input_0.pb"), filepath.Join(set, "input_1.pb")
	inputs := []Input{{Name: "x", DType: "float32", Dims: []int64{3, 4, 5}}, {Name: "y", DType: "float32", Dims: []int64{3, 4, 5}}}
	b, err := LoadCalibration([]string{y, x}, inputs, nil)
	if err != nil || len(b) != 1 || len(b[0]) != 2 || b[0][0].Name != "x" || b[0][1].Name != "y" || len(b[0][0].Data) != 3*4*5*4 {
		t.Fatalf("LoadCalibration = %v, %v", b, err)
	}
	// Two batches of a one-input model (the same file twice), converted to
	// the network's float16.
	b, err = LoadCalibration([]string{x, x}, []Input{{Name: "x", DType: "float16", Dims: []int64{3, 4, 5}}}, nil)
	if err != nil || len(b) != 2 || b[1][0].DType != "float16" || len(b[1][0].Data) != 3*4*5*2 {
		t.Fatalf("two batches: %v, %v", b, err)
	}
	// A dynamic dim calibrates at the profile's kOPT.
	dyn := []Input{{Name: "x", DType: "float32", Dims: []int64{-1, 4, 5}}}
	if _, err := LoadCalibration([]string{x}, dyn, []ProfileCall{{Input: "x", Min: []int64{1, 4, 5}, Opt: []int64{3, 4, 5}, Max: []int64{8, 4, 5}}}); err != nil {
		t.Errorf("dynamic at kOPT: %v", err)
	}
	for name, c := range map[string]struct {
		paths  []string
		inputs []Input
		prof   []ProfileCall
		want   string
	}{
		"unknown name":  {[]string{x}, []Input{{Name: "image", DType: "float32", Dims: []int64{3, 4, 5}}}, nil, `holds "x", which is not an input`},
		"uneven":        {[]string{x, x, y}, inputs, nil, "has 2 batches"},
		"wrong shape":   {[]string{x}, []Input{{Name: "x", DType: "float32", Dims: []int64{1, 4, 5}}}, nil, "calibration runs at 1x4x5"},
		"not at kOPT":   {[]string{x}, dyn, []ProfileCall{{Input: "x", Min: []int64{1, 4, 5}, Opt: []int64{2, 4, 5}, Max: []int64{8, 4, 5}}}, "calibration runs at 2x4x5"},
		"no files":      {nil, inputs, nil, "no calibration files"},
		"missing input": {[]string{x}, []Input{{Name: "x", DType: "float32", Dims: []int64{3, 4, 5}}, {Name: "z", DType: "float32", Dims: []int64{1}}}, nil, "input z has 0"},
	} {
		_, err := LoadCalibration(c.paths, c.inputs, c.prof)
		if err == nil || !errors.Is(err, accuracy.ErrMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want %q", name, err, c.want)
		}
	}
}
