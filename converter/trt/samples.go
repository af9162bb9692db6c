package trt

import (
	"errors"
	"fmt"

	"github.com/trtd/trtd/converter/accuracy"
	"github.com/trtd/trtd/converter/protocol"
)

// FitSamples prepares the accuracy gate's sample inputs for the network the
// parser built: each sample goes to the input of its name (or position, when
// unnamed), converted to that input's type (TensorRT 8.x turns int64 inputs
// into int32), with the input's rank and, for its fixed dims, its sizes.
// Dynamic dims take the sample's sizes, which must lie in the optimization
// profile (TensorRT refuses them otherwise). Errors wrap
// accuracy.ErrMismatch.
func FitSamples(inputs []Input, samples []accuracy.Tensor) ([]accuracy.Tensor, error) {
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Name
	}
	fit, err := accuracy.Match(samples, names, "input")
	if err != nil {
		return nil, err
	}
	for i, in := range inputs {
		t, err := fit[i].As(in.DType)
		if err != nil {
			return nil, err
		}
		if len(t.Dims) != len(in.Dims) {
			return nil, fmt.Errorf("%w: input %s: the sample has shape %v, the model's input has rank %d (%s)", accuracy.ErrMismatch, in.Name, t.Dims, len(in.Dims), DimsString(in.Dims))
		}
		for k, d := range in.Dims {
			if d >= 0 && t.Dims[k] != d {
				return nil, fmt.Errorf("%w: input %s: the sample has shape %v, the model's input is %s", accuracy.ErrMismatch, in.Name, t.Dims, DimsString(in.Dims))
			}
		}
		fit[i] = t
	}
	return fit, nil
}

// Gate compares the engine's outputs with the expected ones and records the
// stats in val. It returns ClassOK when every expected output is within
// tolerance; invalid_engine, with a message naming the worst output and its
// error, when one is not; bad_request when the expected outputs do not fit
// the engine's outputs.
func Gate(val *protocol.Validation, got, expected []accuracy.Tensor, acc protocol.Accuracy) (protocol.Class, string) {
	o, err := accuracy.Check(got, expected, acc.ATol, acc.RTol)
	if err != nil {
		if errors.Is(err, accuracy.ErrMismatch) {
			return protocol.ClassBadRequest, "accuracy samples: " + err.Error()
		}
		return protocol.ClassInvalidEngine, "accuracy gate: " + err.Error()
	}
	ok := o.OK
	val.Accuracy, val.AccuracyOK = o.Stats, &ok
	if !ok {
		return protocol.ClassInvalidEngine, o.Message
	}
	return protocol.ClassOK, o.Message
}
