// Package accuracy is the accuracy gate: it reads ONNX TensorProto files
// (the input_N.pb / output_N.pb files of the ONNX test data sets) that a
// user uploads beside a model, matches them to an engine's inputs and
// outputs, and compares the engine's outputs with the expected ones the way
// numpy.allclose does (|got-exp| <= atol + rtol*|exp|).
//
// It is pure Go: the worker (cgo) feeds the decoded inputs to TensorRT and
// hands the outputs back here; the fake worker used in tests runs the same
// comparison.
package accuracy
