// Package trt builds TensorRT engines through the TensorRT C++ API.
//
// It is the only package of trtd with `import "C"`, and only one of its
// files (cgo.go) has it. That file calls a small hand-written extern "C"
// shim (shim.h, shim.cc) with opaque handles and flat parameter structs; the
// shim loads libnvinfer, libnvonnxparser, libnvinfer_plugin and libcudart
// with dlopen at run time, so the worker links against nothing of TensorRT
// or CUDA and reports clearly what is missing.
//
// Build tags:
//
//   - cgo && tensorrt: the real builder, compiled against the TensorRT
//     headers named by CGO_CPPFLAGS (mk/trt.mk finds them).
//   - cgo && !tensorrt: the CUDA runtime probe works (device name, compute
//     capability, memory, a cudaMalloc test); every TensorRT call returns
//     ErrNotCompiled ("built without TensorRT headers").
//   - !cgo: everything returns ErrNotCompiled / ErrNoCUDA.
//
// The accuracy gate: when the request carries sample inputs and expected
// outputs (converter/accuracy), validation feeds the samples instead of
// random data, reads the outputs back and compares them; an engine outside
// tolerance ends invalid_engine and is never written. Matching the samples
// to the network (FitSamples) and the verdict (Gate) are pure Go.
//
// The mapping from stage settings to builder calls for each TensorRT
// version (plan.go) is pure Go and tested without TensorRT. Enumerations
// cross the cgo boundary by name ("kFP16", "kWORKSPACE"), never as
// integers: BuilderFlag was renumbered in 10.0 and TacticSource in 11.0.
package trt
