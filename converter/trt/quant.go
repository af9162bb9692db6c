package trt

import (
	"fmt"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/onnx"
	"github.com/trtd/trtd/converter/protocol"
)

// Quant is what an int8 build can be based on.
type Quant struct {
	// QDQ: the model has QuantizeLinear/DequantizeLinear nodes (explicit
	// quantization: TensorRT takes the scales from them).
	QDQ bool
	// Calibration: calibration data was uploaded (name.calib/input_*.pb),
	// or a calibration cache of an earlier build exists.
	Calibration bool
}

// Int8Refused is why a stage's int8 precision builds fp16 instead.
const Int8Refused = "precision int8: refused, building fp16: the model has no QuantizeLinear/DequantizeLinear nodes, no calibration data was uploaded (name.calib/input_*.pb) and no calibration cache exists; int8 without them has no valid scales"

// HasQDQ reports whether the model at path (or any of its subgraphs) has a
// QuantizeLinear or DequantizeLinear node of the default ONNX domain.
func HasQDQ(path string) (bool, error) {
	m, err := onnx.Open(path)
	if err != nil {
		return false, err
	}
	return m.HasQDQ(), nil
}

// LoadCalibration reads the calibration files (ONNX TensorProto, sorted
// as accuracy samples are) and groups them into batches for the network's
// inputs: a named tensor goes to the input of its name, an unnamed one by
// position (file k to input k mod the number of inputs); every input needs
// the same number of batches. Each tensor is converted to its input's type
// and must have its input's rank and fixed dims; a dynamic dim must equal
// the optimization profile's kOPT, at which TensorRT calibrates (NvInfer.h
// setCalibrationProfile: "MIN and MAX values will be overwritten by kOPT").
// Errors wrap accuracy.ErrMismatch.
func LoadCalibration(paths []string, inputs []Input, profile []ProfileCall) ([][]accuracy.Tensor, error) {
	if len(paths) == 0 || len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no calibration files or no inputs", accuracy.ErrMismatch)
	}
	idx := map[string]int{}
	for i, in := range inputs {
		idx[in.Name] = i
	}
	per := make([][]accuracy.Tensor, len(inputs))
	for k, p := range accuracy.SortSamples(paths) {
		t, err := accuracy.ReadFile(p)
		if err != nil {
			return nil, err
		}
		i := k % len(inputs)
		if t.Name != "" {
			j, ok := idx[t.Name]
			if !ok {
				return nil, fmt.Errorf("%w: calibration file %s holds %q, which is not an input of the model", accuracy.ErrMismatch, p, t.Name)
			}
			i = j
		}
		t.Name = inputs[i].Name
		per[i] = append(per[i], t)
	}
	n := len(per[0])
	for i, ts := range per {
		if len(ts) != n {
			return nil, fmt.Errorf("%w: calibration data: input %s has %d batches, input %s has %d", accuracy.ErrMismatch, inputs[0].Name, n, inputs[i].Name, len(ts))
		}
	}
	opt := map[string][]int64{}
	for _, p := range profile {
		opt[p.Input] = p.Opt
	}
	batches := make([][]accuracy.Tensor, n)
	for b := 0; b < n; b++ {
		for i, in := range inputs {
			t, err := fitCalibration(per[i][b], in, opt[in.Name])
			if err != nil {
				return nil, fmt.Errorf("calibration batch %d: %w", b+1, err)
			}
			batches[b] = append(batches[b], t)
		}
	}
	return batches, nil
}

func fitCalibration(t accuracy.Tensor, in Input, opt []int64) (accuracy.Tensor, error) {
	t, err := t.As(in.DType)
	if err != nil {
		return t, err
	}
	if len(t.Dims) != len(in.Dims) {
		return t, fmt.Errorf("%w: input %s: the data has shape %v, the input has rank %d", accuracy.ErrMismatch, in.Name, t.Dims, len(in.Dims))
	}
	for k, d := range in.Dims {
		want := d
		if d < 0 && k < len(opt) {
			want = opt[k]
		}
		if t.Dims[k] != want {
			return t, fmt.Errorf("%w: input %s: the data has shape %v, calibration runs at %s (fixed dims, and the profile's kOPT for dynamic ones)", accuracy.ErrMismatch, in.Name, t.Dims, DimsString(withOpt(in.Dims, opt)))
		}
	}
	return t, nil
}

func withOpt(dims, opt []int64) []int64 {
	out := append([]int64(nil), dims...)
	for k, d := range out {
		if d < 0 && k < len(opt) {
			out[k] = opt[k]
		}
	}
	return out
}

// typedNote is what a precision becomes on strongly typed TensorRT (11.x):
// the network's own types.
func typedNote(precision, release string) string {
	how := "; convert the ONNX model to float16 for an fp16 engine"
	if precision == protocol.PrecisionINT8 {
		how = " (QuantizeLinear/DequantizeLinear nodes, if any, set the int8 layers; 11.x has no calibrator)"
	}
	return fmt.Sprintf("precision %s: TensorRT %s networks are always strongly typed (its BuilderFlag has no fp16 or int8 flag, and the strongly-typed network flag is deprecated and always on): built with the model's own types%s",
		precision, release, how)
}
