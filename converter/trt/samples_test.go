package trt

import (
	"errors"
	"strings"
	"testing"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/protocol"
)

func TestFitSamples(t *testing.T) {
	img := accuracy.FromFloat64s("image", "float32", []int64{1, 3, 2, 2}, make([]float64, 12))
	ids := accuracy.FromFloat64s("ids", "int64", []int64{1, 4}, []float64{1, 2, 3, 4})
	for _, tc := range []struct {
		name    string
		inputs  []Input
		samples []accuracy.Tensor
		dtypes  []string
		err     string
	}{
		{"static, by name", []Input{{Name: "ids", DType: "int64", Dims: []int64{1, 4}}, {Name: "image", DType: "float32", Dims: []int64{1, 3, 2, 2}}}, []accuracy.Tensor{img, ids}, []string{"int64", "float32"}, ""},
		{"int64 narrowed for 8.x", []Input{{Name: "ids", DType: "int32", Dims: []int64{1, 4}}}, []accuracy.Tensor{ids}, []string{"int32"}, ""},
		{"float16 input", []Input{{Name: "image", DType: "float16", Dims: []int64{1, 3, 2, 2}}}, []accuracy.Tensor{img}, []string{"float16"}, ""},
		{"dynamic batch", []Input{{Name: "image", DType: "float32", Dims: []int64{-1, 3, 2, 2}}}, []accuracy.Tensor{img}, []string{"float32"}, ""},
		{"wrong size", []Input{{Name: "image", DType: "float32", Dims: []int64{1, 3, 4, 4}}}, []accuracy.Tensor{img}, nil, "input image: the sample has shape [1 3 2 2], the model's input is 1x3x4x4"},
		{"wrong rank", []Input{{Name: "image", DType: "float32", Dims: []int64{3, 2, 2}}}, []accuracy.Tensor{img}, nil, "the model's input has rank 3"},
		{"wrong type", []Input{{Name: "image", DType: "int32", Dims: []int64{1, 3, 2, 2}}}, []accuracy.Tensor{img}, nil, "input image is float32, the engine wants int32"},
		{"missing input", []Input{{Name: "image", DType: "float32", Dims: []int64{1, 3, 2, 2}}, {Name: "mask", DType: "bool", Dims: []int64{1}}}, []accuracy.Tensor{img}, nil, `no sample for input "mask"`},
		{"unknown name", []Input{{Name: "x", DType: "float32", Dims: []int64{1, 3, 2, 2}}}, []accuracy.Tensor{img}, nil, `named "image", but the engine's inputs are "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FitSamples(tc.inputs, tc.samples)
			if tc.err != "" {
				if err == nil || !errors.Is(err, accuracy.ErrMismatch) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, g := range got {
				if g.Name != tc.inputs[i].Name || g.DType != tc.dtypes[i] || int64(len(g.Data)) != g.Len()*int64(accuracy.ElemSize(g.DType)) {
					t.Errorf("%d: %s %s %d bytes", i, g.Name, g.DType, len(g.Data))
				}
			}
		})
	}
}

func TestGate(t *testing.T) {
	exp := []accuracy.Tensor{accuracy.FromFloat64s("prob", "float32", []int64{2}, []float64{0.2, 0.8})}
	acc := protocol.Accuracy{ATol: 1e-3, RTol: 1e-2}
	for _, tc := range []struct {
		name  string
		got   []accuracy.Tensor
		class protocol.Class
		msg   string
		ok    *bool
	}{
		{"within", []accuracy.Tensor{accuracy.FromFloat64s("prob", "float32", []int64{2}, []float64{0.2, 0.8})}, protocol.ClassOK, "outputs match", ptr(true)},
		{"fp16 output within", []accuracy.Tensor{accuracy.FromFloat64s("prob", "float16", []int64{2}, []float64{0.2, 0.8})}, protocol.ClassOK, "outputs match", ptr(true)},
		{"outside", []accuracy.Tensor{accuracy.FromFloat64s("prob", "float32", []int64{2}, []float64{0.2, 0.9})}, protocol.ClassInvalidEngine, "output prob: max abs error 0.1", ptr(false)},
		{"no such output", []accuracy.Tensor{accuracy.FromFloat64s("logits", "float32", []int64{2}, []float64{0, 0})}, protocol.ClassBadRequest, `accuracy samples: `, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v protocol.Validation
			c, msg := Gate(&v, tc.got, exp, acc)
			if c != tc.class || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%s %q", c, msg)
			}
			if (tc.ok == nil) != (v.AccuracyOK == nil) || tc.ok != nil && *tc.ok != *v.AccuracyOK || tc.ok != nil && len(v.Accuracy) != 1 {
				t.Errorf("validation %+v", v)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
